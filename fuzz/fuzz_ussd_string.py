"""USSD-String <-> text for every DCS (gateway/codecs/ussd_string.py, gsm7.py, dcs.py; TS 23.038).

Octet 0 is the DCS, the rest the USSD-String. Checks: contract of decode_language for every DCS; the text
re-encodes in the same DCS (with the same language indication) and decodes to the same text, where TS 23.038
allows (README "Tolerances"); GSM 7-bit packing round trips."""

from __future__ import annotations

from fuzz import _tolerances
from fuzz.driver import accepts, expect
from gateway.codecs import dcs as dcs_mod
from gateway.codecs import gsm7, ussd_string
from gateway.codecs.dcs import Charset


def test_one_input(data: bytes) -> None:
    if not data:
        return
    dcs, octets = data[0], data[1:]
    scheme = dcs_mod.parse(dcs)
    decoded = accepts(ussd_string.decode_language, dcs, octets)
    septets = gsm7.unpack_septets(octets)
    if len(octets) % 7 == 0:
        expect(gsm7.pack_septets(septets) == octets, "GSM 7-bit pack(unpack(x)) != x", octets.hex())
    expect(gsm7.unpack_septets(gsm7.pack_septets(septets)) == septets, "GSM 7-bit unpack(pack(s)) != s")
    if decoded is None:
        expect(scheme.compressed, "only compressed DCS values are refused", dcs)
        return
    text, language = decoded
    if len(octets) > ussd_string.MAX_OCTETS or (scheme.language_indication and len(octets) < 3):
        return  # longer than a USSD-String can be, or too short for its language indication
    if scheme.charset is Charset.UCS2 and ("\ufffd" in text or len(octets) % 2):
        return  # a lone surrogate or odd octet shown as U+FFFD (ussd_string.decode_language)
    if scheme.language_indication and (language is None or not gsm7.is_gsm7(language) or len(language) != 2):
        return
    if scheme.language_indication and scheme.charset is Charset.GSM7 and octets and text == "":
        return
    if scheme.language_indication and scheme.charset is Charset.GSM7 and language is not None \
            and gsm7.septet_length(f"{language}\r{text}") > ussd_string.MAX_GSM7_SEPTETS:
        return  # the language indication came without its CR (TS 23.038 §5), the re-encoding adds it: T7
    encoded = accepts(ussd_string.encode, text, dcs, language=language)
    expect(encoded is not None, "decoded text does not re-encode in its DCS", dcs, text)
    assert encoded is not None
    expect(encoded[0] == dcs, "re-encoded with another DCS", dcs, encoded)
    again = ussd_string.decode_language(dcs, encoded[1])
    if again != (text, language) and scheme.charset is Charset.GSM7 and again[0].rstrip("\r") == text.rstrip("\r") \
            and again[1] == language:
        expect(_tolerances.lone_escape(octets), "USSD-String round trip changes the final CRs", dcs, octets.hex())
        return
    expect(again == (text, language), "USSD-String round trip", dcs, octets.hex(), (text, language), again)
