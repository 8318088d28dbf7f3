"""osmo-stp in its chroot, started and stopped by the tests (scripts/osmo-stp.sh installs it)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "osmo-stp.sh"


def pc(a: int, b: int, c: int) -> int:
    """An ITU point code from osmo-stp's default 3.8.3 notation."""
    return (a << 11) | (b << 3) | c


def chroot_path() -> Path:
    if os.geteuid() != 0:
        pytest.skip("osmo-stp runs in a chroot: needs root")
    done = subprocess.run([str(SCRIPT), "install"], capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        if os.environ.get("USSD_ALLOW_MISSING_TOOLS") == "1":
            pytest.skip(f"osmo-stp could not be installed: {done.stderr[-500:]}")
        pytest.fail(f"osmo-stp could not be installed: {done.stderr[-2000:]}")
    return Path(subprocess.run([str(SCRIPT), "path"], capture_output=True, text=True, check=True).stdout.strip())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OsmoStp:
    """One osmo-stp process listening for M3UA over TCP on 127.0.0.1:``port``, accepting dynamic ASPs that
    register their routing keys (REG_REQ before ASPUP)."""

    def __init__(self, port: int, *, point_code: str = "0.1.1", vty_port: int | None = None) -> None:
        self.root = chroot_path()
        self.port = port
        self.vty_port = vty_port or free_port()
        self.config = (
            "log stderr\n logging filter all 1\n logging color 0\n logging level all notice\n"
            f"line vty\n bind 127.0.0.1 {self.vty_port}\n"
            f"cs7 instance 0\n point-code {point_code}\n xua rkm routing-key-allocation dynamic-permitted\n"
            f" listen m3ua {port} tcp\n  local-ip 127.0.0.1\n  accept-asp-connections dynamic-permitted\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.root / "tmp" / f"osmo-stp-{port}.log"

    def start(self) -> OsmoStp:
        cfg = self.root / "tmp" / f"osmo-stp-{self.port}.cfg"
        cfg.write_text(self.config)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(["chroot", str(self.root), "osmo-stp", "-c", f"/tmp/{cfg.name}"],
                                         stdout=log, stderr=log)  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"osmo-stp exited: {self.log.read_text()[-1000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("osmo-stp did not listen in time")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()
