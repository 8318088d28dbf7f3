"""MAP-DialoguePDU (TS 29.002 §17.3.4) carried in the TCAP dialogue portion's user-information as an EXTERNAL
with direct-reference map-DialogueAS (0.4.0.0.1.1.1.1)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from gateway.codecs.ber import decode_oid, encode_oid, read_tlv, tlv
from gateway.codecs.errors import BerError, MapError
from gateway.codecs.map_address import AddressString
from gateway.codecs.values import typed_value

MAP_DIALOGUE_AS = (0, 4, 0, 0, 1, 1, 1, 1)
_MAP_DIALOGUE_AS_TLV = tlv(0x06, encode_oid(MAP_DIALOGUE_AS))


class RefuseReason(enum.IntEnum):
    NO_REASON_GIVEN = 0
    INVALID_DESTINATION_REFERENCE = 1
    INVALID_ORIGINATING_REFERENCE = 2


class UserAbortChoice(enum.IntEnum):
    USER_SPECIFIC_REASON = 0
    USER_RESOURCE_LIMITATION = 1
    RESOURCE_UNAVAILABLE = 2  # reason: ResourceUnavailableReason
    APPLICATION_PROCEDURE_CANCELLATION = 3  # reason: ProcedureCancellationReason


class ResourceUnavailableReason(enum.IntEnum):
    SHORT_TERM_RESOURCE_LIMITATION = 0
    LONG_TERM_RESOURCE_LIMITATION = 1


class ProcedureCancellationReason(enum.IntEnum):
    HANDOVER_CANCELLATION = 0
    RADIO_CHANNEL_RELEASE = 1
    NETWORK_PATH_RELEASE = 2
    CALL_RELEASE = 3
    ASSOCIATED_PROCEDURE_FAILURE = 4
    TANDEM_DIALOGUE_RELEASE = 5
    REMOTE_OPERATIONS_FAILURE = 6


class ProviderAbortReason(enum.IntEnum):
    ABNORMAL_DIALOGUE = 0
    INVALID_PDU = 1


@typed_value
class MapOpen(NamedTuple):
    destination_reference: AddressString | None = None
    origination_reference: AddressString | None = None


@dataclass(frozen=True, slots=True)
class MapAccept:
    """map-accept (a dataclass: empty NamedTuples would all compare equal to each other)."""


@dataclass(frozen=True, slots=True)
class MapClose:
    """map-close."""


@typed_value
class MapRefuse(NamedTuple):
    reason: int = RefuseReason.NO_REASON_GIVEN
    alternative_application_context: tuple[int, ...] | None = None


@typed_value
class MapUserAbort(NamedTuple):
    choice: int = UserAbortChoice.USER_SPECIFIC_REASON
    reason: int | None = None  # for RESOURCE_UNAVAILABLE / APPLICATION_PROCEDURE_CANCELLATION


@typed_value
class MapProviderAbort(NamedTuple):
    reason: int = ProviderAbortReason.ABNORMAL_DIALOGUE


MapDialoguePdu = MapOpen | MapAccept | MapClose | MapRefuse | MapUserAbort | MapProviderAbort


def _enum(value: int) -> bytes:
    return bytes((0x0A, 1, value))


def _encode_pdu(pdu: MapDialoguePdu) -> bytes:
    if isinstance(pdu, MapOpen):
        body = b""
        if pdu.destination_reference is not None:
            body += tlv(0x80, pdu.destination_reference.encode())
        if pdu.origination_reference is not None:
            body += tlv(0x81, pdu.origination_reference.encode())
        return tlv(0xA0, body)
    if isinstance(pdu, MapAccept):
        return b"\xa1\x00"
    if isinstance(pdu, MapClose):
        return b"\xa2\x00"
    if isinstance(pdu, MapRefuse):
        body = _enum(pdu.reason)
        if pdu.alternative_application_context is not None:
            body += tlv(0x06, encode_oid(pdu.alternative_application_context))
        return tlv(0xA3, body)
    if isinstance(pdu, MapUserAbort):
        if pdu.choice in (UserAbortChoice.USER_SPECIFIC_REASON, UserAbortChoice.USER_RESOURCE_LIMITATION):
            choice = bytes((0x80 | pdu.choice, 0))
        else:
            choice = bytes((0x80 | pdu.choice, 1, pdu.reason or 0))
        return tlv(0xA4, choice)
    return tlv(0xA5, _enum(pdu.reason))


@lru_cache(maxsize=1024)
def encode_dialogue_external(pdu: MapDialoguePdu) -> bytes:
    """The EXTERNAL (0x28 ...) for TCAP's user-information. Cached: accepts and closes are all alike."""
    return tlv(0x28, _MAP_DIALOGUE_AS_TLV + tlv(0xA0, _encode_pdu(pdu)))


