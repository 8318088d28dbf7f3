"""SCCP bytes judged by pycrate_mobile.SCCP (an independent implementation of Q.713)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycrate_mobile import SCCP

from gateway.codecs import sccp
from gateway.codecs.sccp import GlobalTitle, SccpAddress, Udt, Udts
from tests.test_sccp import addresses, messages

pytestmark = pytest.mark.interop


def pycrate_parse(data: bytes) -> SCCP.SCCPMessage:
    msg, err = SCCP.parse_SCCP(data)
    assert err == 0, f"pycrate refused {data.hex()}"
    assert msg.to_bytes() == data  # pycrate is lenient: re-encode and compare octets
    return msg


def check_address(pyaddr: SCCP.SCCPPartyAddr, ours: SccpAddress) -> None:
    value = pyaddr["Value"]
    ind = value["AddrInd"]
    assert ind["RoutingInd"].get_val() == (1 if ours.route_on_ssn else 0)
    assert ind["SSNInd"].get_val() == (ours.ssn is not None)
    assert ind["PCInd"].get_val() == (ours.pc is not None)
    if ours.ssn is not None:
        assert value["SSN"].get_val() == ours.ssn
    if ours.pc is not None:
        assert value["PC"].get_val() == ours.pc
    if ours.gt is None:
        assert ind["GTInd"].get_val() == 0
        return
    gt = value["GT"].get_alt()
    assert ind["GTInd"].get_val() == ours.gt.gti
    if ours.gt.gti in (2, 3, 4):
        assert gt["TranslationType"].get_val() == ours.gt.tt
    if ours.gt.gti in (3, 4):
        assert gt["NumberingPlan"].get_val() == ours.gt.np
        assert gt["EncodingScheme"].get_val() == ours.gt.encoding_scheme()
    if ours.gt.gti in (1, 4):
        assert gt["NAI"].get_val() == ours.gt.nai
    addr = gt["Addr"]
    bcd = addr.get_alt() if hasattr(addr, "get_alt") else addr
    if not hasattr(bcd, "decode"):  # format 2 has no encoding scheme: pycrate keeps the octets raw
        padded = ours.gt.digits + ("0" if len(ours.gt.digits) % 2 else "")
        assert bcd.get_val() == bytes(int(padded[i + 1] + padded[i], 16) for i in range(0, len(padded), 2))
    elif ours.gt.digits.isdigit():
        # pycrate keeps the filler nibble of an odd number of digits: it must be 0 (Q.713 §3.4.2.3.1).
        theirs = bcd.decode()
        expected = ours.gt.digits + ("0" if len(ours.gt.digits) % 2 else "")
        assert theirs == expected


@given(messages)
@settings(max_examples=300, deadline=None)
def test_pycrate_decodes_what_we_encode(msg: sccp.SccpMessage) -> None:
    data = sccp.encode(msg)
    py = pycrate_parse(data)
    assert py["Type"].get_val() == data[0]
    check_address(py["CalledPartyAddr"], msg.called)
    check_address(py["CallingPartyAddr"], msg.calling)
    assert py["Data"]["Value"].get_val() == msg.data
    if isinstance(msg, Udt):
        assert py["ProtocolClass"]["Class"].get_val() == msg.protocol_class
        assert py["ProtocolClass"]["Handling"].get_val() == (8 if msg.return_on_error else 0)
    else:
        assert py["RetCause"].get_val() == msg.return_cause
    if msg.hop_counter is not None:
        assert py["HopCounter"].get_val() == msg.hop_counter
        if msg.segmentation is not None:
            seg = py["Opt"]["Segmentation"]["Segmentation"]
            assert seg["F"].get_val() == msg.segmentation.first
            assert seg["RemainingSeg"].get_val() == msg.segmentation.remaining
            # pycrate reads the 3-octet local reference big-endian; we write it low octet first, as Wireshark reads
            # it: compare the octets.
            ref = seg["SegmentLocalRef"].get_val().to_bytes(3, "big")
            assert ref == msg.segmentation.local_reference.to_bytes(3, "little")


@given(
    st.text(alphabet="0123456789", min_size=1, max_size=15),
    st.text(alphabet="0123456789", min_size=1, max_size=15),
    st.integers(0, 255),
    st.integers(0, 255),
    st.binary(max_size=200),
    st.booleans(),
)
@settings(max_examples=300, deadline=None)
def test_we_decode_pycrate_built_udt(called_gt: str, calling_gt: str, ssn1: int, ssn2: int, data: bytes,
                                     roe: bool) -> None:
    msg = SCCP.SCCPUnitData()
    msg["ProtocolClass"]["Class"].set_val(1)
    msg["ProtocolClass"]["Handling"].set_val(8 if roe else 0)
    for name, digits, ssn in (("CalledPartyAddr", called_gt, ssn1), ("CallingPartyAddr", calling_gt, ssn2)):
        value = msg[name]["Value"]
        value["AddrInd"]["RoutingInd"].set_val(0)
        value["AddrInd"]["GTInd"].set_val(4)
        value["AddrInd"]["SSNInd"].set_val(1)
        value["AddrInd"]["PCInd"].set_val(0)
        value["SSN"].set_val(ssn)
        gt = value["GT"].get_alt()
        gt["TranslationType"].set_val(0)
        gt["NumberingPlan"].set_val(1)
        gt["EncodingScheme"].set_val(1 if len(digits) % 2 else 2)
        gt["NAI"].set_val(4)
        gt["Addr"].get_alt().encode(digits)
    msg["Data"]["Value"].set_val(data)
    raw = msg.to_bytes()
    ours = sccp.decode(raw)
    assert ours == Udt(1, roe, SccpAddress.gt_e164(called_gt, ssn1), SccpAddress.gt_e164(calling_gt, ssn2), data)
    assert sccp.encode(ours) == raw


@given(addresses(), addresses(), st.sampled_from(list(sccp.ReturnCause)), st.binary(max_size=100))
@settings(max_examples=100, deadline=None)
def test_udts_from_pycrate_roundtrip(called: SccpAddress, calling: SccpAddress, cause: int, data: bytes) -> None:
    # pycrate parses our UDTS, re-encodes it, and we read back the same values from its octets.
    raw = pycrate_parse(sccp.encode(Udts(cause, called, calling, data))).to_bytes()
    assert sccp.decode(raw) == Udts(cause, called, calling, data)


def test_gt_formats_1_to_3_in_pycrate() -> None:
    for gt in (GlobalTitle("123", 1, nai=4, np=0), GlobalTitle("1234", 2, tt=9, np=0, nai=0),
               GlobalTitle("12345", 3, tt=0, np=6, nai=0)):
        addr = SccpAddress(False, 6, None, gt)
        py = pycrate_parse(sccp.encode(Udt(0, False, addr, addr, b"x")))
        check_address(py["CalledPartyAddr"], addr)
