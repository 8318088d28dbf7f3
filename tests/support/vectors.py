"""The one place tests (and fuzz/make_corpus.py) find the real-world SS7 vectors: tests/vectors/ (README.md there
says where each file comes from and what it holds). They are committed, so a bare clone runs every test that reads
them; a missing file fails the test that asked for it, it never skips.
"""

from __future__ import annotations

from pathlib import Path

VECTORS = Path(__file__).resolve().parents[1] / "vectors"


def vector(name: str) -> Path:
    """The path of tests/vectors/<name>, failing loudly when the file is not there."""
    path = VECTORS / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the real-world vectors are committed in tests/vectors/")
    return path


def vector_hex(name: str) -> bytes:
    """The octets of a one-line hex vector (tests/vectors/<name>.hex)."""
    return bytes.fromhex(vector(name).read_text().strip())
