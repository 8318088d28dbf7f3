"""In CI a skipped test fails: a missing reference tool cannot pass as green."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SKIPPING = """
import pytest

def test_needs_a_tool():
    pytest.skip("tshark is not installed")

def test_fine():
    pass
"""


def run(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_skipping.py").write_text(SKIPPING)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    root = Path(__file__).resolve().parent.parent
    env["PYTHONPATH"] = str(root)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "tests.support.ci_honesty", "-p",
                           "no:cacheprovider", str(tmp_path / "test_skipping.py")],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120, check=False)  # fmt: skip


def test_a_skip_fails_when_ci_is_set(tmp_path: Path) -> None:
    done = run(tmp_path, "true")
    assert done.returncode == 1, done.stdout
    assert "1 failed, 1 passed" in done.stdout and "tshark is not installed" in done.stdout


def test_a_skip_stays_a_skip_on_a_developers_machine(tmp_path: Path) -> None:
    done = run(tmp_path, None)
    assert done.returncode == 0, done.stdout
    assert "1 passed, 1 skipped" in done.stdout
