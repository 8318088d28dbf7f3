"""SCCP connectionless service: delivery, routing by GT prefix, return on error, XUDT segmentation both ways."""

from __future__ import annotations

from gateway.codecs import sccp
from gateway.codecs.m3ua import ProtocolData
from gateway.codecs.sccp import ReturnCause, SccpAddress, Udt
from gateway.stack.sccp_layer import NoticeIndication, SccpConfig, SccpDropped, SccpLayer, UnitdataIndication

GW = SccpAddress.gt_e164("491700000001", sccp.SSN_GSMSCF)
MSC = SccpAddress.gt_e164("491720000001", sccp.SSN_MSC)
HLR = SccpAddress.gt_e164("4917799", sccp.SSN_HLR)


def layer() -> SccpLayer:
    return SccpLayer(SccpConfig(local_pc=1, local_ssns=frozenset({147}), routes=(("49", 2), ("49177", 3)),
                                default_dpc=None))  # fmt: skip


def pd(data: bytes, opc: int = 2, sls: int = 4) -> ProtocolData:
    return ProtocolData(opc, 1, 3, 2, 0, sls, data)


def test_delivery_to_local_subsystem() -> None:
    s = layer()
    s.receive(pd(sccp.encode(Udt(1, True, GW, MSC, b"tcap"))), 0.0)
    (ev,) = s.events
    assert ev == UnitdataIndication(GW, MSC, b"tcap", 2, 4, 1)


def test_unknown_subsystem_is_returned_when_asked() -> None:
    s = layer()
    other = SccpAddress.gt_e164("491700000001", 6)
    s.receive(pd(sccp.encode(Udt(0, True, other, MSC, b"x"))), 0.0)
    ((dpc, sls, msg),) = s.outgoing
    assert (dpc, sls) == (2, 4)
    udts = sccp.decode(msg)
    assert isinstance(udts, sccp.Udts) and udts.return_cause == ReturnCause.UNEQUIPPED_USER and udts.data == b"x"
    s.outgoing.clear()
    s.receive(pd(sccp.encode(Udt(0, False, other, MSC, b"x"))), 0.0)  # no return asked: dropped, and said so
    assert not s.outgoing and isinstance(s.events[-1], SccpDropped)


def test_routing_longest_prefix_and_no_route() -> None:
    s = layer()
    assert s.send(HLR, GW, b"a", sls=9)
    assert s.send(MSC, GW, b"b")
    assert [dpc for dpc, _, _ in s.outgoing] == [3, 2]
    assert s.outgoing[0][1] == 9
    assert not s.send(SccpAddress.gt_e164("331234", 8), GW, b"c")
    assert isinstance(s.events[-1], NoticeIndication) and s.events[-1].cause == ReturnCause.NO_TRANSLATION_FOR_ADDRESS


def test_segmented_send_and_reassembly() -> None:
    sender, receiver = layer(), layer()
    data = bytes(range(256)) * 2
    assert sender.send(GW, MSC, data, sls=1)
    parts = [m for _, _, m in sender.outgoing]
    assert len(parts) > 1 and all(m[0] == sccp.XUDT for m in parts)
    for m in parts:
        receiver.receive(pd(m), 0.0)
    (ev,) = receiver.events
    assert isinstance(ev, UnitdataIndication) and ev.data == data


def test_reassembly_timeout_and_out_of_order() -> None:
    sender, receiver = layer(), layer()
    sender.send(GW, MSC, b"z" * 600)
    parts = [m for _, _, m in sender.outgoing]
    receiver.receive(pd(parts[0]), 0.0)
    assert receiver.next_deadline() == 10.0
    receiver.handle_timer(10.0)
    assert isinstance(receiver.events[-1], SccpDropped)
    receiver.receive(pd(parts[1]), 11.0)  # a middle segment without its first: segmentation failure
    udts = sccp.decode(receiver.outgoing[-1][2])
    assert isinstance(udts, sccp.Udts) and udts.return_cause == ReturnCause.SEGMENTATION_FAILURE


def test_udts_is_reported_and_malformed_dropped() -> None:
    s = layer()
    s.receive(pd(sccp.service_for(Udt(1, True, MSC, GW, b"mine"), ReturnCause.SUBSYSTEM_FAILURE)), 0.0)
    s.receive(pd(b"\x09\x00"), 0.0)
    notice, dropped = s.events
    assert isinstance(notice, NoticeIndication) and notice.data == b"mine"
    assert notice.cause == ReturnCause.SUBSYSTEM_FAILURE
    assert isinstance(dropped, SccpDropped)


def test_drops_carry_a_reason_for_the_counters() -> None:
    s = layer()
    s.receive(pd(b"\x09\x00"), 0.0)
    s.receive(pd(sccp.encode(Udt(0, False, SccpAddress.gt_e164("491700000001", 6), MSC, b"x"))), 0.0)
    assert [e.reason for e in s.events if isinstance(e, SccpDropped)] == ["malformed", "unequipped-user"]


def test_reassemblies_in_progress_are_bounded_and_time_out_in_start_order() -> None:
    """A peer that opens segmented messages and never finishes them cannot hoard memory (Q.714 §4.1.2.2)."""
    sender = layer()
    receiver = SccpLayer(SccpConfig(local_pc=1, local_ssns=frozenset({147}), default_dpc=2, max_reassemblies=4))
    firsts = []
    for i in range(6):
        sender.outgoing.clear()
        sender.send(GW, MSC, bytes([i]) * 600)
        firsts.append(sender.outgoing[0][2])
    for i, first in enumerate(firsts):
        receiver.receive(pd(first), float(i))
    assert len(receiver._reassembly) == 4
    dropped = [e for e in receiver.events if isinstance(e, SccpDropped)]
    assert [e.reason for e in dropped] == ["reassembly-limit", "reassembly-limit"]
    udts = sccp.decode(receiver.outgoing[-1][2])
    assert isinstance(udts, sccp.Udts) and udts.return_cause == ReturnCause.SEGMENTATION_FAILURE
    receiver.events.clear()
    assert receiver.next_deadline() == 10.0  # the oldest first
    receiver.handle_timer(11.5)
    assert [e.reason for e in receiver.events] == ["reassembly-timeout", "reassembly-timeout"]
    assert receiver.next_deadline() == 12.0 and len(receiver._reassembly) == 2
