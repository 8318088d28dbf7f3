"""The documented tolerances of the differential and round-trip checks (fuzz/README.md "Tolerances"): each
predicate says whether a difference between our reading and a reference's is one the README explains."""

from __future__ import annotations

from gateway.codecs import gsm7, tcap
from gateway.codecs import map as M
from gateway.codecs.ber import read_tlv
from gateway.codecs.errors import BerError
from gateway.codecs.map_dialogue import MapDialoguePdu


def _indefinite(buf: bytes, pos: int, end: int) -> bool:
    while pos < end:
        t = read_tlv(buf, pos, end)
        if t.next - t.end == 2 or (buf[pos] & 0x20 and _indefinite(buf, t.start, t.end)):
            return True
        pos = t.next
    return False


def indefinite_in_open_types(msg: tcap.TcapMessage) -> bool:
    """T1: asn1tools refuses the indefinite length form (X.690 §8.1.3.6) inside an ANY (TCAP parameters and
    user-information); we and pycrate accept it."""
    parts = [getattr(c, "parameter", None) or b"" for c in getattr(msg, "components", ())]
    if msg.dialogue is not None:
        parts += msg.dialogue.user_information
    try:
        return any(_indefinite(p, 0, len(p)) for p in parts)
    except BerError:
        return False


def _arc2_beyond_39(oid: tuple[int, ...] | None) -> bool:
    return oid is not None and len(oid) > 1 and oid[0] == 2 and oid[1] >= 40


def big_first_subidentifier(msg: tcap.TcapMessage) -> bool:
    """T2: asn1tools splits an OID's first subidentifier by 40 even when it is 120 or more; X.690 §8.19.4 makes it
    arc 2 (we read (2, subid - 80))."""
    oids: list[tuple[int, ...] | None] = []
    d = msg.dialogue
    if d is not None and not isinstance(d, tcap.Abrt):
        oids.append(d.application_context)
    for c in getattr(msg, "components", ()):
        for code in (getattr(c, "opcode", None), getattr(c, "error_code", None)):
            if isinstance(code, tuple):
                oids.append(code)
    return any(_arc2_beyond_39(o) for o in oids)


def unknown_dialogue_enumeration(pdu: MapDialoguePdu | None) -> bool:
    """T3: a MAP-DialoguePDU reason outside its (non-extensible) ENUMERATED: we keep the integer, the references
    refuse the PDU. The stack only logs these reasons."""
    if isinstance(pdu, M.MapRefuse):
        return pdu.reason > 2 or _arc2_beyond_39(pdu.alternative_application_context)
    if isinstance(pdu, M.MapUserAbort):
        return pdu.reason is not None and pdu.reason > (1 if pdu.choice == 2 else 6)
    if isinstance(pdu, M.MapProviderAbort):
        return pdu.reason > 1
    return False


def lone_escape(octets: bytes) -> bool:
    """T4: an ESC not followed by an extension-table code reads as the default-table character (TS 23.038
    §6.2.1.1 note), so the text re-encodes shorter and the padding-CR rule of §6.1.2.3.1 may keep or drop a final
    CR (a lone final ESC reads as a space)."""
    septets = gsm7.unpack_septets(octets)
    return any(s == gsm7.ESC and (i + 1 == len(septets) or septets[i + 1] not in gsm7.EXTENSION_TABLE)
               for i, s in enumerate(septets))  # fmt: skip


def canonical_map_parts(msg: tcap.TcapMessage) -> bool:
    """Whether every MAP parameter the gateway decodes, and every MAP-DialoguePDU, is in its canonical encoding
    (the differential checks apply to canonical encodings only: README "Scope of the differential checks")."""
    from gateway.codecs.errors import CodecError

    try:
        for c in getattr(msg, "components", ()):
            p = getattr(c, "parameter", None)
            if p is None or isinstance(c, tcap.ReturnError | tcap.Reject):
                continue
            if isinstance(c, tcap.Invoke):
                value = M.decode_argument(c.opcode, p)
                encoded = M.encode_ussd_arg(value) if isinstance(value, M.UssdArg) else (
                    M.encode_sri_sm_arg(value) if isinstance(value, M.RoutingInfoForSmArg) else p)
            else:
                assert c.opcode is not None
                value = M.decode_result(c.opcode, p)
                encoded = M.encode_ussd_res(value) if isinstance(value, M.UssdRes) else (
                    M.encode_sri_sm_res(value) if isinstance(value, M.RoutingInfoForSmRes) else p)
            if encoded != p:
                return False
        if msg.dialogue is not None:
            for ext in msg.dialogue.user_information:
                pdu = M.find_map_dialogue((ext,))
                if pdu is not None and (M.encode_dialogue_external(pdu) != ext or unknown_dialogue_enumeration(pdu)):
                    return False
    except CodecError:
        return False
    return True


