"""SCCP connectionless messages and addresses (Q.713)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.codecs import sccp
from gateway.codecs.errors import CodecError, SccpError
from gateway.codecs.sccp import GlobalTitle, SccpAddress, Segmentation, Udt, Udts
from tests.support.vectors import vector_hex

digits = st.text(alphabet="0123456789", min_size=1, max_size=15)
hexdigits = st.text(alphabet="0123456789abcdef", min_size=1, max_size=15)


@st.composite
def global_titles(draw: st.DrawFn) -> GlobalTitle:
    gti = draw(st.integers(1, 4))
    d = draw(hexdigits if gti != 2 else hexdigits.filter(lambda s: len(s) % 2 == 0))
    if gti == 1:
        return GlobalTitle(d, 1, tt=0, np=0, nai=draw(st.integers(0, 127)))
    if gti == 2:
        return GlobalTitle(d, 2, tt=draw(st.integers(0, 255)), np=0, nai=0)
    np_ = draw(st.integers(0, 15))
    if gti == 3:
        return GlobalTitle(d, 3, tt=draw(st.integers(0, 255)), np=np_, nai=0)
    return GlobalTitle(d, 4, tt=draw(st.integers(0, 255)), np=np_, nai=draw(st.integers(0, 127)))


@st.composite
def addresses(draw: st.DrawFn) -> SccpAddress:
    gt = draw(st.none() | global_titles())
    ssn = draw(st.none() | st.integers(0, 255))
    route_on_ssn = True if gt is None else draw(st.booleans())
    return SccpAddress(route_on_ssn, ssn, draw(st.none() | st.integers(0, 2**14 - 1)), gt, draw(st.booleans()))


segmentations = st.builds(Segmentation, st.booleans(), st.booleans(), st.integers(0, 15), st.integers(0, 2**24 - 1))
messages = st.one_of(
    st.builds(Udt, st.integers(0, 1), st.booleans(), addresses(), addresses(), st.binary(max_size=120),
              st.none(), st.none(), st.none()),
    st.builds(Udt, st.integers(0, 1), st.booleans(), addresses(), addresses(), st.binary(max_size=120),
              st.integers(0, 15), st.none() | segmentations, st.none() | st.integers(0, 7)),
    st.builds(Udts, st.sampled_from(list(sccp.ReturnCause)), addresses(), addresses(), st.binary(max_size=120),
              st.none(), st.none(), st.none()),
    st.builds(Udts, st.sampled_from(list(sccp.ReturnCause)), addresses(), addresses(), st.binary(max_size=120),
              st.integers(0, 15), st.none() | segmentations, st.none() | st.integers(0, 7)),
)


@given(messages)
@settings(max_examples=400, deadline=None)
def test_roundtrip(msg: sccp.SccpMessage) -> None:
    assert sccp.decode(sccp.encode(msg)) == msg


def test_known_udt_bytes() -> None:
    called = SccpAddress.gt_e164("491700000001", sccp.SSN_GSMSCF)
    calling = SccpAddress.gt_e164("491720000001", sccp.SSN_MSC)
    data = sccp.encode(Udt(1, True, called, calling, b"\x01\x02"))
    # Q.713 §4.10: type 09, class 1 + return on error, pointers 03 0e 19; address indicator 0x12 = GTI 4 + SSN,
    # route on GT; TT 0, NP 1 / ES 2 (even), NAI 4; BCD low nibble first.
    assert data.hex() == "0981030e19" "0b1293001204" "947100000010" "0b1208001204" "947102000010" "020102"


def test_wiki_capture_udt() -> None:
    raw = vector_hex("wiki_m2ua_ussd.hex")
    msg = sccp.decode(raw[17:])  # M2UA header 8 + parameter header 4 + SIO 1 + routing label 4
    assert isinstance(msg, Udt)
    assert msg.called.ssn == 147 and msg.called.gt is not None and msg.called.gt.digits == "278291600"
    assert msg.calling.ssn == 6 and msg.calling.gt is not None and msg.calling.gt.digits == "27829106146"
    assert msg.called.gt.gti == 4 and msg.called.gt.tt == 0 and msg.calling.gt.gti == 4
    assert msg.data[0] == 0x62  # TC-BEGIN


def test_odd_digits_and_filler() -> None:
    addr = SccpAddress.gt_e164("12345", 6)
    raw = addr.encode()
    assert raw[-3:] == bytes([0x21, 0x43, 0x05])  # filler 0 in the high nibble
    assert raw[3] & 0x0F == 1  # encoding scheme: BCD odd
    assert sccp.decode_address(raw).gt == GlobalTitle("12345", 4)


def test_segmentation_into_xudts() -> None:
    called = SccpAddress.gt_e164("491700000001", 6)
    calling = SccpAddress.gt_e164("491700000002", 147)
    data = bytes(range(256)) * 3
    parts = sccp.build_unitdata(called, calling, data, protocol_class=1, segmentation_reference=0x123456)
    assert len(parts) > 1 and all(len(p) <= sccp.MAX_MTP_MESSAGE for p in parts)
    decoded = [sccp.decode(p) for p in parts]
    assert b"".join(d.data for d in decoded) == data
    segs = [d.segmentation for d in decoded]
    assert segs[0] is not None and segs[0].first and all(s is not None and s.in_sequence for s in segs)
    assert [s.remaining for s in segs if s] == list(range(len(parts) - 1, -1, -1))
    assert sccp.build_unitdata(called, calling, b"short")[0][0] == sccp.UDT
    with pytest.raises(SccpError, match="segment"):
        sccp.build_unitdata(called, calling, b"x" * 5000, segmentation_reference=1)
    with pytest.raises(SccpError, match="local reference"):
        sccp.build_unitdata(called, calling, data)


def test_service_for_swaps_addresses() -> None:
    called = SccpAddress.gt_e164("491700000001", 6)
    calling = SccpAddress.gt_e164("491700000002", 147)
    udts = sccp.decode(sccp.service_for(Udt(0, True, called, calling, b"abc"), sccp.ReturnCause.SUBSYSTEM_FAILURE))
    assert udts == Udts(sccp.ReturnCause.SUBSYSTEM_FAILURE, calling, called, b"abc")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x09\x00\x00\x02\x03",  # zero pointer
        b"\x09\x00\x03\x02\x40",  # pointer outside
        b"\x09\x00\x03\x04\x05\x09\x12",  # length overruns
        b"\x05\x00\x03\x04\x05",  # not a unitdata message
        bytes.fromhex("0981030507" "0142" "0142" "01aa")[:-1],  # truncated data
        bytes.fromhex("0980030507" "0110" "0142" "0101"),  # GT-routed address without a GT
    ],
)
def test_malformed_raises_sccp_error(data: bytes) -> None:
    with pytest.raises(SccpError) as info:
        sccp.decode(data)
    assert info.value.return_cause is not None


@given(st.binary(max_size=60))
@settings(max_examples=500, deadline=None)
def test_fuzz_random(data: bytes) -> None:
    with contextlib.suppress(CodecError):
        sccp.decode(data)


@given(messages, st.data())
@settings(max_examples=300, deadline=None)
def test_fuzz_mutated(msg: sccp.SccpMessage, data: st.DataObject) -> None:
    raw = bytearray(sccp.encode(msg))
    for _ in range(data.draw(st.integers(1, 3))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    with contextlib.suppress(CodecError):
        sccp.decode(bytes(raw))


# ---- defects the fuzzers found (fuzz/crashers/sccp) --------------------------------------------------------------


def test_an_address_longer_than_its_length_indicator_allows_is_an_sccp_error() -> None:
    # Q.713 §3.4.1: one length octet; decode_address raised ValueError building the address' encoding
    with pytest.raises(SccpError):
        sccp.decode_address(b"\x12" + b"\x00" * 300)


def test_a_message_whose_parts_overlap_cannot_be_re_encoded_and_says_so() -> None:
    # All three pointers designate the same 200-octet part: decodable, but a re-encoding puts the parts one after
    # the other and the pointers no longer fit one octet (Q.713 §1.5): SccpError, not ValueError.
    part = bytes((200, 0x10, 0, 0x12, 4)) + b"\x21" * 196  # GT format 4, 392 digits
    data = bytes((sccp.UDT, 0, 3, 2, 1)) + part
    msg = sccp.decode(data)
    assert msg.called == msg.calling and msg.called.gt is not None and len(msg.called.gt.digits) == 392
    with pytest.raises(SccpError):
        sccp.encode(msg)
