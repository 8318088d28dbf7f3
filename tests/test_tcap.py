"""TCAP codec (Q.773): the hand-tuned path against the asn1tools reference, captures, and error causes."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.codecs import tcap, tcap_asn1
from gateway.codecs.errors import CodecError, GeneralProblem, PAbortCause, ProblemKind, TcapError
from tests.strategies import messages
from tests.support.vectors import vector_hex

DESIGN_BEGIN = bytes.fromhex(
    "62454804000000016b1e281c060700118605010101a011600f80020780a1090607040000010013026c1da11b02010102013b3013"
    "04010f0405aa986c3602800791947102000010"
)


@given(messages)
@settings(max_examples=400, deadline=None)
def test_fast_path_equals_asn1tools(msg: tcap.TcapMessage) -> None:
    ours = tcap.encode(msg)
    assert ours == tcap_asn1.encode(msg)
    assert tcap.decode(ours) == msg
    assert tcap_asn1.decode(ours) == msg
    assert tcap._decode_general(ours) == msg


def test_design_begin_roundtrips_exactly() -> None:
    msg = tcap.decode(DESIGN_BEGIN)
    assert isinstance(msg, tcap.Begin)
    assert msg.otid == b"\x00\x00\x00\x01"
    assert msg.dialogue == tcap.Aarq((0, 4, 0, 0, 1, 0, 19, 2))
    assert msg.components[0] == tcap.Invoke(1, 59, bytes.fromhex("301304010f0405aa986c3602800791947102000010"))
    assert tcap.encode(msg) == DESIGN_BEGIN


@pytest.mark.parametrize(("name", "otid", "string_len"), [("go_tcap_short.hex", "00000002", 4),
                                                          ("go_tcap_long.hex", "0000000a", 140)])
def test_go_library_vectors(name: str, otid: str, string_len: int) -> None:
    data = vector_hex(name)
    msg = tcap.decode(data)
    assert isinstance(msg, tcap.Begin) and msg.otid.hex() == otid
    assert isinstance(msg.dialogue, tcap.Aarq) and msg.dialogue.application_context == (0, 4, 0, 0, 1, 0, 19, 2)
    assert len(msg.dialogue.user_information) == 1
    inv = msg.components[0]
    assert isinstance(inv, tcap.Invoke) and inv.invoke_id == 0 and inv.opcode == 59
    assert inv.parameter is not None and string_len in (inv.parameter[6], inv.parameter[8])
    assert tcap.encode(msg) == data  # long-form lengths are re-encoded as they came (minimal)


def test_indefinite_lengths_and_unknown_tags_are_tolerated() -> None:
    # Begin with indefinite lengths for the message and the component portion.
    data = bytes.fromhex("6280" "480401020304" "6c80" "a1080201010201 3b3000".replace(" ", "") + "0000" "0000")
    msg = tcap.decode(data)
    assert msg == tcap.Begin(b"\x01\x02\x03\x04", None, (tcap.Invoke(1, 59, b"\x30\x00"),))
    # Global operation code form
    data = tcap.encode(tcap.Begin(b"\x01", None, (tcap.Invoke(1, (1, 2, 840, 5), None),)))
    assert tcap.decode(data).components[0].opcode == (1, 2, 840, 5)


@pytest.mark.parametrize(
    ("data", "cause"),
    [
        (bytes.fromhex("6a03480101"), PAbortCause.UNRECOGNIZED_MESSAGE_TYPE),
        (bytes.fromhex("6203490101"), PAbortCause.INCORRECT_TRANSACTION_PORTION),  # Begin with a dtid
        (bytes.fromhex("6503480101"), PAbortCause.INCORRECT_TRANSACTION_PORTION),  # Continue without dtid
        (bytes.fromhex("620748050102030405"), PAbortCause.INCORRECT_TRANSACTION_PORTION),  # 5-octet TID
        (bytes.fromhex("620a48040102030499"), PAbortCause.BADLY_FORMATTED_TRANSACTION_PORTION),  # overrun
        (bytes.fromhex("6207480401020304" "0c"), PAbortCause.BADLY_FORMATTED_TRANSACTION_PORTION),
    ],
)
def test_transaction_portion_errors_give_p_abort_cause(data: bytes, cause: PAbortCause) -> None:
    with pytest.raises(TcapError) as info:
        tcap.decode(data)
    assert info.value.p_abort_cause == cause
    assert info.value.reject is None


def test_otid_is_reported_for_p_abort() -> None:
    with pytest.raises(TcapError) as info:
        tcap.decode(bytes.fromhex("620b4804deadbeef6b03280103"))
    assert info.value.otid == bytes.fromhex("deadbeef")


@pytest.mark.parametrize(
    ("components", "problem", "invoke_id"),
    [
        ("a9030201057f", GeneralProblem.UNRECOGNIZED_COMPONENT, 5),
        ("a103020107", GeneralProblem.MISTYPED_COMPONENT, 7),  # Invoke without an operation code
        ("a1060201070401ff", GeneralProblem.MISTYPED_COMPONENT, 7),  # opcode not INTEGER/OID
        ("a1050201", GeneralProblem.BADLY_STRUCTURED_COMPONENT, None),
    ],
)
def test_component_errors_give_reject(components: str, problem: GeneralProblem, invoke_id: int | None) -> None:
    comp = bytes.fromhex(components)
    good = tcap.encode_component(tcap.Invoke(1, 59, b"\x30\x00"))
    body = bytes.fromhex("480401020304") + bytes((0x6C, len(good) + len(comp))) + good + comp
    data = bytes((0x62, len(body))) + body
    with pytest.raises(TcapError) as info:
        tcap.decode(data)
    err = info.value
    assert err.reject == (ProblemKind.GENERAL, problem)
    assert err.invoke_id == invoke_id
    assert err.p_abort_cause is None
    # The good component before the bad one and the transaction are kept for the answer.
    assert err.partial == tcap.Begin(b"\x01\x02\x03\x04", None, (tcap.Invoke(1, 59, b"\x30\x00"),))


@given(st.binary(max_size=120))
@settings(max_examples=1000, deadline=None)
def test_fuzz_random_bytes(data: bytes) -> None:
    with contextlib.suppress(CodecError):
        tcap.decode(data)


@given(messages, st.data())
@settings(max_examples=400, deadline=None)
def test_fuzz_mutated(msg: tcap.TcapMessage, data: st.DataObject) -> None:
    raw = bytearray(tcap.encode(msg))
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(raw)))
    for candidate in (bytes(raw), bytes(raw[:cut])):
        try:
            fast = tcap.decode(candidate)
        except CodecError:
            continue
        # Whatever the fast path accepts, the general path must read the same way.
        assert tcap._decode_general(candidate) == fast


@pytest.mark.parametrize("depth", [40, 1200])
def test_deeply_nested_indefinite_lengths_are_a_codec_error(depth: int) -> None:
    # Hostile input: a Begin whose dialogue portion nests indefinite lengths; must not exhaust the Python stack.
    data = bytes.fromhex("6280") + bytes.fromhex("3080") * depth + b"\x00\x00" * (depth + 1)
    with pytest.raises(CodecError):
        tcap.decode(data)


# ---- defects the fuzzers found (fuzz/crashers/tcap, fuzz/crashers/layers) ----------------------------------------

AC = (0, 4, 0, 0, 1, 0, 19, 2)


@pytest.mark.parametrize(
    "msg",
    [
        tcap.End(b"\x01", tcap.Abrt(1920)),  # abort-source was masked to one octet
        tcap.Begin(b"\x01", None, (tcap.Invoke(1, 59, None, 300),)),  # linked ID was masked
        tcap.Begin(b"\x01", None, (tcap.Reject(1, 1, 300), tcap.Reject(None, 0, -1))),  # problem: ValueError
        tcap.Continue(b"\x01", b"\x02", tcap.Aare(AC, 300, 2, 1000)),  # result: a wrong [2] length
    ],
)
def test_integers_decoded_beyond_one_octet_re_encode_whole(msg: tcap.TcapMessage) -> None:
    data = tcap.encode(msg)
    assert tcap.decode(data) == msg
    assert tcap_asn1.decode(data) == msg
    assert tcap_asn1.encode(msg) == data


@pytest.mark.parametrize("component", [
    "a2 0c 020101 3007 020138 0400 ff00",  # ReturnResult: octets after the result parameter
    "a3 08 020101 020122 0a01",  # ReturnError: a truncated parameter was kept as it came
    "a1 0a 020101 02013b 3000 0500",  # Invoke: a second TLV after the argument
])  # fmt: skip
def test_a_component_parameter_is_exactly_one_value(component: str) -> None:
    comp = bytes.fromhex(component.replace(" ", ""))
    data = bytes((0x62, 5 + len(comp))) + b"\x48\x01\x01\x6c" + bytes((len(comp),)) + comp
    with pytest.raises(TcapError) as info:
        tcap.decode(data)
    assert info.value.reject == (ProblemKind.GENERAL, GeneralProblem.MISTYPED_COMPONENT)


@pytest.mark.parametrize("cause", ["fa", "80", "9bffffff", "0100"])
def test_a_p_abort_cause_outside_0_to_127_is_a_badly_formatted_abort(cause: str) -> None:
    # Q.773 §4.2.1 P-AbortCause (0..127); any 32-bit value used to come through (and into a metric label)
    data = bytes.fromhex(f"67{6 + len(cause) // 2 + 2:02x}490401020304" + f"4a{len(cause) // 2:02x}" + cause)
    for decode in (tcap.decode, tcap_asn1.decode):
        with pytest.raises(TcapError) as info:
            decode(data)
        assert info.value.p_abort_cause == PAbortCause.BADLY_FORMATTED_TRANSACTION_PORTION
    assert tcap.decode(bytes.fromhex("6709490401020304" + "4a017f")) == tcap.Abort(b"\x01\x02\x03\x04", 127)


def test_the_asn1tools_path_checks_the_transaction_id_sizes() -> None:
    # asn1tools' BER decoder leaves SIZE (1..4) unchecked: a 58-octet dtid came through (fuzz/crashers/tcap_asn1)
    data = bytes.fromhex("6408493a" + "00" * 58)[:4] + b"\x00" * 58
    data = bytes((0x64, len(data) - 2)) + data[2:]
    for decode in (tcap.decode, tcap_asn1.decode):
        with pytest.raises(TcapError):
            decode(data)


def test_a_unidirectional_with_an_empty_component_portion_is_refused_by_both_paths() -> None:
    # asn1tools read it as Unidirectional(dialogue, ()), which neither encoder can write (fuzz/crashers/tcap_asn1)
    data = bytes((0x61, 2)) + bytes.fromhex("6c00")
    for decode in (tcap.decode, tcap_asn1.decode):
        with pytest.raises(TcapError):
            decode(data)
