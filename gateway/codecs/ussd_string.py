"""USSD-String <-> text (TS 29.002 §17.7.4 USSD-String, coded per TS 23.038 §5 and §6).

Stable public API: :func:`encode` and :func:`decode`. A USSD-String holds at most 160 octets
(maxUSSD-StringLength): 182 GSM 7-bit septets (extension characters count two) or 80 UCS2 code units (a
character outside the BMP counts two).
"""

from __future__ import annotations

from gateway.codecs import dcs as dcs_mod
from gateway.codecs import gsm7
from gateway.codecs.dcs import Charset
from gateway.codecs.errors import TextEncodingError

MAX_OCTETS = 160  # TS 29.002 maxUSSD-StringLength
MAX_GSM7_SEPTETS = MAX_OCTETS * 8 // 7  # 182
MAX_UCS2_UNITS = MAX_OCTETS // 2  # 80


def choose_dcs(text: str, language: str | None = None) -> int:
    """GSM 7-bit when every character fits (TS 23.038 §6.2.1), else UCS2; with the language when given."""
    charset = Charset.GSM7 if gsm7.is_gsm7(text) else Charset.UCS2
    return dcs_mod.for_language(charset, language)


def encode(text: str, dcs: int | None = None, *, language: str | None = None) -> tuple[int, bytes]:
    """Encode ``text`` as a USSD-String. Returns (the DCS used, the octets).

    ``dcs=None`` chooses GSM 7-bit (0x0F) or UCS2 (0x48). For the language-indication forms (0x10, 0x11) pass
    the ISO 639-1 ``language``; it is written in front of the text as TS 23.038 §5 requires.
    """
    if dcs is None:
        if language is None:
            # The common case, in one pass: GSM 7-bit when every character fits, else UCS2.
            try:
                septets = gsm7.text_to_septets(text)
            except TextEncodingError:
                dcs = dcs_mod.UCS2
            else:
                if len(septets) > MAX_GSM7_SEPTETS:
                    raise TextEncodingError(
                        f"text needs {len(septets)} GSM 7-bit septets; a USSD-String holds at most "
                        f"{MAX_GSM7_SEPTETS} ({MAX_OCTETS} octets, TS 29.002 maxUSSD-StringLength)"
                    )
                return dcs_mod.GSM7_UNSPECIFIED, gsm7.encode_ussd_septets(septets)
        else:
            dcs = choose_dcs(text, language)
    scheme = dcs_mod.parse(dcs)
    if scheme.compressed:
        raise TextEncodingError(f"DCS 0x{dcs:02X} asks for TS 23.042 compression, which USSD texts do not use")
    if scheme.charset is Charset.GSM7:
        if scheme.language_indication:
            text = _language_prefix(language, dcs) + "\r" + text  # §5: 2 characters + CR, then the text
        septets = gsm7.text_to_septets(text)
        if len(septets) > MAX_GSM7_SEPTETS:
            raise TextEncodingError(
                f"text needs {len(septets)} GSM 7-bit septets; a USSD-String holds at most "
                f"{MAX_GSM7_SEPTETS} ({MAX_OCTETS} octets, TS 29.002 maxUSSD-StringLength)"
            )
        return dcs, gsm7.encode_ussd_septets(septets)
    if scheme.charset is Charset.UCS2:
        body = text.encode("utf-16-be", "surrogatepass")
        if scheme.language_indication:
            # §5 (0x11): two GSM 7-bit characters of the ISO 639 language, packed in two octets, then UCS2.
            body = gsm7.pack_septets(gsm7.text_to_septets(_language_prefix(language, dcs))) + body
        if len(body) > MAX_OCTETS:
            raise TextEncodingError(
                f"text needs {len(body) // 2} UCS2 code units; a USSD-String holds at most {MAX_UCS2_UNITS} "
                f"({MAX_OCTETS} octets, TS 29.002 maxUSSD-StringLength)"
            )
        return dcs, body
    try:
        body = text.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise TextEncodingError(
            f"character {text[exc.start]!r} at position {exc.start} does not fit the 8-bit DCS 0x{dcs:02X}",
            char=text[exc.start],
            position=exc.start,
        ) from None
    if len(body) > MAX_OCTETS:
        raise TextEncodingError(f"text of {len(body)} octets exceeds the USSD-String limit of {MAX_OCTETS}")
    return dcs, body


def decode(dcs: int, octets: bytes) -> str:
    """Decode a USSD-String. The language indication of 0x10/0x11 is removed (see :func:`decode_language`)."""
    return decode_language(dcs, octets)[0]


def decode_language(dcs: int, octets: bytes) -> tuple[str, str | None]:
    """Decode a USSD-String and return (text, language) where the DCS or its language indication names one."""
    scheme = dcs_mod.parse(dcs)
    if scheme.compressed:
        raise TextEncodingError(f"DCS 0x{dcs:02X}: compressed USSD-Strings (TS 23.042) are not supported")
    if scheme.charset is Charset.GSM7:
        text = gsm7.decode_ussd(bytes(octets))
        if scheme.language_indication:
            prefix = text[:2]
            return text[3:] if text[2:3] == "\r" else text[2:], prefix
        return text, scheme.language
    if scheme.charset is Charset.UCS2:
        language: str | None = None
        if scheme.language_indication:
            language = gsm7.septets_to_text(gsm7.unpack_septets(bytes(octets[:2]), 2)) if len(octets) >= 2 else None
            octets = octets[2:]
        # A lone surrogate or an odd trailing octet is shown as U+FFFD rather than refused: the text still
        # reaches the application, and the session is not lost over one bad character.
        return bytes(octets).decode("utf-16-be", "replace"), language
    return bytes(octets).decode("latin-1"), scheme.language


def fits(text: str, dcs: int | None = None) -> bool:
    """Whether ``text`` fits one USSD-String in ``dcs`` (or the DCS :func:`choose_dcs` would pick)."""
    try:
        encode(text, dcs, language="en" if dcs in (0x10, 0x11) else None)
    except TextEncodingError:
        return False
    return True


def truncate(text: str, marker: str = "...", dcs: int | None = None) -> str:
    """The longest prefix of ``text`` plus ``marker`` that fits one USSD-String (``text`` itself if it fits)."""
    if fits(text, dcs):
        return text
    lo, hi = 0, len(text)  # invariant: text[:lo] + marker fits, text[:hi] + marker does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(text[:mid] + marker, dcs):
            lo = mid
        else:
            hi = mid
    if lo and "\ud800" <= text[lo - 1] <= "\udbff":
        lo -= 1  # never split a surrogate pair
    return text[:lo] + marker


def _language_prefix(language: str | None, dcs: int) -> str:
    if language is None or len(language) != 2 or not gsm7.is_gsm7(language):
        raise TextEncodingError(
            f"DCS 0x{dcs:02X} needs a two-letter ISO 639 language indication (TS 23.038 §5), got {language!r}"
        )
    return language
