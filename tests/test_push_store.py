"""The push store (gateway/push/store*.py), every test on both backends: SQLite in a temporary file and a real
PostgreSQL server (tests/support/postgres.py) with a database per test."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.push import store as store_module
from gateway.push import tokens
from gateway.push.model import CANCELLABLE, TRANSITIONS, Mode, State, TransitionError
from gateway.push.store import (
    Created,
    Creation,
    IdempotencyInFlightError,
    IdempotencyMismatchError,
    MsisdnBusyError,
    NotCancellableError,
    OutboxRow,
    Push,
    PushNotFoundError,
    PushStore,
    SchemaTooNewError,
    StoreError,
    Transition,
    new_push,
)
from gateway.push.store_postgres import PostgresStore
from gateway.push.store_sqlite import SqliteStore

T0 = 1_800_000_000.0
CALLBACK = "http://127.0.0.1:9/cb"


@dataclass
class Backend:
    name: str
    target: str  # the SQLite file or the PostgreSQL DSN

    async def open(self) -> PushStore:
        if self.name == "sqlite":
            return await SqliteStore.open(self.target)
        return await PostgresStore.open(self.target)

    async def sql(self, statement: str) -> list[tuple[Any, ...]]:
        """Run one statement beside the store (the database as another client sees it)."""
        if self.name == "sqlite":
            def run() -> list[tuple[Any, ...]]:
                with sqlite3.connect(self.target) as db:
                    return [tuple(r) for r in db.execute(statement).fetchall()]
            return await asyncio.to_thread(run)
        conn = await asyncpg.connect(self.target)
        try:
            return [tuple(r) for r in await conn.fetch(statement)]
        finally:
            await conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return Backend("sqlite", str(tmp_path / "var" / "push.db"))
    return Backend("postgresql", request.getfixturevalue("postgres_server").new_database())


@pytest.fixture
def postgres(request: pytest.FixtureRequest) -> Backend:
    return Backend("postgresql", request.getfixturevalue("postgres_server").new_database())


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[PushStore]:
    opened = await backend.open()
    yield opened
    await opened.close()


def mk(msisdn: str = "491700000001", *, now: float = T0, ttl_s: float = 3600.0, **extra: Any) -> Push:
    return new_push(msisdn=msisdn, text="Hello", mode=Mode.NOTIFY, now=now, ttl_s=ttl_s, **extra)


async def put(store: PushStore, push: Push, token: str = "tok") -> Push:
    return (await store.create(push, None, "h", token)).push


async def peek(store: PushStore, now: float, limit: int) -> list[OutboxRow]:
    """The callbacks due at ``now``, claimed for no time: they stay due for the next call."""
    return await store.outbox_due(now, limit, "peek", 0.0)


async def walk(store: PushStore, push_id: str, *states: State, now: float = T0 + 1) -> Push:
    pushed = await store.get(push_id)
    for state in states:
        pushed = await store.transition(push_id, state, detail=f"to {state}", now=now)
    return pushed


# --- records, create, get ---


async def test_a_push_comes_back_as_it_was_stored(store: PushStore) -> None:
    push = mk(route="quiz", campaign="c1", metadata={"order": 7, "tags": ["a"]}, callback_url=CALLBACK,
              callback_every_change=True, dcs=0x48, language="de", priority=5)  # fmt: skip
    created = await store.create(push, "key-1", "hash-1", "shop")
    assert not created.replayed
    got = await store.get(push.id)
    assert got == created.push
    assert got.token == "shop" and got.metadata == {"order": 7, "tags": ["a"]} and got.dcs == 0x48
    assert got.state is State.QUEUED and [h.state for h in got.history] == [State.QUEUED]
    assert push.id.startswith("p_") and len(push.id) == 34
    with pytest.raises(PushNotFoundError):
        await store.get("p_none")


# --- idempotency ---


async def test_the_same_key_and_body_replay_the_first_push(store: PushStore) -> None:
    first = await store.create(mk(), "k", "h1", "shop")
    again = await store.create(mk(), "k", "h1", "shop")
    assert again.replayed and again.push.id == first.push.id
    assert (await store.counts())[State.QUEUED] == 1
    with pytest.raises(IdempotencyMismatchError):
        await store.create(mk(), "k", "h2", "shop")
    other_token = await store.create(mk(), "k", "h1", "another")  # keys are per token
    assert not other_token.replayed and other_token.push.id != first.push.id
    await store.create(mk(), None, "h1", "shop")  # no key: no idempotency
    assert (await store.counts())[State.QUEUED] == 3


async def test_racing_duplicates_create_one_push(store: PushStore) -> None:
    """Duplicates sent at once: one push; each duplicate is a replay or told the first is in flight."""
    results = await asyncio.gather(*(store.create(mk(), "race", "h", "shop") for _ in range(8)),
                                   return_exceptions=True)  # fmt: skip
    created = [r for r in results if not isinstance(r, BaseException)]
    assert all(isinstance(r, IdempotencyInFlightError) for r in results if isinstance(r, BaseException))
    assert sum(not r.replayed for r in created) == 1
    assert len({r.push.id for r in created}) == 1
    assert (await store.counts())[State.QUEUED] == 1


async def test_a_duplicate_of_an_uncommitted_request_is_in_flight(postgres: Backend) -> None:
    """PostgreSQL only: SQLite runs creates one at a time on its writer thread, a first request is never in flight
    there (the racing test above covers both)."""
    store = await postgres.open()
    conn = await asyncpg.connect(postgres.target)
    try:
        first = conn.transaction()
        await first.start()
        await conn.execute("INSERT INTO idempotency_keys VALUES ('shop', 'k', 'h', 'p_first', $1)", T0)
        with pytest.raises(IdempotencyInFlightError):
            await store.create(mk(), "k", "h", "shop")
        await first.rollback()
        assert not (await store.create(mk(), "k", "h", "shop")).replayed  # the first request never committed
    finally:
        await conn.close()
        await store.close()


async def test_create_many_answers_each_item_alone(store: PushStore, backend: Backend) -> None:
    """One batch mixing new keys, replays (of a committed push and of one earlier in the same batch), mismatches
    and pushes without a key: each item gets its own answer, and a refused item leaves the others created."""
    before = await store.create(mk("491700000009"), "old", "h-old", "shop")
    batch = [Creation(mk("491700000001"), "new-1", "h1", "shop"),
             Creation(mk("491700000002"), "old", "h-old", "shop"),      # replay of a committed push
             Creation(mk("491700000003"), "old", "h-other", "shop"),    # mismatch
             Creation(mk("491700000004"), None, "h4", "shop"),          # no key
             Creation(mk("491700000005"), "new-1", "h1", "shop"),       # replay of item 0, same batch
             Creation(mk("491700000006"), "new-1", "h-x", "shop"),      # mismatch with item 0
             Creation(mk("491700000007"), "old", "h-old", "another")]  # keys are per token  # fmt: skip
    results = await store.create_many(batch)
    assert len(results) == len(batch)
    new, replay, mismatch, nokey, replay_batch, mismatch_batch, other_token = results
    assert isinstance(new, Created) and not new.replayed and new.push.id == batch[0].push.id
    assert new.push.token == "shop"
    assert isinstance(replay, Created) and replay.replayed and replay.push == before.push
    assert isinstance(mismatch, IdempotencyMismatchError)
    assert isinstance(nokey, Created) and not nokey.replayed
    assert isinstance(replay_batch, Created) and replay_batch.replayed and replay_batch.push == new.push
    assert isinstance(mismatch_batch, IdempotencyMismatchError)
    assert isinstance(other_token, Created) and not other_token.replayed and other_token.push.token == "another"
    created = [before.push.id, new.push.id, nokey.push.id, other_token.push.id]
    assert (await store.counts())[State.QUEUED] == 4
    for push_id in created:
        got = await store.get(push_id)
        assert got.state is State.QUEUED and [h.state for h in got.history] == [State.QUEUED]
    assert sorted(await backend.sql("SELECT token, key, push_id FROM idempotency_keys")) == sorted(
        [("shop", "old", before.push.id), ("shop", "new-1", new.push.id), ("another", "old", other_token.push.id)])
    assert await store.create_many([]) == []


async def test_create_many_tells_only_the_in_flight_key(postgres: Backend) -> None:
    """PostgreSQL: an item whose key's first request is uncommitted in another transaction is told it is in
    flight; the rest of its batch is created."""
    store = await postgres.open()
    conn = await asyncpg.connect(postgres.target)
    try:
        first = conn.transaction()
        await first.start()
        await conn.execute("INSERT INTO idempotency_keys VALUES ('shop', 'k', 'h', 'p_first', $1)", T0)
        ok, busy, plain = await store.create_many([Creation(mk(), "other", "h", "shop"),
                                                   Creation(mk(), "k", "h", "shop"),
                                                   Creation(mk(), None, "h", "shop")])  # fmt: skip
        assert isinstance(busy, IdempotencyInFlightError)
        assert isinstance(ok, Created) and not ok.replayed and isinstance(plain, Created) and not plain.replayed
        await first.rollback()
        assert (await store.counts())[State.QUEUED] == 2
        assert not (await store.create(mk(), "k", "h", "shop")).replayed
    finally:
        await conn.close()
        await store.close()


# --- transitions, outbox ---


async def test_a_refused_transition_changes_nothing(store: PushStore) -> None:
    push = await put(store, mk(callback_url=CALLBACK))
    with pytest.raises(TransitionError):
        await store.transition(push.id, State.SENT, detail="skipping routing", now=T0 + 1)
    assert await store.get(push.id) == push
    with pytest.raises(PushNotFoundError):
        await store.transition("p_none", State.ROUTING, detail="x", now=T0 + 1)
    assert await peek(store, T0 + 10, 10) == []


async def test_a_final_transition_writes_its_callback_in_the_same_transaction(store: PushStore) -> None:
    push = await put(store, mk(callback_url=CALLBACK))
    quiet = await put(store, mk("491700000002"))  # no callback_url: no outbox rows
    await walk(store, push.id, State.ROUTING, State.SENT)
    await walk(store, quiet.id, State.ROUTING, State.SENT)
    assert await peek(store, T0 + 10, 10) == []  # not final, and the push did not ask for every change
    # A batch whose second change is refused: the first (final, with its callback) is not written either.
    with pytest.raises(TransitionError):
        await store.transition_many([Transition(push.id, State.ACKNOWLEDGED, "ack"),
                                     Transition(quiet.id, State.QUEUED, "not allowed from sent")], T0 + 2)
    assert (await store.get(push.id)).state is State.SENT
    assert await peek(store, T0 + 10, 10) == []
    done = await store.transition(push.id, State.ACKNOWLEDGED, detail="ack", now=T0 + 2)
    await store.transition(quiet.id, State.ACKNOWLEDGED, detail="ack", now=T0 + 2)
    [row] = await peek(store, T0 + 10, 10)
    assert row.push_id == push.id and row.url == CALLBACK and row.attempts == 0 and row.next_at == T0 + 2
    assert row.payload["state"] == "acknowledged" and row.payload["id"] == push.id
    assert [h["state"] for h in row.payload["history"]] == [h.state.value for h in done.history]


async def test_every_change_callbacks(store: PushStore) -> None:
    push = await put(store, mk(callback_url=CALLBACK, callback_every_change=True))
    await walk(store, push.id, State.ROUTING, State.RETRY_WAIT)
    rows = await peek(store, T0 + 10, 10)
    assert sorted(r.payload["state"] for r in rows) == ["retry_wait", "routing"]
    assert len({r.delivery_id for r in rows}) == 2


async def test_a_group_commit_applies_its_changes_in_order(store: PushStore) -> None:
    a, b = await put(store, mk("491700000001")), await put(store, mk("491700000002"))
    after = await store.transition_many([
        Transition(a.id, State.ROUTING, "sri"), Transition(b.id, State.ROUTING, "sri"),
        Transition(a.id, State.SENT, "invoke", attempts=1),
        Transition(b.id, State.RETRY_WAIT, "absent", cause="absentSubscriber", attempts=1, next_attempt_at=T0 + 60),
    ], T0 + 1)  # fmt: skip
    assert [p.state for p in after] == [State.ROUTING, State.ROUTING, State.SENT, State.RETRY_WAIT]
    got_a, got_b = await store.get(a.id), await store.get(b.id)
    assert [h.state for h in got_a.history] == [State.QUEUED, State.ROUTING, State.SENT] and got_a.attempts == 1
    assert got_b.cause == "absentSubscriber" and got_b.next_attempt_at == T0 + 60 and got_b.state is State.RETRY_WAIT
    answered = await store.transition(a.id, State.ANSWERED, detail="answer", answer="1", now=T0 + 2)
    assert answered.answer == "1" and answered.cause is None


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(moves=st.lists(st.sampled_from(list(State)), max_size=8))
async def test_stored_state_and_history_follow_the_model(store: PushStore, moves: list[State]) -> None:
    """Random moves, allowed or not: the store accepts exactly the model's, and keeps the history of those."""
    push = await put(store, mk(new_msisdn()))
    expected, history = State.QUEUED, [State.QUEUED]
    for i, move in enumerate(moves):
        allowed = move in TRANSITIONS.get(expected, frozenset())
        try:
            await store.transition(push.id, move, detail=str(i), now=T0 + i)
        except TransitionError:
            assert not allowed
        else:
            assert allowed
            expected = move
            history.append(move)
    got = await store.get(push.id)
    assert got.state is expected and [h.state for h in got.history] == history


