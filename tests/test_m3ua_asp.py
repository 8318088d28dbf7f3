"""M3UA association state machine (RFC 4666 §4.3), both roles, driven with bytes and a fake clock."""

from __future__ import annotations

from gateway.codecs import m3ua
from gateway.codecs.m3ua import ErrorCode
from gateway.stack.m3ua_asp import (
    AspState,
    AsRegistry,
    AssociationConfig,
    AssociationLost,
    DataReceived,
    DestinationState,
    M3uaAssociation,
    MalformedErrorReceived,
    Notified,
    Outgoing,
    ProtocolErrorSent,
    Registered,
    Role,
    StateChanged,
    drain,
)

KEY = m3ua.RoutingKey(local_rk_id=1, dpc=1)


def pair(**asp_kw: object) -> tuple[M3uaAssociation, M3uaAssociation]:
    asp = M3uaAssociation(AssociationConfig(name="gw", role=Role.ASP, **asp_kw))  # type: ignore[arg-type]
    sg = M3uaAssociation(AssociationConfig(name="stp", role=Role.SG, local_point_codes=(2,)))
    return asp, sg


def pump(a: M3uaAssociation, b: M3uaAssociation, now: float, *, drop: int = 0) -> list[bytes]:
    """Deliver messages both ways until quiet; the first ``drop`` messages from ``a`` are lost."""
    seen: list[bytes] = []
    for _ in range(50):
        moved = False
        for src, dst in ((a, b), (b, a)):
            while src.outgoing:
                out = src.outgoing.popleft()
                seen.append(out.data)
                moved = True
                if src is a and drop:
                    drop -= 1
                    continue
                dst.receive(out.data, now)
        if not moved:
            return seen
    raise AssertionError("endless exchange")


def types(messages: list[bytes]) -> list[tuple[int, int]]:
    return [(m[2], m[3]) for m in messages]


def test_registration_then_up_then_active() -> None:
    asp, sg = pair(routing_keys=(KEY,))
    asp.connection_made(0.0)
    sg.connection_made(0.0)
    seen = pump(asp, sg, 0.0)
    assert types(seen)[:2] == [(9, 1), (9, 2)]  # REG_REQ before ASPUP (osmo-stp's dynamic ASPs need it)
    assert (3, 1) in types(seen) and (4, 1) in types(seen) and (4, 3) in types(seen)
    assert asp.state is sg.state is AspState.ACTIVE
    assert asp.routing_contexts == (100,) == sg.routing_contexts
    _, events = drain(asp)
    assert isinstance(events[0], Registered)
    assert [e.state for e in events if isinstance(e, StateChanged)] == [AspState.INACTIVE, AspState.ACTIVE]
    assert any(isinstance(e, Notified) and e.status_info == m3ua.AsStateInfo.AS_ACTIVE for e in events)


def test_data_both_ways_and_queue_until_active() -> None:
    asp, sg = pair(routing_contexts=(7,))
    assert asp.send_data(1, 2, 5, b"early")  # queued while DOWN
    asp.connection_made(0.0)
    pump(asp, sg, 0.0)
    drain(asp)
    _, sg_events = drain(sg)
    got = [e for e in sg_events if isinstance(e, DataReceived)]
    assert got and got[0].data.data == b"early" and got[0].routing_context == 7 and got[0].data.sls == 5
    assert sg.send_data(2, 1, 3, b"reply")
    out = list(sg.outgoing)
    assert out[0].stream == 1 + 3  # DATA on a stream chosen by SLS, management on stream 0
    pump(asp, sg, 0.0)
    _, events = drain(asp)
    assert [e.data.data for e in events if isinstance(e, DataReceived)] == [b"reply"]


def test_send_queue_is_bounded() -> None:
    asp, _ = pair(max_queue=3)
    assert all(asp.send_data(1, 2, 0, b"x") for _ in range(3))
    assert not asp.send_data(1, 2, 0, b"x")


def test_lost_aspup_is_retransmitted_after_t_ack() -> None:
    asp, sg = pair(ack_timeout=2.0)
    asp.connection_made(0.0)
    pump(asp, sg, 0.0, drop=1)
    assert asp.state is AspState.DOWN
    assert asp.next_deadline() == 2.0
    asp.handle_timer(1.9)
    assert not asp.outgoing
    asp.handle_timer(2.0)
    pump(asp, sg, 2.0)
    assert asp.state is AspState.ACTIVE


