"""TCAP (gateway/codecs/tcap.py, Q.773): the hand-tuned fast path and the general path behind it.

Checks: contract; the fast path's answer equals the general path's; value round trip through encode; on canonical
input (encode(decode(x)) == x) the asn1tools reference path (gateway/codecs/tcap_asn1.py) and pycrate read the
same message (README "Tolerances")."""

from __future__ import annotations

from fuzz import _pycrate_tcap, _tolerances
from fuzz.driver import Finding, accepts, expect
from gateway.codecs import tcap, tcap_asn1
from gateway.codecs.errors import TcapError


def test_one_input(data: bytes) -> None:
    _peek(data)
    try:
        msg = tcap.decode(data)
    except TcapError as exc:
        partial = exc.partial
        if partial is not None:
            expect(isinstance(partial, tcap.Begin | tcap.Continue | tcap.End | tcap.Unidirectional),
                   "partial is not a TCAP message", partial)  # fmt: skip
        return
    try:
        general = tcap._decode_general(data)
    except TcapError as exc:
        raise Finding(f"the fast path accepts what the general path refuses ({exc}): {data.hex()}") from None
    expect(general == msg, "fast path vs general path", msg, general)
    encoded = tcap.encode(msg)
    again = tcap.decode(encoded)
    expect(again == msg, "TCAP round trip", msg, again)
    if encoded == data:
        ref = accepts(tcap_asn1.decode, data)
        tolerated = _tolerances.big_first_subidentifier(msg) or (ref is None and
                                                                 _tolerances.indefinite_in_open_types(msg))
        expect(ref == msg or tolerated, "asn1tools reads another TCAP value", data.hex(), msg, ref)
        _pycrate_tcap.compare(data, msg)


def _peek(data: bytes) -> None:
    """tcap.peek_tids never raises, and what it derives lies in the message as a 1..4-octet OTID/DTID (Q.774
    §3.2.1.2: the transaction IDs a P-Abort for a malformed message may be addressed to)."""
    peeked = tcap.peek_tids(data)
    if peeked is None:
        expect(len(data) < 2, "no type and length read from a message of two octets or more", data.hex())
        return
    tag, otid, dtid = peeked
    expect(tag == data[0], "peek_tids reads another message type", data.hex(), tag)
    for tid in (otid, dtid):
        expect(tid is None or (1 <= len(tid) <= 4 and tid in data), "peek_tids derives a TID not in the message",
               data.hex(), tid)  # fmt: skip