_msisdns = iter(range(491700000000, 491799999999))


def new_msisdn() -> str:
    return str(next(_msisdns))


# --- claiming ---


async def test_claims_go_by_priority_then_age_and_hold_a_lease(store: PushStore) -> None:
    old = await put(store, mk("1", now=T0))
    new = await put(store, mk("2", now=T0 + 1))
    urgent = await put(store, mk("3", now=T0 + 2, priority=9))
    await put(store, mk("4", now=T0, next_attempt_at=T0 + 100))  # scheduled later
    await put(store, mk("5", now=T0 - 50, ttl_s=10))  # expired
    claimed = await store.claim_due("node-a", T0 + 5, 2, 30.0)
    assert [p.id for p in claimed] == [urgent.id, old.id]
    assert all(p.claimed_by == "node-a" and p.claimed_until == T0 + 35 for p in claimed)
    assert [p.id for p in await store.claim_due("node-b", T0 + 6, 10, 30.0)] == [new.id]  # the rest
    assert await store.claim_due("node-b", T0 + 34, 10, 30.0) == []  # leases live
    # node-a died: its leases ran out, node-b takes them over.
    retaken = await store.claim_due("node-b", T0 + 35, 10, 30.0)
    assert [p.id for p in retaken] == [urgent.id, old.id] and {p.claimed_by for p in retaken} == {"node-b"}


