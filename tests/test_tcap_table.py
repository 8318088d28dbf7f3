"""TCAP dialogue table (Q.774 for the gateway's side), driven with bytes and a fake clock."""

from __future__ import annotations

from gateway.codecs import map as M
from gateway.codecs import tcap
from gateway.codecs.errors import GeneralProblem, PAbortCause, ProblemKind
from gateway.stack.tcap_table import (
    AbortIndication,
    BeginIndication,
    ContinueIndication,
    DialogueTable,
    DState,
    EndIndication,
    InvokeTimeout,
    Unhandled,
)
from gateway.stack.tid import tid_bytes

AC = M.AC_NETWORK_UNSTRUCTURED_SS_V2
MSC = "msc-gt"
USSD = M.encode_ussd_arg(M.ussd_arg("*123#"))


def table(**kw: object) -> DialogueTable:
    return DialogueTable(supported_acs=[AC, M.AC_SHORT_MSG_GATEWAY_V3, M.AC_SHORT_MSG_GATEWAY_V2],
                         **kw)  # type: ignore[arg-type]


def sent(t: DialogueTable) -> list[tuple[object, tcap.TcapMessage]]:
    out = [(peer, tcap.decode(data)) for peer, data in t.outgoing]
    t.outgoing.clear()
    return out


def events(t: DialogueTable) -> list[object]:
    out = list(t.events)
    t.events.clear()
    return out


def begin_from_msc(t: DialogueTable, otid: bytes = b"\x00\x00\x00\x07", ac: tuple[int, ...] = AC,
                   now: float = 0.0) -> None:  # fmt: skip
    t.receive(tcap.encode(tcap.Begin(otid, tcap.Aarq(ac), (tcap.Invoke(1, 59, USSD),))), MSC, now)


def test_pull_dialogue_through_to_end() -> None:
    t = table()
    begin_from_msc(t)
    (ind,) = events(t)
    assert isinstance(ind, BeginIndication) and ind.ac == AC and ind.components[0].opcode == 59
    d = ind.dialogue
    assert d.state is DState.INITIAL_RECEIVED and d.remote == b"\x00\x00\x00\x07"
    iid = t.new_invoke_id(d)
    t.continue_(d, (tcap.Invoke(iid, 60, USSD),), now=1.0)
    ((peer, msg),) = sent(t)
    assert peer == MSC and isinstance(msg, tcap.Continue)
    assert msg.dtid == b"\x00\x00\x00\x07" and msg.otid == tid_bytes(d.did)
    assert msg.dialogue == tcap.Aare(AC)  # the first answer accepts the dialogue
    t.receive(tcap.encode(tcap.Continue(b"\x00\x00\x00\x07", msg.otid, None,
                                        (tcap.ReturnResult(iid, 60, M.encode_ussd_res(M.ussd_res("1"))),))), MSC, 2.0)
    (ind2,) = events(t)
    assert isinstance(ind2, ContinueIndication) and d.invokes == {}
    t.end(d, (tcap.ReturnResult(1, 59, M.encode_ussd_res(M.ussd_res("Bye"))),))
    ((_, end),) = sent(t)
    assert isinstance(end, tcap.End) and end.dialogue is None and end.dtid == b"\x00\x00\x00\x07"
    assert len(t) == 0 and len(t.tids) == 0 and len(t.timers) == 0


def test_continue_for_unknown_dtid_gets_p_abort() -> None:
    t = table()
    t.receive(tcap.encode(tcap.Continue(b"\x01\x02", b"\x00\x00\x00\x99", None, ())), MSC, 0.0)
    ((peer, msg),) = sent(t)
    assert msg == tcap.Abort(b"\x01\x02", PAbortCause.UNRECOGNIZED_TRANSACTION_ID) and peer == MSC


def test_full_table_gets_resource_limitation() -> None:
    t = table(capacity=1)
    begin_from_msc(t, b"\x00\x00\x00\x01")
    begin_from_msc(t, b"\x00\x00\x00\x02")
    msgs = [m for _, m in sent(t)]
    assert msgs == [tcap.Abort(b"\x00\x00\x00\x02", PAbortCause.RESOURCE_LIMITATION)]


