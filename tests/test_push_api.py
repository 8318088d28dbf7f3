"""The push API (gateway/push/api.py) served for real: an HttpListener on 127.0.0.1, a real store (SQLite in a
temporary file; PostgreSQL from tests/support/postgres.py for the main flow and idempotency), an aiohttp client.

Every answer to a documented path is checked against docs/openapi-push.yaml by openapi-core as it arrives
(:meth:`Api.call`), and :func:`test_the_live_server_conforms_to_the_openapi_document` meets each documented
(operation, status) at least once: the document and the live server cannot drift apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import structlog
import yaml
from aiohttp import ClientSession
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from gateway.config.load import ConfigError
from gateway.config.load import load as load_config
from gateway.ops import logs
from gateway.ops.http_listener import HttpLimits, HttpListener
from gateway.push import tokens
from gateway.push.api import METADATA_MAX_BYTES, ApiSettings, make_app
from gateway.push.backends import open_store
from gateway.push.model import State
from gateway.push.store import PushStore
from gateway.push.store_postgres import PostgresStore
from gateway.push.store_sqlite import SqliteStore

ROOT = Path(__file__).resolve().parents[1]
SPEC_PATH = ROOT / "docs" / "openapi-push.yaml"
OPENAPI = OpenAPI.from_file_path(str(SPEC_PATH))
SPEC = yaml.safe_load(SPEC_PATH.read_text())
# Each documented path as a pattern (its {id} any one segment): which template an answer was to.
TEMPLATES = {path: re.compile(re.escape(path).replace(re.escape("{id}"), "[^/]+")) for path in SPEC["paths"]}
T0 = 1_800_000_000.0
MAX_BODY = 16_384
MSISDN = "491700000001"

TOKEN_CACHE_S = ApiSettings().token_cache_s  # how long the API trusts a token it looked up


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any


@dataclass
class Api:
    store: PushStore
    base: str
    session: ClientSession
    clock: Clock
    created: list[int] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)
    met: set[tuple[str, str, int]] = field(default_factory=set)  # (method, path template, status) checked

    async def token(self, name: str, *scopes: str, prefix: str = "", rate: float | None = None) -> str:
        token = tokens.generate()
        await self.store.token_create(name, tokens.token_hash(token), scopes, prefix, rate, T0)
        self.tokens[name] = token
        return token

    async def call(self, method: str, path: str, *, token: str | None = "rw", body: Any = None,
                   data: bytes | None = None, headers: dict[str, str] | None = None,
                   check: bool = True) -> Answer:  # fmt: skip
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {self.tokens.get(token, token)}"
        if body is not None:
            data = json.dumps(body).encode()
            sent.setdefault("Content-Type", "application/json")
        async with self.session.request(method, self.base + path, data=data, headers=sent) as resp:
            raw = await resp.read()
            answer = Answer(resp.status, dict(resp.headers), json.loads(raw) if raw else None)
        assert answer.headers.get("Content-Type", "").startswith("application/json"), answer
        if answer.status >= 400:  # the contract's error shape, whatever the error
            assert set(answer.body) == {"error"} and set(answer.body["error"]) == {"code", "message", "field"}
        if check:
            plain, _, query = path.partition("?")
            args = dict(p.split("=", 1) for p in query.split("&")) if query else None
            # The document's server stands for this one (another port): the path and method pick the operation.
            request = MockRequest(SPEC["servers"][0]["url"], method.lower(), plain, args=args, headers=sent,
                                  data=data)  # fmt: skip
            OPENAPI.validate_response(request, MockResponse(raw, answer.status, headers=answer.headers,
                                                            content_type=answer.headers["Content-Type"]))
            template = next(t for t, pattern in TEMPLATES.items() if pattern.fullmatch(plain))
            self.met.add((method.lower(), template, answer.status))
        return answer

    async def push(self, **fields: Any) -> dict[str, Any]:
        answer = await self.call("POST", "/v1/pushes", body={"msisdn": MSISDN, "text": "Hello", **fields})
        assert answer.status == 202, answer
        return dict(answer.body)


@contextlib.asynccontextmanager
async def serve(store: PushStore, **settings: Any) -> AsyncIterator[Api]:
    """The API over ``store`` on a free port of 127.0.0.1, with a token "rw" (both scopes); closes the store.
    ``settings``: ApiSettings fields beyond the test defaults."""
    clock = Clock()
    api_box: list[Api] = []
    app = make_app(store, on_created=lambda: api_box[0].created.append(1), routes=lambda name: name == "quiz",
                   settings=ApiSettings(**{"default_ttl_s": 3600, "max_ttl_s": 86_400, "retention_s": 7 * 86_400,
                                           "clock": clock, **settings}))  # fmt: skip
    listener = HttpListener(app, "push_api", HttpLimits(max_body_bytes=MAX_BODY))
    try:
        await listener.start("127.0.0.1", 0)
        async with ClientSession() as session:
            api = Api(store, f"http://127.0.0.1:{listener.port}", session, clock)
            api_box.append(api)
            await api.token("rw", "push:write", "push:read")
            yield api
    finally:
        await listener.close()
        await store.close()


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    """On SQLite."""
    async with serve(await SqliteStore.open(tmp_path / "push.db")) as served:
        yield served


@pytest.fixture(params=["sqlite", "postgresql"])
async def any_api(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Api]:
    """On both backends."""
    if request.param == "sqlite":
        store: PushStore = await SqliteStore.open(tmp_path / "push.db")
    else:
        store = await PostgresStore.open(request.getfixturevalue("postgres_server").new_database())
    async with serve(store) as served:
        yield served


# --- the main flow ---


async def test_create_get_list_cancel(any_api: Api) -> None:
    api = any_api
    created = await api.call("POST", "/v1/pushes", body={
        "msisdn": MSISDN, "text": "Your code is 1234", "mode": "request", "route": "quiz", "priority": 5,
        "callback_url": "https://shop.example/cb", "metadata": {"order": 7}, "ttl_s": 600})  # fmt: skip
    assert created.status == 202 and api.created == [1]
    push = created.body
    assert created.headers["Location"] == f"/v1/pushes/{push['id']}"
    assert "Idempotent-Replayed" not in created.headers
    assert push["state"] == "queued" and push["mode"] == "request" and push["route"] == "quiz"
    assert push["metadata"] == {"order": 7} and push["priority"] == 5 and push["attempts"] == 0
    assert push["created_at"] == "2027-01-15T08:00:00.000Z" and push["expires_at"] == "2027-01-15T08:10:00.000Z"
    assert push["history"] == [{"state": "queued", "time": "2027-01-15T08:00:00.000Z", "detail": "created"}]
    got = await api.call("GET", f"/v1/pushes/{push['id']}")
    assert got.status == 200 and got.body == push
    listed = await api.call("GET", f"/v1/pushes?msisdn={MSISDN}&state=queued")
    assert listed.status == 200 and listed.body == {"items": [push], "next_cursor": None}
    api.clock.now += 1
    cancelled = await api.call("DELETE", f"/v1/pushes/{push['id']}")
    assert cancelled.status == 200 and cancelled.body["state"] == "cancelled"
    assert [h["state"] for h in cancelled.body["history"]] == ["queued", "cancelled"]
    assert (await api.call("GET", "/v1/pushes?state=queued")).body["items"] == []


async def test_notify_defaults(api: Api) -> None:
    push = await api.push()
    assert push["mode"] == "notify" and "route" not in push and "callback_url" not in push
    assert push["expires_at"] == "2027-01-15T09:00:00.000Z"  # default_ttl_s
    stored = await api.store.get(push["id"])
    assert stored.dcs == 0x0F and stored.token == "rw"
    ucs2 = await api.push(text="Привет")
    assert (await api.store.get(ucs2["id"])).dcs == 0x48  # the DCS the text needs, kept for the service
    at = await api.push(expires_at="2027-01-15T11:00:00+02:00")
    assert at["expires_at"] == "2027-01-15T09:00:00.000Z"


# --- idempotency ---


async def test_idempotent_replay(any_api: Api) -> None:
    api = any_api
    key = {"Idempotency-Key": "order-7"}
    first = await api.call("POST", "/v1/pushes", body={"msisdn": MSISDN, "text": "Hi", "ttl_s": 60}, headers=key)
    # The same body, keys in another order and other white space: the same request.
    again = await api.call("POST", "/v1/pushes", data=b'{ "ttl_s": 60,  "text": "Hi", "msisdn": "491700000001" }',
                           headers={**key, "Content-Type": "application/json"})  # fmt: skip
    assert first.status == again.status == 202
    assert again.headers["Idempotent-Replayed"] == "true" and again.body == first.body
    assert again.headers["Location"] == first.headers["Location"]
    assert api.created == [1]  # the service is woken for the first only
    assert len((await api.call("GET", "/v1/pushes")).body["items"]) == 1
    reused = await api.call("POST", "/v1/pushes", body={"msisdn": MSISDN, "text": "Other"}, headers=key)
    assert reused.status == 422 and reused.body["error"]["field"] == "Idempotency-Key"
    # Keys are per token: another token's same key is another request.
    await api.token("other", "push:write")
    other = await api.call("POST", "/v1/pushes", token="other", body={"msisdn": MSISDN, "text": "Hi", "ttl_s": 60},
                           headers=key)  # fmt: skip
    assert other.status == 202 and other.body["id"] != first.body["id"]


async def test_concurrent_duplicate_is_409_on_postgresql(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    dsn = request.getfixturevalue("postgres_server").new_database()
    async with serve(await PostgresStore.open(dsn)) as api:
        # Another node's first request with the key, not committed yet.
        conn = await asyncpg.connect(dsn)
        try:
            txn = conn.transaction()
            await txn.start()
            await conn.execute("INSERT INTO idempotency_keys VALUES ('rw', 'k-1', 'h', 'p_first', $1)", T0)
            answer = await api.call("POST", "/v1/pushes", body={"msisdn": MSISDN, "text": "Hi"},
                                    headers={"Idempotency-Key": "k-1"})  # fmt: skip
            await txn.rollback()
        finally:
            await conn.close()
        assert answer.status == 409 and answer.body["error"]["code"] == "idempotency_in_flight"
        assert answer.body["error"]["field"] == "Idempotency-Key" and api.created == []
        # Once the first gave up, the key is free.
        assert (await api.call("POST", "/v1/pushes", body={"msisdn": MSISDN, "text": "Hi"},
                               headers={"Idempotency-Key": "k-1"})).status == 202  # fmt: skip


async def test_a_key_past_the_retention_window_is_refused(api: Api) -> None:
    key = {"Idempotency-Key": "old"}
    await api.call("POST", "/v1/pushes", body={"msisdn": MSISDN, "text": "Hi"}, headers=key)
    api.clock.now += 8 * 86_400
    late = await api.call("POST", "/v1/pushes", body={"msisdn": MSISDN, "text": "Hi"}, headers=key)
    assert late.status == 422 and late.body["error"]["field"] == "Idempotency-Key" and api.created == [1]


async def test_a_malformed_idempotency_key_is_422(api: Api) -> None:
    answer = await api.call("POST", "/v1/pushes", body={"msisdn": MSISDN, "text": "Hi"},
                            headers={"Idempotency-Key": "x" * 256})  # fmt: skip
    assert answer.status == 422 and answer.body["error"]["field"] == "Idempotency-Key"


# --- authentication and authorization ---


async def test_no_token_is_401_with_a_challenge(api: Api) -> None:
    for method, path in (("POST", "/v1/pushes"), ("GET", "/v1/pushes"), ("GET", "/v1/pushes/p_x"),
                         ("DELETE", "/v1/pushes/p_x")):  # fmt: skip
        answer = await api.call(method, path, token=None, body={"msisdn": MSISDN, "text": "x"})
        assert answer.status == 401 and answer.headers["WWW-Authenticate"] == 'Bearer realm="push"'
        assert answer.body["error"]["code"] == "unauthorized" and answer.body["error"]["field"] is None
    basic = await api.call("GET", "/v1/pushes", token=None, headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert basic.status == 401


async def test_a_bad_token_is_401_invalid_token(api: Api) -> None:
    answer = await api.call("GET", "/v1/pushes", token="ussd_not-a-token")
    assert answer.status == 401 and 'error="invalid_token"' in answer.headers["WWW-Authenticate"]


async def test_a_revoked_token_is_401_within_the_token_cache_time(api: Api) -> None:
    assert (await api.call("GET", "/v1/pushes")).status == 200
    assert await api.store.token_revoke("rw", T0 + 1)
    # The API trusts a token it looked up for token_cache_s (5 s by default): the revocation takes effect then.
    api.clock.now += TOKEN_CACHE_S - 0.1
    assert (await api.call("GET", "/v1/pushes")).status == 200
    api.clock.now += 0.1
    answer = await api.call("GET", "/v1/pushes")
    assert answer.status == 401 and 'error="invalid_token"' in answer.headers["WWW-Authenticate"]


async def test_scopes_are_403(api: Api) -> None:
    await api.token("reader", "push:read")
    await api.token("writer", "push:write")
    push = await api.push()
    refused = await api.call("POST", "/v1/pushes", token="reader", body={"msisdn": MSISDN, "text": "x"})
    assert refused.status == 403 and 'scope="push:write"' in refused.headers["WWW-Authenticate"]
    assert (await api.call("DELETE", f"/v1/pushes/{push['id']}", token="reader")).status == 403
    assert (await api.call("GET", f"/v1/pushes/{push['id']}", token="writer")).status == 403
    assert (await api.call("GET", "/v1/pushes", token="writer")).status == 403
    assert (await api.call("GET", f"/v1/pushes/{push['id']}", token="reader")).status == 200


async def test_the_msisdn_prefix_is_403_and_hides_other_pushes(api: Api) -> None:
    await api.token("de", "push:write", "push:read", prefix="49170")
    other = await api.push(msisdn="447700900001")
    refused = await api.call("POST", "/v1/pushes", token="de", body={"msisdn": "447700900002", "text": "x"})
    assert refused.status == 403 and refused.body["error"]["field"] == "msisdn"
    mine = await api.call("POST", "/v1/pushes", token="de", body={"msisdn": "491700000009", "text": "x"})
    assert mine.status == 202
    assert (await api.call("GET", f"/v1/pushes/{other['id']}", token="de")).status == 404
    assert (await api.call("DELETE", f"/v1/pushes/{other['id']}", token="de")).status == 404
    listed = await api.call("GET", "/v1/pushes", token="de")
    assert [p["id"] for p in listed.body["items"]] == [mine.body["id"]]


async def test_the_rate_is_429_with_retry_after(api: Api) -> None:
    await api.token("slow", "push:write", rate=0.5)  # one push every two seconds, a burst of one
    body = {"msisdn": MSISDN, "text": "x"}
    assert (await api.call("POST", "/v1/pushes", token="slow", body=body)).status == 202
    api.clock.now += 0.5
    limited = await api.call("POST", "/v1/pushes", token="slow", body=body)
    assert limited.status == 429 and limited.headers["Retry-After"] == "2"
    assert limited.body["error"]["code"] == "rate_limited"
    api.clock.now += 1.5
    assert (await api.call("POST", "/v1/pushes", token="slow", body=body)).status == 202
    assert (await api.call("POST", "/v1/pushes", body=body)).status == 202  # another token: its own bucket


# --- the body ---


async def test_a_body_over_the_limit_is_413(api: Api) -> None:
    answer = await api.call("POST", "/v1/pushes", data=b"{" + b" " * MAX_BODY + b"}",
                            headers={"Content-Type": "application/json"})  # fmt: skip
    assert answer.status == 413 and answer.body["error"]["code"] == "body_too_large"


async def test_unparsable_json_is_400(api: Api) -> None:
    for data in (b"{", b"", b'{"msisdn": NaN}', b"\xff"):
        answer = await api.call("POST", "/v1/pushes", data=data, headers={"Content-Type": "application/json"})
        assert answer.status == 400 and answer.body["error"]["code"] == "bad_json", data


LONG_GSM7 = "x" * 183
INVALID: list[tuple[Any, str | None, str]] = [
    ([1, 2], None, "JSON object"),
    ({"text": "x"}, "msisdn", "required"),
    ({"msisdn": MSISDN}, "text", "required"),
    ({"msisdn": "+491700000001", "text": "x"}, "msisdn", ""),
    ({"msisdn": "0491700000001", "text": "x"}, "msisdn", ""),
    ({"msisdn": "4917000000012345", "text": "x"}, "msisdn", ""),  # 16 digits
    ({"msisdn": 491700000001, "text": "x"}, "msisdn", "str"),
    ({"msisdn": MSISDN, "text": ""}, "text", ""),
    ({"msisdn": MSISDN, "text": LONG_GSM7}, "text", "at most 182"),
    ({"msisdn": MSISDN, "text": "ж" * 81}, "text", "at most 80"),
    ({"msisdn": MSISDN, "text": "x", "mode": "shout"}, "mode", ""),
    ({"msisdn": MSISDN, "text": "x", "mode": "request"}, "route", "required"),
    ({"msisdn": MSISDN, "text": "x", "mode": "request", "route": "nope"}, "route", "no route"),
    ({"msisdn": MSISDN, "text": "x", "route": "quiz"}, "route", "request"),
    ({"msisdn": MSISDN, "text": "x", "callback_url": "ftp://x/y"}, "callback_url", "http"),
    ({"msisdn": MSISDN, "text": "x", "callback_url": "/relative"}, "callback_url", "http"),
    ({"msisdn": MSISDN, "text": "x", "ttl_s": 0}, "ttl_s", ""),
    ({"msisdn": MSISDN, "text": "x", "ttl_s": 86_401}, "ttl_s", "max_ttl_s"),
    ({"msisdn": MSISDN, "text": "x", "ttl_s": "60"}, "ttl_s", ""),
    ({"msisdn": MSISDN, "text": "x", "expires_at": "2027-01-15T09:00:00"}, "expires_at", "timezone"),
    ({"msisdn": MSISDN, "text": "x", "expires_at": "tomorrow"}, "expires_at", "RFC3339"),
    ({"msisdn": MSISDN, "text": "x", "expires_at": "2020-01-01T00:00:00Z"}, "expires_at", "past"),
    ({"msisdn": MSISDN, "text": "x", "expires_at": "2030-01-01T00:00:00Z"}, "expires_at", "max_ttl_s"),
    ({"msisdn": MSISDN, "text": "x", "ttl_s": 60, "expires_at": "2027-01-15T09:00:00Z"}, "expires_at", "not both"),
    ({"msisdn": MSISDN, "text": "x", "dcs": 256}, "dcs", ""),
    ({"msisdn": MSISDN, "text": "x", "dcs": 0x60}, "dcs", "compression"),
    ({"msisdn": MSISDN, "text": "x", "dcs": 0x10}, "language", "language"),
    ({"msisdn": MSISDN, "text": "ж", "dcs": 0x44}, "text", "8-bit"),
    ({"msisdn": MSISDN, "text": "x", "language": "deu"}, "language", ""),
    ({"msisdn": MSISDN, "text": "x", "priority": 101}, "priority", ""),
    ({"msisdn": MSISDN, "text": "x", "priority": 1.5}, "priority", ""),
    ({"msisdn": MSISDN, "text": "x", "metadata": [1]}, "metadata", ""),
    ({"msisdn": MSISDN, "text": "x", "metadata": {"k": "v" * METADATA_MAX_BYTES}}, "metadata", "4096"),
    ({"msisdn": MSISDN, "text": "x", "campaign": "c1"}, "campaign", "unknown field"),
]


@pytest.mark.parametrize(("body", "field", "says"), INVALID, ids=[f"{f}-{i}" for i, (_, f, _) in enumerate(INVALID)])
async def test_an_invalid_field_is_422_naming_it(api: Api, body: Any, field: str | None, says: str) -> None:
    answer = await api.call("POST", "/v1/pushes", body=body)
    assert answer.status == 422, answer
    error = answer.body["error"]
    assert error["code"] == "invalid_field" and error["field"] == field and says in error["message"], error
    assert api.created == []


async def test_texts_that_just_fit_are_accepted(api: Api) -> None:
    await api.push(text="x" * 182)
    await api.push(text="ж" * 80)
    await api.push(text="Grüße", dcs=0x10, language="de")
    await api.push(metadata={"k": "v" * (METADATA_MAX_BYTES - 10)})


# --- reading ---


async def test_an_unknown_id_is_404(api: Api) -> None:
    for method in ("GET", "DELETE"):
        answer = await api.call(method, "/v1/pushes/p_0000")
        assert answer.status == 404 and answer.body["error"]["code"] == "not_found"


async def test_pagination_across_pages(api: Api) -> None:
    ids = []
    for i in range(5):
        api.clock.now = T0 + i
        ids.append((await api.push(msisdn=f"49170000000{i}"))["id"])
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        path = "/v1/pushes?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = (await api.call("GET", path)).body
        pages += 1
        seen += [p["id"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1] and pages == 3


async def test_bad_list_parameters_are_422(api: Api) -> None:
    for query, name in (("state=lost", "state"), ("limit=0", "limit"), ("limit=201", "limit"), ("limit=x", "limit"),
                        ("msisdn=%2B49", "msisdn"), ("cursor=bm9wZQ", "cursor"), ("sort=asc", "sort")):  # fmt: skip
        answer = await api.call("GET", f"/v1/pushes?{query}", check=name != "sort")
        assert answer.status == 422 and answer.body["error"]["field"] == name, query


# --- cancelling ---


async def test_cancelling_a_sent_push_is_409(api: Api) -> None:
    push = await api.push()
    for state in (State.ROUTING, State.SENT):
        await api.store.transition(push["id"], state, detail="test", now=T0 + 1)
    answer = await api.call("DELETE", f"/v1/pushes/{push['id']}")
    assert answer.status == 409 and answer.body["error"]["code"] == "not_cancellable"
    assert (await api.call("GET", f"/v1/pushes/{push['id']}")).body["state"] == "sent"


async def test_a_push_in_retry_wait_can_be_cancelled(api: Api) -> None:
    push = await api.push()
    for state in (State.ROUTING, State.RETRY_WAIT):
        await api.store.transition(push["id"], state, detail="test", now=T0 + 1)
    assert (await api.call("DELETE", f"/v1/pushes/{push['id']}")).body["state"] == "cancelled"


# --- the rest of HTTP ---


async def test_unknown_paths_and_methods_answer_the_error_shape(api: Api) -> None:
    assert (await api.call("GET", "/v2/anything", check=False)).status == 404
    answer = await api.call("PUT", "/v1/pushes", check=False)
    assert answer.status == 405 and set(answer.headers["Allow"].split(",")) == {"GET", "POST"}


async def test_an_internal_error_is_500_json_without_a_traceback(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(hash: str) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(api.store, "token_by_hash", broken)
    answer = await api.call("GET", "/v1/pushes", check=False)
    assert answer.status == 500 and answer.body["error"]["message"] == "internal error"
    assert "Traceback" not in json.dumps(answer.body)


async def test_the_token_never_appears_in_the_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    stream = io.StringIO()
    logs.configure("debug", stream)  # before the application binds its logger
    caplog.set_level(logging.DEBUG)  # aiohttp's and asyncio's own loggers
    try:
        async with serve(await SqliteStore.open(tmp_path / "push.db")) as api:
            await api.token("reader", "push:read")
            secret = api.tokens["rw"]
            await api.push()
            await api.call("POST", "/v1/pushes", token="reader", body={"msisdn": MSISDN, "text": "x"})  # 403
            await api.call("GET", "/v1/pushes", token=secret + "x")  # 401, a near miss
            await api.call("POST", "/v1/pushes", data=b"{", headers={"Content-Type": "application/json"})  # 400

            async def broken(hash: str) -> None:
                raise RuntimeError("database went away")

            monkeypatch.setattr(api.store, "token_by_hash", broken)
            api.clock.now += TOKEN_CACHE_S  # the token is looked up again
            await api.call("GET", "/v1/pushes", check=False)  # 500, its traceback logged
            monkeypatch.undo()
            await api.store.token_revoke("rw", T0)
            api.clock.now += TOKEN_CACHE_S
            await api.call("GET", "/v1/pushes")  # 401, revoked
    finally:
        structlog.reset_defaults()
    lines = stream.getvalue().splitlines() + [r.getMessage() for r in caplog.records]
    assert any("push.created" in line for line in lines) and any("push.api.error" in line for line in lines)
    assert any('"token": "rw"' in line for line in lines)  # the token's name is what is logged
    for token in api.tokens.values():
        assert not [line for line in lines if token in line or token[len(tokens.PREFIX):] in line]


async def test_the_live_server_conforms_to_the_openapi_document(request: pytest.FixtureRequest) -> None:
    """Every documented answer of every operation, from the live server on PostgreSQL (the only backend with a
    request in flight to answer 409 for), each validated by openapi-core in :meth:`Api.call`."""
    dsn = request.getfixturevalue("postgres_server").new_database()
    async with serve(await PostgresStore.open(dsn)) as api:
        await api.token("reader", "push:read")
        await api.token("slow", "push:write", rate=1)
        body = {"msisdn": MSISDN, "text": "Hi", "mode": "request", "route": "quiz", "callback_url": "http://a/b"}
        push = (await api.call("POST", "/v1/pushes", body=body, headers={"Idempotency-Key": "a"})).body
        await api.call("POST", "/v1/pushes", body=body, headers={"Idempotency-Key": "a"})  # replayed
        sent = await api.push(msisdn="491700000002")
        for state in (State.ROUTING, State.SENT):
            await api.store.transition(sent["id"], state, detail="test", now=T0)
        for token in (None, "reader"):  # 401, 403
            await api.call("POST", "/v1/pushes", token=token, body=body)
            await api.call("DELETE", f"/v1/pushes/{push['id']}", token=token)
        for token in (None, "slow"):
            await api.call("GET", "/v1/pushes", token=token)
            await api.call("GET", f"/v1/pushes/{push['id']}", token=token)
        await api.call("POST", "/v1/pushes", data=b"{", headers={"Content-Type": "application/json"})  # 400
        await api.call("POST", "/v1/pushes", data=b" " * (MAX_BODY + 1))  # 413
        await api.call("POST", "/v1/pushes", body={"msisdn": MSISDN})  # 422
        for _ in range(2):  # 429
            await api.call("POST", "/v1/pushes", token="slow", body={"msisdn": MSISDN, "text": "x"})
        conn = await asyncpg.connect(dsn)
        try:
            async with conn.transaction():
                await conn.execute("INSERT INTO idempotency_keys VALUES ('rw', 'b', 'h', 'p_b', $1)", T0)
                await api.call("POST", "/v1/pushes", body=body, headers={"Idempotency-Key": "b"})  # 409
        finally:
            await conn.close()
        await api.call("GET", "/v1/pushes?limit=1")
        await api.call("GET", "/v1/pushes?limit=0")  # 422
        await api.call("GET", f"/v1/pushes/{push['id']}")
        await api.call("GET", "/v1/pushes/p_none")  # 404
        await api.call("DELETE", "/v1/pushes/p_none")  # 404
        await api.call("DELETE", f"/v1/pushes/{sent['id']}")  # 409
        await api.call("DELETE", f"/v1/pushes/{push['id']}")  # 200
        # Campaigns: every documented answer of each operation.
        csv = {"Content-Type": "text/csv"}
        campaign = {"name": "c", "text": "Hi {name}", "rate_per_s": 1,
                    "recipients": [{"msisdn": MSISDN, "vars": {"name": "Ann"}}]}  # fmt: skip
        made = (await api.call("POST", "/v1/campaigns", body=campaign)).body  # 202
        await api.call("POST", "/v1/campaigns?name=c&text=Hi&rate_per_s=1", data=b"msisdn\n491700000003\n",
                       headers=csv)  # 202, text/csv  # fmt: skip
        await api.call("POST", "/v1/campaigns", data=b"{", headers={"Content-Type": "application/json"})  # 400
        await api.call("POST", "/v1/campaigns", data=b" " * (MAX_BODY + 1),
                       headers={"Content-Type": "application/json"})  # 413  # fmt: skip
        await api.call("POST", "/v1/campaigns", data=b"x", headers={"Content-Type": "text/plain"})  # 415
        await api.call("POST", "/v1/campaigns", body={**campaign, "rate_per_s": 0})  # 422
        base = f"/v1/campaigns/{made['id']}"
        for token in (None, "slow"):  # 401, 403 (slow lacks push:read)
            await api.call("GET", base, token=token)
        for token in (None, "reader"):  # 401, 403 (reader lacks push:write)
            await api.call("POST", "/v1/campaigns", token=token, body=campaign)
            for action in ("pause", "resume", "cancel"):
                await api.call("POST", f"{base}/{action}", token=token)
        await api.call("GET", base)  # 200
        await api.call("GET", "/v1/campaigns/c_none")  # 404
        for action in ("pause", "resume", "cancel"):
            await api.call("POST", f"{base}/{action}")  # 200
            await api.call("POST", f"/v1/campaigns/c_none/{action}")  # 404
        for action in ("pause", "resume"):
            await api.call("POST", f"{base}/{action}")  # 409: cancelled above
        await api.call("POST", f"{base}/cancel")  # 200 again: cancel has no 409
        documented = {(method, path, int(status)) for path, ops in SPEC["paths"].items()
                      for method, op in ops.items() if method != "parameters" for status in op["responses"]}
        assert documented - api.met == set()
        assert api.met - documented == set()


# --- the CLI ---


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "gateway.toml"
    if not config.exists():
        text = (ROOT / "config" / "default.toml").read_text()
        config.write_text(text.replace('store = "sqlite:var/push.db"', f'store = "sqlite:{tmp_path / "push.db"}"'))
    return subprocess.run([sys.executable, "-m", "gateway.cli", "token", *args, "-c", str(config)],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)  # fmt: skip


def test_cli_token_create_list_revoke(tmp_path: Path) -> None:
    made = _cli(tmp_path, "create", "shop", "--scope", "push:write", "--scope", "push:read",
                "--msisdn-prefix", "49170", "--rate", "5")  # fmt: skip
    assert made.returncode == 0, made.stderr
    token = made.stdout.splitlines()[-1]
    assert token.startswith(tokens.PREFIX) and token.strip() == token and " " not in token

    async def check() -> None:
        store = await SqliteStore.open(tmp_path / "push.db")
        try:
            found = await store.token_by_hash(tokens.token_hash(token))
            assert found is not None and found.name == "shop" and found.scopes == ("push:read", "push:write")
            assert found.msisdn_prefix == "49170" and found.rate == 5.0
        finally:
            await store.close()

    asyncio.run(check())
    assert _cli(tmp_path, "create", "shop", "--scope", "push:read").returncode == 1  # the name is taken
    listed = _cli(tmp_path, "list")
    assert listed.returncode == 0 and "shop" in listed.stdout and "push:read,push:write" in listed.stdout
    assert "49170" in listed.stdout and token not in listed.stdout
    assert tokens.token_hash(token) not in listed.stdout
    revoked = _cli(tmp_path, "revoke", "shop")
    assert revoked.returncode == 0
    assert _cli(tmp_path, "revoke", "shop").returncode == 1  # no live token of that name
    row = _cli(tmp_path, "list").stdout.splitlines()[1].split()
    assert row[0] == "shop" and row[-1] != "-"  # the revocation time


def test_cli_token_create_refuses_bad_arguments(tmp_path: Path) -> None:
    assert _cli(tmp_path, "create", "x", "--scope", "push:admin").returncode == 2
    assert _cli(tmp_path, "create", "x").returncode == 2  # a scope is required
    assert _cli(tmp_path, "create", "x", "--scope", "push:read", "--msisdn-prefix", "+49").returncode == 2
    assert _cli(tmp_path, "create", "x", "--scope", "push:read", "--rate", "0").returncode == 2


# --- the configuration ---


def test_the_default_configuration_has_push_and_its_api() -> None:
    cfg = load_config()
    assert cfg.push is not None and cfg.push.store == "sqlite:var/push.db" and cfg.push.default_ttl_s == 86_400
    assert cfg.push.retention_s == 7 * 86_400 and cfg.push.rate == 100 and cfg.push_api_listen == ("127.0.0.1", 8090)
    assert cfg.push_api_max_upload_bytes == 32 * 1024 * 1024 and cfg.push.via == "vlr"


@pytest.mark.parametrize(("edit", "key", "reason"), [
    (("[push] ", "[push]\ncolour = 1\n"), "push.colour", "unknown key"),
    (("[push_api]\n", "[push_api]\nport = 1\n"), "push_api.port", "unknown key"),
    (('store = "sqlite:var/push.db"', 'store = "mysql://x"'), "push.store", "neither"),
    (('store = "sqlite:var/push.db"', 'store = "sqlite:"'), "push.store", "file path"),
    (("default_ttl_s = 86400", "default_ttl_s = 0"), "push.default_ttl_s", "positive"),
    (("default_ttl_s = 86400", "default_ttl_s = 9999999"), "push.default_ttl_s", "max_ttl_s"),
    (("max_in_flight = 1000", "max_in_flight = 1.5"), "push.max_in_flight", "expected int"),
    (('# hlr_gt = "491700000000"', 'hlr_gt = "49x"'), "push.hlr_gt", "digits"),
    (('node_id = "gw1"', 'node_id = ""'), "push.node_id", "empty"),
    (('listen = "127.0.0.1:8090"', 'listen = "8090"'), "push_api.listen", "HOST:PORT"),
    (("[push_api]\n", "[push_api]\nmax_upload_bytes = 0\n"), "push_api.max_upload_bytes", "positive"),
    (("[push] ", "[push]\nretry_cap_s = -1\n"), "push.retry_cap_s", "positive"),
    (("[push] ", '[push]\nvia = "msc"\n'), "push.via", "neither"),
])  # fmt: skip
def test_a_bad_push_section_is_refused_with_file_key_reason(tmp_path: Path, edit: tuple[str, str], key: str,
                                                           reason: str) -> None:  # fmt: skip
    text = (ROOT / "config" / "default.toml").read_text()
    assert edit[0] in text
    path = tmp_path / "gateway.toml"
    path.write_text(text.replace(edit[0], edit[1], 1))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.file == str(path) and info.value.key == key and reason in info.value.reason


def test_push_api_needs_a_push_section(tmp_path: Path) -> None:
    text = (ROOT / "config" / "default.toml").read_text()
    start, end = text.index("[push]"), text.index("[push_api]")
    path = tmp_path / "gateway.toml"
    path.write_text(text[:start] + text[end:])
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == "push_api"


async def test_open_store_by_url(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    store = await open_store(f"sqlite:{tmp_path / 'var' / 'push.db'}")
    assert isinstance(store, SqliteStore) and (tmp_path / "var" / "push.db").exists()
    await store.close()
    store = await open_store(request.getfixturevalue("postgres_server").new_database())
    assert isinstance(store, PostgresStore)
    await store.close()
    with pytest.raises(ValueError, match="neither"):
        await open_store("redis://x")
