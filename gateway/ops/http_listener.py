"""An HTTP listener with limits: every aiohttp application the gateway serves (metrics and health, the demo
application, and the push and admin listeners to come) is served through :class:`HttpListener`, so a client that
opens connections and sends nothing, trickles its request one byte at a time, sends huge heads or bodies, or opens
thousands of connections, is cut by the same rules everywhere.

What aiohttp offers (read from the source of 3.14, the version tested) is used as is: ``max_line_size`` and
``max_field_size`` (one request line, one header field), ``lingering_time`` (how long an unread body is drained
before the connection is closed) and the request's ``client_max_size`` (a body read by the handler). What it lacks
is added here, by a subclass of its connection protocol (:class:`aiohttp.web.RequestHandler`: public methods and
attributes only) and a protocol factory of our own:

- **header timeout**: from the accept, or from the first byte of a later request on a keep-alive connection,
  until the whole request head has been parsed. A deadline, not an inactivity timer: each byte a slowloris client
  sends does not push it back. Cut with 408 and ``{"error": ...}`` when part of a head came, silently when nothing
  came.
- **idle timeout**: a keep-alive connection between a response (and its request's body) and the first byte of
  the next request. Closed silently (RFC 9112 §9.5 lets a server close an idle connection at any time).
- **head size**: the request line and all header fields together; the request line alone over the limit gets 414,
  the head over it 431; aiohttp's per-line limit (set to the same value) answers 431 through the same JSON error
  path.
- **body size**: a declared ``Content-Length`` over the limit is refused with 413 before the handler runs (and
  before any ``100 Continue``); a chunked body is stopped at the limit when the handler reads it.
- **connection cap**: connections beyond ``max_connections`` are closed at once after the accept, nothing read and
  nothing written. Answering 503 would mean reading and parsing the request first (closing a socket with unread
  data makes the kernel send a reset, which would destroy the answer), which is the very work the cap is there to
  bound; a scraper or health checker simply retries. The connections being served are not disturbed.

Every cut is counted in ``ussd_http_connections_closed_total{listener,reason}`` (the reason is the name of the
limit that cut), and ``ussd_http_connections_open{listener}`` shows the connections being served.

The listener's own answers (these cuts, and aiohttp's answers to requests it could not parse or handle) are JSON
``{"error": "..."}``, unless the application carries another shape under :data:`ERROR_BODY` (the push API's
contract has ``{"error": {"code", "message", "field"}}`` for every error, these included).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http_exceptions import BadHttpMessage, HttpProcessingError, LineTooLong
from aiohttp.http_parser import RawRequestMessage
from aiohttp.streams import StreamReader

from gateway.ops.metrics import StackMetrics


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """The limits of one listener; the defaults are the production ones (``[http]`` in the configuration)."""

    idle_timeout: float = 75.0  # s; over a one-minute scrape interval, so a scraper keeps its connection
    header_timeout: float = 10.0  # s; a head takes milliseconds, 10 s covers a congested link
    max_header_bytes: int = 16_384  # request line + header fields; ops and push clients send well under 1 KiB
    max_body_bytes: int = 65_536  # USSD payloads are under 1 KiB; 0 would mean "unlimited" to aiohttp
    max_connections: int = 256  # served at once, per listener

    def problem(self) -> tuple[str, str] | None:
        """None when usable, else the first field that is not and why."""
        for name in ("idle_timeout", "header_timeout", "max_body_bytes", "max_connections"):
            if not getattr(self, name) > 0:
                return name, "must be positive"
        if self.max_header_bytes < MIN_HEADER_BYTES:
            return "max_header_bytes", f"must be at least {MIN_HEADER_BYTES} (a request line and a Host header)"
        return None


MIN_HEADER_BYTES = 256

# An error answer's JSON body from its status code and message.
ErrorBody = Callable[[int, str], dict[str, Any]]


def plain_error(status: int, message: str) -> dict[str, Any]:
    """The listener's default error body: ``{"error": message}``."""
    return {"error": message}


# Set on an application (``app[ERROR_BODY] = ...``) to give the listener's own answers that application's shape.
ERROR_BODY: web.AppKey[ErrorBody] = web.AppKey("error_body")
# Set on an application to give some of its requests a body limit of their own (a bulk upload that its handler
# reads as a stream, e.g. the push API's CSV campaign upload): the request (method, path, headers) -> the limit in
# bytes, or None for the listener's. The listener refuses a declared Content-Length over it with 413 before the
# handler; the handler must count a chunked body itself (the request's client_max_size, which request.read()
# enforces, stays the listener's limit).
BodyLimit = Callable[[web.BaseRequest], int | None]
BODY_LIMIT: web.AppKey[BodyLimit] = web.AppKey("body_limit")


