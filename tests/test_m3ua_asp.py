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


# ---- RFC 4666 §4.3 / §3.8.1 answers the SG owes (docs/m3ua-conformance.md); each failed on the code before ----


def _active_sg(registry: AsRegistry | None = None) -> tuple[M3uaAssociation, M3uaAssociation]:
    asp = M3uaAssociation(AssociationConfig(role=Role.ASP, routing_contexts=(1,)))
    sg = M3uaAssociation(AssociationConfig(role=Role.SG, routing_contexts=(1,)), registry=registry)
    asp.connection_made(0.0)
    pump(asp, sg, 0.0)
    assert sg.state is AspState.ACTIVE
    drain(asp)
    drain(sg)
    return asp, sg


def _answers(a: M3uaAssociation, message: m3ua.Message | bytes, stream: int | None = None) -> list[m3ua.Message]:
    data = message if isinstance(message, bytes) else m3ua.encode(message)
    if stream is None:
        a.receive(data, 1.0)
    else:
        a.receive(data, 1.0, stream)
    out, _ = drain(a)
    return [m3ua.decode(o.data) for o in out]


def _kinds(messages: list[m3ua.Message]) -> list[tuple[int, int, int | None]]:
    return [(m.msg_class, m.msg_type, m.error_code if m.msg_class == 0 and m.msg_type == 0 else None)
            for m in messages]  # fmt: skip


ERR, ASPUP_ACK, ASPAC_ACK, ASPIA_ACK, NTFY = (0, 0), (3, 4), (4, 3), (4, 4), (0, 1)


def test_aspup_while_active_gets_err_and_ack_and_the_asp_goes_inactive() -> None:
    # RFC 4666 §4.3.4.1; ETSI TS 102 381 m3ua-sgp-aspsm-o-003: ERR (Unexpected Message), ASP Up Ack, NTFY.
    registry = AsRegistry()
    _, sg = _active_sg(registry)
    sg.receive(m3ua.encode(m3ua.reg_req([m3ua.RoutingKey(7, 2)])), 1.0)
    drain(sg)
    aspup = m3ua.encode(m3ua.aspup())
    got = _answers(sg, aspup)
    assert _kinds(got) == [(0, 0, ErrorCode.UNEXPECTED_MESSAGE), (3, 4, None), (0, 1, None)]
    assert got[0].get(m3ua.Tag.DIAGNOSTIC_INFORMATION) == aspup
    assert got[2].status == (m3ua.StatusType.AS_STATE_CHANGE, m3ua.AsStateInfo.AS_INACTIVE)
    assert sg.state is AspState.INACTIVE
    assert registry.active[1] == []  # the AS registry no longer counts it as serving the AS
    assert sg._sg_rcs == {}  # "all registered Routing Keys are considered deregistered"


def test_duplicate_aspup_and_aspac_are_acknowledged_without_a_new_ntfy() -> None:
    # RFC 4666 §4.3.4.1: ASP Up while ASP-INACTIVE gets the Ack and "no further action"; the AS state did not change,
    # so no NTFY either for a duplicate ASP Active (ETSI TS 102 381 m3ua-sgp-aspsm-o-001, m3ua-sgp-asptm-o-001).
    _, sg = _active_sg()
    assert [(m.msg_class, m.msg_type) for m in _answers(sg, m3ua.aspac())] == [ASPAC_ACK]
    assert sg.state is AspState.ACTIVE
    assert [(m.msg_class, m.msg_type) for m in _answers(sg, m3ua.aspia())][:1] == [ASPIA_ACK]
    assert [(m.msg_class, m.msg_type) for m in _answers(sg, m3ua.aspup())] == [ASPUP_ACK]
    assert sg.state is AspState.INACTIVE


def test_beat_ack_echoes_the_beat_parameters_unchanged() -> None:
    # RFC 4666 §3.5.6: "without any change" - no Heartbeat Data made up when the BEAT had none.
    _, sg = _active_sg()
    bare = m3ua.Message(m3ua.MsgClass.ASPSM, m3ua.Aspsm.BEAT)
    assert _answers(sg, bare) == [m3ua.Message(m3ua.MsgClass.ASPSM, m3ua.Aspsm.BEAT_ACK)]
    odd = m3ua.beat(b"M3UA rocks!")  # 11 octets: padded on the wire, echoed as received
    assert _answers(sg, odd) == [m3ua.beat_ack(b"M3UA rocks!")]


