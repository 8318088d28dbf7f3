"""CBS data coding scheme (TS 23.038 §5)."""

from __future__ import annotations

import pytest

from gateway.codecs import dcs
from gateway.codecs.dcs import Charset


def test_every_value_parses() -> None:
    for value in range(256):
        parsed = dcs.parse(value)
        assert parsed.value == value
        assert parsed.charset in Charset
    with pytest.raises(ValueError):
        dcs.parse(256)


@pytest.mark.parametrize(
    ("value", "charset", "language"),
    [
        (0x00, Charset.GSM7, "de"),
        (0x01, Charset.GSM7, "en"),
        (0x0B, Charset.GSM7, "el"),
        (0x0E, Charset.GSM7, "pl"),
        (0x0F, Charset.GSM7, None),
        (0x20, Charset.GSM7, "cs"),
        (0x23, Charset.GSM7, "ru"),
        (0x24, Charset.GSM7, "is"),
        (0x44, Charset.EIGHT_BIT, None),
        (0x48, Charset.UCS2, None),
        (0x40, Charset.GSM7, None),
        (0xF0, Charset.GSM7, None),
        (0xF4, Charset.EIGHT_BIT, None),
    ],
)
def test_groups(value: int, charset: Charset, language: str | None) -> None:
    parsed = dcs.parse(value)
    assert parsed.charset is charset
    assert parsed.language == language
    assert not parsed.reserved


def test_language_indication_forms() -> None:
    assert dcs.parse(0x10).language_indication and dcs.parse(0x10).charset is Charset.GSM7
    assert dcs.parse(0x11).language_indication and dcs.parse(0x11).charset is Charset.UCS2


def test_general_coding_bits() -> None:
    p = dcs.parse(0x7A)  # 01 1 1 10 10: compressed, class meaningful, UCS2, class 2
    assert p.compressed and p.charset is Charset.UCS2 and p.message_class == 2
    assert dcs.parse(0x48).message_class is None
    assert dcs.parse(0xF1).message_class == 1
    assert dcs.parse(0xF0).message_class is None  # TS 23.038 §5 group 1111: 00 = no message class
    assert dcs.parse(0xF4).message_class is None and dcs.parse(0xF4).charset is Charset.EIGHT_BIT
    assert dcs.parse(0x95).udh and dcs.parse(0x95).charset is Charset.EIGHT_BIT


@pytest.mark.parametrize("value", [0x12, 0x1F, 0x25, 0x30, 0x3F, 0x4C, 0x80, 0xA0, 0xE0, 0xF8])
def test_reserved_reads_as_gsm7(value: int) -> None:
    # TS 23.038 §5: reserved codings are assumed to be the GSM 7-bit default alphabet.
    parsed = dcs.parse(value)
    assert parsed.reserved and parsed.charset is Charset.GSM7


def test_for_language() -> None:
    assert dcs.for_language(Charset.GSM7) == 0x0F
    assert dcs.for_language(Charset.GSM7, "fr") == 0x03
    assert dcs.for_language(Charset.GSM7, "ru") == 0x23
    assert dcs.for_language(Charset.GSM7, "sw") == 0x10
    assert dcs.for_language(Charset.UCS2) == 0x48
    assert dcs.for_language(Charset.UCS2, "ar") == 0x11
