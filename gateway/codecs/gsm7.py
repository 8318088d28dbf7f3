"""GSM 7-bit default alphabet and packing (TS 23.038 §6.1.2, §6.2.1, §6.2.1.1) with the USSD padding rule.

Packing uses big-integer arithmetic instead of a per-septet loop: the septets are laid out one per octet in an
int, and three mask-and-shift steps squeeze every 8 octets into 7 (8->7 bits, 16->14, 32->28, 64->56), after
which the one empty octet of each 8 is deleted with a slice. Unpacking is the same in reverse. Tables are
immutable module constants built once at import.
"""

from __future__ import annotations

from gateway.codecs.errors import TextEncodingError

ESC = 0x1B
CR = 0x0D

# TS 23.038 §6.2.1: the default alphabet, septet value -> character (0x1B is the escape to the extension table).
DEFAULT_ALPHABET = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
assert len(DEFAULT_ALPHABET) == 128

# TS 23.038 §6.2.1.1: the extension table (after ESC), septet value -> character.
EXTENSION_TABLE: dict[int, str] = {
    0x0A: "\x0c",  # form feed (page break)
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}

_CHAR_TO_SEPTET: dict[str, int] = {c: i for i, c in enumerate(DEFAULT_ALPHABET) if i != ESC}
_CHAR_TO_EXT: dict[str, int] = {c: v for v, c in EXTENSION_TABLE.items()}

# str.translate table: characters of the default table map to the character whose code is the septet, so that
# `text.translate(_TO_SEPTETS).encode("ascii")` gives the septets in C speed for texts without extension chars.
# ASCII characters outside the default table map to U+0100 so that the result is ASCII only when every character
# was in the table.
_TO_SEPTETS: dict[int, str] = {
    **{code: "\u0100" for code in range(128)},
    **{ord(c): chr(v) for c, v in _CHAR_TO_SEPTET.items()},
}
# bytes.translate table: septet -> UTF-8 is not a single byte, so decoding goes septets -> latin-1 str ->
# str.translate back to the alphabet.
_FROM_SEPTETS: dict[int, str] = dict(enumerate(DEFAULT_ALPHABET))


def is_gsm7(text: str) -> bool:
    """True when every character of ``text`` is in the default or the extension table."""
    return all(c in _CHAR_TO_SEPTET or c in _CHAR_TO_EXT for c in text)


def septet_length(text: str) -> int:
    """Septets needed for ``text`` (extension characters count two, §6.2.1.1). Raises for unencodable text."""
    return len(text_to_septets(text))


def _ascii_table() -> bytes:
    table = bytearray([_NOT_BASIC] * 256)
    for code in range(128):
        septet = _CHAR_TO_SEPTET.get(chr(code))
        if septet is not None:
            table[code] = septet
    return bytes(table)


_NOT_BASIC = 0x80  # marks ASCII characters that are not in the default table ([ ] { } etc. need ESC)
_ASCII_TO_SEPTET = _ascii_table()


def text_to_septets(text: str) -> bytes:
    """Characters -> septet values (one per octet), with ESC pairs for the extension table."""
    if text.isascii():
        septets = text.encode("ascii").translate(_ASCII_TO_SEPTET)
        if _NOT_BASIC not in septets:
            return septets
    mapped = text.translate(_TO_SEPTETS)
    if mapped.isascii():
        return mapped.encode("ascii")
    out = bytearray()
    for position, char in enumerate(text):
        septet = _CHAR_TO_SEPTET.get(char)
        if septet is not None:
            out.append(septet)
            continue
        ext = _CHAR_TO_EXT.get(char)
        if ext is None:
            raise TextEncodingError(
                f"character {char!r} (U+{ord(char):04X}) at position {position} is not in the GSM 7-bit "
                "default alphabet or its extension table (TS 23.038 §6.2.1)",
                char=char,
                position=position,
            )
        out += bytes((ESC, ext))
    return bytes(out)


def septets_to_text(septets: bytes) -> str:
    """Septet values -> characters. An ESC followed by a code not in the extension table shows the default-table
    character of that code (TS 23.038 §6.2.1.1 note); a trailing lone ESC is shown as a space."""
    if ESC not in septets:
        return septets.decode("latin-1").translate(_FROM_SEPTETS)
    out: list[str] = []
    i = 0
    n = len(septets)
    while i < n:
        s = septets[i]
        if s == ESC:
            if i + 1 < n:
                nxt = septets[i + 1]
                out.append(EXTENSION_TABLE.get(nxt) or (" " if nxt == ESC else DEFAULT_ALPHABET[nxt & 0x7F]))
                i += 2
                continue
            out.append(" ")
        else:
            out.append(DEFAULT_ALPHABET[s & 0x7F])
        i += 1
    return "".join(out)


# Masks for the big-integer squeeze, long enough for the largest USSD/SMS payloads (and grown on demand).
_MAX_OCTETS = 1024


def _masks(n_octets: int) -> tuple[int, int, int, int, int, int]:
    groups = (n_octets + 7) // 8
    m_lo1 = int.from_bytes(b"\x7f\x00" * (groups * 4), "little")  # low septet of each 16-bit pair
    m_hi1 = m_lo1 << 8
    m_lo2 = int.from_bytes(b"\xff\x3f\x00\x00" * (groups * 2), "little")  # low 14 bits of each 32
    m_hi2 = m_lo2 << 16
    m_lo3 = int.from_bytes(b"\xff\xff\xff\x0f\x00\x00\x00\x00" * groups, "little")  # low 28 bits of each 64
    m_hi3 = m_lo3 << 32
    return m_lo1, m_hi1, m_lo2, m_hi2, m_lo3, m_hi3