def test_messages_for_the_other_role_are_unexpected_and_change_nothing() -> None:
    # RFC 4666 §3.8.1 Unexpected Message: ACKs sent to an SG, SG requests sent to an ASP, SGP-only SSNM to an SG.
    asp, sg = _active_sg()
    apc = [m3ua.AffectedPointCode(5)]
    for msg in (m3ua.Message(3, 4), m3ua.aspdn_ack(), m3ua.aspia_ack(), m3ua.ssnm(m3ua.Ssnm.DUNA, apc),
                m3ua.ssnm(m3ua.Ssnm.DAVA, apc), m3ua.ssnm(m3ua.Ssnm.DRST, apc), m3ua.ssnm(m3ua.Ssnm.DUPU, apc),
                m3ua.reg_rsp([m3ua.RegistrationResult(1, 0, 5)]), m3ua.dereg_rsp([])):
        assert _kinds(_answers(sg, msg)) == [(0, 0, ErrorCode.UNEXPECTED_MESSAGE)], msg
    assert sg.state is AspState.ACTIVE and not sg.unavailable and sg.routing_contexts == (1,)
    assert _answers(sg, m3ua.ssnm(m3ua.Ssnm.SCON, apc, congestion_level=1)) == []  # SCON may come from an ASP
    for msg in (m3ua.aspia(), m3ua.aspdn(), m3ua.dereg_req([1])):
        assert _kinds(_answers(asp, msg)) == [(0, 0, ErrorCode.UNEXPECTED_MESSAGE)], msg
    assert asp.state is AspState.ACTIVE


def test_aspia_before_aspup_is_unexpected() -> None:
    sg = M3uaAssociation(AssociationConfig(role=Role.SG, routing_contexts=(1,)))
    sg.connection_made(0.0)
    assert _kinds(_answers(sg, m3ua.aspia())) == [(0, 0, ErrorCode.UNEXPECTED_MESSAGE)]


def test_last_active_asp_going_inactive_is_told_as_pending_then_inactive() -> None:
    # RFC 4666 §4.3.4.4 / §4.3.2 (T(r) = 0: nothing is buffered); ETSI TS 102 381 m3ua-sgp-asptm-v-008.
    registry = AsRegistry()
    _, sg1 = _active_sg(registry)
    _, sg2 = _active_sg(registry)
    got = _answers(sg1, m3ua.aspia())
    assert [(m.msg_class, m.msg_type) for m in got] == [ASPIA_ACK]  # loadshare: sg2 keeps the AS active
    got = _answers(sg2, m3ua.aspia())
    assert [m.status for m in got[1:]] == [(1, m3ua.AsStateInfo.AS_PENDING), (1, m3ua.AsStateInfo.AS_INACTIVE)]


def test_broadcast_traffic_mode_is_unsupported() -> None:
    # RFC 4666 §3.8.1; ETSI TS 102 381 m3ua-sgp-asptm-i-003: the node gives each message to one ASP, never to all.
    _, sg = _active_sg()
    sg.receive(m3ua.encode(m3ua.aspia()), 1.0)
    drain(sg)
    got = _answers(sg, m3ua.aspac(m3ua.TrafficMode.BROADCAST))
    assert _kinds(got) == [(0, 0, ErrorCode.UNSUPPORTED_TRAFFIC_MODE_TYPE)]
    assert sg.state is AspState.INACTIVE


def test_invalid_routing_context_err_names_it_and_quotes_the_message() -> None:
    # RFC 4666 §3.8.1: Invalid Routing Context; "the Diagnostic Information SHOULD contain the offending message".
    _, sg = _active_sg()
    data = m3ua.encode_data(2, 1, 3, 2, 0, 0, b"x", 9)
    (err,) = _answers(sg, data)
    assert err.error_code == ErrorCode.INVALID_ROUTING_CONTEXT and err.routing_contexts == (9,)
    assert err.get(m3ua.Tag.DIAGNOSTIC_INFORMATION) == data[:40]
    sg.receive(m3ua.encode(m3ua.aspia()), 1.0)
    drain(sg)
    (err,) = _answers(sg, m3ua.aspac(routing_contexts=(1, 8)))
    assert err.error_code == ErrorCode.INVALID_ROUTING_CONTEXT and err.routing_contexts == (8,)
    (err,) = _answers(sg, data)  # DATA while ASP-INACTIVE quotes the DATA too
    assert err.error_code == ErrorCode.UNEXPECTED_MESSAGE and err.get(m3ua.Tag.DIAGNOSTIC_INFORMATION) == data[:40]


