"""The stack's host: one flush per loop turn however many services act, each event type to its one service, and
no growing list of connections that have gone."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from gateway.codecs import m3ua, sccp
from gateway.stack.m3ua_asp import AssociationConfig, DataReceived, M3uaAssociation
from gateway.stack.map_ussd import SessionClosed, SessionStarted
from gateway.transport.host import UssdHost
from tests.support.network import GW, MSC, gateway_node
from tests.test_containment import begin, ussd_param


@dataclass
class FakeConnection:
    association: M3uaAssociation
    closed: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    flushes: int = 0

    def flush(self) -> None:
        self.flushes += 1


def data(otid: int) -> DataReceived:
    udt = sccp.encode(sccp.Udt(1, True, GW, MSC, begin(ussd_param(), otid=otid.to_bytes(4, "big"))))
    return DataReceived(m3ua.ProtocolData(2, 1, 3, 2, 0, 0, udt), 1)


async def test_many_events_and_actions_in_one_turn_flush_once() -> None:
    gw = gateway_node()
    host = UssdHost(gw.node, gw.ussd)
    conn = FakeConnection(M3uaAssociation(AssociationConfig(name="a")))
    host.add(conn)
    started: list[SessionStarted] = []

    def app(ev: SessionStarted) -> None:
        started.append(ev)
        host.finish(ev.session, "Bye")  # acting from inside the dispatch: scheduled, never re-entered

    host.on(SessionStarted, app)
    for otid in range(1, 21):
        host.sink(conn.association, data(otid))
    assert conn.flushes == 0 and not started  # nothing runs until the loop turns
    await asyncio.sleep(0)
    assert len(started) == 20 and len(gw.node.table) == 0
    assert conn.flushes == 1  # twenty dialogues, one flush down to the connection
    await asyncio.sleep(0)
    assert conn.flushes <= 2


async def test_one_service_per_event_type() -> None:
    gw = gateway_node()
    host = UssdHost(gw.node, gw.ussd)
    host.on(SessionClosed, lambda ev: None)
    with pytest.raises(ValueError, match="SessionClosed already goes to"):
        host.on(SessionClosed, lambda ev: None)


async def test_connections_that_have_gone_are_dropped_with_their_associations() -> None:
    gw = gateway_node()
    host = UssdHost(gw.node, gw.ussd)
    conns = [FakeConnection(M3uaAssociation(AssociationConfig(name=f"a{i}"))) for i in range(50)]
    for c in conns:
        host.add(c)
        c.closed.set_result(None)  # accepted, then gone: the next accept drops it
    assert len(host.connections) == 1 and len(gw.node.associations) == 1
    client = FakeConnection(conns[-1].association)  # a client reconnecting with its association
    host.add(client)
    assert host.connections == [client] and gw.node.associations == [client.association]
