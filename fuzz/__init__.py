"""Coverage-guided fuzz harnesses of the codecs (atheris); see fuzz/README.md."""