_M_LO1, _M_HI1, _M_LO2, _M_HI2, _M_LO3, _M_HI3 = _masks(_MAX_OCTETS)

# Unpacking: first spread the 56-bit groups of 8 septets apart, top down (a block of 2B groups splits into two
# halves of B groups, the upper half moving up by B octets), then spread each group's 56 bits into 8 septets.
_MAX_GROUPS = _MAX_OCTETS // 8


def _group_masks() -> tuple[tuple[int, int, int], ...]:
    out = []
    b = _MAX_GROUPS // 2
    while b >= 1:
        reps = _MAX_GROUPS // (2 * b)
        lo = int.from_bytes((b"\xff" * (7 * b) + b"\x00" * (9 * b)) * reps, "little")
        hi = int.from_bytes((b"\x00" * (7 * b) + b"\xff" * (7 * b) + b"\x00" * (2 * b)) * reps, "little")
        out.append((b, lo, hi))
        b //= 2
    return tuple(out)


_GROUP_MASKS = _group_masks()
_U_LO3 = _M_LO3
_U_HI3 = _M_LO3 << 28
_U_LO2 = int.from_bytes(b"\xff\x3f\x00\x00" * (_MAX_OCTETS // 4 + 2), "little")
_U_HI2 = _U_LO2 << 14
_U_LO1 = int.from_bytes(b"\x7f\x00" * (_MAX_OCTETS // 2 + 4), "little")
_U_HI1 = _U_LO1 << 7


def pack_septets(septets: bytes) -> bytes:
    """Pack septets LSB first (TS 23.038 §6.1.2.1.1). Unused high bits of the last octet are zero."""
    n = len(septets)
    if n == 0:
        return b""
    if n > _MAX_OCTETS:
        return _pack_slow(septets)
    x = int.from_bytes(septets, "little")
    x = (x & _M_LO1) | ((x & _M_HI1) >> 1)
    x = (x & _M_LO2) | ((x & _M_HI2) >> 2)
    x = (x & _M_LO3) | ((x & _M_HI3) >> 4)
    groups = (n + 7) >> 3
    raw = bytearray(x.to_bytes(groups * 8, "little"))
    del raw[7::8]
    return bytes(raw[: (n * 7 + 7) >> 3])


def unpack_septets(octets: bytes, count: int | None = None) -> bytes:
    """Unpack ``count`` septets (default: all whole septets in ``octets``)."""
    if count is None:
        count = len(octets) * 8 // 7
    if count == 0:
        return b""
    if (count * 7 + 7) >> 3 > len(octets):
        raise TextEncodingError(f"{len(octets)} octets hold fewer than {count} septets")
    if count > _MAX_OCTETS:
        return _unpack_slow(octets, count)
    groups = (count + 7) >> 3
    x = int.from_bytes(octets[: groups * 7], "little")
    for b, lo, hi in _GROUP_MASKS:
        if b < groups:
            x = (x & lo) | ((x & hi) << (b * 8))
    x = (x & _U_LO3) | ((x & _U_HI3) << 4)
    x = (x & _U_LO2) | ((x & _U_HI2) << 2)
    x = (x & _U_LO1) | ((x & _U_HI1) << 1)
    return x.to_bytes(groups * 8, "little")[:count]


def _pack_slow(septets: bytes) -> bytes:
    acc = 0
    for i, s in enumerate(septets):
        acc |= (s & 0x7F) << (7 * i)
    return acc.to_bytes((len(septets) * 7 + 7) >> 3, "little")


def _unpack_slow(octets: bytes, count: int) -> bytes:
    acc = int.from_bytes(octets, "little")
    return bytes((acc >> (7 * i)) & 0x7F for i in range(count))


def encode_ussd(text: str) -> bytes:
    """Text -> packed octets with the USSD padding rule (TS 23.038 §6.1.2.3.1)."""
    return encode_ussd_septets(text_to_septets(text))


def encode_ussd_septets(septets: bytes) -> bytes:
    """Septets -> packed octets with the USSD padding rule (TS 23.038 §6.1.2.3.1)."""
    n = len(septets)
    rem = n & 7
    if rem == 7:
        # 7 spare bits remain in the last octet: fill them with CR, not zeros.
        septets += b"\r"
    elif rem == 0 and n and septets[-1] == CR:
        # The text ends with CR on an octet boundary: add one CR so the receiver keeps the user's CR.
        septets += b"\r"
    return pack_septets(septets)


def decode_ussd(octets: bytes) -> str:
    """Packed octets -> text, removing exactly the padding CR of TS 23.038 §6.1.2.3.1."""
    n = len(octets)
    if n == 0:
        return ""
    count = n * 8 // 7
    septets = unpack_septets(octets, count)
    if count & 7 == 0 and septets[-1] == CR:
        # The message ends on an octet boundary with CR: that CR is the padding. (After a user's CR on an octet
        # boundary the encoder added one more CR, so the message does not end on a boundary and both CRs stay:
        # "<CR><CR> is identical to <CR>", §6.1.2.3.1.)
        septets = septets[:-1]
    return septets_to_text(septets)
