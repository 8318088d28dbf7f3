"""gateway/ops/http_listener.py: each limit of the HTTP listener, with real sockets on 127.0.0.1.

Every test configures short limits (fractions of a second) and checks both sides of each: a client that breaks a
limit is cut at it, not before, and a client that keeps to it is served.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from gateway.config.load import ConfigError, load
from gateway.ops.http_listener import HttpLimits, HttpListener
from gateway.ops.metrics import StackMetrics
from tests.support.aio import wait_for
from tests.support.daemon import default_config, running

SLACK = 0.5  # s: how late after its deadline a cut may come on a loaded test machine


async def hello(request: web.Request) -> web.Response:
    return web.Response(text="hello")


async def echo_length(request: web.Request) -> web.Response:
    return web.json_response({"received": len(await request.read())})


async def boom(request: web.Request) -> web.Response:
    raise RuntimeError("a fault in the handler")


def app() -> web.Application:
    application = web.Application()
    application.router.add_get("/metrics", hello)
    application.router.add_post("/echo", echo_length)
    application.router.add_get("/boom", boom)
    return application


@asynccontextmanager
async def listening(limits: HttpLimits) -> AsyncIterator[tuple[HttpListener, StackMetrics]]:
    metrics = StackMetrics()
    listener = HttpListener(app(), "test", limits, metrics)
    await listener.start("127.0.0.1", 0)
    try:
        yield listener, metrics
    finally:
        await listener.close()


def closed(metrics: StackMetrics, reason: str) -> float:
    value = metrics.registry.get_sample_value("ussd_http_connections_closed_total",
                                              {"listener": "test", "reason": reason})  # fmt: skip
    return value or 0.0


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length: status, headers (lower-case names), body."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, body


async def closes_after(reader: asyncio.StreamReader, limit: float, start: float | None = None) -> float:
    """Seconds from ``start`` (default: now) until the server closes the connection (what it sends is read and
    dropped); infinity when it is still open after ``limit``."""
    loop = asyncio.get_running_loop()
    start = loop.time() if start is None else start
    end = start + limit
    try:
        while loop.time() < end:
            if not await asyncio.wait_for(reader.read(65536), end - loop.time()):
                return loop.time() - start
    except ConnectionResetError:
        return loop.time() - start
    except TimeoutError:
        pass
    return math.inf


async def test_silent_connections_are_cut_at_the_header_timeout_while_requests_are_served() -> None:
    limits = HttpLimits(header_timeout=1.0, idle_timeout=30.0, max_connections=400)
    async with listening(limits) as (listener, metrics):
        waits = []
        loop = asyncio.get_running_loop()
        for _ in range(300):
            connecting = loop.time()  # before the server's accept, from which its deadline counts
            reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
            waits.append((asyncio.create_task(closes_after(reader, limits.header_timeout + 5, connecting)), writer))
        await wait_for(lambda: listener.open_connections == 300)
        # During the attack a normal scrape is served.
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{listener.port}/metrics") as resp:
            assert resp.status == 200 and await resp.text() == "hello"
        lasted = [await task for task, _ in waits]
        # Each silent connection was closed at its deadline, counted from its own accept: not before, not long after.
        assert limits.header_timeout <= min(lasted) <= max(lasted) <= limits.header_timeout + SLACK
        for _, writer in waits:
            writer.close()
        assert closed(metrics, "header_timeout") == 300
        await wait_for(lambda: listener.open_connections == 0)
        assert metrics.registry.get_sample_value("ussd_http_connections_open", {"listener": "test"}) == 0


async def test_a_client_trickling_one_byte_at_a_time_is_cut_at_the_deadline() -> None:
    limits = HttpLimits(header_timeout=1.0, idle_timeout=30.0)
    async with listening(limits) as (listener, metrics):
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        request = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 100

        async def trickle() -> None:
            for byte in request:  # one byte per 0.1 s: each one well inside any inactivity timer
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.1)

        sender = asyncio.create_task(trickle())
        loop = asyncio.get_running_loop()
        start = loop.time()
        status, headers, body = await asyncio.wait_for(read_response(reader), limits.header_timeout + 5)
        lasted = loop.time() - start
        # RFC 9110 §15.5.9: 408, and the connection closed.
        assert status == 408 and headers["connection"] == "close"
        assert headers["content-type"] == "application/json" and "error" in json.loads(body)
        assert limits.header_timeout - 0.05 <= lasted <= limits.header_timeout + SLACK
        assert await closes_after(reader, SLACK) <= SLACK
        sender.cancel()
        writer.close()
        assert closed(metrics, "header_timeout") == 1


async def test_keepalive_connection_idle_past_the_idle_timeout_is_closed() -> None:
    # The header timeout is shorter than the idle timeout: a pause between requests longer than it is fine, as
    # long as the next head, once started, arrives in time.
    limits = HttpLimits(header_timeout=0.3, idle_timeout=1.0)
    async with listening(limits) as (listener, metrics):
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        loop = asyncio.get_running_loop()
        for pause in (0.6, 0.0):
            writer.write(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert (await read_response(reader))[0] == 200
            await asyncio.sleep(pause)
        start = loop.time()
        lasted = await closes_after(reader, limits.idle_timeout + 5)
        assert limits.idle_timeout - 0.05 <= lasted <= limits.idle_timeout + SLACK, loop.time() - start
        writer.close()
        assert closed(metrics, "idle_timeout") == 1 and closed(metrics, "header_timeout") == 0


@pytest.mark.parametrize(
    ("head", "status"),
    [
        # One header field over the limit: aiohttp's per-line limit, answered through our JSON error.
        (b"GET /metrics HTTP/1.1\r\nHost: h\r\nX-Big: " + b"b" * 2000 + b"\r\n\r\n", 431),
        # Many small fields, together over the limit: the head total.
        (b"GET /metrics HTTP/1.1\r\nHost: h\r\n" + b"".join(b"X-F%d: %s\r\n" % (i, b"f" * 90) for i in range(20))
         + b"\r\n", 431),
        # The same, sent in pieces (the total is counted across reads).
        (b"pieces", 431),
        # The request line alone over the limit: RFC 9112 §3, 414.
        (b"GET /" + b"u" * 2000 + b" HTTP/1.1\r\nHost: h\r\n\r\n", 414),
        # Not HTTP: 400, in JSON too.
        (b"GET /metrics HTTP/1.1\r\nHost: h\r\nBad Header\r\n\r\n", 400),
    ],
)
async def test_oversize_heads_get_a_4xx_in_json(head: bytes, status: int) -> None:
    async with listening(HttpLimits(max_header_bytes=1024)) as (listener, metrics):
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        if head == b"pieces":
            # 33 + 11 * 97 bytes: the last piece passes 1024 (no more is sent, so the server's close is no reset).
            writer.write(b"GET /metrics HTTP/1.1\r\nHost: h\r\n")
            for i in range(11):
                await asyncio.sleep(0.01)
                writer.write(b"X-F%02d: %s\r\n" % (i, b"f" * 90))
                await writer.drain()
        else:
            writer.write(head)
        got, headers, body = await asyncio.wait_for(read_response(reader), 5)
        assert got == status and headers["content-type"].startswith("application/json")
        assert isinstance(json.loads(body)["error"], str)
        assert await closes_after(reader, SLACK + 2) >= 0
        writer.close()
        assert closed(metrics, "max_header_bytes" if status != 400 else "bad_request") == 1


async def test_a_head_within_the_limit_is_served_even_with_its_body_in_the_same_read() -> None:
    async with listening(HttpLimits(max_header_bytes=1024, max_body_bytes=10_000)) as (listener, metrics):
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        head = b"POST /echo HTTP/1.1\r\nHost: h\r\nX-Pad: " + b"p" * 800 + b"\r\nContent-Length: 8000\r\n\r\n"
        writer.write(head + b"x" * 8000)  # 9 KB in one write, the head well under 1 KiB
        status, _, body = await asyncio.wait_for(read_response(reader), 5)
        assert status == 200 and json.loads(body) == {"received": 8000}
        writer.close()
        assert closed(metrics, "max_header_bytes") == 0


async def test_oversize_bodies_get_413() -> None:
    async with listening(HttpLimits(max_body_bytes=1000)) as (listener, metrics):
        base = f"http://127.0.0.1:{listener.port}"
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{base}/echo", data=b"x" * 1000) as resp:
                assert resp.status == 200 and await resp.json() == {"received": 1000}

            async def chunks() -> AsyncIterator[bytes]:
                for _ in range(5):
                    yield b"y" * 1000

            # Chunked, no length declared: stopped when the handler's read passes the limit.
            async with http.post(f"{base}/echo", data=chunks()) as resp:
                assert resp.status == 413 and "error" in await resp.json()
        # A declared length over the limit: refused from the head alone, before any of the body is sent.
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        writer.write(b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5000\r\n\r\n")
        status, headers, body = await asyncio.wait_for(read_response(reader), 5)
        assert status == 413 and headers["connection"] == "close" and "1000" in json.loads(body)["error"]
        assert closed(metrics, "max_body_bytes") == 2
        # aiohttp drains the unread body (lingering) for up to header_timeout (10 s here); once the client has gone
        # the body will never come, and the listener's close does not wait for it.
        writer.close()
        await asyncio.wait_for(listener.close(), 2)


async def test_connections_beyond_the_cap_are_refused_until_one_closes() -> None:
    limits = HttpLimits(max_connections=3, header_timeout=30.0)
    async with listening(limits) as (listener, metrics):
        held = [await asyncio.open_connection("127.0.0.1", listener.port) for _ in range(3)]
        await wait_for(lambda: listener.open_connections == 3)
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: h\r\n\r\n")
        # Closed at once: no answer, well before any timeout.
        assert await closes_after(reader, 1.0) < 1.0
        writer.close()
        assert closed(metrics, "max_connections") == 1
        # The connections held are still served.
        held[0][1].write(b"GET /metrics HTTP/1.1\r\nHost: h\r\n\r\n")
        assert (await asyncio.wait_for(read_response(held[0][0]), 5))[0] == 200
        held[1][1].close()
        await wait_for(lambda: listener.open_connections == 2)
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: h\r\n\r\n")
        assert (await asyncio.wait_for(read_response(reader), 5))[0] == 200
        writer.close()
        for _, w in held:
            w.close()
        assert closed(metrics, "max_connections") == 1


def with_http(path: Path, **values: float) -> None:
    """Set keys of the [http] section of the configuration file at ``path``."""
    head, _, rest = path.read_text().partition("\n[http]")
    section, sep, tail = rest.partition("\n[")
    for key, value in values.items():
        section = "\n".join(f"{key} = {value}" if line.split(" ", 1)[0] == key else line
                             for line in section.split("\n"))  # fmt: skip
    path.write_text(head + "\n[http]" + section + sep + tail)


def test_http_limits_load_from_the_configuration(tmp_path: Path) -> None:
    path = default_config(tmp_path)
    assert load(path).http_limits == HttpLimits()
    with_http(path, idle_timeout=30, header_timeout=2.5, max_header_bytes=4096, max_body_bytes=1024,
              max_connections=64)
    assert load(path).http_limits == HttpLimits(30.0, 2.5, 4096, 1024, 64)
    path.write_text(path.read_text().replace("max_connections = 64", "max_connections = 0"))
    with pytest.raises(ConfigError) as info:
        load(path)
    assert info.value.key == "http.max_connections" and "positive" in info.value.reason


async def test_the_daemons_metrics_listener_cuts_a_silent_connection(tmp_path: Path) -> None:
    path = default_config(tmp_path)
    with_http(path, header_timeout=0.5)
    cfg = load(path)
    assert cfg.metrics_listen is not None
    async with running(cfg):
        host, port = cfg.metrics_listen
        reader, writer = await asyncio.open_connection(host, port)
        lasted = await closes_after(reader, 5)
        assert 0.45 <= lasted <= 0.5 + SLACK
        writer.close()
        async with aiohttp.ClientSession() as http, http.get(f"http://{host}:{port}/metrics") as resp:
            text = await resp.text()
        assert 'ussd_http_connections_closed_total{listener="metrics",reason="header_timeout"} 1.0' in text
        assert 'ussd_http_connections_open{listener="metrics"} 1.0' in text  # the scrape itself


async def test_a_failing_handler_gets_500_in_json_without_a_traceback() -> None:
    async with listening(HttpLimits()) as (listener, _), aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{listener.port}/boom") as resp:
            body = await resp.text()
        assert resp.status == 500 and json.loads(body) == {"error": "internal server error"}
        assert "Traceback" not in body and "RuntimeError" not in body