def test_unsupported_application_context_is_refused_with_aare() -> None:
    t = table()
    begin_from_msc(t, ac=(0, 4, 0, 0, 1, 0, 19, 3))
    ((_, msg),) = sent(t)
    assert isinstance(msg, tcap.Abort) and isinstance(msg.dialogue, tcap.Aare)
    assert msg.dialogue.result == tcap.REJECT_PERMANENT
    assert (msg.dialogue.diagnostic_source, msg.dialogue.diagnostic) == (tcap.DIAG_USER, tcap.DIAG_AC_NOT_SUPPORTED)
    assert msg.dialogue.application_context == AC  # the version we support, offered back
    assert len(t) == 0


def test_badly_formatted_transaction_gets_p_abort_to_its_otid() -> None:
    t = table()
    t.receive(bytes.fromhex("620b4804deadbeef6b03280103"), MSC, 0.0)
    ((_, msg),) = sent(t)
    assert msg == tcap.Abort(bytes.fromhex("deadbeef"), PAbortCause.BADLY_FORMATTED_TRANSACTION_PORTION)
    t.receive(b"\x62\x03\x49\x01\x01", MSC, 0.0)  # no otid to answer to: dropped, and said so
    assert not t.outgoing and isinstance(events(t)[-1], Unhandled)


def test_bad_component_gets_reject_in_the_dialogue() -> None:
    t = table()
    begin_from_msc(t)
    d = events(t)[0].dialogue  # type: ignore[attr-defined]
    t.continue_(d, (tcap.Invoke(t.new_invoke_id(d), 60, USSD),), now=0.0)
    sent(t)
    bad = bytes.fromhex("a1 03 02 01 07".replace(" ", ""))  # Invoke without an operation code
    body = bytes.fromhex("480400000007") + b"\x49\x04" + tid_bytes(d.did) + bytes((0x6C, len(bad))) + bad
    t.receive(bytes((0x65, len(body))) + body, MSC, 1.0)
    ((_, msg),) = sent(t)
    assert isinstance(msg, tcap.Continue)
    assert msg.components == (tcap.Reject(7, ProblemKind.GENERAL, GeneralProblem.MISTYPED_COMPONENT),)


def test_idle_and_invoke_timers() -> None:
    t = table(idle_timeout=60.0, invoke_timeout=30.0)
    begin_from_msc(t)
    d = events(t)[0].dialogue  # type: ignore[attr-defined]
    t.continue_(d, (tcap.Invoke(t.new_invoke_id(d), 60, USSD),), now=0.0)
    sent(t)
    assert t.next_deadline() is not None and t.next_deadline() <= 30.0 + 0.05  # type: ignore[operator]
    t.handle_timer(30.0)
    assert [type(e) for e in events(t)] == [InvokeTimeout]
    t.handle_timer(59.9)
    assert not t.events
    t.handle_timer(60.0)
    (abort,) = events(t)
    assert isinstance(abort, AbortIndication) and abort.local_reason == "idle-timeout"
    ((_, msg),) = sent(t)
    assert msg == tcap.Abort(b"\x00\x00\x00\x07", None, tcap.Abrt(tcap.ABORT_SOURCE_USER))
    assert len(t) == 0


def test_push_begin_answered_end_refused_and_aborted() -> None:
    t = table()
    open_info = (M.encode_dialogue_external(M.MapOpen(M.AddressString.imsi("262011234567890"))),)
    d = t.begin("vlr", AC, (tcap.Invoke(1, 61, USSD),), open_info, now=0.0)
    ((peer, msg),) = sent(t)
    assert peer == "vlr" and msg == tcap.Begin(tid_bytes(d.did), tcap.Aarq(AC, open_info), (tcap.Invoke(1, 61, USSD),))
    t.receive(tcap.encode(tcap.End(tid_bytes(d.did), tcap.Aare(AC), (tcap.ReturnResult(1, None, None),))), "vlr", 1.0)
    (end,) = events(t)
    assert isinstance(end, EndIndication) and len(t) == 0 and len(t.timers) == 0
    d2 = t.begin("vlr", AC, (tcap.Invoke(1, 61, USSD),), now=0.0)
    sent(t)
    refusal = tcap.Aare(AC, tcap.REJECT_PERMANENT, tcap.DIAG_USER, tcap.DIAG_AC_NOT_SUPPORTED)
    t.receive(tcap.encode(tcap.Abort(tid_bytes(d2.did), None, refusal)), "vlr", 1.0)
    (ab,) = events(t)
    assert isinstance(ab, AbortIndication) and ab.user_abort == refusal
    d3 = t.begin("vlr", AC, (tcap.Invoke(1, 61, USSD),), now=0.0)
    t.receive(tcap.encode(tcap.Abort(tid_bytes(d3.did), PAbortCause.RESOURCE_LIMITATION)), "vlr", 1.0)
    (ab3,) = events(t)
    assert isinstance(ab3, AbortIndication) and ab3.p_abort_cause == PAbortCause.RESOURCE_LIMITATION


