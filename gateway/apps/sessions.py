"""USSD sessions between the MAP dialogues (stack/map_ussd.py) and the application servers (apps/client.py).

A pull dialogue and its application session share one id. Each step asks the route's application and shows its
reply; the session ends cleanly in every other case, with the route's configured text: unknown code, not allowed,
busy (global or per-route limit reached: answered at once, never queued), application down / late / garbage
(error or timeout text), or the route's maximum duration (U-Abort). One CDR per session.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.apps.client import AppClient, AppError
from gateway.apps.dialects import AppRequest
from gateway.codecs import ussd_string
from gateway.ops.cdr import Cdr, CdrWriter
from gateway.ops.metrics import StackMetrics
from gateway.routing.table import Route, RouteTable
from gateway.stack.map_ussd import SessionClosed, SessionStarted, UserAnswered, UssdEvent, UssdService

DEFAULT_TEXTS = {
    "unknown": "Unknown service code.",
    "busy": "Service busy, please try later.",
    "error": "Service unavailable, please try later.",
    "timeout": "Service unavailable, please try later.",
}


@dataclass(slots=True)
class _Session:
    ident: int
    route: Route
    request: AppRequest
    started: float
    latencies: list[float] = field(default_factory=list)
    outcome: str | None = None
    timer: asyncio.TimerHandle | None = None


class SessionManager:
    def __init__(self, ussd: UssdService, routes: RouteTable, client: AppClient, *, pump: Callable[[], None],
                 cdr: CdrWriter | None = None, max_sessions: int = 10_000,
                 truncate_marker: str = "...", metrics: StackMetrics | None = None) -> None:  # fmt: skip
        self.metrics = metrics
        self.ussd = ussd
        self.routes = routes
        self.client = client
        self.pump = pump
        self.cdr = cdr
        self.max_sessions = max_sessions
        self.truncate_marker = truncate_marker
        self.sessions: dict[int, _Session] = {}
        self.per_route: dict[str, int] = {}
        self.outcomes: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def on_event(self, ev: UssdEvent) -> None:
        if isinstance(ev, SessionStarted):
            self._started(ev)
        elif isinstance(ev, UserAnswered):
            s = self.sessions.get(ev.session)
            if s is not None:
                s.request = _with_input(s.request, ev.text)
                self._spawn(s)
        elif isinstance(ev, SessionClosed):
            s = self.sessions.pop(ev.session, None)
            if s is not None:
                self._closed(s, s.outcome or ev.outcome)

    def _started(self, ev: SessionStarted) -> None:
        match = self.routes.lookup(ev.text)
        fallback = self.routes.default
        if match is None:
            self._refuse(ev.session, fallback, "unknown", "unknown-code")
            return
        route = match.route
        if not route.primary_url:  # a default route without an application: the "unknown code" text
            self._refuse(ev.session, route, "unknown", "unknown-code")
            return
        vlr = ev.peer.gt.digits if ev.peer.gt is not None else None
        if not route.allows(ev.msisdn, ev.imsi, vlr):
            self._refuse(ev.session, route, "unknown", "not-allowed")
            return
        if len(self.sessions) >= self.max_sessions or self.per_route.get(route.name, 0) >= route.max_sessions:
            self._refuse(ev.session, route, "busy", "busy")
            return
        request = AppRequest(f"{ev.session:016x}", ev.msisdn, match.service_code, match.params, (), ev.imsi, vlr,
                             dcs=ev.dcs)  # fmt: skip
        s = _Session(ev.session, route, request, time.time())
        self.sessions[ev.session] = s
        self.per_route[route.name] = self.per_route.get(route.name, 0) + 1
        s.timer = asyncio.get_running_loop().call_later(route.max_duration, self._expired, s)
        self._spawn(s)

    def _refuse(self, session: int, route: Route | None, kind: str, outcome: str) -> None:
        text = route.text(kind, None, DEFAULT_TEXTS[kind]) if route is not None else DEFAULT_TEXTS[kind]
        self.ussd.finish(session, text)
        self._count(route.name if route is not None else "-", outcome)
        self._after_action()

    def _after_action(self) -> None:
        """Handle what our own calls into the USSD service produced (SessionClosed), then send."""
        while self.ussd.events:
            self.on_event(self.ussd.events.popleft())
        self.pump()

    def _spawn(self, s: _Session) -> None:
        task = asyncio.ensure_future(self._step(s))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _step(self, s: _Session) -> None:
        t0 = time.perf_counter()
        try:
            reply = await self.client.call(s.route, s.request)
        except AppError as exc:
            if s.ident in self.sessions:
                kind = "timeout" if exc.reason == "timeout" else "error"
                s.outcome = "app-timeout" if kind == "timeout" else f"app-{exc.reason}"
                self.ussd.finish(s.ident, s.route.text(kind, None, DEFAULT_TEXTS[kind]))
                self._after_action()
            return
        s.latencies.append((time.perf_counter() - t0) * 1000)
        if self.metrics is not None:
            self.metrics.app_latency.labels(s.route.name).observe(s.latencies[-1] / 1000)
        if s.ident not in self.sessions:
            return  # the user or the network ended it while the application was thinking
        text = reply.text if ussd_string.fits(reply.text) else ussd_string.truncate(reply.text, self.truncate_marker)
        if reply.end:
            s.outcome = "completed"
            self.ussd.finish(s.ident, text)
        else:
            self.ussd.reply(s.ident, text, asyncio.get_running_loop().time())
        self._after_action()

    def _count(self, route: str, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        if self.metrics is not None:
            self.metrics.sessions.labels(route, outcome).inc()

    def _expired(self, s: _Session) -> None:
        if s.ident in self.sessions:
            s.outcome = "max-duration"
            self.ussd.abort(s.ident, "max-duration")
            self._after_action()

    def _closed(self, s: _Session, outcome: str) -> None:
        if s.timer is not None:
            s.timer.cancel()
        self.per_route[s.route.name] -= 1
        self._count(s.route.name, outcome)
        if self.cdr is not None:
            r = s.request
            self.cdr.write(Cdr(r.session_id, r.msisdn, r.imsi, r.service_code, s.route.name, s.started, time.time(),
                               len(s.latencies), r.inputs, outcome, tuple(round(x, 2) for x in s.latencies), r.vlr),
                           sensitive=s.route.sensitive)  # fmt: skip


def _with_input(req: AppRequest, text: str) -> AppRequest:
    return AppRequest(req.session_id, req.msisdn, req.service_code, req.params, (*req.inputs, text), req.imsi,
                      req.vlr, req.network_code, req.dcs, req.language)  # fmt: skip
