"""USSD pull end to end: simulator -> gateway (M3UA/TCP) -> real aiohttp application servers in both dialects.
Checks what the subscriber saw, what the application received, and the CDRs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from gateway.apps.client import AppClient
from gateway.apps.sessions import SessionManager
from gateway.ops.cdr import CdrWriter
from gateway.routing.table import Route, RouteTable
from gateway.sim.run import dial_many
from gateway.stack.m3ua_asp import AssociationConfig, Role
from gateway.stack.map_ussd import SessionClosed, SessionStarted, UserAnswered
from gateway.transport import tcp
from gateway.transport.host import UssdHost
from tests.support.http import serving
from tests.support.network import gateway_node


@pytest.fixture
async def apps() -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    received: list[dict[str, str]] = []

    async def bank(request: web.Request) -> web.Response:  # ussd-server-explainer.txt: *245# -> balance
        form = {k: str(v) for k, v in (await request.post()).items()}
        received.append(form)
        text = form["text"]
        if text == "":
            return web.Response(text="CON Welcome to MyBank\n1. Balance\n2. Mini statement")
        if text == "1":
            return web.Response(text="END Your balance is 1,250.00 EUR")
        return web.Response(text="END Invalid choice")

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(3)
        return web.json_response({"action": "end", "text": "late"})

    async def pin(request: web.Request) -> web.Response:
        data = json.loads(await request.read())
        if data["input"] is None:
            return web.json_response({"action": "continue", "text": "Enter PIN"})
        return web.json_response({"action": "end", "text": "x" * 300})  # too long: truncated

    app = web.Application()
    app.router.add_post("/bank", bank)
    app.router.add_post("/slow", slow)
    app.router.add_post("/pin", pin)
    async with serving(app) as base:
        yield base, received


async def test_pull_sessions_to_http_apps(apps: tuple[str, list[dict[str, str]]], tmp_path: Path) -> None:
    base, received = apps
    routes = RouteTable.compile([
        Route("bank", "*245#", "prefix", f"{base}/bank", dialect="africastalking", max_sessions=50),
        Route("slow", "*246#", "prefix", f"{base}/slow", timeout=0.5, texts={"timeout": {"default": "Too slow"}}),
        Route("pin", "*247#", "prefix", f"{base}/pin", sensitive=True),
        # A marker that cannot fit (the loader refuses it; built here directly): finishing the session fails inside
        # the gateway, which must still end the dialogue (U-ABORT) and write the CDR.
        Route("bug", "*248#", "prefix", f"{base}/pin", truncate_marker="!" * 300),
        Route("default", None, texts={"unknown": {"default": "No such code"}}),
    ])
    gw = gateway_node()
    manager_box: list[SessionManager] = []
    host = UssdHost(gw.node, gw.ussd)
    cdr_path = tmp_path / "cdr.jsonl"
    async with aiohttp.ClientSession() as http:
        with CdrWriter(cdr_path) as cdr:
            manager_box.append(SessionManager(host, routes, AppClient(http), cdr=cdr))
            for kind in (SessionStarted, UserAnswered, SessionClosed):
                host.on(kind, manager_box[0].on_event)
            server = await tcp.serve("127.0.0.1", 0, AssociationConfig(name="gw", role=Role.SG, routing_contexts=(1,),
                                                                       beat_interval=0), host.sink, host.add)
            port = server.sockets[0].getsockname()[1]
            try:
                calls = [("491720000001", "*245#", ["1"]), ("491720000001", "*245*2#", []),
                         ("491720000001", "*246#", []), ("491720000001", "*999#", []),
                         ("491720000001", "*247#", ["1234"]), ("491720000001", "*248#", ["1"])]
                sessions, _ = await dial_many("127.0.0.1", port, calls, concurrency=10)
            finally:
                server.close()
                await server.wait_closed()
    bank, direct, slow, unknown, pin, bug = sessions
    assert bank.menus == ["Welcome to MyBank\n1. Balance\n2. Mini statement"]
    assert bank.final == "Your balance is 1,250.00 EUR"
    assert direct.final == "Invalid choice" and direct.menus == []  # direct dial: *245*2# went straight to "2"
    assert slow.final == "Too slow"
    assert unknown.final == "No such code"
    assert pin.menus == ["Enter PIN"] and pin.final is not None and pin.final.endswith("...")
    assert len(pin.final) <= 182
    assert bug.menus == ["Enter PIN"] and bug.final is None and bug.error == "aborted"
    # What the application received (Africa's Talking convention: the direct-dial "2" is the first text).
    texts = sorted(r["text"] for r in received)
    assert texts == ["", "1", "2"] and all(r["phoneNumber"] == "+491720000001" for r in received)
    # One CDR per routed session; the PIN is masked.
    records = [json.loads(line) for line in cdr_path.read_text().splitlines()]
    bank_cdrs = sorted((c for c in records if c["route"] == "bank"), key=lambda c: len(c["menu_path"]))
    assert [(c["menu_path"], c["hops"], c["outcome"]) for c in bank_cdrs] == [([], 1, "completed"),
                                                                             (["1"], 2, "completed")]
    cdrs = {c["route"]: c for c in records}
    assert cdrs["slow"]["outcome"] == "app-timeout"
    assert cdrs["pin"]["menu_path"] == ["****"]
    assert cdrs["bug"]["outcome"] == "gateway-error"
    assert manager_box[0].outcomes["unknown-code"] == 1  # *999#: the default route answers the unknown-code text
    assert manager_box[0].outcomes["completed"] == 3 and manager_box[0].outcomes["app-timeout"] == 1
