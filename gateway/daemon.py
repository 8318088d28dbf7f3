"""`ussd-gateway run`: the gateway daemon (M3UA SG over TCP -> SCCP -> TCAP -> MAP USSD -> routes -> HTTP apps)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import generate_latest

from gateway.apps.client import AppClient
from gateway.apps.sessions import SessionManager
from gateway.codecs import m3ua
from gateway.codecs import map as map_codec
from gateway.codecs.sccp import SccpAddress
from gateway.config.load import ConfigError, GatewayConfig, load
from gateway.ops import logs
from gateway.ops.cdr import CdrWriter
from gateway.ops.faults import FaultReporter
from gateway.ops.http_listener import HttpLimits, HttpListener
from gateway.ops.metrics import StackMetrics
from gateway.ops.pcap import PcapWriter
from gateway.push.api import ApiSettings, make_app
from gateway.push.backends import open_store
from gateway.push.callbacks import CallbackSender, CallbackSettings
from gateway.push.model import Backoff
from gateway.push.service import PushService, PushSettings
from gateway.push.store import PushStore
from gateway.stack.m3ua_asp import (
    AspState,
    AssociationConfig,
    AssociationLost,
    ErrorReceived,
    Event,
    M3uaAssociation,
    ProtocolErrorSent,
    Role,
    StateChanged,
)
from gateway.stack.map_ussd import (
    PushDelivered,
    PushFailed,
    PushRouted,
    PushSessionStarted,
    SessionClosed,
    SessionStarted,
    UserAnswered,
    UssdService,
)
from gateway.stack.node import SignallingNode
from gateway.stack.sccp_layer import SccpConfig, SccpLayer
from gateway.stack.tcap_table import DialogueTable
from gateway.transport import sctp, tcp
from gateway.transport.host import UssdHost

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
                on_ready: Callable[[dict[str, object]], None] | None = None,
                reload: asyncio.Event | None = None) -> None:  # fmt: skip
    """Run the gateway until ``stop`` is set. ``on_ready`` is called once it can carry traffic: at once as SG
    (listening), as ASP when the first association to an STP is ASP-ACTIVE. Setting ``reload`` (SIGHUP) re-reads
    the routes from the configuration file; a file that no longer loads is refused and the routes in use stay."""
    log = logs.get("ussd.daemon")
    cleanups: list[Callable[[], Awaitable[None]]] = []
    try:
        metrics = StackMetrics()
        if cfg.demo_app is not None:
            app = web.Application()
            app.router.add_post("/demo", demo_app)
            demo_listener = HttpListener(app, "demo_app", cfg.http_limits, metrics)
            await demo_listener.start(*cfg.demo_app)
            cleanups.append(demo_listener.close)
        local = SccpAddress.gt_e164(cfg.global_title, cfg.ssn)
        table = DialogueTable(supported_acs=SUPPORTED_ACS, idle_timeout=cfg.idle_timeout,
                              invoke_timeout=cfg.invoke_timeout, tid_prefix=cfg.tid_prefix,
                              tid_prefix_bits=cfg.tid_prefix_bits)  # fmt: skip
        sccp_layer = SccpLayer(SccpConfig(cfg.point_code, frozenset({cfg.ssn}), default_dpc=cfg.network_point_code))
        faults = FaultReporter(metrics)
        node = SignallingNode(local, sccp_layer, table, observer=metrics, faults=faults)
        ussd = UssdService(table, local, faults=faults)
        http = aiohttp.ClientSession()
        cleanups.append(http.close)
        cdr = CdrWriter(cfg.cdr_path) if cfg.cdr_path else None
        if cdr is not None:
            cleanups.append(_async(cdr.close))
        capture: PcapWriter | None = None
        if cfg.pcap_path:
            Path(cfg.pcap_path).parent.mkdir(parents=True, exist_ok=True)
            capture = PcapWriter(cfg.pcap_path)
            cleanups.append(_async(capture.close))

        stack = UssdHost(node, ussd)
        cleanups.append(_async(stack.close))
        app_client = AppClient(http)
        cleanups.append(_async(app_client.close))
        manager = SessionManager(stack, cfg.routes, app_client, cdr=cdr, metrics=metrics,
                                 max_sessions=cfg.max_sessions, network_code=cfg.network_code)  # fmt: skip
        for kind in (SessionStarted, UserAnswered, SessionClosed):
            stack.on(kind, manager.on_event)
        cleanups.append(manager.drain)
        states: dict[int, tuple[str, str]] = {}  # id(association) -> (name, state), for /readyz
        if cfg.push is not None:
            info_push = await _serve_push(cfg, stack, manager, states, metrics, cleanups)
        if cfg.metrics_listen is not None:
            cleanups.append(await _serve_metrics(metrics, cfg.metrics_listen, states, manager, cfg.http_limits))
        if reload is not None:
            reloader = asyncio.create_task(_reload_routes(cfg.file, reload, manager, log))
            cleanups.append(_canceller(reloader))
        info: dict[str, object] = {"event": "ready", "role": cfg.role, "routing_context": cfg.routing_context,
                                   "point_code": cfg.point_code, "global_title": cfg.global_title,
                                   "config": cfg.file,
                                   "metrics": None if cfg.metrics_listen is None else "{}:{}".format(
                                       *cfg.metrics_listen)}  # fmt: skip
        if cfg.push is not None:
            info.update(info_push)
        ready = asyncio.Event()

        def sink(association: M3uaAssociation, event: Event) -> None:
            if isinstance(event, StateChanged):
                log.info("m3ua.state", association=association.config.name, state=event.state.value)
                if event.state is AspState.DOWN:
                    states.pop(id(association), None)
                else:
                    states[id(association)] = (association.config.name, event.state.value)
                if event.state is AspState.ACTIVE:
                    ready.set()
            elif isinstance(event, ProtocolErrorSent | ErrorReceived | AssociationLost):
                log.warning("m3ua.error", association=association.config.name, kind=type(event).__name__,
                            detail=str(event))  # fmt: skip
            stack.sink(association, event)

        def on_connection(conn: Any) -> None:
            if capture is not None and hasattr(conn, "tap"):
                conn.tap = _pcap_tap(capture, conn)
            stack.add(conn)

        transport: Any = sctp if cfg.transport == "sctp" else tcp
        rcs = (cfg.routing_context,) if cfg.routing_context is not None else ()
        if cfg.role == "sg":
            server = await transport.serve(cfg.listen_host, cfg.listen_port,
                                           AssociationConfig(name="m3ua", role=Role.SG, routing_contexts=rcs,
                                                             beat_interval=cfg.beat_interval,
                                                             local_point_codes=(cfg.point_code,)),
                                           sink, on_connection, metrics=metrics, faults=faults)  # fmt: skip
            cleanups.append(_closer(server))
            if isinstance(server, asyncio.Server):
                info["m3ua"] = f"{cfg.listen_host}:{server.sockets[0].getsockname()[1]}"
            else:
                info["m3ua"] = f"{cfg.listen_host}:{cfg.listen_port}"
        else:
            stop_clients = asyncio.Event()
            keys = (m3ua.RoutingKey(1, cfg.point_code, cfg.routing_context),) if cfg.register else ()
            clients = []
            for i, (host, port) in enumerate(cfg.connect):
                acfg = AssociationConfig(name=f"stp{i + 1}", role=Role.ASP,
                                         routing_contexts=() if cfg.register else rcs, routing_keys=keys,
                                         traffic_mode=cfg.traffic_mode, asp_identifier=cfg.asp_identifier,
                                         beat_interval=cfg.beat_interval)  # fmt: skip

                def on_error(exc: OSError, name: str = acfg.name, peer: str = f"{host}:{port}") -> None:
                    reason = os.strerror(exc.errno) if exc.errno else str(exc)
                    log.warning("m3ua.connect_failed", association=name, peer=peer, reason=reason)

                clients.append(asyncio.create_task(transport.run_client(
                    host, port, acfg, sink, on_connection=on_connection, stop=stop_clients, metrics=metrics,
                    on_error=on_error, faults=faults)))  # fmt: skip
            cleanups.append(_stopper(stop_clients, clients))
            info["m3ua"] = ["{}:{}".format(*hp) for hp in cfg.connect]
            waiter = asyncio.ensure_future(ready.wait())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait([waiter, stopper], return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            stopper.cancel()
        if not stop.is_set():
            log.info("ready", **{k: v for k, v in info.items() if k != "event"})
            if on_ready is not None:
                on_ready(info)
            await stop.wait()
            if manager.sessions:
                # Graceful stop: new dialogues get the busy text, the ones in progress may finish.
                log.info("draining", sessions=len(manager.sessions), timeout=cfg.drain_timeout)
                manager.draining = True
                if not await manager.wait_idle(cfg.drain_timeout):
                    log.warning("drain_timeout", sessions=len(manager.sessions))
        log.info("stopping")
    finally:
        for cleanup in reversed(cleanups):
            with contextlib.suppress(Exception):
                await cleanup()


async def _serve_push(cfg: GatewayConfig, stack: UssdHost, manager: SessionManager,
                      states: dict[int, tuple[str, str]], metrics: StackMetrics,
                      cleanups: list[Callable[[], Awaitable[None]]]) -> dict[str, object]:  # fmt: skip
    """The push side: the store, the push service (a service of the host for the push events; a request push's
    session goes to the session manager), the purge of old pushes, and the push API when it has a listener."""
    assert cfg.push is not None
    p = cfg.push
    store = await open_store(p.store)
    cleanups.append(store.close)
    service = PushService(store, stack, PushSettings(node_id=p.node_id, hlr_gt=p.hlr_gt, rate=p.rate,
                                                     max_in_flight=p.max_in_flight, via_hlr=p.via == "hlr",
                                                     backoff=Backoff(base=p.retry_base_s, cap=p.retry_cap_s)),
                          ready=lambda: any(state == AspState.ACTIVE.value for _, state in states.values()),
                          busy=manager.in_session, metrics=metrics)  # fmt: skip
    for kind in (PushRouted, PushDelivered, PushFailed):
        stack.on(kind, service.on_event)
    stack.on(PushSessionStarted, manager.on_event)
    await service.start()
    cleanups.append(service.stop)
    callbacks = CallbackSender(store, CallbackSettings(secret=p.callback_secret, horizon_s=p.callback_horizon_s),
                               metrics, node_id=p.node_id)  # fmt: skip
    await callbacks.start()
    cleanups.append(callbacks.stop)
    cleanups.append(_canceller(asyncio.create_task(_purge(store, p.retention_s))))
    info: dict[str, object] = {"push_store": p.store.split("@")[-1]}  # never a password in a log line
    if cfg.push_api_listen is not None:
        api = make_app(store, on_created=service.wake, routes=lambda name: manager.routes.named(name) is not None,
                       settings=ApiSettings(default_ttl_s=p.default_ttl_s, max_ttl_s=p.max_ttl_s,
                                            retention_s=p.retention_s,
                                            max_upload_bytes=cfg.push_api_max_upload_bytes))  # fmt: skip
        listener = HttpListener(api, "push_api", cfg.http_limits, metrics)  # the API's own error shape
        await listener.start(*cfg.push_api_listen)
        cleanups.append(listener.close)
        info["push_api"] = f"{cfg.push_api_listen[0]}:{listener.port}"
    return info


async def _purge(store: PushStore, retention_s: float) -> None:
    """Once an hour, finished pushes and idempotency keys older than the retention go, and so do campaign uploads
    that were still loading an hour ago (a crash cut them off: nothing will finish them)."""
    log = logs.get("ussd.push")
    while True:
        try:
            now = time.time()
            pushes, keys = await store.purge(now, retention_s)
            if pushes or keys:
                log.info("push.purged", pushes=pushes, idempotency_keys=keys)
            for campaign in await store.campaigns_loading_since(now - 3600):
                await store.campaign_discard(campaign)
                log.warning("push.campaign_discarded", campaign=campaign, reason="upload cut off")
        except Exception as exc:  # the store is unreachable now: next hour
            log.error("push.purge_failed", error=str(exc))
        await asyncio.sleep(3600)


def _pcap_tap(capture: PcapWriter, conn: Any) -> Callable[[bytes, bool], None]:
    """Record every whole M3UA message of ``conn`` (both directions) with its real endpoints."""
    ends: list[tuple[str, int]] = []

    def tap(data: bytes, sent: bool) -> None:
        if not ends:
            transport = getattr(conn, "transport", None)
            sock = getattr(conn, "sock", None)  # SCTP connections hold their socket
            here = transport.get_extra_info("sockname") if transport is not None else None
            there = transport.get_extra_info("peername") if transport is not None else None
            if sock is not None:
                with contextlib.suppress(OSError):
                    here, there = sock.getsockname(), sock.getpeername()
            ends.extend([tuple(here[:2]) if here else ("127.0.0.1", 2905),
                         tuple(there[:2]) if there else ("127.0.0.2", 2905)])  # fmt: skip
        src, dst = (ends[0], ends[1]) if sent else (ends[1], ends[0])
        capture.write_m3ua(data, src=src, dst=dst, ts=time.time())

    return tap


def _stopper(stop: asyncio.Event, tasks: list[asyncio.Task[None]]) -> Callable[[], Awaitable[None]]:
    async def close() -> None:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)

    return close


async def _serve_metrics(metrics: StackMetrics, listen: tuple[str, int], states: dict[int, tuple[str, str]],
                         manager: SessionManager, limits: HttpLimits) -> Callable[[], Awaitable[None]]:  # fmt: skip
    """Prometheus exposition on GET /metrics; GET /healthz (the process answers) and GET /readyz (200 when at least
    one M3UA association is ASP-ACTIVE, else 503), both JSON, for load balancers and orchestrators. Served with
    the ``[http]`` limits, as every listener of the gateway."""

    async def prometheus(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(metrics.registry), content_type="text/plain", charset="utf-8")

    def status() -> dict[str, object]:
        return {"associations": [{"name": name, "state": state} for name, state in states.values()],
                "sessions_active": len(manager.sessions)}  # fmt: skip

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", **status()})

    async def readyz(request: web.Request) -> web.Response:
        ready = any(state == AspState.ACTIVE.value for _, state in states.values())
        return web.json_response({"status": "ready" if ready else "not ready", **status()}, status=200 if ready
                                 else 503)  # fmt: skip

    app = web.Application()
    app.router.add_get("/metrics", prometheus)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    listener = HttpListener(app, "metrics", limits, metrics)
    await listener.start(*listen)
    return listener.close


async def _reload_routes(file: str, reload: asyncio.Event, manager: SessionManager, log: Any) -> None:
    """On each ``reload``: the routes of ``file`` replace the ones in use, if the whole file still loads. Sessions
    in progress keep the route they started with; other settings need a restart."""
    while True:
        await reload.wait()
        reload.clear()
        try:
            fresh = load(file)
        except ConfigError as exc:
            log.error("config.reload_refused", file=exc.file, key=exc.key, reason=exc.reason)
            continue
        manager.routes = fresh.routes
        log.info("config.reloaded", file=file, routes=[r.name for r in fresh.routes.routes])


def _canceller(task: asyncio.Task[None]) -> Callable[[], Awaitable[None]]:
    async def cancel() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return cancel


def _async(fn: Callable[[], None]) -> Callable[[], Awaitable[None]]:
    async def call() -> None:
        fn()

    return call


def _closer(server: Any) -> Callable[[], Awaitable[None]]:
    async def close() -> None:
        server.close()
        if isinstance(server, asyncio.Server):
            await server.wait_closed()

    return close


def run(config_path: str | None) -> int:
    """Load the configuration (refused with file, key and reason), then serve until SIGINT/SIGTERM; SIGHUP
    reloads the routes."""
    try:
        cfg = load(config_path)
    except ConfigError as exc:
        print(json.dumps({"error": "bad configuration", "file": exc.file, "key": exc.key, "reason": exc.reason}),
              file=sys.stderr)  # fmt: skip
        return 2

    logs.configure(cfg.log_level)

    async def main() -> None:
        stop = asyncio.Event()
        reload = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, reload.set)
        await serve(cfg, stop, reload=reload)

    try:
        asyncio.run(main())
    except OSError as exc:
        print(json.dumps({"error": "cannot start", "reason": str(exc)}), file=sys.stderr)
        return 1
    return 0