def test_deregistration_answers_each_routing_context_with_its_status() -> None:
    # RFC 4666 §3.6.4 / §4.4.2: not registered, still active, or deregistered - not "successfully" for everything.
    sg = M3uaAssociation(AssociationConfig(role=Role.SG))
    sg.connection_made(0.0)
    sg.receive(m3ua.encode(m3ua.reg_req([m3ua.RoutingKey(1, 2), m3ua.RoutingKey(2, 3)])), 0.0)
    drain(sg)
    for msg in (m3ua.aspup(), m3ua.aspac(routing_contexts=(100,))):
        sg.receive(m3ua.encode(msg), 0.0)
    drain(sg)
    (rsp,) = _answers(sg, m3ua.dereg_req([100, 101, 55]))
    assert [(r.routing_context, r.status) for r in rsp.deregistration_results] == [
        (100, m3ua.DeregistrationStatus.ASP_CURRENTLY_ACTIVE_FOR_ROUTING_CONTEXT),
        (101, m3ua.DeregistrationStatus.SUCCESSFULLY_DEREGISTERED), (55, m3ua.DeregistrationStatus.NOT_REGISTERED)]
    assert sg._sg_rcs == {1: 100}


def test_registration_of_an_invalid_key_is_refused_in_the_reg_rsp() -> None:
    # RFC 4666 §4.4.1; ETSI TS 102 381 m3ua-sgp-rkm-i-003: a Routing Key without DPC -> "Invalid Routing Key".
    sg = M3uaAssociation(AssociationConfig(role=Role.SG))
    sg.connection_made(0.0)
    no_dpc = m3ua.param(m3ua.Tag.LOCAL_ROUTING_KEY_IDENTIFIER, (4).to_bytes(4, "big"))
    msg = m3ua.Message(9, 1, (m3ua.Parameter(m3ua.Tag.ROUTING_KEY, no_dpc),
                              m3ua.Parameter(m3ua.Tag.ROUTING_KEY, m3ua.RoutingKey(5, 2).encode())))
    (rsp,) = _answers(sg, msg)
    assert [(r.local_rk_id, r.status) for r in rsp.registration_results] == [
        (4, m3ua.RegistrationStatus.INVALID_ROUTING_KEY), (5, m3ua.RegistrationStatus.SUCCESSFULLY_REGISTERED)]


def test_unexpected_parameter_is_refused() -> None:
    # RFC 4666 §3.8.1 Unexpected Parameter: an ASP Up carrying a Routing Context (§3.5.1 defines none).
    sg = M3uaAssociation(AssociationConfig(role=Role.SG, routing_contexts=(1,)))
    sg.connection_made(0.0)
    bad = m3ua.Message(3, 1, (m3ua.Parameter(m3ua.Tag.ROUTING_CONTEXT, (1).to_bytes(4, "big")),))
    assert _kinds(_answers(sg, bad)) == [(0, 0, ErrorCode.UNEXPECTED_PARAMETER)]
    assert sg.state is AspState.DOWN


def test_asp_identifier_in_use_is_invalid() -> None:
    # RFC 4666 §3.8.1 Invalid ASP Identifier: not unique among the ASPs that are up; free again once that one is down.
    registry = AsRegistry()
    sg1, sg2 = (M3uaAssociation(AssociationConfig(role=Role.SG), registry=registry) for _ in range(2))
    for sg in (sg1, sg2):
        sg.connection_made(0.0)
    assert [(m.msg_class, m.msg_type) for m in _answers(sg1, m3ua.aspup(42))][:1] == [ASPUP_ACK]
    assert _kinds(_answers(sg2, m3ua.aspup(42))) == [(0, 0, ErrorCode.INVALID_ASP_IDENTIFIER)]
    assert sg2.state is AspState.DOWN
    sg1.connection_lost()
    assert [(m.msg_class, m.msg_type) for m in _answers(sg2, m3ua.aspup(42))][:1] == [ASPUP_ACK]