async def test_a_retry_waits_for_its_time_and_the_claim_follows_the_push(store: PushStore) -> None:
    push = await put(store, mk())
    assert [p.id for p in await store.claim_due("n", T0, 10, 30.0)] == [push.id]
    routing = await store.transition(push.id, State.ROUTING, detail="sri", now=T0 + 1)
    assert routing.claimed_by == "n"  # in flight: the node that has it
    waiting = await store.transition(push.id, State.RETRY_WAIT, detail="busy", next_attempt_at=T0 + 100, now=T0 + 2)
    assert waiting.claimed_by is None and waiting.claimed_until is None
    assert await store.claim_due("n", T0 + 99, 10, 30.0) == []
    assert [p.id for p in await store.claim_due("n", T0 + 100, 10, 30.0)] == [push.id]


async def test_one_push_per_msisdn_in_flight(store: PushStore) -> None:
    first = await put(store, mk("491700000001", now=T0))
    second = await put(store, mk("491700000001", now=T0 + 1))
    other = await put(store, mk("491700000002", now=T0 + 2))
    claimed = await store.claim_due("n", T0 + 5, 10, 30.0)
    assert [p.id for p in claimed] == [first.id, other.id]  # one per MSISDN
    await store.transition(first.id, State.ROUTING, detail="sri", now=T0 + 6)
    other_again = await store.claim_due("n", T0 + 100, 10, 30.0)  # leases ran out; the in-flight one has none
    assert [p.id for p in other_again] == [other.id]
    with pytest.raises(MsisdnBusyError):  # the unique partial index, whoever tries
        await store.transition(second.id, State.ROUTING, detail="sri", now=T0 + 7)
    assert (await store.get(second.id)).state is State.QUEUED
    await walk(store, first.id, State.SENT, State.ACKNOWLEDGED)
    assert [p.id for p in await store.claim_due("n", T0 + 101, 10, 30.0)] == [second.id]


