"""Property test of whole sessions through the real daemon: any mix of application behaviours per step (continue,
end, garbage, HTTP 500, too slow, too long) and subscriber behaviours (answer, cancel, never answer), many sessions
at once. Each session's outcome, handset view and CDR are predicted by a small model; afterwards nothing is left
behind (no session, no per-route count, no active gauge)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.config.load import load
from gateway.sim.run import dial_many
from tests.support.daemon import one_route_config, running
from tests.support.http import serving
from tests.support.osmo_stp import free_port

APP_ACTIONS = ("continue", "end", "garbage", "http-500", "slow", "long")
USER_ACTIONS = ("answer", "cancel", "silent")


@dataclass(frozen=True)
class Script:
    app: tuple[str, ...]  # what the application does at each step
    user: tuple[str, ...]  # what the subscriber does at each menu


scripts = st.builds(Script, st.lists(st.sampled_from(APP_ACTIONS), min_size=1, max_size=4).map(tuple),
                    st.lists(st.sampled_from(USER_ACTIONS), min_size=0, max_size=4).map(tuple))  # fmt: skip


def model(script: Script) -> dict[str, object]:
    """What the handset, the CDR and the counters must show."""
    menus: list[str] = []
    answers: list[str | None] = []
    for step, action in enumerate(script.app):
        if action == "continue":
            menus.append(f"menu {step}")
            user = script.user[step] if step < len(script.user) else "cancel"
            if user == "cancel":
                return {"menus": menus, "final": None, "error": "user-cancelled", "outcome": "user-aborted",
                        "hops": step + 1, "answers": answers}  # fmt: skip
            if user == "silent":
                answers.append(None)
                return {"menus": menus, "final": None, "error": "aborted", "outcome": "timeout", "hops": step + 1,
                        "answers": answers}  # fmt: skip
            answers.append(str(step + 1))
            continue
        final, outcome, hops = {
            "end": (f"done {step}", "completed", step + 1),
            "long": ("y" * 179 + "...", "completed", step + 1),
            "garbage": ("Service unavailable, please try later.", "app-bad-reply", step),
            "http-500": ("Service unavailable, please try later.", "app-http-500", step),
            "slow": ("Service unavailable, please try later.", "app-timeout", step),
        }[action]
        return {"menus": menus, "final": final, "error": None, "outcome": outcome, "hops": hops, "answers": answers}
    # the application kept asking and the script ran out of steps: the app is asked again, then says "end"
    return {"menus": menus, "final": f"done {len(script.app)}", "error": None, "outcome": "completed",
            "hops": len(script.app) + 1, "answers": answers}  # fmt: skip


async def _run(batch: list[Script], tmp: Path) -> None:
    by_msisdn = {f"4917200070{i:02d}": s for i, s in enumerate(batch)}

    async def app(request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        script = by_msisdn[body["msisdn"]]
        step = body["step"]
        action = script.app[step] if step < len(script.app) else "end"
        if action == "continue":
            return web.json_response({"action": "continue", "text": f"menu {step}"})
        if action == "end":
            return web.json_response({"action": "end", "text": f"done {step}"})
        if action == "long":
            return web.json_response({"action": "end", "text": "y" * 300})
        if action == "garbage":
            return web.Response(text="<html>oops</html>")
        if action == "http-500":
            return web.Response(status=500)
        await asyncio.sleep(1.0)  # slow
        return web.json_response({"action": "end", "text": "late"})

    server = web.Application()
    server.router.add_post("/app", app)
    expected = {m: model(s) for m, s in by_msisdn.items()}
    async with serving(server) as base:
        route = f'name = "prop"\ncode = "*500#"\nprimary_url = "{base}/app"\ntimeout = 0.3'
        sections = f'[tcap]\ninvoke_timeout = 0.6\n[metrics]\nlisten = "127.0.0.1:{free_port()}"'
        cfg = load(one_route_config(tmp, free_port(), route, sections))
        async with running(cfg):
            calls = [(m, "*500#", list(expected[m]["answers"])) for m in by_msisdn]  # type: ignore[call-overload]
            sessions, _ = await dial_many("127.0.0.1", cfg.listen_port, calls, concurrency=len(calls), timeout=30)
            assert cfg.metrics_listen is not None
            async with aiohttp.ClientSession() as http, http.get("http://{}:{}/metrics".format(
                    *cfg.metrics_listen)) as r:  # fmt: skip
                metrics = await r.text()
    # Nothing left behind: no session in progress, every ending counted once.
    assert 'ussd_sessions_active{route="prop"} 0.0' in metrics
    counted = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                  if line.startswith('ussd_sessions_total{') and 'route="prop"' in line)  # fmt: skip
    assert counted == len(batch)
    cdrs = {c["msisdn"]: c for c in map(json.loads, (tmp / "cdr.jsonl").read_text().splitlines())}
    assert len(cdrs) == len(batch), "one CDR per session"
    for session in sessions:
        want = expected[session.msisdn]
        what = (by_msisdn[session.msisdn], want)
        assert session.done, what
        assert (session.menus, session.final, session.error) == (want["menus"], want["final"], want["error"]), (
            what, session)  # fmt: skip
        cdr = cdrs[session.msisdn]
        assert (cdr["outcome"], cdr["hops"]) == (want["outcome"], want["hops"]), (what, cdr)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(scripts, min_size=1, max_size=8))
def test_any_mix_of_app_and_user_behaviour(batch: list[Script], tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    asyncio.run(_run(batch, tmp_path_factory.mktemp("prop")))
