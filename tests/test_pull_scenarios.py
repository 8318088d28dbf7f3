"""Issue 4's pull scenarios against the daemon, with the simulator as the MSC/VLR connected directly (the gateway
is the SG). See tests/support/pull_scenarios.py for the cases and what each one checks."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from gateway.config.load import load
from gateway.sim.run import dial_many
from tests.support import pull_apps, pull_scenarios
from tests.support.daemon import running


async def test_pull_scenarios_direct(tmp_path: Path) -> None:
    cases = pull_scenarios.cases()
    async with pull_apps.serve_apps() as apps:
        result = await pull_scenarios.run(apps, tmp_path, cases)
    pull_scenarios.check(result, cases, apps)


async def test_global_session_limit_answers_busy_at_once(tmp_path: Path) -> None:
    """sessions.max_active caps all routes together: beyond it the route's busy text comes at once (no queueing),
    while the sessions already admitted run to their own end."""
    async with pull_apps.serve_apps() as apps:
        text = pull_scenarios.config_text(apps, tmp_path).replace("max_active = 100", "max_active = 2")
        (tmp_path / "gw.toml").write_text(text)
        cfg = load(tmp_path / "gw.toml")
        assert cfg.max_sessions == 2
        async with running(cfg) as ready:
            port = int(str(ready["m3ua"]).rsplit(":", 1)[1])
            # Two slow sessions on two routes fill the gateway; the third, on a third route, is refused at once.
            calls = [("491720002001", "*246#", []), ("491720002002", "*256#", []), ("491720002003", "*245#", ["1"])]
            sessions, _ = await dial_many("127.0.0.1", port, calls, concurrency=3)
    assert sessions[2].final == "Service busy, please try later." and sessions[2].menus == []
    assert apps.received.get("bank") is None  # the refused session never reached its application
    outcomes = {c["msisdn"]: c["outcome"] for c in map(json.loads, (tmp_path / "cdr.jsonl").read_text().splitlines())}
    assert outcomes == {"491720002001": "app-timeout", "491720002002": "app-timeout", "491720002003": "busy"}


async def test_catch_all_default_route_and_no_route_at_all(tmp_path: Path) -> None:
    """A default route with an application gets every unknown code (and sees the code dialled); with no default
    route at all, an unknown code gets the built-in text. Both are counted and written as CDRs."""
    Case = pull_scenarios.Case
    async with pull_apps.serve_apps() as apps:
        catch_all = f'[[route]]\nname = "default"\nprimary_url = "{apps.base}/bank"\ndialect = "africastalking"\n'
        for sub in ("a", "b"):
            (tmp_path / sub).mkdir()
        with_app = await pull_scenarios.run(apps, tmp_path / "a", [
            Case("catch-all", "*999*7#", ["1"], "default", "completed", msisdn="491720003001")],
            default_route=catch_all)  # fmt: skip
        no_route = await pull_scenarios.run(apps, tmp_path / "b", [
            Case("no route", "*999#", [], "-", "unknown-code", msisdn="491720003002")], default_route="")
    (caught,) = with_app.sessions
    assert (caught.menus, caught.final) == ([pull_apps.BANK_MENU], pull_apps.BANK_BALANCE)
    asked = [b for b in apps.received["bank"] if b["phoneNumber"] == "+491720003001"]
    assert [(b["serviceCode"], b["text"]) for b in asked] == [("*999*7#", ""), ("*999*7#", "1")]
    assert [(c["route"], c["outcome"]) for c in with_app.cdrs] == [("default", "completed")]
    (unknown,) = no_route.sessions
    assert unknown.final == "Unknown service code." and unknown.menus == []
    assert [(c["route"], c["outcome"]) for c in no_route.cdrs] == [("-", "unknown-code")]
    assert 'ussd_sessions_total{outcome="unknown-code",route="-"} 1.0' in no_route.metrics


async def test_graceful_stop_lets_sessions_finish_and_refuses_new_ones(tmp_path: Path) -> None:
    """SIGTERM while a session waits for its application: that session still gets its answer, a new dial in the
    meantime gets the busy text at once, then the daemon stops."""
    from gateway.daemon import serve
    from gateway.sim.run import connected
    from tests.support.aio import wait_for

    async with pull_apps.serve_apps() as apps:
        (tmp_path / "gw.toml").write_text(pull_scenarios.config_text(apps, tmp_path))
        cfg = load(tmp_path / "gw.toml")
        stop = asyncio.Event()
        ready: list[dict[str, object]] = []
        task = asyncio.create_task(serve(cfg, stop, ready.append))
        try:
            while not ready:
                await asyncio.sleep(0.01)
            port = int(str(ready[0]["m3ua"]).rsplit(":", 1)[1])
            async with connected("127.0.0.1", port) as (sim, host):
                loop = asyncio.get_running_loop()
                held = sim.dial("491720004001", "*252#", [], loop.time())  # the application holds it 0.5 s
                host.schedule()
                await wait_for(lambda: bool(apps.received.get("hold")))
                stop.set()
                await asyncio.sleep(0.05)
                late = sim.dial("491720004002", "*245#", ["1"], loop.time())
                host.schedule()
                await wait_for(lambda: late.done)
                assert not held.done  # refused at once, while the held one is still in progress
                await wait_for(lambda: held.done)
            await asyncio.wait_for(task, 10)
        finally:
            stop.set()
            if not task.done():
                task.cancel()
    assert held.final == "Held and done"
    assert late.final == "Service busy, please try later." and late.menus == []
    assert "bank" not in apps.received