def _opt_enum(buf: bytes, start: int, end: int) -> int:
    if end - start != 1:
        raise MapError("ENUMERATED of more than one octet")
    return buf[start]


@lru_cache(maxsize=4096)
def decode_dialogue_external(external: bytes) -> MapDialoguePdu:
    """Decode the MAP-DialoguePDU from one EXTERNAL of the TCAP user-information. Cached: they repeat."""
    try:
        ext = read_tlv(external, 0, len(external))
        if ext.tag != 0x28:
            raise MapError("user-information is not an EXTERNAL")
        ref = None
        single = None
        pos = ext.start
        while pos < ext.end:
            t = read_tlv(external, pos, ext.end)
            if t.tag == 0x06:
                ref = decode_oid(external[t.start : t.end])
            elif t.tag == 0xA0:
                single = (t.start, t.end)
            pos = t.next
        if ref != MAP_DIALOGUE_AS or single is None:
            raise MapError(f"EXTERNAL is not a MAP-DialoguePDU (direct-reference {ref})")
        pdu = read_tlv(external, *single)
        fields = []
        pos = pdu.start
        while pos < pdu.end:
            t = read_tlv(external, pos, pdu.end)
            fields.append(t)
            pos = t.next
        if pdu.tag == 0xA0:  # map-open
            dest = orig = None
            for f in fields:
                if f.tag == 0x80:
                    dest = AddressString.decode(external[f.start : f.end])
                elif f.tag == 0x81:
                    orig = AddressString.decode(external[f.start : f.end])
            return MapOpen(dest, orig)
        if pdu.tag == 0xA1:
            return MapAccept()
        if pdu.tag == 0xA2:
            return MapClose()
        if pdu.tag == 0xA3:
            if not fields or fields[0].tag != 0x0A:
                raise MapError("map-refuse without reason")
            alt = next((decode_oid(external[f.start : f.end]) for f in fields[1:] if f.tag == 0x06), None)
            return MapRefuse(_opt_enum(external, fields[0].start, fields[0].end), alt)
        if pdu.tag == 0xA4:
            if not fields or not 0x80 <= fields[0].tag <= 0x83:
                raise MapError("map-userAbort without a user abort choice")
            f = fields[0]
            choice = f.tag & 0x03
            reason = _opt_enum(external, f.start, f.end) if choice >= 2 else None
            return MapUserAbort(choice, reason)
        if pdu.tag == 0xA5:
            if not fields or fields[0].tag != 0x0A:
                raise MapError("map-providerAbort without reason")
            return MapProviderAbort(_opt_enum(external, fields[0].start, fields[0].end))
        raise MapError(f"unknown MAP-DialoguePDU alternative 0x{pdu.tag:02x}")
    except BerError as exc:
        raise MapError(f"malformed MAP-DialoguePDU: {exc}") from None


def find_map_dialogue(user_information: tuple[bytes, ...]) -> MapDialoguePdu | None:
    """The MAP-DialoguePDU among a dialogue portion's EXTERNALs, if any (others are ignored)."""
    for ext in user_information:
        if _MAP_DIALOGUE_AS_TLV in ext[:16]:
            return decode_dialogue_external(ext)
    return None
