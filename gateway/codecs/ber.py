"""Minimal BER (X.690) primitives shared by the TCAP and MAP codecs.

Tags are handled as their identifier octets (``bytes``) or, for single-octet identifiers (every tag TCAP and
MAP use except high-tag-number forms), as the identifier octet itself (``int``). Decoding accepts the short and
long length forms and the indefinite form (X.690 §8.1.3); encoding always produces the definite form with the
fewest length octets (X.690 §10.1, DER-like), which is what real MSCs and the references produce.
"""

from __future__ import annotations

from typing import NamedTuple

from gateway.codecs.errors import BerError

CONSTRUCTED = 0x20
CLASS_UNIVERSAL = 0x00
CLASS_APPLICATION = 0x40
CLASS_CONTEXT = 0x80
CLASS_PRIVATE = 0xC0

# Universal tags (X.680 §8.6) used by TCAP/MAP.
BOOLEAN = 0x01
INTEGER = 0x02
OCTET_STRING = 0x04
NULL = 0x05
OBJECT_IDENTIFIER = 0x06
EXTERNAL = 0x28  # [UNIVERSAL 8] constructed
ENUMERATED = 0x0A
SEQUENCE = 0x30
SET = 0x31


class Tlv(NamedTuple):
    """One decoded TLV: ``tag`` is the identifier octet(s) as an int (big-endian for multi-octet tags)."""

    tag: int
    start: int  # first octet of the value
    end: int  # one past the last octet of the value
    next: int  # first octet after the TLV (after the end-of-contents octets for indefinite lengths)


MAX_INDEFINITE_DEPTH = 32  # far beyond any TCAP/MAP nesting; hostile input must not exhaust the stack


def read_tlv(buf: bytes | memoryview, pos: int, limit: int, _depth: int = 0) -> Tlv:
    """Read the TLV at ``buf[pos:limit]``. Raises :class:`BerError` on any malformation."""
    if pos >= limit:
        raise BerError(f"expected a tag at offset {pos}, found the end of the data")
    tag = buf[pos]
    pos += 1
    if tag & 0x1F == 0x1F:  # X.690 §8.1.2.4 high tag number form
        count = 0
        while True:
            if pos >= limit:
                raise BerError("truncated high-number tag")
            octet = buf[pos]
            tag = (tag << 8) | octet
            pos += 1
            count += 1
            if not octet & 0x80:
                break
            if count > 4:
                raise BerError("tag number too large")
    if pos >= limit:
        raise BerError(f"missing length octet at offset {pos}")
    length = buf[pos]
    pos += 1
    if length < 0x80:
        end = pos + length
    elif length == 0x80:  # X.690 §8.1.3.6 indefinite form: constructed only
        first = tag
        while first > 0xFF:
            first >>= 8
        if not first & CONSTRUCTED:
            raise BerError("indefinite length on a primitive encoding")
        if _depth >= MAX_INDEFINITE_DEPTH:
            raise BerError(f"indefinite lengths nested deeper than {MAX_INDEFINITE_DEPTH}")
        inner = pos
        while True:
            if inner + 1 < limit and buf[inner] == 0 and buf[inner + 1] == 0:
                return Tlv(tag, pos, inner, inner + 2)
            inner = read_tlv(buf, inner, limit, _depth + 1).next
    else:
        count = length & 0x7F
        if count == 0x7F:
            raise BerError("reserved length octet 0xFF")  # X.690 §8.1.3.5 c)
        if count > 4:
            raise BerError(f"length of {count} octets is beyond any message")
        if pos + count > limit:
            raise BerError("truncated long-form length")
        end = 0
        for i in range(count):
            end = (end << 8) | buf[pos + i]
        pos += count
        end += pos
    if end > limit:
        raise BerError(f"value of {end - pos} octets overruns its container by {end - limit}")
    return Tlv(tag, pos, end, end)


def iter_tlvs(buf: bytes | memoryview, pos: int, limit: int) -> list[Tlv]:
    """All TLVs between ``pos`` and ``limit`` (the content of a constructed value)."""
    out: list[Tlv] = []
    while pos < limit:
        tlv = read_tlv(buf, pos, limit)
        out.append(tlv)
        pos = tlv.next
    return out


def encode_length(n: int) -> bytes:
    """X.690 §8.1.3: definite form, short when below 128."""
    if n < 0x80:
        return bytes((n,))
    if n < 0x100:
        return bytes((0x81, n))
    if n < 0x10000:
        return bytes((0x82, n >> 8, n & 0xFF))
    if n < 0x1000000:
        return bytes((0x83, n >> 16, (n >> 8) & 0xFF, n & 0xFF))
    raise BerError(f"value of {n} octets is too long")


def tlv(tag: int, value: bytes) -> bytes:
    """Encode one TLV with a single-octet identifier."""
    n = len(value)
    if n < 0x80:
        return bytes((tag, n)) + value
    return bytes((tag,)) + encode_length(n) + value


def encode_integer(value: int) -> bytes:
    """Content octets of an INTEGER (X.690 §8.3): two's complement, minimal."""
    if value == 0:
        return b"\x00"
    length = (value + (value < 0)).bit_length() // 8 + 1
    return value.to_bytes(length, "big", signed=True)


def decode_integer(content: bytes | memoryview) -> int:
    if not content:
        raise BerError("INTEGER with no content octets")
    return int.from_bytes(content, "big", signed=True)


def encode_oid(arcs: tuple[int, ...]) -> bytes:
    """Content octets of an OBJECT IDENTIFIER (X.690 §8.19)."""
    if len(arcs) < 2:
        raise BerError("an OID has at least two arcs")
    subids = [arcs[0] * 40 + arcs[1], *arcs[2:]]
    out = bytearray()
    for sub in subids:
        chunk = [sub & 0x7F]
        sub >>= 7
        while sub:
            chunk.append(0x80 | (sub & 0x7F))
            sub >>= 7
        out.extend(reversed(chunk))
    return bytes(out)


def decode_oid(content: bytes | memoryview) -> tuple[int, ...]:
    if not content:
        raise BerError("OBJECT IDENTIFIER with no content octets")
    subids: list[int] = []
    value = 0
    for octet in content:
        value = (value << 7) | (octet & 0x7F)
        if not octet & 0x80:
            subids.append(value)
            value = 0
    if content[-1] & 0x80:
        raise BerError("OBJECT IDENTIFIER ends inside a sub-identifier")
    first = subids[0]
    head = (first // 40, first % 40) if first < 80 else (2, first - 80)
    return (*head, *subids[1:])