async def test_two_nodes_claiming_at_once_never_share_a_push(backend: Backend) -> None:
    """Two stores on one database (PostgreSQL: two pools, as two gateway nodes; SQLite: two writer threads, as two
    processes), each claiming from four tasks at once."""
    node_a, node_b = await backend.open(), await backend.open()
    try:
        ids = set()
        for i in range(300):  # 300 MSISDNs; 100 of them have two pushes next to each other in claiming order
            ids.add((await put(node_a, mk(f"49{i:010d}", now=T0 + i))).id)
            if i % 3 == 0:
                ids.add((await put(node_a, mk(f"49{i:010d}", now=T0 + i + 0.5))).id)

        async def claims(store: PushStore, node: str) -> list[Push]:
            got: list[Push] = []
            for _ in range(200):
                got += await store.claim_due(node, T0 + 2000, 1, 300.0)
            return got

        async def node(store: PushStore, name: str) -> list[Push]:
            parallel = await asyncio.gather(*(claims(store, name) for _ in range(4)))
            return [p for part in parallel for p in part]

        got_a, got_b = await asyncio.gather(node(node_a, "a"), node(node_b, "b"))
        ids_a, ids_b = {p.id for p in got_a}, {p.id for p in got_b}
        assert len(ids_a) == len(got_a) and len(ids_b) == len(got_b) and not ids_a & ids_b
        assert len(got_a) + len(got_b) == 300 and (ids_a | ids_b) <= ids  # every MSISDN once
        msisdns = [p.msisdn for p in got_a + got_b]
        assert len(set(msisdns)) == len(msisdns)  # never two pushes of one MSISDN claimed at once
    finally:
        await node_a.close()
        await node_b.close()


