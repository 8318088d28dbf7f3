"""pycrate's TCAP+MAP reading (pycrate_asn1dir.TCAP_MAPv2v3) in the canonical form of
tests/interop/test_tcap_map_pycrate.py, for the differential checks of the TCAP and full-stack harnesses."""

from __future__ import annotations

from fuzz import _tolerances
from fuzz.driver import Finding, accepts, expect
from gateway.codecs import map as M
from gateway.codecs import tcap
from gateway.codecs.errors import CodecError
from gateway.codecs.map_errors import MapErrorCode

_MAP_ERRORS = frozenset(int(e) for e in MapErrorCode)


def compare(data: bytes, msg: tcap.TcapMessage) -> None:
    """pycrate must accept ``data`` (accepted by us, its TCAP layer canonically encoded) and read the same value.

    pycrate decodes the MAP parameters and dialogue PDUs in the same pass, so this applies only where each of them
    is one the gateway decodes too (a served operation, a MAP-DialoguePDU) and decodes with us."""
    from pycrate_asn1dir import TCAP_MAPv2v3

    from tests.interop.test_tcap_map_pycrate import canon_ours, canon_pycrate

    for c in getattr(msg, "components", ()):
        if isinstance(c, tcap.Invoke | tcap.ReturnResult) and c.opcode is not None and not M.serves(c.opcode):
            return
        if isinstance(c, tcap.Invoke | tcap.ReturnResult) and c.opcode is not None:
            decode = M.decode_argument if isinstance(c, tcap.Invoke) else M.decode_result
            value = accepts(decode, c.opcode, c.parameter)
            if _tolerances.isdn_address_too_long(value) or (c.parameter is not None and isinstance(value, M.Unknown)):
                return  # T13, or a result of an operation whose result the gateway does not decode
        if isinstance(c, tcap.ReturnError) and (c.parameter is not None or c.error_code not in _MAP_ERRORS):
            return  # T11
    if not _tolerances.canonical_map_parts(msg):
        return
    try:
        ours = canon_ours(msg)
    except CodecError:
        return  # a MAP part we refuse: pycrate refuses the whole message for it
    py = TCAP_MAPv2v3.TCAP_MAP_Messages.TCAP_MAP_Message
    try:
        py.from_ber(data)
        theirs = canon_pycrate(py.get_val())
    except Exception as exc:
        raise Finding(f"pycrate refuses a TCAP message we accept: {exc!r} {data.hex()}") from None
    expect(theirs == ours, "pycrate reads another TCAP value", data.hex(), theirs, ours)
