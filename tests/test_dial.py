"""`ussd-gateway dial`: one handset against the daemon, reported like a handset's USSD API."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.config.load import load
from gateway.sim.dial import describe_dcs, dial
from tests.support.daemon import default_config as config
from tests.support.daemon import running
from tests.support.osmo_stp import free_port


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[int]:
    cfg = load(config(tmp_path))
    async with running(cfg):
        yield cfg.listen_port


def keyboard(*lines: str | None):  # type: ignore[no-untyped-def]
    queue = list(lines)

    async def read_line() -> str | None:
        return queue.pop(0) if queue else None

    return read_line


async def test_scripted_answer(gateway: int) -> None:
    out = io.StringIO()
    rc = await dial("127.0.0.1", gateway, "*123#", msisdn="491720000001", answers=["1"], read_line=None, out=out)
    assert rc == 0
    assert out.getvalue() == ("[0] reply needed  dcs=15 (0x0F, GSM7)\nDemo menu\n1. Balance\n2. Help\n\n> 1\n"
                              "[1] session ended  dcs=15 (0x0F, GSM7)\nYour balance is 42.00 EUR\n\n")


async def test_keyboard_answer_and_cancel(gateway: int) -> None:
    out = io.StringIO()
    rc = await dial("127.0.0.1", gateway, "*123#", msisdn="491720000001", answers=[], read_line=keyboard("2\n"),
                    out=out, as_json=True)
    assert rc == 0
    lines = out.getvalue().splitlines()
    assert lines[0].startswith('{"status": 0, "meaning": "reply needed", "text": "Demo menu')
    assert lines[1] == ('{"status": 1, "meaning": "session ended", "text": "Dial *123# and pick an option.", '
                        '"dcs": 15, "error": null}')
    out = io.StringIO()
    rc = await dial("127.0.0.1", gateway, "*123#", msisdn="491720000001", answers=[], read_line=keyboard(None),
                    out=out)
    assert rc == 1 and out.getvalue().endswith("[4] network error  error=user-cancelled\n\n")


def test_dcs_descriptions() -> None:
    assert describe_dcs(0x48) == "72 (0x48, UCS2)"
    assert describe_dcs(0x01) == "1 (0x01, GSM7, en)"


def test_unreachable_gateway_is_a_clear_error() -> None:
    proc = subprocess.run([sys.executable, "-m", "gateway.cli", "dial", "*123#", "--connect",
                           f"127.0.0.1:{free_port()}", "--wait", "0.5"], check=False, capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 2
    assert "cannot reach the gateway" in proc.stderr and "Traceback" not in proc.stderr