# --- expiry, recovery, cancel ---


async def test_waiting_pushes_expire_with_their_callback(store: PushStore) -> None:
    queued = await put(store, mk("1", ttl_s=10, callback_url=CALLBACK))
    waiting = await put(store, mk("2", ttl_s=10))
    routing = await put(store, mk("3", ttl_s=10))
    alive = await put(store, mk("4", ttl_s=100))
    await walk(store, waiting.id, State.ROUTING, State.RETRY_WAIT)
    await walk(store, routing.id, State.ROUTING)
    assert await store.expire_due(T0 + 9) == 0
    assert await store.expire_due(T0 + 10) == 2
    for push, state in ((queued, State.EXPIRED), (waiting, State.EXPIRED), (routing, State.ROUTING),
                        (alive, State.QUEUED)):  # fmt: skip
        assert (await store.get(push.id)).state is state
    [row] = await peek(store, T0 + 10, 10)
    assert row.push_id == queued.id and row.payload["state"] == "expired"


async def test_expiry_of_many_pushes_at_once(store: PushStore) -> None:
    """More pushes than one SQLite statement's IN (...) is given (store_sqlite.LOAD_CHUNK)."""
    for i in range(1200):
        await put(store, mk(str(i), ttl_s=10))
    assert await store.expire_due(T0 + 10) == 1200
    assert (await store.counts())[State.EXPIRED] == 1200


async def test_recovery_applies_the_crash_rule(store: PushStore) -> None:
    routing = await put(store, mk("1"))
    sent = await put(store, mk("2", callback_url=CALLBACK))
    assert len(await store.claim_due("a", T0, 10, 30.0)) == 2
    await walk(store, routing.id, State.ROUTING)
    await walk(store, sent.id, State.ROUTING, State.SENT)
    queued = await put(store, mk("3"))
    others = await put(store, mk("4"))
    assert len(await store.claim_due("b", T0 + 1, 10, 30.0)) == 2
    await walk(store, others.id, State.ROUTING)
    assert (await store.get(others.id)).claimed_by == "b"
    assert await store.recover(T0 + 5, node_id="a") == {State.QUEUED: 1, State.UNCONFIRMED: 1}
    got = await store.get(sent.id)
    assert got.state is State.UNCONFIRMED and "never resent" in got.history[-1].detail
    back = await store.get(routing.id)
    assert back.state is State.QUEUED and back.claimed_by is None
    assert [p.id for p in await store.claim_due("a", T0 + 6, 10, 30.0)] == [routing.id]  # claimable again
    assert (await store.get(queued.id)).state is State.QUEUED
    assert (await store.get(others.id)).state is State.ROUTING  # node b's: not a's to recover
    [row] = await peek(store, T0 + 10, 10)
    assert row.push_id == sent.id and row.payload["state"] == "unconfirmed"
    assert await store.recover(T0 + 7) == {State.QUEUED: 1, State.UNCONFIRMED: 0}  # all nodes (one-node start)
    assert (await store.get(others.id)).state is State.QUEUED


