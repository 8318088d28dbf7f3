"""Cell Broadcast Data Coding Scheme, as used by USSD (TS 23.038 §5; TS 29.002 §17.7.4 USSD-DataCodingScheme)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Charset(enum.Enum):
    GSM7 = "gsm7"
    EIGHT_BIT = "8bit"
    UCS2 = "ucs2"


# TS 23.038 §5, coding group 0000: language in bits 3..0 (ISO 639-1 codes; 0xF = unspecified).
_GROUP0_LANGUAGES: tuple[str | None, ...] = (
    "de", "en", "it", "fr", "es", "nl", "sv", "da", "pt", "fi", "no", "el", "tr", "hu", "pl", None,
)  # fmt: skip
# Coding group 0010: bits 3..0 = 0000 Czech .. 0100 Icelandic; the rest reserved for other languages.
_GROUP2_LANGUAGES: tuple[str, ...] = ("cs", "he", "ar", "ru", "is")

GSM7_UNSPECIFIED = 0x0F  # group 0000, language unspecified: what handsets send by default
GSM7_WITH_LANGUAGE_INDICATION = 0x10
UCS2_WITH_LANGUAGE_INDICATION = 0x11
UCS2 = 0x48  # group 01xx: uncompressed, no class, UCS2; what handsets accept for non-GSM text (decimal 72)
EIGHT_BIT = 0x44


@dataclass(frozen=True, slots=True)
class DataCodingScheme:
    value: int
    charset: Charset
    language: str | None = None  # ISO 639-1, when the DCS itself names it
    message_class: int | None = None  # 0..3 when the DCS gives one
    compressed: bool = False  # TS 23.042 compression (not supported for USSD texts)
    language_indication: bool = False  # 0x10/0x11: the text starts with an ISO 639 language indication
    udh: bool = False  # group 1001: user data header present
    reserved: bool = False  # a reserved coding, treated as GSM 7-bit per TS 23.038 §5


def parse(value: int) -> DataCodingScheme:
    """Interpret a CBS DCS octet (TS 23.038 §5). Reserved codings read as GSM 7-bit, as the spec requires."""
    if not 0 <= value <= 0xFF:
        raise ValueError(f"DCS {value} is not an octet")
    return _TABLE[value]


def _parse(value: int) -> DataCodingScheme:
    group = value >> 4
    low = value & 0x0F
    if group == 0x0:
        return DataCodingScheme(value, Charset.GSM7, language=_GROUP0_LANGUAGES[low])
    if group == 0x1:
        if low == 0x0:
            return DataCodingScheme(value, Charset.GSM7, language_indication=True)
        if low == 0x1:
            return DataCodingScheme(value, Charset.UCS2, language_indication=True)
        return DataCodingScheme(value, Charset.GSM7, reserved=True)
    if group == 0x2:
        if low < len(_GROUP2_LANGUAGES):
            return DataCodingScheme(value, Charset.GSM7, language=_GROUP2_LANGUAGES[low])
        return DataCodingScheme(value, Charset.GSM7, reserved=True)
    if group == 0x3:
        return DataCodingScheme(value, Charset.GSM7, reserved=True)
    if group >> 2 == 0b01:  # 01xx general data coding
        compressed = bool(value & 0x20)
        message_class = value & 0x03 if value & 0x10 else None
        coding = (value >> 2) & 0x03
        if coding == 0b11:
            return DataCodingScheme(value, Charset.GSM7, message_class=message_class, compressed=compressed,
                                    reserved=True)  # fmt: skip
        charset = (Charset.GSM7, Charset.EIGHT_BIT, Charset.UCS2)[coding]
        return DataCodingScheme(value, charset, message_class=message_class, compressed=compressed)
    if group == 0x9:  # 1001: message with user data header
        coding = (value >> 2) & 0x03
        if coding == 0b11:
            return DataCodingScheme(value, Charset.GSM7, message_class=value & 0x03, udh=True, reserved=True)
        charset = (Charset.GSM7, Charset.EIGHT_BIT, Charset.UCS2)[coding]
        return DataCodingScheme(value, charset, message_class=value & 0x03, udh=True)
    if group == 0xF:  # 1111: data coding / message handling, bit 2 = 8-bit
        charset = Charset.EIGHT_BIT if value & 0x04 else Charset.GSM7
        # TS 23.038 §5 (CBS), group 1111: class bits 00 mean "no message class", unlike the SMS scheme's class 0.
        return DataCodingScheme(value, charset, message_class=(value & 0x03) or None, reserved=bool(value & 0x08))
    # 1000, 1010..1101 reserved; 1110 defined by the WAP Forum: read as GSM 7-bit.
    return DataCodingScheme(value, Charset.GSM7, reserved=True)


_TABLE: tuple[DataCodingScheme, ...] = tuple(_parse(v) for v in range(256))


def for_language(charset: Charset, language: str | None = None) -> int:
    """The DCS to send for ``charset`` and an optional ISO 639-1 ``language``."""
    if charset is Charset.GSM7:
        if language is None:
            return GSM7_UNSPECIFIED
        if language in _GROUP0_LANGUAGES:
            return _GROUP0_LANGUAGES.index(language)
        if language in _GROUP2_LANGUAGES:
            return 0x20 | _GROUP2_LANGUAGES.index(language)
        return GSM7_WITH_LANGUAGE_INDICATION
    if charset is Charset.UCS2:
        return UCS2 if language is None else UCS2_WITH_LANGUAGE_INDICATION
    return EIGHT_BIT
