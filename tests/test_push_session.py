"""A push in request mode whose answer continues as a session: the handset's answer is the first input to the
push's route, the application goes on over several steps (unstructuredSS-Request), and its last text reaches the
handset as unstructuredSS-Notify before the dialogue ends; the push itself ends answered."""

from __future__ import annotations

import asyncio
import io
import json
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from gateway.apps.client import AppClient
from gateway.apps.sessions import SessionManager
from gateway.ops.cdr import CdrWriter
from gateway.push.model import Mode, State
from gateway.push.service import PushSettings
from gateway.push.store import new_push
from gateway.push.store_sqlite import SqliteStore
from gateway.routing.table import Route, RouteTable
from gateway.sim.phone import phone
from gateway.stack.map_ussd import PushSessionStarted, SessionClosed, SessionStarted, UserAnswered
from tests.support.aio import wait_for
from tests.support.http import serving
from tests.support.push import push_gateway

MSISDN = "491720000077"


async def test_a_request_push_goes_on_as_a_session_with_its_route(tmp_path: Path) -> None:
    received: list[dict[str, object]] = []

    async def survey(request: web.Request) -> web.Response:  # native JSON dialect (docs/openapi-app.yaml)
        body = json.loads(await request.read())
        received.append(body)
        if body["input"] == "1":
            return web.json_response({"action": "continue", "text": "Thanks! Rate us 1-5"})
        return web.json_response({"action": "end", "text": f"You rated {body['input']}. Bye"})

    app = web.Application()
    app.router.add_post("/survey", survey)
    store = await SqliteStore.open(tmp_path / "push.db")
    out = io.StringIO()
    try:
        async with serving(app) as base, aiohttp.ClientSession() as http, push_gateway(store, PushSettings()) as gw:
            routes = RouteTable.compile([Route("survey", "*500#", "prefix", f"{base}/survey")])
            with CdrWriter(tmp_path / "cdr.jsonl") as cdr:
                manager = SessionManager(gw.host, routes, AppClient(http), cdr=cdr)
                for kind in (SessionStarted, PushSessionStarted, UserAnswered, SessionClosed):
                    gw.host.on(kind, manager.on_event)
                handset = asyncio.create_task(phone("127.0.0.1", gw.port, msisdn=MSISDN, imsi="262010000000077",
                                                    answers=["1", "5"], read_line=None, out=out, as_json=True,
                                                    count=3))  # fmt: skip
                await wait_for(gw.ready, 5.0)
                push = new_push(msisdn=MSISDN, text="Join our survey? 1=yes", now=time.time(), mode=Mode.REQUEST,
                                ttl_s=60, route="survey")
                created = await store.create(push, None, "h", "t")
                gw.service.wake()
                assert await asyncio.wait_for(handset, 10) == 0
                await wait_for(lambda: not manager.sessions and len(gw.host.node.table) == 0, 5.0)
                push = await store.get(created.push.id)
        cdrs = [json.loads(line) for line in (tmp_path / "cdr.jsonl").read_text().splitlines()]
    finally:
        await store.close()
    shown = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(x["status"], x["text"]) for x in shown] == [
        (0, "Join our survey? 1=yes"), (0, "Thanks! Rate us 1-5"), (1, "You rated 5. Bye")]
    assert push.state is State.ANSWERED and push.answer == "1"
    assert [r["input"] for r in received] == ["1", "5"] and received[0]["msisdn"] == MSISDN
    assert received[0]["serviceCode"] == "*500#"
    assert [(c["route"], c["menu_path"], c["outcome"]) for c in cdrs] == [("survey", ["1", "5"], "completed")]