async def test_cancel(store: PushStore) -> None:
    queued = await put(store, mk("1", callback_url=CALLBACK))
    routing = await put(store, mk("2"))
    await walk(store, routing.id, State.ROUTING)
    cancelled = await store.cancel(queued.id, T0 + 1)
    assert cancelled.state is State.CANCELLED and State.QUEUED in CANCELLABLE
    assert (await peek(store, T0 + 1, 10))[0].payload["state"] == "cancelled"
    for push_id in (queued.id, routing.id):
        with pytest.raises(NotCancellableError):
            await store.cancel(push_id, T0 + 2)
    assert (await store.get(routing.id)).state is State.ROUTING
    with pytest.raises(PushNotFoundError):
        await store.cancel("p_none", T0)


# --- outbox ---


async def test_outbox_retry_and_done(store: PushStore) -> None:
    for i in range(3):
        push = await put(store, mk(str(i), callback_url=CALLBACK))
        await store.cancel(push.id, T0 + i)
    rows = await peek(store, T0 + 10, 10)
    assert [r.next_at for r in rows] == [T0, T0 + 1, T0 + 2]
    assert await peek(store, T0 + 10, 2) == rows[:2]
    await store.outbox_retry(rows[0].delivery_id, T0 + 30, "HTTP 503")
    await store.outbox_done(rows[1].delivery_id)
    assert [r.delivery_id for r in await peek(store, T0 + 10, 10)] == [rows[2].delivery_id]
    later = await peek(store, T0 + 30, 10)
    assert [r.delivery_id for r in later] == [rows[2].delivery_id, rows[0].delivery_id]
    assert later[1].attempts == 1 and later[1].last_error == "HTTP 503" and later[1].payload == rows[0].payload
    assert later[1].created_at == T0 and later[0].created_at == T0 + 2  # the age is the change's, not the retry's


async def test_outbox_claims_hold_a_lease(backend: Backend) -> None:
    """Two nodes on one database: a callback one node claimed is not the other's (nor again its own) while the
    lease runs; when it ran out (the node died mid-POST), either node gets it."""
    node_a, node_b = await backend.open(), await backend.open()
    try:
        for i in range(3):
            push = await put(node_a, mk(str(i), callback_url=CALLBACK))
            await node_a.cancel(push.id, T0 + i)
        first, second, third = await peek(node_a, T0 + 10, 10)
        assert await node_a.outbox_due(T0 + 10, 2, "a", 30.0) == [first, second]
        assert await node_b.outbox_due(T0 + 10, 10, "b", 30.0) == [third]
        assert await node_b.outbox_due(T0 + 11, 10, "b", 30.0) == []
        assert await node_a.outbox_due(T0 + 39.9, 10, "a", 30.0) == []
        assert await node_b.outbox_due(T0 + 40, 10, "b", 30.0) == [first, second, third]  # all ran out
        assert await backend.sql("SELECT DISTINCT claimed_by, claimed_until FROM callback_outbox") == [("b", T0 + 70)]
        # A failed attempt releases the claim: the row is due again at its next_at, not at the lease's end.
        await node_b.outbox_retry(first.delivery_id, T0 + 45, "HTTP 500")
        assert await node_a.outbox_due(T0 + 44, 10, "a", 30.0) == []
        [again] = await node_a.outbox_due(T0 + 45, 10, "a", 30.0)
        assert again.delivery_id == first.delivery_id and again.attempts == 1
    finally:
        await node_a.close()
        await node_b.close()


async def test_two_nodes_claiming_callbacks_at_once_never_share_one(backend: Backend) -> None:
    """PostgreSQL: FOR UPDATE SKIP LOCKED between two pools; SQLite: BEGIN IMMEDIATE between two writer threads."""
    node_a, node_b = await backend.open(), await backend.open()
    try:
        for i in range(100):
            push = await put(node_a, mk(str(i), callback_url=CALLBACK))
            await node_a.cancel(push.id, T0 + i)

        async def claims(store: PushStore, node: str) -> list[OutboxRow]:
            got: list[OutboxRow] = []
            for _ in range(40):
                got += await store.outbox_due(T0 + 500, 2, node, 300.0)
            return got

        parts = await asyncio.gather(*(claims(store, name) for store, name in ((node_a, "a"), (node_b, "b"))
                                       for _ in range(4)))  # fmt: skip
        ids = [row.delivery_id for part in parts for row in part]
        assert len(ids) == 100 and len(set(ids)) == 100
        if backend.name == "postgresql":  # on SQLite one writer thread may run ahead while the other sleeps in
            assert sum(map(len, parts[:4])) and sum(map(len, parts[4:]))  # its busy handler: both took part
    finally:
        await node_a.close()
        await node_b.close()