def test_result_for_unknown_invoke_is_rejected() -> None:
    t = table()
    d = t.begin("vlr", AC, (tcap.Invoke(1, 60, USSD),), now=0.0)
    sent(t)
    t.receive(tcap.encode(tcap.Continue(b"\x00\x00\x00\x05", tid_bytes(d.did), tcap.Aare(AC),
                                        (tcap.ReturnResult(9, 60, M.encode_ussd_res(M.ussd_res("?"))),))), "vlr", 0.0)
    msgs = [m for _, m in sent(t)]
    assert msgs and isinstance(msgs[0], tcap.Continue)
    assert msgs[0].components == (tcap.Reject(9, ProblemKind.RETURN_RESULT, 0),)
    assert d.state is DState.ACTIVE and d.remote == b"\x00\x00\x00\x05"


def test_badly_formatted_begin_with_a_derivable_otid_gets_p_abort() -> None:
    """Q.774 §3.2.1.2: the transaction portion cannot be parsed (here the outer length overruns the message), but the
    otid can be derived: P-Abort badlyFormattedTransactionPortion to it (it used to be dropped in silence)."""
    t = table()
    good = tcap.encode(tcap.Begin(b"\x00\x00\x00\x05", tcap.Aarq(AC), (tcap.Invoke(1, 59, USSD),)))
    t.receive(b"\x62\x7f" + good[2:], MSC, 0.0)
    assert sent(t) == [(MSC, tcap.Abort(b"\x00\x00\x00\x05", PAbortCause.BADLY_FORMATTED_TRANSACTION_PORTION))]
    assert len(t) == 0


def test_unrecognized_message_type_with_an_otid_gets_p_abort() -> None:
    t = table()
    t.receive(b"\x69\x06\x48\x04\x00\x00\x00\x06", MSC, 0.0)
    assert sent(t) == [(MSC, tcap.Abort(b"\x00\x00\x00\x06", PAbortCause.UNRECOGNIZED_MESSAGE_TYPE))]
    t.receive(b"\x69\x02\x01\x00", MSC, 0.0)  # no otid to be derived: discarded
    assert sent(t) == []


def test_incorrect_transaction_portion_and_unaddressable_otids() -> None:
    t = table()
    t.receive(b"\x65\x06\x48\x04\x00\x00\x00\x07", MSC, 0.0)  # Continue without its dtid
    assert sent(t) == [(MSC, tcap.Abort(b"\x00\x00\x00\x07", PAbortCause.INCORRECT_TRANSACTION_PORTION))]
    t.receive(b"\x62\x07\x48\x05\x01\x02\x03\x04\x05", MSC, 0.0)  # a 5-octet otid cannot be answered (Q.773 §3.1)
    assert sent(t) == []
    assert any(isinstance(e, Unhandled) and e.what == "discarded" for e in events(t))


def test_resource_limitation_when_the_table_is_full() -> None:
    t = table(capacity=1)
    for otid in (b"\x00\x00\x00\x08", b"\x00\x00\x00\x09"):
        t.receive(tcap.encode(tcap.Begin(otid, tcap.Aarq(AC), (tcap.Invoke(1, 59, USSD),))), MSC, 0.0)
    assert sent(t) == [(MSC, tcap.Abort(b"\x00\x00\x00\x09", PAbortCause.RESOURCE_LIMITATION))]
