"""The full stack from M3UA bytes (gateway/codecs/layers.py): M3UA DATA -> SCCP -> TCAP -> MAP, and the USSD text
of every USSD value, as the stack reads an incoming message.

Checks: contract of every layer on the way; the decoded TCAP message round trips; where every layer is
canonically encoded, pycrate reads the same TCAP+MAP value."""

from __future__ import annotations

from fuzz import _pycrate_tcap
from fuzz.driver import accepts, expect
from gateway.codecs import layers, sccp, tcap
from gateway.codecs.map_ussd import UssdArg, UssdRes


def test_one_input(data: bytes) -> None:
    d = accepts(layers.decode_data, data)
    if d is None:
        return
    for value in d.map_values:
        if isinstance(value, UssdArg | UssdRes):
            accepts(value.text)
    encoded = tcap.encode(d.tcap)
    expect(tcap.decode(encoded) == d.tcap, "TCAP round trip", d.tcap)
    if encoded == d.sccp.data and accepts(sccp.encode, d.sccp) == d.m3ua.protocol_data.data:
        _pycrate_tcap.compare(encoded, d.tcap)