def only_externals(msg: tcap.TcapMessage) -> tcap.TcapMessage:
    """T5: ``msg`` without the user-information elements that are not EXTERNALs. Q.773 declares user-information
    a SEQUENCE OF EXTERNAL and we keep only those; the asn1tools module declares SEQUENCE OF ANY and keeps all."""
    d = msg.dialogue
    if d is None or all(ui[:1] == b"\x28" for ui in d.user_information):
        return msg
    kept = d._replace(user_information=tuple(ui for ui in d.user_information if ui[:1] == b"\x28"))
    return msg._replace(dialogue=kept)  # type: ignore[arg-type]


def wide_integer(msg: tcap.TcapMessage) -> bool:
    """T12: an INTEGER of more than 4 octets in TCAP (invoke ID, operation or error code, problem ...): we refuse it
    (no Q.773/MAP value needs more; InvokeIdType is -128..127, MAP's local codes 0..127), asn1tools reads it."""
    values: list[object] = [getattr(msg, "p_abort_cause", None)]
    d = msg.dialogue
    if d is not None:
        values += [getattr(d, name, None) for name in ("result", "diagnostic", "abort_source")]
    for c in getattr(msg, "components", ()):
        values += [getattr(c, name, None) for name in ("invoke_id", "linked_id", "opcode", "error_code", "problem")]
    return any(isinstance(v, int) and not -(2**31) <= v < 2**31 for v in values)


def isdn_address_too_long(value: object) -> bool:
    """T13: we read an ISDN-AddressString (msisdn, networkNode-Number, additional-Number) of up to 20 octets, the
    AddressString maximum; TS 29.002 §17.7.8 limits ISDN-AddressString to 9 octets, and pycrate enforces it."""
    from gateway.codecs.map_address import AddressString

    fields = [getattr(value, name, None) for name in ("msisdn", "network_node_number", "additional_number")]
    return any(isinstance(a, AddressString) and len(a.encode()) > 9 for a in fields)


def _overlong_tag(element: bytes) -> bool:
    if not element or element[0] & 0x1F != 0x1F:
        return False
    count = 0
    for octet in element[1:]:
        count += 1
        if not octet & 0x80:
            break
    return count > 4


def overlong_tag(msg: tcap.TcapMessage) -> bool:
    """T16: an identifier of the high-tag-number form (X.690 §8.1.2.4) with more than 4 subsequent octets (a tag
    number beyond 28 bits) at the top of an open type: we refuse it (gateway/codecs/ber.py; nothing in TCAP or MAP
    needs more), asn1tools reads it."""
    parts = [getattr(c, "parameter", None) or b"" for c in getattr(msg, "components", ())]
    if msg.dialogue is not None:
        parts += msg.dialogue.user_information
    return any(_overlong_tag(p) for p in parts)


def _overlong_length(element: bytes) -> bool:
    pos = 1
    if element and element[0] & 0x1F == 0x1F:  # skip a high-tag-number identifier (X.690 §8.1.2.4)
        while pos < len(element) and element[pos] & 0x80:
            pos += 1
        pos += 1
    return pos < len(element) and element[pos] > 0x84 and element[pos] != 0xFF


def overlong_length(msg: tcap.TcapMessage) -> bool:
    """T17: a long-form length of more than 4 octets (X.690 §8.1.3.5 allows up to 126) at the top of an open type:
    we refuse it (gateway/codecs/ber.py: no TCAP message comes near 2**32 octets, and it bounds the work),
    asn1tools reads it (e.g. five zero octets: a length of 0)."""
    parts = [getattr(c, "parameter", None) or b"" for c in getattr(msg, "components", ())]
    if msg.dialogue is not None:
        parts += msg.dialogue.user_information
    return any(_overlong_length(p) for p in parts)