def test_heartbeat_answered_and_loss_detected() -> None:
    asp, sg = pair(beat_interval=5.0, beat_loss=2)
    asp.connection_made(0.0)
    pump(asp, sg, 0.0)
    drain(asp)
    asp.handle_timer(5.0)
    seen = pump(asp, sg, 5.0)
    assert types(seen) == [(3, 3), (3, 6)]  # BEAT, BEAT_ACK echoing the data
    assert seen[0][8:] == seen[1][8:]
    for t in (10.0, 15.0):
        asp.handle_timer(t)
        asp.outgoing.clear()  # the SG is gone: nothing answers
    asp.handle_timer(20.0)
    _, events = drain(asp)
    assert any(isinstance(e, AssociationLost) for e in events)


def test_malformed_message_gets_err_and_association_stays_up() -> None:
    asp, sg = pair()
    asp.connection_made(0.0)
    pump(asp, sg, 0.0)
    drain(sg)
    sg.receive(bytes.fromhex("0100030900000008"), 1.0)  # ASPSM type 9 does not exist
    out, events = drain(sg)
    err = m3ua.decode(out[0].data)
    assert err.error_code == ErrorCode.UNSUPPORTED_MESSAGE_TYPE
    assert err.get(m3ua.Tag.DIAGNOSTIC_INFORMATION) == bytes.fromhex("0100030900000008")
    assert isinstance(events[0], ProtocolErrorSent)
    assert sg.state is AspState.ACTIVE
    sg.receive(b"\x01\x00", 1.0)  # truncated
    out, _ = drain(sg)
    assert m3ua.decode(out[0].data).error_code == ErrorCode.PROTOCOL_ERROR


def test_malformed_err_is_never_answered_with_an_err() -> None:
    # RFC 4666 §3.8.1: an ERR must not be answered with an ERR, however broken (else two gateways ping-pong).
    asp, sg = pair()
    asp.connection_made(0.0)
    pump(asp, sg, 0.0)
    drain(sg)
    for bad in (bytes.fromhex("0100000000000008"),  # ERR without its mandatory Error Code
                bytes.fromhex("010000000000000c000c0008"),  # parameter overrunning the message
                bytes.fromhex("0100")):  # fmt: skip
        sg.receive(bad, 1.0)
    out, events = drain(sg)
    assert sum(isinstance(e, MalformedErrorReceived) for e in events) == 2
    assert len(out) == 1 and m3ua.decode(out[0].data).error_code == ErrorCode.PROTOCOL_ERROR  # the truncated one
    assert sg.state is AspState.ACTIVE


def test_data_before_active_and_wrong_routing_context() -> None:
    _, sg = pair()
    sg.connection_made(0.0)
    sg.receive(m3ua.encode_data(1, 2, 3, 2, 0, 0, b"x", 1), 0.0)
    out, _ = drain(sg)
    assert m3ua.decode(out[0].data).error_code == ErrorCode.UNEXPECTED_MESSAGE
    asp = M3uaAssociation(AssociationConfig(role=Role.ASP, routing_contexts=(5,)))
    sg2 = M3uaAssociation(AssociationConfig(role=Role.SG, routing_contexts=(5,)))
    asp.connection_made(0.0)
    pump(asp, sg2, 0.0)
    drain(sg2)
    sg2.receive(m3ua.encode_data(1, 2, 3, 2, 0, 0, b"x", 9), 0.0)
    out, _ = drain(sg2)
    assert m3ua.decode(out[0].data).error_code == ErrorCode.INVALID_ROUTING_CONTEXT


def test_aspac_with_unknown_routing_context_is_refused() -> None:
    asp = M3uaAssociation(AssociationConfig(role=Role.ASP, routing_contexts=(9,)))
    sg = M3uaAssociation(AssociationConfig(role=Role.SG, routing_contexts=(5,)))
    asp.connection_made(0.0)
    pump(asp, sg, 0.0)
    assert sg.state is AspState.INACTIVE and asp.state is AspState.INACTIVE
    _, events = drain(asp)
    assert any(getattr(e, "code", None) == ErrorCode.INVALID_ROUTING_CONTEXT for e in events)


def test_destination_state_and_daud() -> None:
    asp, sg = pair()
    asp.connection_made(0.0)
    pump(asp, sg, 0.0)
    drain(asp)
    asp.receive(m3ua.encode(m3ua.ssnm(m3ua.Ssnm.DUNA, [m3ua.AffectedPointCode(2)])), 1.0)
    assert asp.unavailable == {2}
    asp.receive(m3ua.encode(m3ua.ssnm(m3ua.Ssnm.DAVA, [m3ua.AffectedPointCode(2)])), 2.0)
    assert asp.unavailable == set()
    _, events = drain(asp)
    assert [e.kind for e in events if isinstance(e, DestinationState)] == ["unavailable", "available"]
    sg.receive(m3ua.encode(m3ua.ssnm(m3ua.Ssnm.DAUD, [m3ua.AffectedPointCode(2), m3ua.AffectedPointCode(3)])), 3.0)
    out, _ = drain(sg)
    assert [m3ua.decode(o.data).msg_type for o in out] == [m3ua.Ssnm.DAVA, m3ua.Ssnm.DUNA]


