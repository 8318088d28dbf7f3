"""GSM 7-bit alphabet and packing (TS 23.038 §6.1.2, §6.2.1) and the USSD CR rule (§6.1.2.3.1)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.codecs import gsm7
from gateway.codecs.errors import TextEncodingError

BASIC = [c for i, c in enumerate(gsm7.DEFAULT_ALPHABET) if i != gsm7.ESC]
EXT = list(gsm7.EXTENSION_TABLE.values())
gsm_text = st.text(alphabet=st.sampled_from(BASIC + EXT), max_size=200)


def ref_pack(septets: bytes) -> bytes:
    """Reference packing written from §6.1.2.1.1's figure: bit by bit, LSB first."""
    bits = []
    for s in septets:
        bits.extend((s >> b) & 1 for b in range(7))
    out = bytearray()
    for i in range(0, len(bits), 8):
        chunk = bits[i : i + 8]
        out.append(sum(bit << k for k, bit in enumerate(chunk)))
    return bytes(out)


def test_known_vectors() -> None:
    # design.md's TC-BEGIN carries "*123#" as aa986c3602; the Go library's TC-BEGIN carries "test" as f4f29c0e.
    assert gsm7.encode_ussd("*123#") == bytes.fromhex("aa986c3602")
    assert gsm7.encode_ussd("test") == bytes.fromhex("f4f29c0e")
    assert gsm7.decode_ussd(bytes.fromhex("aa986c3602")) == "*123#"


def test_alphabet_tables() -> None:
    # §6.2.1 spot checks against the spec's table (row/column positions).
    assert gsm7.text_to_septets("@£$¥") == bytes([0, 1, 2, 3])
    assert gsm7.text_to_septets("ΔΦΓΛΩΠΨΣΘΞ") == bytes([0x10, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1A])
    assert gsm7.text_to_septets("¤¡ÄÖÑÜ§¿äöñüà") == bytes(
        [0x24, 0x40, 0x5B, 0x5C, 0x5D, 0x5E, 0x5F, 0x60, 0x7B, 0x7C, 0x7D, 0x7E, 0x7F]
    )
    # §6.2.1.1: the extension table, two septets each.
    assert gsm7.text_to_septets("€[]{}\\~^|\x0c") == bytes(
        [27, 0x65, 27, 0x3C, 27, 0x3E, 27, 0x28, 27, 0x29, 27, 0x2F, 27, 0x3D, 27, 0x14, 27, 0x40, 27, 0x0A]
    )


def test_unencodable_names_character_and_position() -> None:
    with pytest.raises(TextEncodingError) as info:
        gsm7.text_to_septets("abc`d")
    assert info.value.char == "`"
    assert info.value.position == 3
    assert "'`'" in str(info.value) and "position 3" in str(info.value)
    with pytest.raises(TextEncodingError):
        gsm7.text_to_septets("\x1b")  # the escape itself is not a character of the text


@pytest.mark.parametrize("n", [0, 1, 7, 8, 15, 16, 181, 182, 183])
def test_boundaries(n: int) -> None:
    text = ("abcdefghijklmnopqrstuvwxyz" * 8)[:n]
    packed = gsm7.encode_ussd(text)
    septets = n + (1 if n % 8 == 7 else 0)
    assert len(packed) == (septets * 7 + 7) // 8
    assert gsm7.decode_ussd(packed) == text
    if n % 8 == 7:  # 7 spare bits: CR in the top 7 bits of the last octet, not zeros
        assert packed[-1] >> 1 == gsm7.CR


@pytest.mark.parametrize("n", range(1, 25))
def test_cr_ending_at_every_position(n: int) -> None:
    text = "x" * (n - 1) + "\r"
    packed = gsm7.encode_ussd(text)
    decoded = gsm7.decode_ussd(packed)
    if n % 8 == 0:
        # The user's CR lands on an octet boundary: one more CR is added and both stay (§6.1.2.3.1).
        assert len(packed) == (n * 7 + 7 + 7) // 8
        assert decoded == text + "\r"
    else:
        assert decoded == text


@given(st.binary(max_size=400).map(lambda b: bytes(x & 0x7F for x in b)))
@settings(max_examples=300, deadline=None)
def test_pack_matches_reference(septets: bytes) -> None:
    packed = gsm7.pack_septets(septets)
    assert packed == ref_pack(septets)
    assert gsm7.unpack_septets(packed, len(septets)) == septets


@given(gsm_text)
@settings(max_examples=300, deadline=None)
def test_roundtrip(text: str) -> None:
    septets = gsm7.text_to_septets(text)
    assert len(septets) == len(text) + sum(c in EXT for c in text)
    assert gsm7.septets_to_text(septets) == text
    decoded = gsm7.decode_ussd(gsm7.encode_ussd(text))
    if text.endswith("\r") and len(septets) % 8 == 0:
        assert decoded == text + "\r"
    else:
        assert decoded == text


def test_every_character_of_both_tables_roundtrips() -> None:
    for char in BASIC + EXT:
        for pad in range(8):
            text = "a" * pad + char
            expected = text + "\r" if char == "\r" and pad == 7 else text  # CR on a boundary, see above
            assert gsm7.decode_ussd(gsm7.encode_ussd(text)) == expected, (pad, char)


def test_unknown_extension_code_reads_as_default_table() -> None:
    # §6.2.1.1: an unknown extension code is shown as the default-table character of that code.
    assert gsm7.septets_to_text(bytes([27, 0x41])) == "A"
    assert gsm7.septets_to_text(bytes([0x41, 27])) == "A "


def test_unpack_too_short_is_codec_error() -> None:
    with pytest.raises(TextEncodingError):
        gsm7.unpack_septets(b"\x01", 5)