# The reasons of ussd_http_connections_closed_total: the limit that cut the connection.
REASONS = ("max_connections", "header_timeout", "idle_timeout", "max_header_bytes", "max_body_bytes",
           "bad_request")  # fmt: skip


def _raw_response(status: HTTPStatus, error: str, error_body: ErrorBody) -> bytes:
    """A whole HTTP/1.1 response that closes the connection, for the cuts made outside aiohttp's request cycle
    (no request object exists yet: the head is incomplete)."""
    body = json.dumps(error_body(status, error)).encode()
    head = (f"HTTP/1.1 {status.value} {status.phrase}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")  # fmt: skip
    return head.encode("ascii") + body



# Phases of a connection: waiting for a request head; a request in progress; keep-alive, between requests; cut.
_HEAD, _BUSY, _IDLE, _CUT = 0, 1, 2, 3


class _Shared:
    """What the connections of one listener share: the limits, the count of open connections, the counters."""

    __slots__ = ("closed", "error_body", "head_431", "limits", "line_414", "open", "open_gauge", "timeout_408")

    def __init__(self, name: str, limits: HttpLimits, metrics: StackMetrics | None, error_body: ErrorBody) -> None:
        self.limits = limits
        self.error_body = error_body
        # RFC 9110 §15.5.9: 408 when the server did not receive a complete request in the time it was prepared to
        # wait, with "Connection: close".
        self.timeout_408 = _raw_response(HTTPStatus.REQUEST_TIMEOUT, "request head not received in time", error_body)
        # RFC 9112 §3: a request-target longer than the server wishes to parse MUST be answered 414 (RFC 9110
        # §15.5.15).
        self.line_414 = _raw_response(HTTPStatus.REQUEST_URI_TOO_LONG, "request line too long", error_body)
        # RFC 9110 §5.4: header fields larger than the server wishes to process MUST get a 4xx; 431 is RFC 6585 §5's.
        self.head_431 = _raw_response(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "request header fields too large",
                                      error_body)  # fmt: skip
        self.open = 0
        self.closed: dict[str, Any] = {}
        self.open_gauge: Any = None
        if metrics is not None:
            self.closed = {r: metrics.http_connections_closed.labels(name, r) for r in REASONS}
            self.open_gauge = metrics.http_connections_open.labels(name)
            self.open_gauge.set(0)

    def count(self, reason: str) -> None:
        counter = self.closed.get(reason)
        if counter is not None:
            counter.inc()


