"""Run a Python script under User-Mode Linux, a real Linux kernel in a process, for kernel SCTP (design.md §7).

The guest mounts the host's filesystem read-only as its root, loads the SCTP module, runs the script with the
project's virtualenv interpreter, and writes the output and exit status into a writable host folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INIT = ROOT / "scripts" / "uml-init.sh"
KERNEL = "/usr/bin/linux.uml"


def run_in_uml(script: Path, workdir: Path, *, timeout: float = 90) -> tuple[int, str]:
    """Run ``script`` (a host path) in a UML guest; returns (exit status, output)."""
    if not Path(KERNEL).exists() or not Path("/usr/bin/busybox").exists():
        if os.environ.get("USSD_ALLOW_MISSING_TOOLS") == "1":
            pytest.skip("user-mode-linux is not installed")
        pytest.fail("user-mode-linux / busybox-static are missing: scripts/setup.sh --test installs them")
    out = workdir / "uml-out"
    umldir = workdir / "uml-dir"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    umldir.mkdir(parents=True, exist_ok=True)
    shutil.copy(script, out / "script.py")
    python = Path(sys.prefix) / "bin" / "python"  # the venv's interpreter: a symlink to the real one, not a shim
    cmd = [
        "timeout", str(int(timeout)), KERNEL, "mem=256M", "rootfstype=hostfs", "rootflags=/", "ro",
        f"init={INIT}", "con=null", "con0=fd:0,fd:1", f"uml_dir={umldir}", f"UML_OUT={out}",
        "UML_SCRIPT=/mnt/script.py", f"UML_CWD={ROOT}", f"UML_PYTHON={python}",
    ]  # fmt: skip
    console = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout + 30, check=False)
    status_file = out / "status"
    output = (out / "output").read_text() if (out / "output").exists() else ""
    if not status_file.exists():
        raise AssertionError(f"the UML guest did not finish: {console.stdout[-2000:]!r}")
    return int(status_file.read_text().strip() or "1"), output
