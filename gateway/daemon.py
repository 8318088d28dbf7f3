"""`ussd-gateway run`: the gateway daemon (M3UA SG over TCP -> SCCP -> TCAP -> MAP USSD -> routes -> HTTP apps)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web
from prometheus_client import generate_latest

from gateway.apps.client import AppClient
from gateway.apps.sessions import SessionManager
from gateway.codecs import map as map_codec
from gateway.codecs.sccp import SccpAddress
from gateway.config.load import ConfigError, GatewayConfig, load
from gateway.ops.cdr import CdrWriter
from gateway.ops.metrics import StackMetrics
from gateway.stack.m3ua_asp import AssociationConfig, Role
from gateway.stack.map_ussd import UssdService
from gateway.stack.node import SignallingNode
from gateway.stack.sccp_layer import SccpConfig, SccpLayer
from gateway.stack.tcap_table import DialogueTable, TableEvent
from gateway.transport import tcp
from gateway.transport.runner import NodeRunner

SUPPORTED_ACS = (map_codec.AC_NETWORK_UNSTRUCTURED_SS_V2, map_codec.AC_SHORT_MSG_GATEWAY_V3,
                 map_codec.AC_SHORT_MSG_GATEWAY_V2)  # fmt: skip


async def demo_app(request: web.Request) -> web.Response:
    """The embedded demo application (Africa's Talking convention): a two-level menu."""
    form = await request.post()
    text = str(form.get("text", ""))
    if text == "":
        return web.Response(text="CON Demo menu\n1. Balance\n2. Help")
    if text == "1":
        return web.Response(text="END Your balance is 42.00 EUR")
    if text == "2":
        return web.Response(text="END Dial *123# and pick an option.")
    return web.Response(text="END Invalid choice")


async def serve(cfg: GatewayConfig, stop: asyncio.Event,
                on_ready: Callable[[dict[str, object]], None] | None = None) -> None:  # fmt: skip
    """Run the gateway until ``stop`` is set."""
    cleanups: list[Callable[[], Awaitable[None]]] = []
    try:
        if cfg.demo_app is not None:
            app = web.Application()
            app.router.add_post("/demo", demo_app)
            app_runner = web.AppRunner(app, access_log=None)
            await app_runner.setup()
            await web.TCPSite(app_runner, *cfg.demo_app).start()
            cleanups.append(app_runner.cleanup)
        local = SccpAddress.gt_e164(cfg.global_title, cfg.ssn)
        table = DialogueTable(supported_acs=SUPPORTED_ACS, idle_timeout=cfg.idle_timeout,
                              invoke_timeout=cfg.invoke_timeout, tid_prefix=cfg.tid_prefix,
                              tid_prefix_bits=cfg.tid_prefix_bits)  # fmt: skip
        metrics = StackMetrics()
        sccp_layer = SccpLayer(SccpConfig(cfg.point_code, frozenset({cfg.ssn}), default_dpc=cfg.network_point_code))
        node = SignallingNode(local, sccp_layer, table, metrics)
        ussd = UssdService(table, local)
        http = aiohttp.ClientSession()
        cleanups.append(http.close)
        cdr = CdrWriter(cfg.cdr_path) if cfg.cdr_path else None
        if cdr is not None:
            cleanups.append(_async(cdr.close))
        managers: list[SessionManager] = []

        def on_table_event(ev: TableEvent, now: float) -> None:
            ussd.handle(ev, now)
            while ussd.events:
                managers[0].on_event(ussd.events.popleft())

        runner = NodeRunner(node, on_table_event)
        managers.append(SessionManager(ussd, cfg.routes, AppClient(http), pump=runner.pump, cdr=cdr, metrics=metrics))
        if cfg.metrics_listen is not None:
            cleanups.append(await _serve_metrics(metrics, cfg.metrics_listen))
        rcs = (cfg.routing_context,) if cfg.routing_context is not None else ()
        server = await tcp.serve(cfg.listen_host, cfg.listen_port,
                                 AssociationConfig(name="m3ua", role=Role.SG, routing_contexts=rcs), runner.sink,
                                 runner.add, metrics=metrics)  # fmt: skip
        cleanups.append(_closer(server))
        port = server.sockets[0].getsockname()[1]
        metrics_at = None if cfg.metrics_listen is None else "{}:{}".format(*cfg.metrics_listen)
        if on_ready is not None:
            on_ready({"event": "ready", "m3ua": f"{cfg.listen_host}:{port}", "routing_context": cfg.routing_context,
                      "point_code": cfg.point_code, "global_title": cfg.global_title, "config": cfg.file,
                      "metrics": metrics_at})  # fmt: skip
        await stop.wait()
    finally:
        for cleanup in reversed(cleanups):
            with contextlib.suppress(Exception):
                await cleanup()


async def _serve_metrics(metrics: StackMetrics, listen: tuple[str, int]) -> Callable[[], Awaitable[None]]:
    """Prometheus exposition on GET /metrics."""

    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(metrics.registry), content_type="text/plain", charset="utf-8")

    app = web.Application()
    app.router.add_get("/metrics", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, *listen).start()
    return runner.cleanup


def _async(fn: Callable[[], None]) -> Callable[[], Awaitable[None]]:
    async def call() -> None:
        fn()

    return call


def _closer(server: asyncio.Server) -> Callable[[], Awaitable[None]]:
    async def close() -> None:
        server.close()
        await server.wait_closed()

    return close


def run(config_path: str | None) -> int:
    """Load the configuration (refused with file, key and reason), then serve until SIGINT/SIGTERM."""
    try:
        cfg = load(config_path)
    except ConfigError as exc:
        print(json.dumps({"error": "bad configuration", "file": exc.file, "key": exc.key, "reason": exc.reason}),
              file=sys.stderr)  # fmt: skip
        return 2

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(cfg, stop, lambda info: print(json.dumps(info), flush=True))

    try:
        asyncio.run(main())
    except OSError as exc:
        print(json.dumps({"error": "cannot start", "reason": str(exc)}), file=sys.stderr)
        return 1
    return 0
