"""Push status callbacks (gateway/push/callbacks.py): a real store (SQLite; PostgreSQL for two nodes) and a real
aiohttp receiver on 127.0.0.1 that checks what a customer's server would check."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import structlog
from aiohttp import web

from gateway.ops import logs
from gateway.ops.metrics import StackMetrics
from gateway.push.callbacks import CallbackSender, CallbackSettings
from gateway.push.model import Backoff, Mode, State
from gateway.push.store import Push, PushStore, new_push
from gateway.push.store_postgres import PostgresStore
from gateway.push.store_sqlite import SqliteStore
from tests.support.http import serving

SECRET = "s3cret"
FAST = CallbackSettings(secret=SECRET, timeout_s=0.3, horizon_s=60.0, concurrency=4, tick_s=0.05, lease_s=1.0,
                        backoff=Backoff(base=0.05, cap=0.2))  # fmt: skip


@dataclass
class Hit:
    method: str
    headers: dict[str, str]
    body: bytes

    @property
    def delivery(self) -> str:
        return self.headers["X-USSD-Delivery"]

    def signed(self) -> bool:
        """The receiver's check, computed here independently: HMAC-SHA256(secret, timestamp + "." + body), and a
        fresh timestamp."""
        ts = self.headers["X-USSD-Timestamp"]
        mac = hmac.new(SECRET.encode(), f"{ts}.".encode() + self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest("sha256=" + mac, self.headers["X-USSD-Signature"]) and \
            abs(time.time() - int(ts)) < 60  # fmt: skip


@dataclass
class Receiver:
    """Answers the n-th POST to /cb with ``script[n]`` (then ``then``): a status, or "slow" (longer than the
    sender's timeout, then 204). /landed is where its 302 points."""

    script: list[int | str] = field(default_factory=list)
    then: int = 204
    hits: list[Hit] = field(default_factory=list)
    landed: list[Hit] = field(default_factory=list)
    delay: float = 0.0

    async def _cb(self, request: web.Request) -> web.StreamResponse:
        self.hits.append(Hit(request.method, dict(request.headers), await request.read()))
        n = len(self.hits) - 1
        action = self.script[n] if n < len(self.script) else self.then
        await asyncio.sleep(1.0 if action == "slow" else self.delay)
        if action == 302:
            raise web.HTTPFound("/landed")
        return web.Response(status=204 if action == "slow" else int(action))

    async def _landed(self, request: web.Request) -> web.StreamResponse:
        self.landed.append(Hit(request.method, dict(request.headers), await request.read()))
        return web.Response(status=200)

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[str]:
        app = web.Application()
        app.router.add_route("*", "/cb", self._cb)
        app.router.add_route("*", "/landed", self._landed)
        async with serving(app) as base:
            yield base + "/cb"


@asynccontextmanager
async def sending(store: PushStore, settings: CallbackSettings = FAST, metrics: StackMetrics | None = None,
                  node_id: str = "gw1") -> AsyncIterator[CallbackSender]:  # fmt: skip
    sender = CallbackSender(store, settings, metrics or StackMetrics(), node_id=node_id)
    await sender.start()
    try:
        yield sender
    finally:
        await sender.stop()


async def owed(store: PushStore, url: str, msisdn: str = "491700000001") -> Push:
    """A push with a callback URL, cancelled: its final state owes one callback."""
    now = time.time()
    push = new_push(msisdn=msisdn, text="Привет", mode=Mode.NOTIFY, now=now, ttl_s=3600.0, callback_url=url)
    await store.create(push, None, "h", "shop")
    return await store.cancel(push.id, now)


def outbox(path: Path) -> list[tuple[Any, ...]]:
    """The outbox as another client sees it: (delivery_id, attempts, last_error) rows."""
    with sqlite3.connect(path) as db:
        return db.execute("SELECT delivery_id, attempts, last_error FROM callback_outbox").fetchall()


async def until(check: Callable[[], bool]) -> None:
    while not check():
        await asyncio.sleep(0.02)


def count(metrics: StackMetrics, result: str) -> float:
    value = metrics.registry.get_sample_value("ussd_push_callbacks_total", {"result": result})
    assert value is not None
    return value


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "push.db"


@pytest.fixture
async def store(db: Path) -> AsyncIterator[PushStore]:
    opened = await SqliteStore.open(db)
    yield opened
    await opened.close()


async def test_a_callback_is_signed_and_carries_its_delivery_id_and_the_push(store: PushStore, db: Path) -> None:
    receiver, metrics = Receiver(), StackMetrics()
    # A tick far away: the callback goes out because the sender is woken, not because it looked.
    async with asyncio.timeout(10), receiver.serving() as url, \
            sending(store, replace(FAST, tick_s=30.0), metrics) as sender:  # fmt: skip
        await asyncio.sleep(0.1)  # the first look at the outbox, at start, found nothing
        push = await owed(store, url)
        [(delivery, _, _)] = outbox(db)
        sender.wake()
        await until(lambda: not outbox(db))
    [hit] = receiver.hits
    assert hit.method == "POST" and hit.delivery == delivery and delivery.startswith("d_")
    assert hit.headers["Content-Type"] == "application/json"
    assert hit.headers["User-Agent"].startswith("ussd-gateway/")
    assert hit.signed()
    body = json.loads(hit.body)
    assert body["id"] == push.id and body["state"] == State.CANCELLED and body["text"] == "Привет"
    assert [h["state"] for h in body["history"]] == ["queued", "cancelled"]
    assert count(metrics, "delivered") == 1 and count(metrics, "retried") == 0
    assert metrics.registry.get_sample_value("ussd_push_callback_latency_seconds_count") == 1


async def test_failures_are_retried_with_the_same_delivery_id_until_a_2xx(store: PushStore, db: Path) -> None:
    receiver, metrics = Receiver(script=[500, "slow"]), StackMetrics()
    async with asyncio.timeout(15), receiver.serving() as url:
        await owed(store, url)
        [(delivery, _, _)] = outbox(db)
        async with sending(store, metrics=metrics):
            await until(lambda: not outbox(db))
    assert [h.delivery for h in receiver.hits] == [delivery] * 3  # 500, a timeout, then 204
    assert all(h.signed() for h in receiver.hits)
    assert count(metrics, "retried") == 2 and count(metrics, "delivered") == 1 and count(metrics, "abandoned") == 0


async def test_a_receiver_that_never_answers_2xx_is_abandoned_after_the_horizon(store: PushStore, db: Path) -> None:
    receiver, metrics = Receiver(then=503), StackMetrics()
    stream = io.StringIO()
    logs.configure("info", stream)
    try:
        async with asyncio.timeout(10), receiver.serving() as url:
            push = await owed(store, url)
            [(delivery, _, _)] = outbox(db)
            started = time.monotonic()
            async with sending(store, replace(FAST, horizon_s=0.5), metrics):
                await until(lambda: not outbox(db))
            took = time.monotonic() - started
    finally:
        structlog.reset_defaults()
    assert 0.5 <= took < 3.0
    assert len(receiver.hits) >= 3 and {h.delivery for h in receiver.hits} == {delivery}
    assert count(metrics, "abandoned") == 1 and count(metrics, "delivered") == 0
    assert count(metrics, "retried") == len(receiver.hits) - 1
    [line] = [json.loads(x) for x in stream.getvalue().splitlines() if "push.callback_abandoned" in x]
    assert line["delivery"] == delivery and line["push"] == push.id and line["error"] == "HTTP 503"
    assert line["attempts"] == len(receiver.hits) and line["level"] == "warning"


async def test_callbacks_survive_a_restart(db: Path) -> None:
    """The receiver is down while the first sender runs; the store is closed and reopened, and a new sender
    delivers what the first could not."""
    receiver = Receiver(then=503)
    async with asyncio.timeout(15), receiver.serving() as url:
        first = await SqliteStore.open(db)
        await owed(first, url, "491700000001")
        await owed(first, url, "491700000002")
        owed_ids = {row[0] for row in outbox(db)}
        async with sending(first):
            await until(lambda: len(receiver.hits) >= 2)
        await first.close()
        assert {row[0] for row in outbox(db)} == owed_ids  # still owed, across the restart
        receiver.then = 204
        seen = len(receiver.hits)
        second = await SqliteStore.open(db)
        try:
            async with sending(second):
                await until(lambda: not outbox(db))
        finally:
            await second.close()
    assert {h.delivery for h in receiver.hits[seen:]} >= owed_ids


async def test_a_redirect_is_not_followed(store: PushStore, db: Path) -> None:
    receiver, metrics = Receiver(then=302), StackMetrics()
    async with asyncio.timeout(10), receiver.serving() as url:
        await owed(store, url)
        async with sending(store, replace(FAST, secret=None), metrics):
            await until(lambda: count(metrics, "retried") >= 2 or count(metrics, "delivered") > 0)
    assert receiver.landed == [] and count(metrics, "delivered") == 0
    [(_, attempts, last_error)] = outbox(db)
    assert attempts >= 2 and last_error == "HTTP 302"
    assert "X-USSD-Signature" not in receiver.hits[0].headers  # no secret: unsigned


async def test_two_nodes_never_send_the_same_callback(postgres_server: Any) -> None:
    """Two gateway nodes (two PostgreSQL pools, two senders) on one outbox: the lease gives each row to one of
    them; every callback arrives exactly once (the receiver always answers, so nothing is retried)."""
    dsn = postgres_server.new_database()
    receiver = Receiver(delay=0.02)
    node_a, node_b = await PostgresStore.open(dsn), await PostgresStore.open(dsn)
    metrics_a, metrics_b = StackMetrics(), StackMetrics()
    try:
        async with asyncio.timeout(20), receiver.serving() as url:
            for i in range(40):
                await owed(node_a, url, f"4917{i:08d}")

            async def left() -> int:
                conn = await asyncpg.connect(dsn)
                try:
                    return int(await conn.fetchval("SELECT COUNT(*) FROM callback_outbox"))
                finally:
                    await conn.close()

            async with sending(node_a, metrics=metrics_a, node_id="a"), \
                    sending(node_b, metrics=metrics_b, node_id="b"):  # fmt: skip
                while await left():
                    await asyncio.sleep(0.05)
    finally:
        await node_a.close()
        await node_b.close()
    deliveries = [h.delivery for h in receiver.hits]
    assert len(deliveries) == 40 and len(set(deliveries)) == 40
    assert count(metrics_a, "delivered") + count(metrics_b, "delivered") == 40
    assert count(metrics_a, "delivered") and count(metrics_b, "delivered")  # both nodes sent


def test_settings_refuse_a_lease_shorter_than_a_post() -> None:
    assert CallbackSettings().lease_s > CallbackSettings().timeout_s
    with pytest.raises(ValueError, match="lease_s"):
        CallbackSettings(timeout_s=30.0, lease_s=30.0)
    with pytest.raises(ValueError, match="concurrency"):
        CallbackSettings(concurrency=0)
