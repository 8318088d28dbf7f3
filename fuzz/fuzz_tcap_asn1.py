"""The asn1tools reference path of TCAP (gateway/codecs/tcap_asn1.py).

Checks: contract (asn1tools' own exceptions must come out as TcapError); value round trip through its encoder;
where both paths accept a canonically encoded message, the hand-tuned path reads the same value."""

from __future__ import annotations

from fuzz import _tolerances
from fuzz.driver import accepts, expect
from gateway.codecs import tcap, tcap_asn1


def test_one_input(data: bytes) -> None:
    msg = accepts(tcap_asn1.decode, data)
    if msg is None:
        return
    encoded = accepts(tcap_asn1.encode, msg)
    expect(encoded is not None, "asn1tools cannot re-encode what it decoded", msg)
    assert encoded is not None
    again = tcap_asn1.decode(encoded)
    expect(again == msg, "asn1tools round trip", msg, again)
    if encoded == data:
        ours = accepts(tcap.decode, data)
        tolerated = (ours is not None and _tolerances.big_first_subidentifier(ours)) or (
            ours is None and (_tolerances.wide_integer(msg) or _tolerances.overlong_tag(msg)
                              or _tolerances.overlong_length(msg)))
        expect(ours == _tolerances.only_externals(msg) or tolerated, "the hand-tuned path reads another value",
               data.hex(), msg, ours)  # fmt: skip
