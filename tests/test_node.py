"""The signalling node: counts what crosses it, and fails a dialogue whose message came back in a UDTS."""

from __future__ import annotations

from prometheus_client import generate_latest

from gateway.codecs import m3ua, sccp, tcap
from gateway.codecs import map as M
from gateway.ops.metrics import StackMetrics
from gateway.stack.m3ua_asp import AssociationConfig, DataReceived, M3uaAssociation
from gateway.stack.tcap_table import AbortIndication
from tests.support.network import GW, MSC, gateway_node


def deliver(node_data: bytes) -> DataReceived:
    return DataReceived(m3ua.ProtocolData(2, 1, 3, 2, 0, 0, node_data), 1)


def test_rejects_and_aborts_are_counted_by_cause() -> None:
    metrics = StackMetrics()
    gw = gateway_node(metrics)
    assoc = M3uaAssociation(AssociationConfig(name="a"))
    end = tcap.encode(tcap.End(b"\x00\x00\x00\x09", None, (tcap.Reject(3, 1, 2),)))
    abort = tcap.encode(tcap.Abort(b"\x00\x00\x00\x09", 1))
    for data in (end, abort):
        gw.node.on_m3ua_event(assoc, deliver(sccp.encode(sccp.Udt(1, True, GW, MSC, data))), 0.0)
    text = generate_latest(metrics.registry).decode()
    assert 'ussd_tcap_rejects_total{direction="rx",problem="invoke-2"} 1.0' in text
    assert 'ussd_tcap_aborts_total{cause="1",direction="rx",kind="p-abort"} 1.0' in text


def test_udts_fails_the_dialogue_that_sent() -> None:
    gw = gateway_node()
    d = gw.node.table.begin(MSC, M.AC_NETWORK_UNSTRUCTURED_SS_V2, (tcap.Invoke(1, 61, b"\x30\x00"),), now=0.0)
    _, begin = gw.node.table.outgoing.popleft()
    returned = sccp.service_for(sccp.Udt(1, True, MSC, GW, begin), sccp.ReturnCause.NO_TRANSLATION_FOR_ADDRESS)
    gw.node.on_m3ua_event(M3uaAssociation(AssociationConfig()), deliver(returned), 1.0)
    (ev,) = gw.node.table.events
    assert isinstance(ev, AbortIndication) and ev.dialogue is d and ev.local_reason == "sccp-return-cause-1"
    assert len(gw.node.table) == 0
