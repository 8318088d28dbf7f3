"""A lean HTTP/1.1 client for the per-step application calls: keep-alive connection pools on asyncio protocols,
responses parsed by httptools (llhttp, the parser of Node.js: chunked, Content-Length and close-delimited
bodies). aiohttp's client costs about 150-200 µs of CPU per request here, most of a pull session's budget; this
one costs a fraction of that (bench/bench_http_client.py). Plain ``http://`` only: the application client uses
aiohttp for ``https://`` URLs and for everything that is not on the per-step hot path.

RFC 9112: one request at a time per connection (no pipelining); a connection is reused only after a complete
response without ``Connection: close``; a request that fails on a reused idle connection before any response
octet arrived is retried once on a new connection (the server may have closed it meanwhile, RFC 9112 §9.3.1).
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools

from gateway.ops.outbound import USER_AGENT

MAX_BODY = 65536  # a USSD reply is at most a few hundred octets; anything far beyond is refused, not buffered


class HttpError(Exception):
    """No usable response: ``kind`` is "connect" (refused/unreachable), "reset" (lost mid-exchange) or
    "protocol" (not HTTP/1.1)."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes


class _Conn(asyncio.Protocol):
    __slots__ = ("_body", "_done", "_head_done", "_headers", "_keep", "_parser", "_pool", "_size", "got_bytes",
                 "key", "transport")  # fmt: skip

    def __init__(self, pool: Http1Pool, key: tuple[str, int]) -> None:
        self._pool = pool
        self.key = key
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._done: asyncio.Future[Response] | None = None
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._keep = True
        self._head_done = False
        self._size = 0
        self.got_bytes = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(HttpError("protocol", str(exc)))

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._pool._forget(self)
        done = self._done
        if done is not None and not done.done():
            if self._head_done and "content-length" not in self._headers and "chunked" not in self._headers.get(
                "transfer-encoding", ""
            ):  # RFC 9112 §6.3 item 8: a close-delimited body ends with the connection
                self._keep = False
                done.set_result(Response(self._parser.get_status_code(), self._headers, b"".join(self._body)))
                return
            self._fail(HttpError("reset", str(exc) if exc else "connection closed by the server"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self._head_done = True

    def on_body(self, body: bytes) -> None:
        self._body.append(body)
        self._size += len(body)
        if self._size > MAX_BODY:
            self._fail(HttpError("protocol", f"response body over {MAX_BODY} octets"))

    def on_message_complete(self) -> None:
        done = self._done
        if done is None or done.done():
            return
        self._keep = self._parser.should_keep_alive()
        done.set_result(Response(self._parser.get_status_code(), self._headers, b"".join(self._body)))

    # the exchange
    def request(self, data: bytes) -> asyncio.Future[Response]:
        assert self.transport is not None
        self._done = asyncio.get_running_loop().create_future()
        self._headers = {}
        self._body = []
        self._size = 0
        self._head_done = False
        self.got_bytes = False
        self._parser = httptools.HttpResponseParser(self)
        self.transport.write(data)
        return self._done

    def _fail(self, exc: HttpError) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_exception(exc)
        self.close()

    def close(self) -> None:
        self._keep = False
        if self.transport is not None:
            self.transport.close()


def _target(url: str) -> tuple[str, int, str]:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"the lean client takes http:// URLs only, not {url!r}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    start = f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUser-Agent: {USER_AGENT}\r\n"
    return parts.hostname, parts.port or 80, start


class Http1Pool:
    """Keep-alive connections per (host, port), at most ``max_idle`` kept idle per peer."""

    def __init__(self, max_idle: int = 1024) -> None:
        self.max_idle = max_idle
        self._idle: dict[tuple[str, int], deque[_Conn]] = {}
        self._open: set[_Conn] = set()
        self._targets: dict[str, tuple[str, int, str]] = {}  # url -> (host, port, request line and fixed headers)

    async def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> Response:
        """POST ``body`` to ``url`` (http:// only). Raises :class:`HttpError`, or TimeoutError after ``timeout``."""
        target = self._targets.get(url)
        if target is None:
            target = self._targets[url] = _target(url)
        host, port, start = target
        head = [start, f"Content-Length: {len(body)}\r\n"]
        head.extend(f"{name}: {value}\r\n" for name, value in headers.items())
        data = "".join(head).encode("latin-1") + b"\r\n" + body
        async with asyncio.timeout(timeout):
            conn, reused = await self._acquire((host, port))
            try:
                response = await self._exchange(conn, data)
            except HttpError as exc:
                if not (reused and exc.kind == "reset" and not conn.got_bytes):
                    raise
                conn, _ = await self._acquire((host, port), fresh=True)  # a stale keep-alive connection: once more
                response = await self._exchange(conn, data)
        self._release(conn)
        return response

    @staticmethod
    async def _exchange(conn: _Conn, data: bytes) -> Response:
        try:
            return await conn.request(data)
        except BaseException:
            conn.close()  # failed, timed out or cancelled mid-exchange: the connection's state is unknown
            raise

    async def _acquire(self, key: tuple[str, int], fresh: bool = False) -> tuple[_Conn, bool]:
        idle = self._idle.get(key)
        while idle and not fresh:
            conn = idle.pop()
            if conn.transport is not None and not conn.transport.is_closing():
                return conn, True
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(lambda: _Conn(self, key), key[0], key[1])
        except OSError as exc:
            raise HttpError("connect", f"{key[0]}:{key[1]}: {exc.strerror or exc}") from None
        self._open.add(conn)
        return conn, False

    def _release(self, conn: _Conn) -> None:
        if not conn._keep or conn.transport is None or conn.transport.is_closing():
            conn.close()
            return
        idle = self._idle.setdefault(conn.key, deque())
        if len(idle) >= self.max_idle:
            conn.close()
            return
        idle.append(conn)

    def _forget(self, conn: _Conn) -> None:
        self._open.discard(conn)
        idle = self._idle.get(conn.key)
        if idle is not None and conn in idle:
            idle.remove(conn)

    def close(self) -> None:
        for conn in list(self._open):
            conn.close()
        self._idle.clear()
