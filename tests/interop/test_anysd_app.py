"""A third-party USSD application served through the gateway unchanged: a menu built on anysd (PyPI, MIT), the
framework's way (forms, validators, a navigation tree, state in Redis), behind Flask, in Africa's Talking's
convention, in its own virtualenv (.cache/venv-anysd, made by scripts/setup.sh --test) with a real redis-server.

ussd-airflow 0.0.6, the other candidate, does not import on Python 3.11 as shipped: its PyConfigure 0.5.9
dependency (the latest) imports inspect.getargspec (removed in 3.11) and collections.MutableMapping (removed in
3.10). It runs with those two names put back before import (Django 2.2.6, its pinned, end-of-life version), so it
would not be "unchanged"; anysd needs no such shim."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.config.load import load
from gateway.sim.run import dial_many
from tests.support.daemon import running
from tests.support.osmo_stp import free_port

pytestmark = pytest.mark.interop

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "tests" / "apps" / "anysd_app"
PYTHON = ROOT / ".cache" / "venv-anysd" / "bin" / "python"


def _missing(what: str) -> None:
    if os.environ.get("USSD_ALLOW_MISSING_TOOLS") == "1":
        pytest.skip(what)
    pytest.fail(f"{what}: scripts/setup.sh --test installs it")


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"exited: {log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"not listening: {log.read_text()[-2000:]}")


@pytest.fixture
def anysd_app(tmp_path: Path) -> Iterator[int]:
    if not PYTHON.exists():
        _missing("the anysd virtualenv is missing")
    if shutil.which("redis-server") is None:
        _missing("redis-server is missing")
    redis_port, app_port = free_port(), free_port()
    procs = []
    try:
        redis_log = tmp_path / "redis.log"
        with redis_log.open("wb") as out:
            procs.append(subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1",
                                           "--save", "", "--appendonly", "no"], stdout=out, stderr=out))  # fmt: skip
        _wait_port(redis_port, procs[-1], redis_log)
        config = tmp_path / "anysd.yaml"
        config.write_text(f"development:\n  redis:\n    host: 127.0.0.1\n    port: {redis_port}\n    db: 0\n"
                          "    decode_responses: true\n")  # fmt: skip
        app_log = tmp_path / "app.log"
        with app_log.open("wb") as out:
            procs.append(subprocess.Popen([str(PYTHON), "serve.py", "127.0.0.1", str(app_port)], cwd=APP,
                                          env={**os.environ, "ANYSD_CONFIG_FILE": str(config)}, stdout=out,
                                          stderr=out))  # fmt: skip
        _wait_port(app_port, procs[-1], app_log)
        yield app_port
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(10)


async def test_anysd_menu_through_the_gateway(anysd_app: int, tmp_path: Path) -> None:
    (tmp_path / "gw.toml").write_text(f"""
[m3ua]
listen = "127.0.0.1:{free_port()}"
routing_context = 1
[sccp]
point_code = 1
network_point_code = 2
global_title = "491700000001"
[cdr]
path = "{tmp_path}/cdr.jsonl"
[[route]]
name = "mybank"
code = "*384#"
primary_url = "http://127.0.0.1:{anysd_app}/ussd"
dialect = "africastalking"
""")
    cfg = load(tmp_path / "gw.toml")
    async with running(cfg):
        calls = [("491720000001", "*384#", ["2", "abc", "50", "1"]), ("491720000002", "*384#", ["1", "1234"]),
                 ("491720000003", "*384*2#", ["20", "1"])]  # direct dial into the airtime form
        airtime, balance, direct = (await dial_many("127.0.0.1", cfg.listen_port, calls, timeout=30))[0]
    home = "MyBank:\n1. Balance\n2. Buy airtime"
    # anysd's own invalid-input text repeats the menu's "CON" prefix: the subscriber sees what the app sent.
    assert airtime.menus == [home, "Enter amount (5-500)", "Invalid input\nCON Enter amount (5-500)",
                             "Buy 50 EUR airtime?\n1. Confirm\n0. Back"]
    assert airtime.final == "Airtime of 50 EUR sent. Thank you!"
    assert (balance.menus, balance.final) == ([home, "Enter your PIN"], "Your balance is 1,250.00 EUR")
    assert direct.menus == ["Enter amount (5-500)", "Buy 20 EUR airtime?\n1. Confirm\n0. Back"]  # "*384*2#": text "2"
    assert direct.final == "Airtime of 20 EUR sent. Thank you!"
    cdrs = [json.loads(line) for line in (tmp_path / "cdr.jsonl").read_text().splitlines()]
    assert sorted((c["msisdn"], c["outcome"], c["hops"]) for c in cdrs) == [
        ("491720000001", "completed", 5), ("491720000002", "completed", 3), ("491720000003", "completed", 3)]
