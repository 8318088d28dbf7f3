"""SCCP connectionless messages and party addresses (gateway/codecs/sccp.py, Q.713).

Checks: contract (decode and decode_address); value round trip through encode; the UDT fast path agrees with the
general path; on canonically encoded input (encode(decode(x)) == x, see README "Tolerances") pycrate_mobile.SCCP
accepts the message and reads the same fields."""

from __future__ import annotations

from typing import Any

from fuzz.driver import Finding, accepts, expect
from gateway.codecs import sccp


def _check_address(py: Any, ours: sccp.SccpAddress) -> None:
    value = py["Value"]
    ind = value["AddrInd"]
    gti = 0 if ours.gt is None else ours.gt.gti
    expect([ind["RoutingInd"].get_val(), ind["GTInd"].get_val(), ind["SSNInd"].get_val(), ind["PCInd"].get_val()]
           == [int(ours.route_on_ssn), gti, int(ours.ssn is not None), int(ours.pc is not None)],
           "pycrate address indicator", ind.get_val(), ours)  # fmt: skip
    if ours.ssn is not None:
        expect(value["SSN"].get_val() == ours.ssn, "pycrate SSN", ours)
    if ours.pc is not None:
        expect(value["PC"].get_val() == ours.pc, "pycrate PC", ours)
    if ours.gt is None:
        return
    gt = value["GT"].get_alt()
    if gti in (2, 3, 4):
        expect(gt["TranslationType"].get_val() == ours.gt.tt, "pycrate TT", ours)
    if gti in (3, 4):
        expect(gt["NumberingPlan"].get_val() == ours.gt.np, "pycrate NP", ours)
        expect(gt["EncodingScheme"].get_val() == ours.gt.encoding_scheme(), "pycrate ES", ours)
    if gti in (1, 4):
        expect(gt["NAI"].get_val() == ours.gt.nai, "pycrate NAI", ours)
    expect(gt["Addr"].to_bytes() == sccp._bcd(ours.gt.digits), "pycrate GT digits", gt["Addr"].to_bytes(), ours)


def _pycrate(data: bytes, msg: sccp.SccpMessage) -> None:
    from pycrate_mobile import SCCP

    try:
        py, err = SCCP.parse_SCCP(data)
    except Exception as exc:
        raise Finding(f"pycrate raises {exc!r} on an SCCP message we accept: {data.hex()}") from None
    expect(err == 0, "pycrate refuses an SCCP message we accept", data.hex())
    expect(py["Type"].get_val() == data[0], "pycrate message type")
    if isinstance(msg, sccp.Udt):
        pc = py["ProtocolClass"]
        expect([pc["Handling"].get_val() >> 3, pc["Class"].get_val()] == [int(msg.return_on_error),
               msg.protocol_class], "pycrate protocol class", msg)  # fmt: skip
    else:
        expect(py["RetCause"].get_val() == msg.return_cause, "pycrate return cause", msg)
    _check_address(py["CalledPartyAddr"], msg.called)
    _check_address(py["CallingPartyAddr"], msg.calling)
    expect(py["Data"].to_bytes()[1:] == msg.data, "pycrate data", msg)
    if msg.hop_counter is not None:
        expect(py["HopCounter"].get_val() == msg.hop_counter, "pycrate hop counter", msg)
        seg = imp = None
        for opt in py["Opt"].get_val():
            if opt[0] == 0x10:
                first, cls, _spare, remaining, ref = opt[2]
                # pycrate reads the local reference as a big-endian integer; we keep the octets' order (README)
                seg = sccp.Segmentation(bool(first), bool(cls), remaining,
                                        int.from_bytes(ref.to_bytes(3, "big"), "little"))  # fmt: skip
            elif opt[0] == 0x12:
                imp = opt[2][1]
        expect((seg, imp) == (msg.segmentation, msg.importance), "pycrate optional part", seg, imp, msg)


def test_one_input(data: bytes) -> None:
    accepts(sccp.decode_address, data)
    msg = accepts(sccp.decode, data)
    if msg is None:
        return
    if data[0] == sccp.UDT:  # the fast path may have answered: the general path must agree
        n = len(data)
        general = sccp.Udt(data[1] & 0x0F, bool(data[1] & sccp.RETURN_ON_ERROR),
                           sccp.decode_address(sccp._variable(data, 2, n, "called")),
                           sccp.decode_address(sccp._variable(data, 3, n, "calling")),
                           sccp._variable(data, 4, n, "data"))  # fmt: skip
        expect(general == msg, "UDT fast path vs general path", msg, general)
    encoded = accepts(sccp.encode, msg)
    if encoded is None:
        # Q.713 §1.5: pointers are one octet; overlapping variable parts may not fit a canonical re-encoding
        expect(len(msg.called.lv) + len(msg.calling.lv) + len(msg.data) > 250, "SCCP re-encoding refused", msg)
        return
    again = sccp.decode(encoded)
    expect(again == msg, "SCCP round trip", msg, again)
    if encoded == data:
        _pycrate(data, msg)
