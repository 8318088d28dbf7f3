"""MAP-DialoguePDU in its EXTERNAL (gateway/codecs/map_dialogue.py, TS 29.002 §17.3.4) and the asn1tools
reference path (map_asn1.decode_dialogue_external).

Checks: contract of both decoders; value round trip through encode_dialogue_external; on canonical input the
asn1tools path and pycrate (MAP-DialoguePDU of TCAP_MAPv2v3) read the same PDU."""

from __future__ import annotations

from fuzz import _tolerances
from fuzz.driver import Finding, accepts, expect
from gateway.codecs import map_asn1, map_dialogue
from gateway.codecs.ber import read_tlv


def _pycrate(data: bytes, ours: map_dialogue.MapDialoguePdu) -> None:
    from pycrate_asn1dir import TCAP_MAPv2v3 as T

    from tests.interop.test_tcap_map_pycrate import _py_map_pdu

    ext = read_tlv(data, 0, len(data))
    ref = read_tlv(data, ext.start, ext.end)
    single = read_tlv(data, ref.next, ext.end)
    pdu = T.MAP_DialogueInformation.MAP_DialoguePDU
    try:
        pdu.from_ber(data[single.start : single.end])
        theirs = _py_map_pdu({"direct-reference": map_dialogue.MAP_DIALOGUE_AS,
                              "encoding": ("single-ASN1-type", ("MAP-DialoguePDU", pdu.get_val()))})  # fmt: skip
    except Exception as exc:
        raise Finding(f"pycrate refuses a MAP-DialoguePDU we accept: {exc!r} {data.hex()}") from None
    expect(theirs == ours, "pycrate reads another MAP-DialoguePDU", data.hex(), theirs, ours)


def test_one_input(data: bytes) -> None:
    ref = accepts(map_asn1.decode_dialogue_external, data)
    pdu = accepts(map_dialogue.decode_dialogue_external, data)
    accepts(map_dialogue.find_map_dialogue, (data,))
    if pdu is None:
        return
    encoded = map_dialogue.encode_dialogue_external(pdu)
    again = map_dialogue.decode_dialogue_external(encoded)
    expect(again == pdu, "MAP-DialoguePDU round trip", pdu, again)
    if encoded == data and not _tolerances.unknown_dialogue_enumeration(pdu):
        expect(ref == pdu, "asn1tools reads another MAP-DialoguePDU", data.hex(), pdu, ref)
        _pycrate(data, pdu)
