"""Application dialects against real aiohttp servers on loopback: native JSON and Africa's Talking, signature,
failover to the backup URL, timeout, garbage replies."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.apps.client import AppClient, AppError
from gateway.apps.dialects import AppReply, AppRequest
from gateway.ops.outbound import sign
from gateway.routing.table import Route
from tests.support.http import serving

SECRET = "s3cret"


@pytest.fixture
async def servers() -> AsyncIterator[tuple[str, list[dict[str, object]]]]:
    seen: list[dict[str, object]] = []

    async def json_app(request: web.Request) -> web.Response:
        body = await request.read()
        ts = request.headers.get("X-USSD-Timestamp", "")
        seen.append({"signed": request.headers.get("X-USSD-Signature") == sign(SECRET, ts, body),
                     "body": json.loads(body)})
        data = json.loads(body)
        if data["input"] is None:
            return web.json_response({"action": "continue", "text": "1. Balance"})
        return web.json_response({"action": "end", "text": f"You chose {data['input']}"})

    async def at_app(request: web.Request) -> web.Response:
        form = await request.post()
        seen.append({"form": dict(form)})
        text = str(form["text"])
        if text == "":
            return web.Response(text="CON Welcome\n1. Balance", content_type="text/plain")
        return web.Response(text=f"END Balance for {form['phoneNumber']}: 12.50 ({text})", content_type="text/plain")

    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=503)

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.json_response({"action": "end", "text": "late"})

    async def garbage(request: web.Request) -> web.Response:
        return web.Response(text="<html>oops</html>")

    app = web.Application()
    app.router.add_post("/json", json_app)
    app.router.add_post("/at", at_app)
    app.router.add_post("/broken", broken)
    app.router.add_post("/slow", slow)
    app.router.add_post("/garbage", garbage)
    async with serving(app) as base:
        yield base, seen


def req(inputs: tuple[str, ...] = (), params: tuple[str, ...] = ()) -> AppRequest:
    return AppRequest("sess-1", "491720000001", "*123#", params, inputs, imsi="262011234567890", vlr="4917299")


async def test_json_dialect_signed(servers: tuple[str, list[dict[str, object]]]) -> None:
    base, seen = servers
    route = Route("r", "*123#", "prefix", f"{base}/json", secret=SECRET)
    async with aiohttp.ClientSession() as session:
        client = AppClient(session)
        assert await client.call(route, req()) == AppReply(False, "1. Balance")
        assert await client.call(route, req(("1",))) == AppReply(True, "You chose 1")
    assert all(s["signed"] for s in seen)
    first = seen[0]["body"]
    assert isinstance(first, dict)
    assert (first["sessionId"], first["msisdn"], first["imsi"], first["step"]) == ("sess-1", "491720000001",
                                                                                    "262011234567890", 0)


async def test_africastalking_dialect(servers: tuple[str, list[dict[str, object]]]) -> None:
    base, seen = servers
    route = Route("r", "*123#", "prefix", f"{base}/at", dialect="africastalking")
    async with aiohttp.ClientSession() as session:
        client = AppClient(session)
        assert await client.call(route, req()) == AppReply(False, "Welcome\n1. Balance")
        reply = await client.call(route, req(("1", "2"), params=("9",)))
    assert reply == AppReply(True, "Balance for +491720000001: 12.50 (9*1*2)")
    assert seen[0]["form"] == {"sessionId": "sess-1", "serviceCode": "*123#", "phoneNumber": "+491720000001",
                               "networkCode": "", "text": ""}


async def test_failover_timeout_and_garbage(servers: tuple[str, list[dict[str, object]]]) -> None:
    base, _ = servers
    async with aiohttp.ClientSession() as session:
        client = AppClient(session)
        failover = Route("r", "*1#", "prefix", f"{base}/broken", backup_url=f"{base}/json")
        assert (await client.call(failover, req())).text == "1. Balance"
        down = Route("r", "*1#", "prefix", "http://127.0.0.1:9/nothing", backup_url=f"{base}/json")
        assert (await client.call(down, req())).text == "1. Balance"
        with pytest.raises(AppError) as info:
            await client.call(Route("r", "*1#", "prefix", f"{base}/broken", backup_url=f"{base}/broken"), req())
        assert info.value.reason == "http-503"
        with pytest.raises(AppError) as info:
            await client.call(Route("r", "*1#", "prefix", f"{base}/slow", timeout=0.3), req())
        assert info.value.reason == "timeout"
        with pytest.raises(AppError) as info:
            await client.call(Route("r", "*1#", "prefix", f"{base}/garbage"), req())
        assert info.value.reason == "bad-reply"
        with pytest.raises(AppError) as info:
            await client.call(Route("r", "*1#", "prefix", "http://127.0.0.1:9/x"), req())
        assert info.value.reason == "down"


@settings(max_examples=300)
@given(msisdn=st.text(alphabet="0123456789", min_size=1, max_size=15),
       inputs=st.lists(st.text(max_size=30), max_size=5), code=st.sampled_from(["*123#", "*777#", "#100#"]))
def test_africastalking_form_is_what_a_form_parser_reads(msisdn: str, inputs: list[str], code: str) -> None:
    """The hand-rolled form encoding reads back, through the standard library's parser, as the fields it holds."""
    from urllib.parse import parse_qs

    from gateway.apps.dialects import encode_africastalking

    inputs = [x.replace("\x00", "") for x in inputs]
    body, ctype = encode_africastalking(AppRequest("00ab", msisdn, code, ("7",), tuple(inputs)))
    parsed = parse_qs(body.decode("ascii"), keep_blank_values=True, strict_parsing=True)
    assert ctype == "application/x-www-form-urlencoded"
    assert parsed == {"sessionId": ["00ab"], "serviceCode": [code], "phoneNumber": ["+" + msisdn],
                      "networkCode": [""], "text": ["*".join(("7", *inputs))]}


async def test_https_with_the_routes_own_ca(tmp_path: Path) -> None:
    """An https application with a certificate from the operator's own CA: trusted with the route's tls_ca_file,
    refused (down, so the backup is tried) without it."""
    import ssl
    import subprocess

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)  # fmt: skip

    async def menu(request: web.Request) -> web.Response:
        return web.json_response({"action": "end", "text": "over TLS"})

    app = web.Application()
    app.router.add_post("/app", menu)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    async with serving(app, context) as base, aiohttp.ClientSession() as session:
        url = f"{base}/app"
        client = AppClient(session)
        assert (await client.call(Route("r", "*1#", primary_url=url, tls_ca_file=str(cert)), req())).text == \
            "over TLS"  # fmt: skip
        with pytest.raises(AppError) as info:
            await client.call(Route("r", "*1#", primary_url=url), req())
        assert info.value.reason == "down"


def test_unreadable_ca_file_is_refused_at_load(tmp_path: Path) -> None:
    from gateway.routing.table import RouteConfigError, routes_from_config

    entry = {"name": "r", "code": "*1#", "primary_url": "https://x", "tls_ca_file": str(tmp_path / "none.pem")}
    with pytest.raises(RouteConfigError, match="tls_ca_file: cannot load"):
        routes_from_config({"route": [entry]})