class _Connection(web.RequestHandler):
    """aiohttp's connection protocol, plus the header and idle deadlines, the head size and the connection cap."""

    __slots__ = ("_counted", "_draining", "_head_bytes", "_line_done", "_phase", "_shared", "_size_check", "_timer")

    def __init__(self, manager: web.Server, shared: _Shared, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._shared = shared
        self._phase = _HEAD
        self._timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0  # of the head being received
        self._line_done = False  # its request line has ended
        self._size_check = False  # a head-size check is scheduled
        self._counted = False  # in the listener's open connections (not when refused by the cap)
        self._draining: StreamReader | None = None  # the body aiohttp drains after the answer (lingering)

    # -- connection life --

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        shared = self._shared
        if shared.open >= shared.limits.max_connections:
            # aiohttp never sees this connection: nothing is read, nothing is written.
            shared.count("max_connections")
            transport.close()
            return
        self._counted = True
        shared.open += 1
        if shared.open_gauge is not None:
            shared.open_gauge.inc()
        super().connection_made(transport)
        self._arm(self._shared.limits.header_timeout, self._header_deadline)

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self._counted:
            return
        self._counted = False
        self._phase = _CUT
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._shared.open -= 1
        if self._shared.open_gauge is not None:
            self._shared.open_gauge.dec()
        super().connection_lost(exc)
        if self._draining is not None:
            # aiohttp would go on waiting for the rest of a body the peer can no longer send, for the whole
            # lingering time (and hold the listener's close that long): there is no more.
            self._draining.feed_eof()

    def data_received(self, data: bytes) -> None:
        if self._phase == _IDLE and data:
            # The first byte of the next request: the head deadline starts now, once, whatever follows.
            self._phase = _HEAD
            self._head_bytes = 0
            self._line_done = False
            self._arm(self._shared.limits.header_timeout, self._header_deadline)
        if self._phase == _HEAD:
            limit = self._shared.limits.max_header_bytes
            if not self._line_done:
                end = data.find(b"\n")
                self._line_done = end >= 0
                if self._head_bytes + (end if end >= 0 else len(data)) > limit:
                    self._cut("max_header_bytes", self._shared.line_414)
                    return
            self._head_bytes += len(data)
            if self._head_bytes > limit and not self._size_check:
                # The same bytes may hold a whole head and the start of its body: decide once aiohttp's request
                # loop has taken the request, if these bytes completed one. Parsing them (below) wakes that loop
                # with call_soon, so a check scheduled after it runs after the loop took the request.
                self._size_check = True
                super().data_received(data)
                asyncio.get_running_loop().call_soon(self._head_size_check)
                return
        super().data_received(data)

    # -- hooks from the request cycle --

    def head_complete(self) -> None:
        """A request head was parsed and is being handled (called by the listener's request factory)."""
        self._phase = _BUSY
        self._size_check = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def finish_response(self, request: web.BaseRequest, resp: web.StreamResponse,
                              start_time: float | None) -> tuple[web.StreamResponse, bool]:  # fmt: skip
        result = await super().finish_response(request, resp, start_time)
        # Idle from when both the response is sent and the request's body is in (at once for no body; else when
        # aiohttp's lingering read finishes it): body bytes are not the next request's head.
        if not request.content.is_eof():
            self._draining = request.content
        request.content.on_eof(self._exchange_done)
        return result

    def _exchange_done(self) -> None:
        self._draining = None
        if self._phase == _BUSY and self.transport is not None:
            self._phase = _IDLE
            self._arm(self._shared.limits.idle_timeout, self._idle_deadline)

    def handle_error(self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:  # fmt: skip
        """aiohttp's answer to a request it could not parse, or to a handler that failed: JSON, never a
        traceback, and the connection closed (aiohttp's own contract for this method)."""
        if request.writer.output_size > 0:
            raise ConnectionError("response already started, cannot send an error")
        try:
            error = HTTPStatus(status).phrase.lower()
        except ValueError:
            error = "error"
        if isinstance(exc, LineTooLong) or (isinstance(exc, BadHttpMessage) and "Too many headers" in exc.message):
            # RFC 9110 §5.4: too large a field line or set of fields MUST get a 4xx; 431 is RFC 6585 §5's.
            status, error = HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "request header fields too large"
            self._shared.count("max_header_bytes")
        elif isinstance(exc, HttpProcessingError):
            # RFC 9112 §2.2: a message that is not valid HTTP/1.1 is answered 400 (RFC 9110 §15.5.1).
            if not 400 <= status < 500:
                status = HTTPStatus.BAD_REQUEST
            error = f"bad request: {exc.message[:200]}" if exc.message else "bad request"
            self._shared.count("bad_request")
        elif status >= 500:
            self.log_exception("Error handling request", exc_info=exc)
        resp = web.json_response(self._shared.error_body(status, error), status=status)
        resp.force_close()
        return resp

    # -- limits --

    def _arm(self, delay: float, callback: Callable[[], None]) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(delay, callback)

    def _header_deadline(self) -> None:
        self._timer = None
        if self._phase == _HEAD:
            # Nothing received at all: nothing to answer; part of a head: 408.
            self._cut("header_timeout", self._shared.timeout_408 if self._head_bytes else None)

    def _idle_deadline(self) -> None:
        self._timer = None
        if self._phase == _IDLE:
            self._cut("idle_timeout", None)

    def _head_size_check(self) -> None:
        if self._size_check and self._phase == _HEAD:
            self._cut("max_header_bytes", self._shared.head_431)

    def _cut(self, reason: str, answer: bytes | None) -> None:
        """Close now (the head is incomplete, so no response is in progress), after ``answer`` if any."""
        if self.transport is None or self.transport.is_closing():
            return
        self._shared.count(reason)
        self._phase = _CUT
        if answer is not None:
            self.transport.write(answer)  # the transport sends what it buffered before it closes
        self.force_close()


class HttpListener:
    """Serves ``app`` on one address with ``limits``; ``name`` labels its metrics. ``start`` then ``close``."""

    def __init__(self, app: web.Application, name: str, limits: HttpLimits = HttpLimits(),
                 metrics: StackMetrics | None = None) -> None:  # fmt: skip
        problem = limits.problem()
        if problem is not None:
            raise ValueError("HTTP limits: {}: {}".format(*problem))
        self.name = name
        self.limits = limits
        self._shared = _Shared(name, limits, metrics, app.get(ERROR_BODY, plain_error))
        self._body_limit = app.get(BODY_LIMIT)
        self._runner = web.AppRunner(app, access_log=None)
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The port listened on (the one the system chose, for port 0)."""
        assert self._server is not None and self._server.sockets, "not started"
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def open_connections(self) -> int:
        return self._shared.open

    async def start(self, host: str, port: int) -> None:
        await self._runner.setup()  # the application's startup signals run, the application freezes
        server = self._runner.server
        assert server is not None
        server.request_factory = _limited_requests(server.request_factory, self.limits.max_body_bytes)
        server.request_handler = _guarded(server.request_handler, self.limits, self._shared, self._body_limit)
        limits = self.limits
        loop = asyncio.get_running_loop()
        shared = self._shared
        kwargs: dict[str, Any] = {
            "loop": loop,
            # aiohttp's own keep-alive timer, armed at the accept and after each response, only as a backstop:
            # ours fire first (the idle deadline, or the head deadline which starts before it expires).
            "keepalive_timeout": limits.idle_timeout + limits.header_timeout,
            "max_line_size": limits.max_header_bytes,
            "max_field_size": limits.max_header_bytes,
            # RFC 9112 §9.6: after an answer that leaves a body unread (413, or a handler that ignored it), read and
            # discard it for a while before closing, so the client is not reset before it reads the answer.
            "lingering_time": limits.header_timeout,
            "access_log": None,
        }

        def protocol() -> _Connection:
            return _Connection(server, shared, **kwargs)

        try:
            self._server = await loop.create_server(protocol, host, port, backlog=128)
        except BaseException:
            await self._runner.cleanup()
            raise

    async def close(self) -> None:
        """Stop accepting, close the connections (requests in progress may finish), run the cleanup signals. Once;
        later calls do nothing."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        await self._runner.cleanup()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(server.wait_closed(), 5)


_RequestFactory = Callable[[RawRequestMessage, StreamReader, web.RequestHandler, AbstractStreamWriter,
                            "asyncio.Task[None]"], web.BaseRequest]  # fmt: skip


def _limited_requests(factory: _RequestFactory, max_body: int) -> _RequestFactory:
    """aiohttp's request factory, which it calls for each parsed head (or parse error) it starts to handle: the
    connection learns that its head is complete (the header deadline stops there), and the request carries the
    body limit (the application's own ``client_max_size`` is aiohttp's 1 MiB unless it was built with another).
    The clone is the one request object aiohttp handles, answers and finishes."""

    def make(message: RawRequestMessage, payload: StreamReader, protocol: web.RequestHandler,
             writer: AbstractStreamWriter, task: asyncio.Task[None]) -> web.BaseRequest:  # fmt: skip
        if isinstance(protocol, _Connection):
            protocol.head_complete()
        return factory(message, payload, protocol, writer, task).clone(client_max_size=max_body)

    return make


def _guarded(handler: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]], limits: HttpLimits,
             shared: _Shared, body_limit: BodyLimit | None = None,
             ) -> Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]:  # fmt: skip
    """The application's handler behind the head and body limits. A head that arrived whole in one read is only
    measured here (the connection counts the bytes of heads still arriving). A declared body length over the
    limit is refused before the handler (and before any 100 Continue), a body that grows past it while the
    handler reads it is refused then."""

    def refuse(reason: str, status: HTTPStatus, error: str) -> web.StreamResponse:
        shared.count(reason)
        resp = web.json_response(shared.error_body(status, error), status=status)
        # The connection closes after the answer; a body left unread is drained for at most lingering_time first
        # (RFC 9112 §9.6), so the client reads the answer rather than a reset.
        resp.force_close()
        return resp

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        # request line + CRLF, each field line + CRLF, the empty line
        head = (len(request.method) + len(request.raw_path) + 12
                + sum(len(name) + len(value) + 4 for name, value in request.raw_headers) + 2)  # fmt: skip
        if head > limits.max_header_bytes:
            # RFC 9110 §5.4: a set of fields larger than the server wishes to process MUST get a 4xx; 431 is
            # RFC 6585 §5's "Request Header Fields Too Large".
            return refuse("max_header_bytes", HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                          "request header fields too large")  # fmt: skip
        max_body = (body_limit(request) if body_limit is not None else None) or limits.max_body_bytes
        length = request.content_length
        # RFC 9110 §15.5.14: 413 Content Too Large; the server MAY close the connection.
        too_large = (HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"request body larger than {max_body} bytes")
        if length is not None and length > max_body:
            return refuse("max_body_bytes", *too_large)
        try:
            return await handler(request)
        except web.HTTPRequestEntityTooLarge:
            return refuse("max_body_bytes", *too_large)

    return handle
