"""USSD sessions between the MAP dialogues (stack/map_ussd.py) and the application servers (apps/client.py).

A pull dialogue and its application session share one id. Each step asks the route's application and shows its
reply. Every other ending is clean, answered with the route's configured text, counted, written as one CDR, logged
as one ``session.end`` line and, where the route has an ``end_notice_url``, told to the application:

- unknown code / not allowed: the unknown-code text (TC-END);
- busy: the global or the route's limit of sessions in progress is reached: the busy text at once, never queued;
- the application is down on both URLs, answers 4xx/5xx or garbage: the error text;
- the application is late: the timeout text, or a U-ABORT where the route says ``on_late = "abort"``;
- a reply too long for one USSD string: truncated with the route's marker, or refused with the error text
  (``on_too_long = "refuse"``);
- the route's maximum duration: U-ABORT; the user's release, the MSC's timeout or abort: nothing more to send.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.apps.client import AppClient, AppError
from gateway.apps.dialects import AppRequest, EndNotice
from gateway.codecs import dcs as dcs_codec
from gateway.codecs import ussd_string
from gateway.ops import logs
from gateway.ops.cdr import Cdr, CdrWriter, mask
from gateway.ops.metrics import StackMetrics
from gateway.routing.table import Route, RouteTable
from gateway.stack.map_ussd import PushSessionStarted, SessionClosed, SessionStarted, UserAnswered, UssdEvent

DEFAULT_TEXTS = {
    "unknown": "Unknown service code.",
    "busy": "Service busy, please try later.",
    "error": "Service unavailable, please try later.",
    "timeout": "Service unavailable, please try later.",
}


class UssdPort(Protocol):
    """What the session manager does to a session (gateway/transport/host.py's UssdHost: it supplies the time and
    sends at the end of the loop turn)."""

    def reply(self, session: int, text: str) -> None: ...

    def finish(self, session: int, text: str) -> None: ...

    def abort(self, session: int, outcome: str) -> None: ...


@dataclass(slots=True)
class _Session:
    ident: int
    route: Route
    request: AppRequest
    started: float
    latencies: list[float] = field(default_factory=list)
    outcome: str | None = None
    last_text: str | None = None
    timer: asyncio.TimerHandle | None = None


class SessionManager:
    def __init__(self, ussd: UssdPort, routes: RouteTable, client: AppClient, *, cdr: CdrWriter | None = None,
                 max_sessions: int = 10_000, metrics: StackMetrics | None = None,
                 network_code: str = "") -> None:  # fmt: skip
        self.metrics = metrics
        self.ussd = ussd
        self.routes = routes
        self.client = client
        self.cdr = cdr
        self.max_sessions = max_sessions
        self.network_code = network_code
        self.sessions: dict[int, _Session] = {}
        self.per_route: dict[str, int] = {}
        self.outcomes: dict[str, int] = {}
        self.log = logs.get("ussd.sessions")
        self.draining = False  # stopping: new sessions get the busy text, the ones in progress go on
        self._idle = asyncio.Event()
        self._idle.set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._msisdns: dict[str, int] = {}  # subscribers with a session in progress

    def in_session(self, msisdn: str) -> bool:
        """Whether the subscriber is in a session now (a push to them waits until it ends)."""
        return msisdn in self._msisdns

    def on_event(self, ev: UssdEvent) -> None:
        if isinstance(ev, SessionStarted):
            self._started(ev)
        elif isinstance(ev, PushSessionStarted):
            self._push_started(ev)
        elif isinstance(ev, UserAnswered):
            s = self.sessions.get(ev.session)
            if s is not None:
                s.request = _with_input(s.request, ev.text)
                self._spawn(self._step(s))
        elif isinstance(ev, SessionClosed):
            s = self.sessions.pop(ev.session, None)
            if s is not None:
                msisdn = s.request.msisdn
                if msisdn and self._msisdns.get(msisdn, 0) > 1:
                    self._msisdns[msisdn] -= 1
                elif msisdn:
                    self._msisdns.pop(msisdn, None)
                self._closed(s, s.outcome or ev.outcome, ev.detail)

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no session is in progress; False if some still are after ``timeout`` seconds."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def drain(self) -> None:
        """Wait for the application calls and notices in flight (at shutdown)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # ---- session start ----

    def _started(self, ev: SessionStarted) -> None:
        vlr = ev.peer.gt.digits if ev.peer.gt is not None else None
        language = dcs_codec.parse(ev.dcs).language  # TS 23.038 §5: the handset's language, when its DCS names one
        request = AppRequest(f"{ev.session:016x}", ev.msisdn, ev.text, (), (), ev.imsi, vlr, self.network_code,
                             dcs=ev.dcs, language=language)  # fmt: skip
        match = self.routes.lookup(ev.text)
        route = match.route if match is not None else self.routes.default
        if match is None or route is None or not route.primary_url:
            # no route, or a default route without an application: the "unknown code" text
            self._refuse(ev.session, route, request, "unknown", "unknown-code")
            return
        request = AppRequest(request.session_id, ev.msisdn, match.service_code, match.params, (), ev.imsi, vlr,
                             self.network_code, dcs=ev.dcs, language=language)  # fmt: skip
        if not route.allows(ev.msisdn, ev.imsi, vlr):
            self._refuse(ev.session, route, request, "unknown", "not-allowed")
            return
        self._open(ev.session, route, request)

    def _push_started(self, ev: PushSessionStarted) -> None:
        """A request push was answered and the dialogue goes on: the answer is the first input to the push's
        route (the application sees a session whose service code is the route's)."""
        route = self.routes.named(ev.route)
        vlr = ev.peer.gt.digits if ev.peer.gt is not None else None
        request = AppRequest(f"{ev.session:016x}", ev.msisdn, route.code if route and route.code else "", (),
                             (ev.answer,), ev.imsi, vlr, self.network_code, dcs=ev.dcs,
                             language=dcs_codec.parse(ev.dcs).language)  # fmt: skip
        if route is None or not route.primary_url:  # the route went away in a reload since the push was accepted
            self._refuse(ev.session, route, request, "error", "unknown-code")
            return
        self._open(ev.session, route, request)

    def _open(self, session: int, route: Route, request: AppRequest) -> None:
        if (self.draining or len(self.sessions) >= self.max_sessions
                or self.per_route.get(route.name, 0) >= route.max_sessions):  # fmt: skip
            self._refuse(session, route, request, "busy", "busy")  # at once, never queued
            return
        s = _Session(session, route, request, time.time())
        self.sessions[session] = s
        if request.msisdn:
            self._msisdns[request.msisdn] = self._msisdns.get(request.msisdn, 0) + 1
        self._idle.clear()
        self.per_route[route.name] = self.per_route.get(route.name, 0) + 1
        if self.metrics is not None:
            self.metrics.child(self.metrics.sessions_active, route.name).inc()
        s.timer = asyncio.get_running_loop().call_later(route.max_duration, self._expired, s)
        self._spawn(self._step(s))

    def _refuse(self, session: int, route: Route | None, request: AppRequest, kind: str, outcome: str) -> None:
        text = route.text(kind, request.language, DEFAULT_TEXTS[kind]) if route is not None else DEFAULT_TEXTS[kind]
        self.ussd.finish(session, text)
        s = _Session(session, route or _NO_ROUTE, request, time.time(), outcome=outcome, last_text=text)
        self._ended(s, outcome, "")

    # ---- one step: ask the application, show its reply ----

    async def _step(self, s: _Session) -> None:
        try:
            await self._ask_and_show(s)
        except Exception:  # a bug must not leave the subscriber hanging or the task's error unseen
            self.log.exception("session.internal_error", session=s.request.session_id, route=s.route.name)
            if s.ident in self.sessions:
                s.outcome = "gateway-error"
                with contextlib.suppress(Exception):
                    self.ussd.abort(s.ident, "gateway-error")

    async def _ask_and_show(self, s: _Session) -> None:
        route = s.route
        t0 = time.perf_counter()
        try:
            reply = await self.client.call(route, s.request)
        except AppError as exc:
            if s.ident in self.sessions:
                self._app_failed(s, exc)
            return
        s.latencies.append((time.perf_counter() - t0) * 1000)
        m = self.metrics
        if m is not None:
            m.child(m.app_latency, route.name).observe(s.latencies[-1] / 1000)
            if reply.backup:
                m.app_failovers.labels(route.name).inc()
        if s.ident not in self.sessions:
            return  # the user or the network ended it while the application was thinking
        if logs.enabled("debug"):
            self.log.debug("app.reply", session=s.request.session_id, route=route.name, step=s.request.step,
                           input=mask(s.request.input or "") if route.sensitive else s.request.input, end=reply.end,
                           latency_ms=round(s.latencies[-1], 2), backup=reply.backup)  # fmt: skip
        text = reply.text
        if not ussd_string.fits(text):
            if m is not None:
                m.replies_too_long.labels(route.name, route.on_too_long).inc()
            if route.on_too_long == "refuse":
                self.log.warning("app.reply_too_long", session=s.request.session_id, route=route.name,
                                 chars=len(text), policy="refuse")  # fmt: skip
                self._finish(s, route.text("error", s.request.language, DEFAULT_TEXTS["error"]), "app-too-long")
                return
            text = ussd_string.truncate(text, route.truncate_marker)
        if reply.end:
            self._finish(s, text, "completed")
        else:
            s.last_text = text
            self.ussd.reply(s.ident, text)

    def _app_failed(self, s: _Session, exc: AppError) -> None:
        route = s.route
        if self.metrics is not None:
            self.metrics.app_errors.labels(route.name, exc.reason).inc()
        self.log.warning("app.failed", session=s.request.session_id, route=route.name, reason=exc.reason,
                         detail=exc.detail)  # fmt: skip
        if exc.reason == "timeout":
            if route.on_late == "abort":
                s.outcome = "app-timeout"
                self.ussd.abort(s.ident, "app-timeout")
                return
            self._finish(s, route.text("timeout", s.request.language, DEFAULT_TEXTS["timeout"]), "app-timeout")
            return
        self._finish(s, route.text("error", s.request.language, DEFAULT_TEXTS["error"]), f"app-{exc.reason}")

    def _finish(self, s: _Session, text: str, outcome: str) -> None:
        s.outcome = outcome
        s.last_text = text
        self.ussd.finish(s.ident, text)

    def _expired(self, s: _Session) -> None:
        if s.ident in self.sessions:
            s.outcome = "max-duration"
            self.ussd.abort(s.ident, "max-duration")

    # ---- the end: counters, CDR, summary log line, notice ----

    def _closed(self, s: _Session, outcome: str, detail: str) -> None:
        if s.timer is not None:
            s.timer.cancel()
        if not self.sessions:
            self._idle.set()
        self.per_route[s.route.name] -= 1
        if self.metrics is not None:
            self.metrics.child(self.metrics.sessions_active, s.route.name).dec()
        self._ended(s, outcome, detail)

    def _ended(self, s: _Session, outcome: str, detail: str) -> None:
        route, r = s.route, s.request
        end = time.time()
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        if self.metrics is not None:
            self.metrics.child(self.metrics.sessions, route.name, outcome).inc()
        latencies = tuple(round(x, 2) for x in s.latencies)
        if self.cdr is not None:
            self.cdr.write(Cdr(r.session_id, r.msisdn, r.imsi, r.service_code, route.name, s.started, end,
                               len(s.latencies), r.inputs, outcome, latencies, r.vlr),
                           sensitive=route.sensitive)  # fmt: skip
        path = [mask(x) for x in r.inputs] if route.sensitive else list(r.inputs)
        self.log.info("session.end", session=r.session_id, msisdn=r.msisdn, imsi=r.imsi, code=r.service_code,
                      route=route.name, outcome=outcome, detail=detail or None, hops=len(s.latencies),
                      menu_path=path, duration_ms=round((end - s.started) * 1000, 1),
                      app_latency_ms=list(latencies))  # fmt: skip
        if route.end_notice_url:
            notice = EndNotice(r.session_id, r.msisdn, r.service_code, outcome, round((end - s.started) * 1000),
                               len(s.latencies), r.inputs, s.last_text, s.started, self.network_code)  # fmt: skip
            self._spawn(self._notify(route, notice))

    async def _notify(self, route: Route, notice: EndNotice) -> None:
        result = await self.client.notify_end(route, notice)
        if self.metrics is not None:
            self.metrics.end_notices.labels(route.name, result).inc()
        if result != "ok":
            self.log.warning("app.end_notice_failed", session=notice.session_id, route=route.name, result=result)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


_NO_ROUTE = Route("-", None)


def _with_input(req: AppRequest, text: str) -> AppRequest:
    return AppRequest(req.session_id, req.msisdn, req.service_code, req.params, (*req.inputs, text), req.imsi,
                      req.vlr, req.network_code, req.dcs, req.language)  # fmt: skip
