"""USSD-String API: DCS choice, limits, UCS2, language indication (TS 23.038 §5, TS 29.002 §17.7.4)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.codecs import gsm7, ussd_string
from gateway.codecs.errors import TextEncodingError

BASIC = [c for i, c in enumerate(gsm7.DEFAULT_ALPHABET) if i != gsm7.ESC and c != "\r"]


def test_choose_dcs() -> None:
    assert ussd_string.encode("*123#") == (0x0F, bytes.fromhex("aa986c3602"))
    dcs, octets = ussd_string.encode("Баланс: 100")
    assert dcs == 0x48 and octets == "Баланс: 100".encode("utf-16-be")


@pytest.mark.parametrize("n", [0, 1, 7, 8, 15, 16, 181, 182])
def test_gsm7_lengths_fit(n: int) -> None:
    text = "a" * n
    dcs, octets = ussd_string.encode(text)
    assert dcs == 0x0F and len(octets) <= 160
    assert ussd_string.decode(dcs, octets) == text


def test_limits() -> None:
    with pytest.raises(TextEncodingError, match="182"):
        ussd_string.encode("a" * 183)
    with pytest.raises(TextEncodingError, match="182"):
        ussd_string.encode("€" * 92)  # 184 septets with the escapes
    assert len(ussd_string.encode("€" * 91)[1]) == 160
    assert len(ussd_string.encode("Ж" * 80)[1]) == 160
    with pytest.raises(TextEncodingError, match="80"):
        ussd_string.encode("Ж" * 81)
    # A character outside the BMP is a surrogate pair: two UCS2 code units.
    assert len(ussd_string.encode("😀" * 40)[1]) == 160
    with pytest.raises(TextEncodingError):
        ussd_string.encode("😀" * 40 + "a")


def test_forced_gsm7_names_bad_character() -> None:
    with pytest.raises(TextEncodingError) as info:
        ussd_string.encode("Hello Ж", 0x0F)
    assert info.value.position == 6 and info.value.char == "Ж"


def test_language_indication() -> None:
    dcs, octets = ussd_string.encode("Hallo", 0x10, language="de")
    assert gsm7.decode_ussd(octets) == "de\rHallo"
    assert ussd_string.decode_language(dcs, octets) == ("Hallo", "de")
    dcs, octets = ussd_string.encode("Привет", 0x11, language="ru")
    assert octets[2:] == "Привет".encode("utf-16-be")
    assert ussd_string.decode_language(dcs, octets) == ("Привет", "ru")
    with pytest.raises(TextEncodingError):
        ussd_string.encode("x", 0x10)


def test_eight_bit_and_group_languages() -> None:
    assert ussd_string.encode("abc", 0x44) == (0x44, b"abc")
    assert ussd_string.decode_language(0x01, ussd_string.encode("hi", 0x01)[1]) == ("hi", "en")


def test_compressed_is_refused() -> None:
    with pytest.raises(TextEncodingError):
        ussd_string.encode("x", 0x68)
    with pytest.raises(TextEncodingError):
        ussd_string.decode(0x68, b"x")


def test_bad_ucs2_is_readable() -> None:
    assert ussd_string.decode(0x48, b"\x00a\x00") == "a\ufffd"
    assert ussd_string.decode(0x48, b"\xd8\x00\x00a") == "\ufffda"


@given(st.text(alphabet=st.sampled_from(BASIC), max_size=182))
@settings(max_examples=200, deadline=None)
def test_gsm7_roundtrip(text: str) -> None:
    dcs, octets = ussd_string.encode(text)
    assert dcs == 0x0F
    assert ussd_string.decode(dcs, octets) == text


@given(st.text(min_size=1, max_size=60).filter(lambda t: not gsm7.is_gsm7(t)))
@settings(max_examples=200, deadline=None)
def test_ucs2_roundtrip(text: str) -> None:
    units = len(text.encode("utf-16-be", "surrogatepass")) // 2
    if units > 80:
        with pytest.raises(TextEncodingError):
            ussd_string.encode(text)
        return
    dcs, octets = ussd_string.encode(text)
    assert dcs == 0x48
    assert ussd_string.decode(dcs, octets) == text.encode("utf-16-be", "surrogatepass").decode("utf-16-be", "replace")


@given(st.text(max_size=400), st.sampled_from([None, 0x0F, 0x48]))
@settings(max_examples=200, deadline=None)
def test_truncate_always_fits(text: str, dcs: int | None) -> None:
    if dcs == 0x0F and not gsm7.is_gsm7(text):
        return
    cut = ussd_string.truncate(text, "...", dcs)
    assert ussd_string.fits(cut, dcs)
    if ussd_string.fits(text, dcs):
        assert cut == text
    else:
        assert cut.endswith("...") and text.startswith(cut[:-3])
        assert not ussd_string.fits(text[: len(cut) - 3 + 1] + "...", dcs)