def test_inactive_and_down() -> None:
    asp, sg = pair()
    asp.connection_made(0.0)
    pump(asp, sg, 0.0)
    asp.outgoing.append(_out(m3ua.aspia()))
    pump(asp, sg, 1.0)
    assert sg.state is AspState.INACTIVE and asp.state is AspState.INACTIVE
    asp.outgoing.append(_out(m3ua.aspdn()))
    pump(asp, sg, 2.0)
    assert sg.state is AspState.DOWN and asp.state is AspState.DOWN
    asp.connection_lost()
    assert asp.next_deadline() is None


def _out(msg: m3ua.Message) -> Outgoing:
    return Outgoing(0, m3ua.encode(msg))


def test_active_send_queue_is_bounded_when_the_transport_does_not_drain() -> None:
    asp, sg = pair(max_queue=5)
    asp.connection_made(0.0)
    pump(asp, sg, 0.0)
    assert asp.state is AspState.ACTIVE
    assert all(asp.send_data(1, 2, 0, b"x") for _ in range(5))
    assert not asp.send_data(1, 2, 0, b"x")  # refused, not hoarded
    asp.outgoing.clear()  # the transport drained
    assert asp.send_data(1, 2, 0, b"x")


def _sg_pair(registry: AsRegistry, mode: int) -> tuple[M3uaAssociation, M3uaAssociation]:
    asp = M3uaAssociation(AssociationConfig(role=Role.ASP, routing_contexts=(1,), traffic_mode=mode))
    sg = M3uaAssociation(AssociationConfig(role=Role.SG, routing_contexts=(1,)), registry=registry)
    asp.connection_made(0.0)
    pump(asp, sg, 0.0)
    return asp, sg


def test_override_makes_the_previous_asp_inactive() -> None:
    registry = AsRegistry()
    asp1, sg1 = _sg_pair(registry, m3ua.TrafficMode.OVERRIDE)
    assert sg1.state is AspState.ACTIVE
    _, sg2 = _sg_pair(registry, m3ua.TrafficMode.OVERRIDE)
    assert sg2.state is AspState.ACTIVE and sg1.state is AspState.INACTIVE
    # The first ASP is told: NTFY Other / Alternate ASP Active.
    pump(asp1, sg1, 1.0)
    _, events = drain(asp1)
    assert Notified(m3ua.StatusType.OTHER, m3ua.OtherInfo.ALTERNATE_ASP_ACTIVE) in events
    assert registry.active[1] == [sg2]


def test_loadshare_keeps_both_and_mixed_modes_are_refused() -> None:
    registry = AsRegistry()
    _, sg1 = _sg_pair(registry, m3ua.TrafficMode.LOADSHARE)
    _, sg2 = _sg_pair(registry, m3ua.TrafficMode.LOADSHARE)
    assert sg1.state is sg2.state is AspState.ACTIVE and registry.active[1] == [sg1, sg2]
    asp3, sg3 = _sg_pair(registry, m3ua.TrafficMode.OVERRIDE)
    assert sg3.state is AspState.INACTIVE
    _, events = drain(asp3)
    assert any(getattr(e, "code", None) == ErrorCode.UNSUPPORTED_TRAFFIC_MODE_TYPE for e in events)
    sg1.connection_lost()
    assert registry.active[1] == [sg2]


def test_ssnm_state_is_tracked_per_destination() -> None:
    asp, sg = pair()
    asp.connection_made(0.0)
    pump(asp, sg, 0.0)
    apc = [m3ua.AffectedPointCode(5)]
    asp.receive(m3ua.encode(m3ua.ssnm(m3ua.Ssnm.SCON, apc, congestion_level=2)), 1.0)
    asp.receive(m3ua.encode(m3ua.ssnm(m3ua.Ssnm.DUPU, apc, user_cause=(2, 3))), 1.0)  # inaccessible remote user SCCP
    asp.receive(m3ua.encode(m3ua.ssnm(m3ua.Ssnm.DRST, apc)), 1.0)
    assert asp.congested == {5: 2} and asp.user_unavailable == {5: (2, 3)} and asp.restricted == {5}
    asp.receive(m3ua.encode(m3ua.ssnm(m3ua.Ssnm.DAVA, apc)), 2.0)
    assert not asp.congested and not asp.user_unavailable and not asp.restricted and not asp.unavailable
