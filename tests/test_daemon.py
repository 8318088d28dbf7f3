"""`ussd-gateway run`: the daemon on a configuration file, driven by the simulator; bad files are refused."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import aiohttp
import pytest

from gateway.config.load import DEFAULT, ConfigError, load
from gateway.daemon import serve
from gateway.sim.run import dial_many
from tests.support.daemon import default_config as config
from tests.support.daemon import running
from tests.support.osmo_stp import free_port


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
        (lambda t: t.replace("header_timeout = 10.0", "header_timeout = 0"), "http.header_timeout", "must be positive"),
        (lambda t: t.replace("idle_timeout = 75.0", 'idle_timeout = "75"'), "http.idle_timeout", "expected float"),
        (lambda t: t.replace("max_header_bytes = 16384", "max_header_bytes = 100"), "http.max_header_bytes",
         "at least 256"),
        (lambda t: t.replace("max_body_bytes = 65536", "max_body_bytes = 1.5"), "http.max_body_bytes", "expected int"),
        (lambda t: t.replace("max_connections = 256", "max_conections = 5"), "http.max_conections", "unknown key"),
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
    async with running(cfg), connected("127.0.0.1", cfg.listen_port) as (sim, host):
        loop = asyncio.get_running_loop()
        german = sim.dial("491720000001", "*5#", [], loop.time(), dcs=0x00)
        french = sim.dial("491720000001", "*5#", [], loop.time(), dcs=0x03)
        plain = sim.dial("491720000001", "*5#", [], loop.time())
        host.schedule()
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


async def test_health_and_readiness(tmp_path: Path) -> None:
    from gateway.sim.run import connected

    cfg = load(config(tmp_path))
    assert cfg.metrics_listen is not None
    base = "http://{}:{}".format(*cfg.metrics_listen)
    async with running(cfg), aiohttp.ClientSession() as http:
        async with http.get(f"{base}/healthz") as r:
            assert r.status == 200 and (await r.json())["status"] == "ok"
        async with http.get(f"{base}/readyz") as r:  # listening, but no ASP has come up yet
            assert r.status == 503 and (await r.json())["associations"] == []
        async with connected("127.0.0.1", cfg.listen_port):
            async with http.get(f"{base}/readyz") as r:
                body = await r.json()
            assert r.status == 200 and body["associations"] == [{"name": "m3ua", "state": "active"}]


async def test_sighup_reloads_routes_and_refuses_a_broken_file(tmp_path: Path) -> None:
    import io

    import structlog

    from gateway.ops import logs

    path = config(tmp_path)
    original = path.read_text()
    cfg = load(path)
    stream = io.StringIO()
    logs.configure("info", stream)
    stop, reload = asyncio.Event(), asyncio.Event()
    ready: list[dict[str, object]] = []
    task = asyncio.create_task(serve(cfg, stop, ready.append, reload=reload))
    try:
        while not ready:
            await asyncio.sleep(0.01)
        # A new route pointing at the demo app's menu.
        assert cfg.demo_app is not None
        demo = "http://{}:{}/demo".format(*cfg.demo_app)
        path.write_text(original + f'\n[[route]]\nname = "more"\ncode = "*124#"\nprimary_url = "{demo}"\n'
                        'dialect = "africastalking"\n')
        reload.set()
        await asyncio.sleep(0.2)
        (more,), _ = await dial_many("127.0.0.1", cfg.listen_port, [("491720000001", "*124#", ["1"])])
        assert more.final == "Your balance is 42.00 EUR"
        path.write_text(original.replace('code = "*123#"', 'code = "123"'))  # a broken file: refused, routes stay
        reload.set()
        await asyncio.sleep(0.2)
        (still,), _ = await dial_many("127.0.0.1", cfg.listen_port, [("491720000001", "*124#", ["1"])])
        assert still.final == "Your balance is 42.00 EUR"
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        structlog.reset_defaults()
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    reloaded = [e for e in events if e["event"] == "config.reloaded"]
    refused = [e for e in events if e["event"] == "config.reload_refused"]
    assert reloaded and "more" in reloaded[0]["routes"]
    assert refused and refused[0]["key"] == "route 'demo'" and "never match" in refused[0]["reason"]


async def test_the_process_answers_sighup_and_sigterm(tmp_path: Path) -> None:
    """`ussd-gateway run` as a process: JSON lines on stdout, SIGHUP reloads, SIGTERM stops it cleanly (status 0)."""
    import signal

    path = config(tmp_path)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "gateway.cli", "run", "-c", str(path),
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert proc.stdout is not None

    async def next_event(name: str) -> dict[str, object]:
        assert proc.stdout is not None
        while True:
            line = await asyncio.wait_for(proc.stdout.readline(), 20)
            assert line, "the daemon's output ended"
            event = json.loads(line)
            if event["event"] == name:
                return event

    try:
        assert (await next_event("ready"))["role"] == "sg"
        proc.send_signal(signal.SIGHUP)
        assert (await next_event("config.reloaded"))["routes"] == ["demo", "unknown"]
        proc.send_signal(signal.SIGTERM)
        await next_event("stopping")
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