def test_messages_on_the_wrong_sctp_stream() -> None:
    # RFC 4666 §3.8.1 Invalid Stream Identifier: management off stream 0; DATA on stream 0 (ETSI TS 102 381
    # m3ua-sgp-mtr-v-003, change request). Over TCP there are no streams (stream None): nothing to check.
    _, sg = _active_sg()
    data = m3ua.encode_data(2, 1, 3, 2, 0, 0, b"x", 1)
    assert _kinds(_answers(sg, data, stream=0)) == [(0, 0, ErrorCode.INVALID_STREAM_IDENTIFIER)]
    ntfy = m3ua.ntfy(m3ua.StatusType.OTHER, m3ua.OtherInfo.ASP_FAILURE)
    assert _kinds(_answers(sg, ntfy, stream=3)) == [(0, 0, ErrorCode.INVALID_STREAM_IDENTIFIER)]
    sg.receive(data, 1.0, 5)
    _, events = drain(sg)
    assert [type(e) for e in events] == [DataReceived]


def test_data_for_a_point_code_the_sg_does_not_serve_is_discarded_with_duna() -> None:
    # RFC 4666 §3.4.1: the SG (point code 1) reaches nothing else; it tells the ASP instead of consuming the DATA.
    asp = M3uaAssociation(AssociationConfig(role=Role.ASP, routing_contexts=(1,)))
    sg = M3uaAssociation(AssociationConfig(role=Role.SG, routing_contexts=(1,), local_point_codes=(1,)))
    asp.connection_made(0.0)
    pump(asp, sg, 0.0)
    drain(sg)
    sg.receive(m3ua.encode_data(2, 200, 3, 2, 0, 0, b"x", 1), 1.0)
    out, events = drain(sg)
    assert [m3ua.decode(o.data) for o in out] == [m3ua.ssnm(m3ua.Ssnm.DUNA, [m3ua.AffectedPointCode(200)],
                                                            routing_contexts=(1,))]  # fmt: skip
    assert not any(isinstance(e, DataReceived) for e in events)
    sg.receive(m3ua.encode_data(2, 1, 3, 2, 0, 0, b"x", 1), 1.0)
    assert any(isinstance(e, DataReceived) for e in drain(sg)[1])


def test_invalid_parameter_value_and_network_appearance() -> None:
    # RFC 4666 §3.8.1: Invalid Parameter Value (SCON level above 3, NTFY Status Type 9); Invalid Network Appearance
    # (the SG configures none) with the value in the ERR.
    _, sg = _active_sg()
    scon = m3ua.ssnm(m3ua.Ssnm.SCON, [m3ua.AffectedPointCode(5)], congestion_level=7)
    assert _kinds(_answers(sg, scon)) == [(0, 0, ErrorCode.INVALID_PARAMETER_VALUE)]
    assert _kinds(_answers(sg, m3ua.ntfy(9, 1))) == [(0, 0, ErrorCode.INVALID_PARAMETER_VALUE)]
    (err,) = _answers(sg, m3ua.encode_data(2, 1, 3, 2, 0, 0, b"x", 1, network_appearance=8))
    assert err.error_code == ErrorCode.INVALID_NETWORK_APPEARANCE and err.u32(m3ua.Tag.NETWORK_APPEARANCE) == 8
    daud = m3ua.ssnm(m3ua.Ssnm.DAUD, [m3ua.AffectedPointCode(1)], network_appearance=8)
    assert _kinds(_answers(sg, daud)) == [(0, 0, ErrorCode.INVALID_NETWORK_APPEARANCE)]


def test_override_ntfy_names_the_asp_that_took_over() -> None:
    # RFC 4666 §3.8.2; ETSI TS 102 381 m3ua-sgp-asptm-v-015: NTFY (Alternate ASP Active) with the new ASP's id.
    registry = AsRegistry()
    sg1, sg2 = (M3uaAssociation(AssociationConfig(role=Role.SG, routing_contexts=(1,)), registry=registry)
                for _ in range(2))  # fmt: skip
    for sg, asp_id in ((sg1, 1), (sg2, 2)):
        sg.connection_made(0.0)
        for msg in (m3ua.aspup(asp_id), m3ua.aspac(m3ua.TrafficMode.OVERRIDE)):
            sg.receive(m3ua.encode(msg), 0.0)
    (ntfy,) = [m for m in (m3ua.decode(o.data) for o in drain(sg1)[0]) if m.status == (2, 2)]
    assert ntfy.u32(m3ua.Tag.ASP_IDENTIFIER) == 2
