"""M3UA codec (RFC 4666 §3) and the TCP framer."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.codecs import m3ua
from gateway.codecs.errors import CodecError, M3uaError
from gateway.codecs.m3ua import AffectedPointCode, ErrorCode, Message, Parameter, RoutingKey, Tag
from gateway.codecs.m3ua_framer import Framer, FramingError

u32 = st.integers(0, 2**32 - 1)
pc = st.integers(0, 2**14 - 1)
u8 = st.integers(0, 255)


def messages() -> st.SearchStrategy[Message]:
    rcs = st.lists(u32, max_size=3)
    info = st.none() | st.text(max_size=20)
    apcs = st.lists(st.builds(AffectedPointCode, pc, st.integers(0, 24)), min_size=1, max_size=3)
    keys = st.lists(
        st.builds(RoutingKey, u32, st.integers(0, 2**24 - 1), st.none() | u32, st.none() | st.integers(1, 3),
                  st.none() | u32, st.lists(u8, max_size=3).map(tuple), st.lists(pc, max_size=3).map(tuple)),
        min_size=1, max_size=2,
    )
    return st.one_of(
        st.builds(m3ua.aspup, st.none() | u32, info),
        st.builds(m3ua.aspup_ack, st.none() | u32, info),
        st.builds(m3ua.aspdn, info),
        st.builds(m3ua.aspdn_ack, info),
        st.builds(m3ua.beat, st.binary(max_size=40)),
        st.builds(m3ua.beat_ack, st.binary(max_size=40)),
        st.builds(m3ua.aspac, st.none() | st.integers(1, 3), rcs, info),
        st.builds(m3ua.aspac_ack, st.none() | st.integers(1, 3), rcs, info),
        st.builds(m3ua.aspia, rcs, info),
        st.builds(m3ua.aspia_ack, rcs, info),
        st.builds(lambda c, r, d: m3ua.err(c, routing_contexts=r, diagnostic_info=d),
                  st.sampled_from(list(ErrorCode)), rcs, st.none() | st.binary(max_size=40)),
        st.builds(lambda t, i, r: m3ua.ntfy(t, i, routing_contexts=r), st.integers(1, 2), st.integers(1, 4), rcs),
        st.builds(lambda t, a, r: m3ua.ssnm(t, a, routing_contexts=r), st.sampled_from(list(m3ua.Ssnm)), apcs, rcs),
        st.builds(m3ua.reg_req, keys),
        st.builds(m3ua.reg_rsp, st.lists(st.builds(m3ua.RegistrationResult, u32, st.integers(0, 12), u32),
                                         min_size=1, max_size=3)),
        st.builds(m3ua.dereg_req, st.lists(u32, min_size=1, max_size=3)),
        st.builds(m3ua.dereg_rsp, st.lists(st.builds(m3ua.DeregistrationResult, u32, st.integers(0, 5)),
                                           min_size=1, max_size=3)),
        st.builds(lambda *a: m3ua.decode(m3ua.encode_data(*a)), pc, pc, u8, st.integers(0, 3), st.integers(0, 3),
                  u8, st.binary(max_size=300), st.none() | u32, st.none() | u32, st.none() | u32),
    )


@given(messages())
@settings(max_examples=400, deadline=None)
def test_roundtrip_every_kind(msg: Message) -> None:
    data = m3ua.encode(msg)
    assert len(data) % 4 == 0
    assert struct.unpack_from("!I", data, 4)[0] == len(data)
    assert m3ua.decode(data) == msg
    # Typed accessors do not fail on what we produce.
    _ = (msg.routing_contexts, msg.status, msg.routing_keys, msg.registration_results, msg.deregistration_results)
    if msg.msg_class == m3ua.MsgClass.SSNM:
        assert msg.affected_point_codes


@given(pc, pc, u8, u8, st.binary(max_size=300), st.none() | u32, st.none() | u32, st.none() | u32)
@settings(max_examples=300, deadline=None)
def test_data_fast_paths_agree(opc: int, dpc: int, sls: int, si: int, payload: bytes,
                               rc: int | None, na: int | None, cid: int | None) -> None:
    data = m3ua.encode_data(opc, dpc, si, 2, 0, sls, payload, rc, na, cid)
    generic = m3ua.encode(
        Message(1, 1, tuple(
            ([Parameter(Tag.NETWORK_APPEARANCE, struct.pack("!I", na))] if na is not None else [])
            + ([Parameter(Tag.ROUTING_CONTEXT, struct.pack("!I", rc))] if rc is not None else [])
            + [Parameter(Tag.PROTOCOL_DATA, struct.pack("!IIBBBB", opc, dpc, si, 2, 0, sls) + payload)]
            + ([Parameter(Tag.CORRELATION_ID, struct.pack("!I", cid))] if cid is not None else [])
        ))
    )
    assert data == generic
    decoded = m3ua.decode_data(data)
    assert decoded.protocol_data == m3ua.ProtocolData(opc, dpc, si, 2, 0, sls, payload)
    assert (decoded.routing_context, decoded.network_appearance, decoded.correlation_id) == (rc, na, cid)


def test_known_bytes_aspup_and_data() -> None:
    # RFC 4666 §3.5.1 ASPUP with no parameters: version 1, class 3, type 1, length 8.
    assert m3ua.encode(m3ua.aspup()) == bytes.fromhex("0100030100000008")
    assert m3ua.encode(m3ua.beat(b"\x01\x02\x03")) == bytes.fromhex("010003030000001000090007010203" + "00")
    data = m3ua.encode_data(1, 2, 3, 2, 0, 5, b"xyz", routing_context=1)
    assert data.hex() == "0100010100000024" "0006000800000001" "02100013" "00000001" "00000002" "03020005" "78797a00"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (bytes.fromhex("0200030100000008"), ErrorCode.INVALID_VERSION),
        (bytes.fromhex("0100050100000008"), ErrorCode.UNSUPPORTED_MESSAGE_CLASS),
        (bytes.fromhex("0100030900000008"), ErrorCode.UNSUPPORTED_MESSAGE_TYPE),
        (bytes.fromhex("01000301000000"), ErrorCode.PROTOCOL_ERROR),
        (bytes.fromhex("010003010000000c"), ErrorCode.PROTOCOL_ERROR),
        (bytes.fromhex("010003010000000c00040003"), ErrorCode.PARAMETER_FIELD_ERROR),
        (bytes.fromhex("010003010000000c00040010"), ErrorCode.PARAMETER_FIELD_ERROR),
        (bytes.fromhex("0100010100000010" "0006000800000001"), ErrorCode.MISSING_PARAMETER),
    ],
)
def test_errors_carry_the_code_to_answer(data: bytes, code: ErrorCode) -> None:
    with pytest.raises(M3uaError) as info:
        m3ua.decode(data)
    assert info.value.error_code == code
    assert info.value.diagnostic == data[:40]


@given(st.binary(max_size=80))
@settings(max_examples=500, deadline=None)
def test_fuzz_only_codec_errors(data: bytes) -> None:
    try:
        msg = m3ua.decode(data)
        _ = (msg.routing_contexts, msg.protocol_data, msg.status, msg.affected_point_codes)
    except CodecError:
        pass


@given(messages(), st.data())
@settings(max_examples=200, deadline=None)
def test_fuzz_mutated_messages(msg: Message, data: st.DataObject) -> None:
    raw = bytearray(m3ua.encode(msg))
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(u8)
    try:
        m = m3ua.decode(bytes(raw))
        _ = (m.routing_contexts, m.protocol_data, m.status, m.routing_keys, m.registration_results)
        if m.msg_class == 1:
            m3ua.decode_data(bytes(raw))
    except CodecError:
        pass


# ---- framer ----


@given(st.lists(messages(), min_size=1, max_size=8), st.data())
@settings(max_examples=200, deadline=None)
def test_framer_random_splits(msgs: list[Message], data: st.DataObject) -> None:
    stream = b"".join(m3ua.encode(m) for m in msgs)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    framer = Framer()
    out: list[bytes] = []
    prev = 0
    for cut in [*cuts, len(stream)]:
        out += framer.feed(stream[prev:cut])
        prev = cut
    assert [m3ua.decode(x) for x in out] == msgs
    assert framer.buffered == 0


@pytest.mark.parametrize("length", [0, 4, 7, 10, 70000])
def test_framer_bad_lengths_raise_and_stay_dead(length: int) -> None:
    framer = Framer(max_message=65536)
    good = m3ua.encode(m3ua.aspup())
    bad = bytes.fromhex("01000301") + length.to_bytes(4, "big")
    with pytest.raises(FramingError) as info:
        framer.feed(good + good + bad)
    assert info.value.error_code == ErrorCode.PROTOCOL_ERROR
    assert info.value.diagnostic == bad
    assert info.value.messages == [good, good]  # whole messages before the bad header are not lost
    assert framer.buffered == 0
    with pytest.raises(M3uaError):
        framer.feed(good)


def test_framer_bad_length_after_a_partial_message_keeps_the_completed_one() -> None:
    framer = Framer()
    good = m3ua.encode(m3ua.aspup())
    assert framer.feed(good[:5]) == []
    with pytest.raises(FramingError) as info:
        framer.feed(good[5:] + bytes.fromhex("0100030100000006"))
    assert info.value.messages == [good]


def test_framer_buffer_is_bounded() -> None:
    framer = Framer(max_message=1024)
    header = bytes.fromhex("0100010100000400")  # announces 1024 octets
    assert framer.feed(header) == []
    for _ in range(200):
        assert framer.feed(b"\x00" * 4) == []
    assert framer.buffered <= 1024
    assert len(framer.feed(b"\x00" * (1024 - 8 - 800))) == 1
    with pytest.raises(M3uaError):
        Framer(max_message=1024).feed(bytes.fromhex("0100010100000404"))


def test_framer_many_small_messages_in_one_read() -> None:
    msg = m3ua.encode(m3ua.beat(b"x" * 8))
    framer = Framer()
    assert len(framer.feed(msg * 10000)) == 10000
