"""MAP address types (TS 29.002 §17.7.8 AddressString / ISDN-AddressString, §17.7.2 IMSI, TBCD-STRING)."""

from __future__ import annotations

import enum
from typing import NamedTuple

from gateway.codecs.errors import MapError
from gateway.codecs.values import typed_value

# TS 29.002 §17.7.8 TBCD-STRING: digits 0-9, '*' = 1010, '#' = 1011, a = 1100, b = 1101, c = 1110; filler 1111.


class Nature(enum.IntEnum):
    """AddressString octet 1, bits 7-5: nature of address indicator."""

    UNKNOWN = 0
    INTERNATIONAL = 1
    NATIONAL_SIGNIFICANT = 2
    NETWORK_SPECIFIC = 3
    SUBSCRIBER = 4
    ABBREVIATED = 6


class Plan(enum.IntEnum):
    """AddressString octet 1, bits 4-1: numbering plan indicator."""

    UNKNOWN = 0
    ISDN_TELEPHONY = 1  # E.164
    DATA = 3  # X.121
    TELEX = 4  # F.69
    LAND_MOBILE = 6  # E.212
    NATIONAL = 8
    PRIVATE = 9


_SWAP = bytes(((b & 0x0F) << 4) | (b >> 4) for b in range(256))  # swap the nibbles of an octet
_TO_HEX = str.maketrans("*#abcABC", "abcdecde")  # TBCD digit -> hex nibble character
_FROM_HEX = str.maketrans("abcde", "*#abc")
_ALLOWED = frozenset("0123456789*#abcABC")


def encode_tbcd(digits: str) -> bytes:
    """TBCD-STRING: two digits per octet, the first in the low nibble; an odd count ends with filler F."""
    if not _ALLOWED.issuperset(digits):
        bad = next(c for c in digits if c not in _ALLOWED)
        raise MapError(f"{bad!r} is not a TBCD digit (0-9 * # a b c)")
    text = digits.translate(_TO_HEX)
    if len(text) % 2:
        text += "f"
    return bytes.fromhex(text).translate(_SWAP)


def decode_tbcd(octets: bytes) -> str:
    text = octets.translate(_SWAP).hex()
    if "f" in text:
        if text.index("f") != len(text) - 1:
            raise MapError("TBCD filler before the last digit position")
        text = text[:-1]
    return text.translate(_FROM_HEX)


@typed_value
class AddressString(NamedTuple):
    """AddressString / ISDN-AddressString (TS 29.002 §17.7.8): the first octet is ext bit, nature and plan."""

    digits: str
    nature: int = Nature.INTERNATIONAL
    plan: int = Plan.ISDN_TELEPHONY

    def encode(self) -> bytes:
        return bytes((0x80 | ((self.nature & 0x07) << 4) | (self.plan & 0x0F),)) + encode_tbcd(self.digits)

    @classmethod
    def decode(cls, octets: bytes) -> AddressString:
        if not octets:
            raise MapError("empty AddressString")
        if len(octets) > 20:
            raise MapError(f"AddressString of {len(octets)} octets (maxAddressLength 20)")
        first = octets[0]
        return cls(decode_tbcd(octets[1:]), (first >> 4) & 0x07, first & 0x0F)

    @classmethod
    def e164(cls, digits: str) -> AddressString:
        """International E.164 number (octet 1 = 0x91), e.g. an MSISDN or a GT."""
        return cls(digits, Nature.INTERNATIONAL, Plan.ISDN_TELEPHONY)

    @classmethod
    def imsi(cls, digits: str) -> AddressString:
        """An IMSI as an AddressString (octet 1 = 0x96: international, land mobile E.212), as a real HLR puts it in
        MAP-OpenInfo destinationReference."""
        return cls(digits, Nature.INTERNATIONAL, Plan.LAND_MOBILE)


def encode_imsi(imsi: str) -> bytes:
    """IMSI (TS 29.002 §17.7.2): TBCD-STRING of 3..8 octets (MCC + MNC + MSIN, at most 15 digits)."""
    if not 6 <= len(imsi) <= 15 or not imsi.isdigit():
        raise MapError(f"IMSI {imsi!r} is not 6..15 decimal digits")
    return encode_tbcd(imsi)


def decode_imsi(octets: bytes) -> str:
    if not 3 <= len(octets) <= 8:
        raise MapError(f"IMSI of {len(octets)} octets (3..8)")
    return decode_tbcd(octets)
