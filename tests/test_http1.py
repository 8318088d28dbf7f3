"""The lean HTTP/1.1 client (gateway/apps/http1.py) against real servers on loopback: an aiohttp server, and raw
asyncio servers for what aiohttp would not send (close-delimited bodies, garbage, dropped idle connections)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.apps.http1 import Http1Pool, HttpError
from tests.support.http import serving
from tests.support.osmo_stp import free_port


@pytest.fixture
async def aio_server() -> AsyncIterator[tuple[str, list[object]]]:
    peers: list[object] = []

    async def echo(request: web.Request) -> web.Response:
        peers.append(request.transport.get_extra_info("peername") if request.transport else None)
        body = await request.read()
        return web.Response(body=b"got:" + body, headers={"X-Sig": request.headers.get("X-Sig", "")})

    async def chunked(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for part in (b"CON ", b"one\n", b"two"):
            await resp.write(part)
        await resp.write_eof()
        return resp

    async def closing(request: web.Request) -> web.Response:
        return web.Response(text="END bye", headers={"Connection": "close"})

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1)
        return web.Response(text="late")

    app = web.Application()
    for path, handler in (("/echo", echo), ("/chunked", chunked), ("/close", closing), ("/slow", slow)):
        app.router.add_post(path, handler)
    async with serving(app) as base:
        yield base, peers


async def test_keep_alive_reuses_one_connection(aio_server: tuple[str, list[object]]) -> None:
    base, peers = aio_server
    pool = Http1Pool()
    for i in range(5):
        r = await pool.post(f"{base}/echo", f"n={i}".encode(), {"X-Sig": "abc"}, 5)
        assert (r.status, r.body, r.headers["x-sig"]) == (200, f"got:n={i}".encode(), "abc")
    assert len(set(map(str, peers))) == 1  # one TCP connection for all five
    pool.close()


async def test_chunked_and_connection_close(aio_server: tuple[str, list[object]]) -> None:
    base, _ = aio_server
    pool = Http1Pool()
    assert (await pool.post(f"{base}/chunked", b"", {}, 5)).body == b"CON one\ntwo"
    r = await pool.post(f"{base}/close", b"", {}, 5)
    assert r.body == b"END bye"
    await asyncio.sleep(0.05)
    assert not pool._idle.get(("127.0.0.1", int(base.rsplit(":", 1)[1])))  # not kept: the server closes it
    assert (await pool.post(f"{base}/echo", b"x", {}, 5)).body == b"got:x"
    pool.close()


async def test_timeout_refused_and_concurrency(aio_server: tuple[str, list[object]]) -> None:
    base, _ = aio_server
    pool = Http1Pool()
    with pytest.raises(TimeoutError):
        await pool.post(f"{base}/slow", b"", {}, 0.2)
    with pytest.raises(HttpError) as info:
        await pool.post(f"http://127.0.0.1:{free_port()}/x", b"", {}, 2)
    assert info.value.kind == "connect"
    replies = await asyncio.gather(*(pool.post(f"{base}/echo", str(i).encode(), {}, 5) for i in range(50)))
    assert [r.body for r in replies] == [f"got:{i}".encode() for i in range(50)]
    pool.close()


async def raw_server(handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]) -> tuple[
        asyncio.Server, str]:  # fmt: skip
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/x"


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = int(next(line.split(b":")[1] for line in lines if line.lower().startswith(b"content-length")))
    return await reader.readexactly(length)


async def test_close_delimited_body_and_garbage() -> None:
    async def close_delimited(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nEND until close")
        await writer.drain()
        writer.close()

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await writer.drain()

    pool = Http1Pool()
    server, url = await raw_server(close_delimited)
    r = await pool.post(url, b"a", {}, 5)
    assert (r.status, r.body) == (200, b"END until close")
    server.close()
    server, url = await raw_server(garbage)
    with pytest.raises(HttpError) as info:
        await pool.post(url, b"a", {}, 5)
    assert info.value.kind == "protocol"
    server.close()

    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n")
        for _ in range(100):
            writer.write(b"x" * 4096)
            await writer.drain()

    server, url = await raw_server(endless)
    with pytest.raises(HttpError, match="over 65536"):
        await pool.post(url, b"a", {}, 5)
    server.close()
    pool.close()


async def test_idle_connection_dropped_by_the_server_is_retried_once() -> None:
    served = 0

    async def one_per_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        await _read_request(reader)
        served += 1
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")  # says keep-alive, then drops it
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.close()

    server, url = await raw_server(one_per_connection)
    pool = Http1Pool()
    assert (await pool.post(url, b"1", {}, 5)).body == b"ok"
    await asyncio.sleep(0.2)  # the server has closed the idle connection
    assert (await pool.post(url, b"2", {}, 5)).body == b"ok"
    assert served == 2
    server.close()
    pool.close()


@settings(max_examples=30, deadline=None)
@given(body=st.binary(max_size=5000), chunk=st.integers(min_value=1, max_value=700))
def test_any_body_any_segmentation(body: bytes, chunk: int) -> None:
    """Whatever the body and however the server's writes are cut, the client gets the body back whole."""

    async def main() -> bytes:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await _read_request(reader)
            data = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body
            for i in range(0, len(data), chunk):
                writer.write(data[i : i + chunk])
                await writer.drain()
            writer.close()

        server, url = await raw_server(serve)
        pool = Http1Pool()
        try:
            return (await pool.post(url, b"q", {}, 5)).body
        finally:
            pool.close()
            server.close()

    assert asyncio.run(main()) == body
