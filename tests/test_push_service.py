"""The push service over the real stack: gateway node and simulator (HLR, MSC/VLR, handsets) over M3UA/TCP on
loopback, a real store (SQLite, and PostgreSQL for the main flow). Each outcome of a push is driven through the
network and read back from the store: its state, cause, attempts and history."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest

from gateway.ops.metrics import StackMetrics
from gateway.push.model import Backoff, Mode, State
from gateway.push.service import PushService, PushSettings
from gateway.push.store import Push, PushStore, Transition, new_push
from gateway.push.store_postgres import PostgresStore
from gateway.push.store_sqlite import SqliteStore
from gateway.sim.network import Subscriber
from gateway.stack.m3ua_asp import AssociationConfig, Role
from gateway.transport import tcp
from gateway.transport.host import StackHost, UssdHost
from tests.support.aio import wait_for
from tests.support.network import network_node
from tests.support.push import push_gateway

ACK, BUSY, ABSENT, SILENT, UNKNOWN = "491720000001", "491720000002", "491720000003", "491720000004", "491729999999"
FAST = Backoff(base=0.05, cap=0.2, jitter=0.5)


@dataclass
class Net:
    service: PushService
    store: PushStore
    sim: Any
    host: UssdHost

    async def push(self, msisdn: str, *, mode: Mode = Mode.NOTIFY, ttl_s: float = 30.0, text: str = "Code 1234") -> str:
        created = await self.store.create(new_push(msisdn=msisdn, text=text, mode=mode, now=time.time(),
                                                   ttl_s=ttl_s), None, msisdn + text, "test")  # fmt: skip
        self.service.wake()
        return created.push.id

    async def final(self, push_id: str, timeout: float = 10.0) -> Push:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            p = await self.store.get(push_id)
            if p.state.final:
                return p
            if loop.time() > end:
                raise AssertionError(f"push still {p.state}: {p.history}")
            await asyncio.sleep(0.02)


@asynccontextmanager
async def network(store: PushStore, settings: PushSettings,
                  metrics: StackMetrics | None = None) -> AsyncIterator[Net]:  # fmt: skip
    """The gateway (its host, the push service on ``store``) and the simulator, connected over M3UA/TCP."""
    sim = network_node()
    sim.add(Subscriber(SILENT, "262011234567894", vlr_behaviour="silent"))
    sim_host = StackHost(sim.node, sim)
    async with push_gateway(store, settings, metrics) as gw:
        stop = asyncio.Event()
        client = asyncio.create_task(tcp.run_client("127.0.0.1", gw.port, AssociationConfig(
            name="sim", role=Role.ASP, routing_contexts=(1,), beat_interval=0), sim_host.sink,
            on_connection=sim_host.add, stop=stop))  # fmt: skip
        await wait_for(gw.ready)
        try:
            yield Net(gw.service, store, sim, gw.host)
        finally:
            stop.set()
            await asyncio.wait_for(client, 5)


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[PushStore]:
    if request.param == "sqlite":
        opened: PushStore = await SqliteStore.open(tmp_path / "push.db")
    else:
        opened = await PostgresStore.open(request.getfixturevalue("postgres_server").new_database())
    yield opened
    await opened.close()


def states(p: Push) -> list[str]:
    return [h.state.value for h in p.history]


async def test_every_outcome_of_a_push(store: PushStore) -> None:
    metrics = StackMetrics()
    async with network(store, PushSettings(backoff=FAST), metrics) as net:
        ack = await net.push(ACK)
        answered = await net.push(ACK, mode=Mode.REQUEST, text="Accept? 1=Yes")
        unknown = await net.push(UNKNOWN)
        busy = await net.push(BUSY, ttl_s=1.0)
        absent = await net.push(ABSENT, ttl_s=1.0)
        p = await net.final(ack)
        assert p.state is State.ACKNOWLEDGED and states(p) == ["queued", "routing", "sent", "acknowledged"]
        assert p.attempts == 1 and p.cause is None
        p = await net.final(answered)
        assert p.state is State.ANSWERED and p.answer == "1"  # one MSISDN: the second waited for the first
        p = await net.final(unknown)
        assert (p.state, p.cause, states(p)) == (State.FAILED, "unknown_subscriber", ["queued", "routing", "failed"])
        p = await net.final(busy)
        assert p.state is State.EXPIRED and p.cause == "ussd_busy" and p.attempts >= 2
        assert states(p)[:5] == ["queued", "routing", "sent", "retry_wait", "routing"]
        p = await net.final(absent)
        assert p.state is State.EXPIRED and p.cause == "absent_subscriber_sm" and "sent" not in states(p)
        shown = [(imsi, text) for imsi, text, _ in net.sim.pushes_received]
        assert shown.count(("262011234567890", "Code 1234")) == 1  # acknowledged once, never again
        assert not net.service.flight and len(net.host.node.table) == 0
        await asyncio.sleep(1.1)  # the queue depth is read once a second
    text = generate_latest(metrics.registry).decode()
    for series in ('ussd_push_states_total{cause="",state="acknowledged"} 1.0',
                   'ussd_push_states_total{cause="",state="answered"} 1.0',
                   'ussd_push_states_total{cause="unknown_subscriber",state="failed"} 1.0',
                   'ussd_push_queue{state="acknowledged"} 1.0', 'ussd_push_queue{state="queued"} 0.0',
                   "ussd_push_in_flight 0.0", "ussd_push_delivery_seconds_count 2.0"):
        assert series in text, series
    assert "ussd_push_sri_seconds_count 0.0" not in text
    expired = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("ussd_push_states_total{") and 'state="expired"' in line]  # fmt: skip
    assert sum(expired) == 2.0  # busy and absent: at a retry past the expiry, or while waiting in the queue


class RefusingSent(SqliteStore):
    """A real store whose commit of ``sent`` fails (a full disk, a lost database)."""

    async def transition_many(self, changes: Sequence[Transition], now: float) -> list[Push]:
        if any(c.state is State.SENT for c in changes):
            raise OSError("injected: the store cannot commit")
        return await super().transition_many(changes, now)


async def test_nothing_reaches_the_handset_before_sent_is_committed(tmp_path: Path) -> None:
    store = await RefusingSent.open(tmp_path / "push.db")
    try:
        async with network(store, PushSettings(backoff=FAST)) as net:
            pid = await net.push(ACK)
            await wait_for(lambda: net.service.flight == {}, 5.0)
            await asyncio.sleep(0.3)
            p = await store.get(pid)
            assert states(p) == ["queued", "routing"] and net.sim.pushes_received == []  # routed, never sent
    finally:
        await store.close()


async def test_a_push_out_when_the_gateway_stops_is_never_sent_again(tmp_path: Path) -> None:
    """The crash rule: SILENT's VLR never answers, the gateway stops with the invoke out; at the next start the
    push ends unconfirmed, and nothing is sent again."""
    path = tmp_path / "push.db"
    store = await SqliteStore.open(path)
    async with network(store, PushSettings()) as net:
        pid = await net.push(SILENT)
        await wait_for(lambda: len(net.sim.pushes_received) == 1, 5.0)
    await store.close()
    store = await SqliteStore.open(path)
    assert (await store.get(pid)).state is State.SENT  # as the gateway left it
    try:
        async with network(store, PushSettings()) as net:
            p = await net.final(pid)
            assert p.state is State.UNCONFIRMED and states(p)[-2:] == ["sent", "unconfirmed"]
            await asyncio.sleep(0.3)
            assert net.sim.pushes_received == []  # the new simulator saw nothing: not resent
    finally:
        await store.close()


async def test_through_the_hlr_without_sri_for_sm(tmp_path: Path) -> None:
    """[push] via = "hlr" (TS 23.090): the invoke goes to the HLR with the MSISDN in MAP-OpenInfo, no SRI-for-SM."""
    store = await SqliteStore.open(tmp_path / "push.db")
    try:
        async with network(store, PushSettings(via_hlr=True)) as net:
            ack = await net.push(ACK)
            ask = await net.push(ACK, mode=Mode.REQUEST, text="Accept? 1=Yes")
            p, q = await net.final(ack), await net.final(ask)
            assert p.state is State.ACKNOWLEDGED and q.state is State.ANSWERED and q.answer == "1"
            assert [h.detail for h in p.history][1:3] == ["the HLR, to relay, attempt 1",
                                                         "USSD invoke to the HLR for relay to the VLR"]
            # the simulated HLR found the subscriber by the MSISDN and handed the text to its handset
            assert [(imsi, text) for imsi, text, _ in net.sim.pushes_received] == [
                ("262011234567890", "Code 1234"), ("262011234567890", "Accept? 1=Yes")]
    finally:
        await store.close()