# --- tokens ---


async def test_tokens_are_stored_by_hash(store: PushStore) -> None:
    secret = tokens.generate()
    assert secret != tokens.generate() and len(secret) > 40
    digest = tokens.token_hash(secret)
    assert digest == hashlib.sha256(secret.encode()).hexdigest()
    made = await store.token_create("shop", digest, ["push:write", "push:read"], "4917", 5.0, T0)
    await store.token_create("ops", tokens.token_hash(tokens.generate()), ["push:read"], "", None, T0)
    assert await store.token_by_hash(digest) == made
    assert made.scopes == ("push:write", "push:read") and made.rate == 5.0
    with pytest.raises(StoreError):
        await store.token_create("shop", "other", [], "", None, T0)
    assert [t.name for t in await store.token_list()] == ["ops", "shop"]
    assert await store.token_revoke("shop", T0 + 1)
    assert not await store.token_revoke("shop", T0 + 2)
    assert await store.token_by_hash(digest) is None
    assert [t.revoked_at for t in await store.token_list()] == [None, T0 + 1]
    assert await store.token_by_hash("unknown") is None


# --- list, counts, purge ---


async def test_list_filters_and_pages_stably(store: PushStore) -> None:
    made = [await put(store, mk(f"49{i % 3}", now=T0 + i // 2, campaign="c" if i % 4 == 0 else None))
            for i in range(10)]  # fmt: skip  (pairs share created_at: the id breaks the tie)
    newest_first = sorted(made, key=lambda p: (p.created_at, p.id), reverse=True)
    page = await store.list(limit=4)
    seen = list(page.items)
    assert [p.id for p in seen] == [p.id for p in newest_first[:4]] and page.cursor is not None
    for i in range(3):  # newer pushes arrive between pages: the pages already handed out do not shift
        await put(store, mk("49x", now=T0 + 100 + i))
    cursor: str | None = page.cursor
    while cursor is not None:
        page = await store.list(limit=4, cursor=cursor)
        seen += page.items
        cursor = page.cursor
    assert [p.id for p in seen] == [p.id for p in newest_first]
    assert {p.id for p in (await store.list(msisdn="491")).items} == {p.id for p in made if p.msisdn == "491"}
    assert {p.id for p in (await store.list(campaign="c")).items} == {p.id for p in made if p.campaign == "c"}
    await walk(store, made[0].id, State.ROUTING)
    assert [p.id for p in (await store.list(state=State.ROUTING)).items] == [made[0].id]
    assert (await store.list(state=State.ROUTING)).items[0].history[-1].state is State.ROUTING
    with pytest.raises(ValueError):
        await store.list(cursor="not-a-cursor")


async def test_counts(store: PushStore) -> None:
    for i in range(3):
        await put(store, mk(str(i)))
    push = await put(store, mk("9"))
    await walk(store, push.id, State.ROUTING)
    counts = await store.counts()
    assert set(counts) == set(State)
    assert counts[State.QUEUED] == 3 and counts[State.ROUTING] == 1 and sum(counts.values()) == 4


async def test_purge_drops_old_finished_pushes_and_keys(backend: Backend, store: PushStore) -> None:
    old_done = (await store.create(mk("1"), "k-old", "h", "shop")).push
    await store.cancel(old_done.id, T0 + 10)
    old_open = await put(store, mk("2"))  # unfinished: kept whatever its age
    recent = await put(store, mk("3", now=T0 + 500))
    await store.cancel(recent.id, T0 + 500)
    assert await store.purge(T0 + 111, 100.0) == (1, 1)
    with pytest.raises(PushNotFoundError):
        await store.get(old_done.id)
    assert await backend.sql(f"SELECT COUNT(*) FROM push_history WHERE push_id = '{old_done.id}'") == [(0,)]
    assert (await store.get(old_open.id)).state is State.QUEUED
    assert (await store.get(recent.id)).state is State.CANCELLED
    again = await store.create(mk("1"), "k-old", "h", "shop")  # the key is forgotten: a new push
    assert not again.replayed and again.push.id != old_done.id


# --- migrations ---


async def test_an_empty_database_is_migrated_and_reopened(backend: Backend, store: PushStore) -> None:
    latest = store_module.migrations()[-1][0]
    assert await backend.sql("SELECT MAX(version) FROM schema_version") == [(latest,)]
    push = await put(store, mk())
    again = await backend.open()  # a second open finds nothing to do, and the data is there
    try:
        assert (await again.get(push.id)).id == push.id
        assert await backend.sql("SELECT COUNT(*) FROM schema_version") == [(latest,)]
    finally:
        await again.close()


async def test_an_older_database_is_migrated_at_open(backend: Backend, store: PushStore,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    push = await put(store, mk())
    shipped = store_module.migrations()
    newer = [*shipped, (shipped[-1][0] + 1, "CREATE TABLE later_table (id TEXT PRIMARY KEY);")]
    monkeypatch.setattr(store_module, "migrations", lambda: newer)
    upgraded = await backend.open()
    try:
        assert await backend.sql("SELECT MAX(version) FROM schema_version") == [(newer[-1][0],)]
        assert await backend.sql("SELECT COUNT(*) FROM later_table") == [(0,)]
        assert (await upgraded.get(push.id)).id == push.id
    finally:
        await upgraded.close()


async def test_a_newer_database_is_refused(backend: Backend, store: PushStore) -> None:
    await backend.sql("INSERT INTO schema_version VALUES (99, 0)")
    with pytest.raises(SchemaTooNewError, match="99"):
        await backend.open()


# --- the event loop ---


async def test_the_loop_runs_while_the_store_commits(store: PushStore) -> None:
    """The database work happens off the loop: a ticker keeps ticking while a large group commit runs."""
    pushes = [await put(store, mk(str(i))) for i in range(300)]
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    for _ in range(3):
        await store.transition_many([Transition(p.id, State.ROUTING, "sri") for p in pushes], T0 + 1)
        await store.transition_many([Transition(p.id, State.QUEUED, "back") for p in pushes], T0 + 1)
    stop.set()
    await task
    assert ticks > 6  # it ran during the commits, not only between them


async def test_a_restarted_node_releases_its_claims_on_what_it_had_not_started(store: PushStore) -> None:
    """A node killed between claiming a push and routing it (or while POSTing a callback) gets them back at its
    restart, not when their leases run out (the crash test found pushes expiring unsent behind a dead claim)."""
    waiting = await put(store, mk("1"))
    assert [p.id for p in await store.claim_due("a", T0, 10, 120.0)] == [waiting.id]
    assert await store.claim_due("a", T0 + 1, 10, 120.0) == []  # under a's lease
    other = await put(store, mk("2"))
    assert [p.id for p in await store.claim_due("b", T0 + 1, 10, 120.0)] == [other.id]
    called = await put(store, mk("3", callback_url=CALLBACK))
    await store.cancel(called.id, T0 + 1)  # a callback row for a to claim
    [row] = await store.outbox_due(T0 + 2, 10, "a", 60.0)
    assert await store.outbox_due(T0 + 3, 10, "a", 60.0) == []
    await store.recover(T0 + 4, node_id="a")
    assert [p.id for p in await store.claim_due("c", T0 + 5, 10, 120.0)] == [waiting.id]  # b's stays b's
    assert [r.delivery_id for r in await store.outbox_due(T0 + 5, 10, "a", 60.0)] == [row.delivery_id]


async def test_release_gives_back_claims_on_waiting_pushes_only(store: PushStore) -> None:
    one, two = await put(store, mk("1")), await put(store, mk("2"))
    assert len(await store.claim_due("a", T0, 10, 120.0)) == 2
    await walk(store, two.id, State.ROUTING)
    await store.release("b", [one.id])  # not b's claim: nothing happens
    assert await store.claim_due("c", T0 + 1, 10, 120.0) == []
    await store.release("a", [one.id, two.id])
    assert [p.id for p in await store.claim_due("c", T0 + 1, 10, 120.0)] == [one.id]
    assert (await store.get(two.id)).claimed_by == "a"  # in flight: its claim names the node sending it
