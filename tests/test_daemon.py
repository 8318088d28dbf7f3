"""`ussd-gateway run`: the daemon on a configuration file, driven by the simulator; bad files are refused."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

from gateway.config.load import DEFAULT, ConfigError, load
from gateway.daemon import serve
from gateway.sim.run import dial_many
from tests.support.daemon import running


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config(tmp_path: Path) -> Path:
    text = DEFAULT.read_text().replace("127.0.0.1:2905", f"127.0.0.1:{free_port()}")
    app_port = free_port()
    text = text.replace("127.0.0.1:8099", f"127.0.0.1:{app_port}").replace('path = "var/cdr.jsonl"',
                                                                            f'path = "{tmp_path}/cdr.jsonl"')
    text = text.replace("127.0.0.1:9105", f"127.0.0.1:{free_port()}")
    path = tmp_path / "gw.toml"
    path.write_text(text)
    return path


async def test_default_configuration_serves_the_demo_menu(tmp_path: Path) -> None:
    cfg = load(config(tmp_path))
    async with running(cfg):
        calls = [("491720000001", "*123#", ["1"]), ("491720000001", "*123#", ["2"]), ("491720000001", "*5#", [])]
        sessions, _ = await dial_many("127.0.0.1", cfg.listen_port, calls)
        assert [s.final for s in sessions] == ["Your balance is 42.00 EUR", "Dial *123# and pick an option.",
                                               "Unknown service code. Try *123#"]
        assert sessions[0].menus == ["Demo menu\n1. Balance\n2. Help"]
        assert cfg.metrics_listen is not None
        host, port = cfg.metrics_listen
        async with aiohttp.ClientSession() as http, http.get(f"http://{host}:{port}/metrics") as resp:
            text = await resp.text()
        assert 'ussd_sessions_total{outcome="completed",route="demo"} 2.0' in text
        assert 'ussd_sessions_total{outcome="unknown-code",route="unknown"} 1.0' in text
        assert "ussd_app_latency_seconds_bucket" in text and 'm3ua_type="DATA"' in text
    cdrs = [json.loads(line) for line in (tmp_path / "cdr.jsonl").read_text().splitlines()]
    # One CDR per session, refused ones included.
    assert sorted((c["route"], c["menu_path"], c["outcome"]) for c in cdrs) == [
        ("demo", ["1"], "completed"), ("demo", ["2"], "completed"), ("unknown", [], "unknown-code")]


@pytest.mark.parametrize(
    ("edit", "key", "reason"),
    [
        (lambda t: t.replace('listen = "127.0.0.1:2905"', 'listen = "nowhere"'), "m3ua.listen", "HOST:PORT"),
        (lambda t: t.replace("point_code = 1 ", "point_code = 99999 "), "sccp.point_code", "14-bit"),
        (lambda t: t.replace('global_title = "491700000001"', 'global_title = "49x"'), "sccp.global_title", "digits"),
        (lambda t: t + "\n[colours]\nred = 1\n", "colours", "unknown section"),
        (lambda t: t.replace('code = "*123#"', 'code = "123"'), "route 'demo'", "never match"),
        (lambda t: t.replace("idle_timeout = 120.0", 'idle_timeout = "long"'), "tcap.idle_timeout", "expected float"),
        (lambda t: t + "\n[[[", "-", "not valid TOML"),
        (lambda t: t.replace("timeout = 5.0", 'timeout = "5"'), "route 'demo'", "timeout: expected int or float"),
        (lambda t: t.replace('primary_url = "http://', 'primary_url = "htp://'), "route 'demo'",
         "not an http:// or https:// URL"),
        (lambda t: t.replace("texts = { unknown", "texts = { unknwn"), "route 'unknown'", "texts.unknwn"),
        (lambda t: t.replace('dialect = "africastalking"', 'dialect = "africastalking"\nallowed_msisdn = ["49+"]'),
         "route 'demo'", "allowed_msisdn: expected a list of digit strings"),
        (lambda t: t.replace('dialect = "africastalking"', 'dialect = "africastalking"\nsensitive = 1'),
         "route 'demo'", "sensitive: expected bool"),
        (lambda t: t.replace("[m3ua]", "[m3ua]\ncolour = 1"), "m3ua.colour", "unknown key"),
        (lambda t: t.replace('role = "sg"', 'role = "asp"'), "m3ua.connect", "missing"),
        (lambda t: t + '\n[log]\nlevel = "loud"\n', "log.level", "not one of"),
    ],
)
def test_bad_configuration_is_refused_with_file_key_reason(tmp_path: Path, edit, key: str, reason: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bad.toml"
    path.write_text(edit(DEFAULT.read_text()))
    with pytest.raises(ConfigError) as info:
        load(path)
    assert info.value.file == str(path) and info.value.key == key and reason in info.value.reason


async def test_run_command_refuses_a_bad_file_without_traceback(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[m3ua]\nlisten = 5\n")
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "gateway.cli", "run", "-c", str(path),
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    error = json.loads(err)
    assert error == {"error": "bad configuration", "file": str(path), "key": "m3ua.listen",
                     "reason": "expected str, got int 5"}


async def test_texts_in_the_handsets_language(tmp_path: Path) -> None:
    """A handset whose DCS names its language (TS 23.038 §5 group 0000: 0x00 German) gets the route's text in that
    language, others the default one."""
    from gateway.sim.run import connected
    from tests.support.aio import wait_for

    path = config(tmp_path)
    path.write_text(path.read_text().replace('texts = { unknown = { default = "Unknown service code. Try *123#" } }',
                                             'texts = { unknown = { default = "Unknown code", de = "Unbekannter Code",'
                                             ' fr = "Code inconnu" } }'))  # fmt: skip
    cfg = load(path)
    async with running(cfg), connected("127.0.0.1", cfg.listen_port) as (sim, runner):
        loop = asyncio.get_running_loop()
        german = sim.dial("491720000001", "*5#", [], loop.time(), dcs=0x00)
        french = sim.dial("491720000001", "*5#", [], loop.time(), dcs=0x03)
        plain = sim.dial("491720000001", "*5#", [], loop.time())
        runner.pump()
        await wait_for(lambda: german.done and french.done and plain.done)
    assert (german.final, french.final, plain.final) == ("Unbekannter Code", "Code inconnu", "Unknown code")


async def test_asp_role_logs_unreachable_stp_and_stops_cleanly(tmp_path: Path) -> None:
    """As ASP towards an STP that is not there: each failed attempt is logged (with the peer and the reason), the
    daemon does not claim to be ready, and it still stops on request."""
    import io

    import structlog

    from gateway.ops import logs

    path = config(tmp_path)
    dead = free_port()
    text = path.read_text()
    text = text.replace('role = "sg"', f'role = "asp"\nconnect = ["127.0.0.1:{dead}"]').replace(
        text.split("listen = ", 1)[1].split("\n", 1)[0], '"127.0.0.1:1"', 1)  # fmt: skip
    text = "\n".join(line for line in text.splitlines() if not line.startswith('listen = "127.0.0.1:1"'))
    path.write_text(text)
    cfg = load(path)
    assert cfg.role == "asp" and cfg.connect == (("127.0.0.1", dead),)
    stream = io.StringIO()
    logs.configure("info", stream)
    stop = asyncio.Event()
    ready: list[dict[str, object]] = []
    task = asyncio.create_task(serve(cfg, stop, ready.append))
    try:
        await asyncio.sleep(1.5)
        assert ready == []
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        structlog.reset_defaults()
    failures = [json.loads(line) for line in stream.getvalue().splitlines() if "m3ua.connect_failed" in line]
    assert failures and failures[0]["peer"] == f"127.0.0.1:{dead}" and "refused" in failures[0]["reason"].lower()
