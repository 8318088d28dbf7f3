"""A real PostgreSQL server for the tests: Debian's binaries (``apt install postgresql``, scripts/setup.sh --test) in
a temporary data directory, listening on a free port of 127.0.0.1, one per test session.

initdb refuses to run as root, so as root the server runs as the ``postgres`` system user the Debian package
creates (runuser); as any other user it runs as that user. Each test gets a database of its own
(:meth:`PostgresServer.new_database`). The tests' server trades durability for speed (fsync off: a test never
survives a power cut); bench/bench_push_store.py starts one with ``durable=True``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from itertools import count
from pathlib import Path

import pytest

VERSIONS = ("15", "16", "17")  # the first found wins; Debian bookworm ships 15


def bindir() -> Path | None:
    for version in VERSIONS:
        path = Path("/usr/lib/postgresql") / version / "bin"
        if (path / "initdb").exists():
            return path
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    def __init__(self, bin_dir: Path, *, durable: bool = False) -> None:
        self.bin = bin_dir
        self.durable = durable
        self.port = free_port()
        self.base = Path(tempfile.mkdtemp(prefix="ussd-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        self._names = count()

    @property
    def dsn_base(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}"

    def _run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(a) for a in argv]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)

    def start(self) -> PostgresServer:
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres")
        done = self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                         "-E", "UTF8", "--no-locale", "--no-sync")  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stdout}{done.stderr}")
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.base} -c max_connections=100"
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        done = self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options,
                         "-w", "-t", "60", "start")  # fmt: skip
        if done.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {done.stdout}{done.stderr}{log[-2000:]}")
        return self

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.base, ignore_errors=True)

    def new_database(self) -> str:
        """A fresh, empty database; its DSN."""
        name = f"t{next(self._names)}"
        done = self._run(str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                         "-d", "postgres", "-q", "-c", f"CREATE DATABASE {name}")  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"CREATE DATABASE failed: {done.stderr}")
        return f"{self.dsn_base}/{name}"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The session's server; skipped with the reason when PostgreSQL is not installed (a failure in CI, by
    tests/support/ci_honesty.py)."""
    found = bindir()
    if found is None:
        pytest.skip("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: "
                    "apt install postgresql (scripts/setup.sh --test)")  # fmt: skip
    server = PostgresServer(found).start()
    try:
        yield server
    finally:
        server.stop()

