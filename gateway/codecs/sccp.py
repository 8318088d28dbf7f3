"""SCCP connectionless messages (Q.713 §4.10 UDT, §4.11 UDTS, §4.18 XUDT, §4.19 XUDTS) and party addresses (§3.4).

Messages are NamedTuples (built for every message; tuples construct fastest); addresses are frozen dataclasses
decoded through a bounded cache, since a gateway sees the same few addresses over and over.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

from gateway.codecs.errors import SccpError
from gateway.codecs.values import typed_value

UDT = 0x09
UDTS = 0x0A
XUDT = 0x11
XUDTS = 0x12

RETURN_ON_ERROR = 0x80  # Q.713 §3.6: message handling "return message on error"
MAX_HOP_COUNTER = 15
# Q.713 §4.10 note / Q.714 §4.1.1: an SCCP message must fit the MTP SIF (272 octets) less the routing label.
MAX_MTP_MESSAGE = 268

SSN_HLR = 6
SSN_VLR = 7
SSN_MSC = 8
SSN_EIR = 9
SSN_AUC = 10
SSN_GMLC = 145
SSN_GSMSCF = 147
SSN_SGSN = 149
SSN_GGSN = 150


class ReturnCause(enum.IntEnum):
    """Q.713 §3.12 return cause (UDTS/XUDTS)."""

    NO_TRANSLATION_FOR_NATURE = 0
    NO_TRANSLATION_FOR_ADDRESS = 1
    SUBSYSTEM_CONGESTION = 2
    SUBSYSTEM_FAILURE = 3
    UNEQUIPPED_USER = 4
    MTP_FAILURE = 5
    NETWORK_CONGESTION = 6
    UNQUALIFIED = 7
    ERROR_IN_MESSAGE_TRANSPORT = 8
    ERROR_IN_LOCAL_PROCESSING = 9
    DESTINATION_CANNOT_REASSEMBLE = 10
    SCCP_FAILURE = 11
    HOP_COUNTER_VIOLATION = 12
    SEGMENTATION_NOT_SUPPORTED = 13
    SEGMENTATION_FAILURE = 14


class NumberingPlan(enum.IntEnum):
    """Q.713 §3.4.2.3.3 numbering plan."""

    UNKNOWN = 0
    ISDN_TELEPHONY = 1  # E.164
    GENERIC = 2
    DATA = 3  # X.121
    TELEX = 4  # F.69
    MARITIME_MOBILE = 5  # E.210/E.211
    LAND_MOBILE = 6  # E.212
    ISDN_MOBILE = 7  # E.214
    PRIVATE = 14


class NatureOfAddress(enum.IntEnum):
    """Q.713 §3.4.2.3.1 nature of address indicator."""

    UNKNOWN = 0
    SUBSCRIBER = 1
    NATIONAL_RESERVED = 2
    NATIONAL_SIGNIFICANT = 3
    INTERNATIONAL = 4


_DIGITS = "0123456789abcdef"  # Q.713 §3.4.2.3.1 address signals: 0-9, then codes 10..15 as hex (b = code 11 ...)
_NIBBLE = {c: i for i, c in enumerate(_DIGITS)}


@dataclass(frozen=True, slots=True)
class GlobalTitle:
    """Q.713 §3.4.2.3. ``gti`` 1..4; fields a format does not carry are ignored on encoding."""

    digits: str
    gti: int = 4
    tt: int = 0
    np: int = NumberingPlan.ISDN_TELEPHONY
    nai: int = NatureOfAddress.INTERNATIONAL
    es: int | None = None  # encoding scheme; None = BCD odd/even from the digit count

    def encoding_scheme(self) -> int:
        if self.es is not None:
            return self.es
        return 1 if len(self.digits) % 2 else 2


@dataclass(frozen=True, slots=True)
class SccpAddress:
    """Q.713 §3.4 called/calling party address."""

    route_on_ssn: bool
    ssn: int | None = None
    pc: int | None = None
    gt: GlobalTitle | None = None
    national: bool = False
    # The encoding with its length indicator, computed once: addresses are built rarely and sent often.
    lv: bytes = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        raw = _encode_address(self)
        object.__setattr__(self, "lv", bytes((len(raw),)) + raw)

    @classmethod
    def gt_e164(cls, digits: str, ssn: int, *, tt: int = 0) -> SccpAddress:
        """Route on GT, GT format 4, E.164 international, with an SSN: what MAP signalling uses."""
        return cls(False, ssn, None, GlobalTitle(digits, 4, tt))

    def encode(self) -> bytes:
        return _encode_address(self)


@typed_value
class Udt(NamedTuple):
    """UDT / XUDT (unitdata). For UDT, ``hop_counter``, ``segmentation`` and ``importance`` are None."""

    protocol_class: int  # 0 or 1
    return_on_error: bool
    called: SccpAddress
    calling: SccpAddress
    data: bytes
    hop_counter: int | None = None  # XUDT only
    segmentation: Segmentation | None = None  # XUDT only
    importance: int | None = None  # XUDT only

    @property
    def extended(self) -> bool:
        return self.hop_counter is not None


@typed_value
class Udts(NamedTuple):
    """UDTS / XUDTS (unitdata service): the message returned with a cause."""

    return_cause: int
    called: SccpAddress
    calling: SccpAddress
    data: bytes
    hop_counter: int | None = None  # XUDTS only
    segmentation: Segmentation | None = None
    importance: int | None = None

    @property
    def extended(self) -> bool:
        return self.hop_counter is not None


@typed_value
class Segmentation(NamedTuple):
    """Q.713 §3.17 segmentation parameter."""

    first: bool
    in_sequence: bool  # class 1 requested
    remaining: int  # 0..15
    local_reference: int  # 24 bits


SccpMessage = Udt | Udts


# ---- addresses ----


def _bcd(digits: str) -> bytes:
    try:
        nibbles = [_NIBBLE[c] for c in digits.lower()]
    except KeyError as exc:
        raise SccpError(f"global title digit {exc.args[0]!r} is not an address signal (0-9, a-f)") from None
    if len(nibbles) % 2:
        nibbles.append(0)  # Q.713 §3.4.2.3.1: filler 0 after an odd number of signals
    return bytes(nibbles[i] | (nibbles[i + 1] << 4) for i in range(0, len(nibbles), 2))


def _unbcd(octets: bytes, odd: bool) -> str:
    text = "".join(_DIGITS[o & 0x0F] + _DIGITS[o >> 4] for o in octets)
    return text[:-1] if odd and text else text


def _encode_address(addr: SccpAddress) -> bytes:
    ai = 0x80 if addr.national else 0
    if addr.route_on_ssn:
        ai |= 0x40
    out = bytearray(1)
    if addr.pc is not None:
        if not 0 <= addr.pc < 1 << 14:
            raise SccpError(f"point code {addr.pc} does not fit 14 bits (ITU)")
        ai |= 0x01
        out += addr.pc.to_bytes(2, "little")
    if addr.ssn is not None:
        ai |= 0x02
        out.append(addr.ssn & 0xFF)
    gt = addr.gt
    if gt is not None:
        if not 1 <= gt.gti <= 4:
            raise SccpError(f"global title indicator {gt.gti} is not one of the ITU formats 1-4")
        ai |= gt.gti << 2
        odd = len(gt.digits) % 2
        if gt.gti == 1:
            out.append((0x80 if odd else 0) | (gt.nai & 0x7F))
        elif gt.gti == 2:
            out.append(gt.tt & 0xFF)
        elif gt.gti == 3:
            out += bytes((gt.tt & 0xFF, ((gt.np & 0x0F) << 4) | (gt.encoding_scheme() & 0x0F)))
        else:
            out += bytes((gt.tt & 0xFF, ((gt.np & 0x0F) << 4) | (gt.encoding_scheme() & 0x0F), gt.nai & 0x7F))
        out += _bcd(gt.digits)
    elif not addr.route_on_ssn:
        raise SccpError("an address routed on global title needs a global title (Q.713 §3.4.1)")
    out[0] = ai
    return bytes(out)


@lru_cache(maxsize=4096)
def decode_address(raw: bytes) -> SccpAddress:
    """Decode an address (the octets after its length indicator). Cached: addresses repeat."""
    if not raw:
        raise SccpError("empty party address", return_cause=ReturnCause.UNQUALIFIED)
    if len(raw) > 255:  # Q.713 §3.4.1: the address length indicator is one octet
        raise SccpError(f"party address of {len(raw)} octets", return_cause=ReturnCause.UNQUALIFIED)
    ai = raw[0]
    pos = 1
    pc = ssn = None
    if ai & 0x01:
        if len(raw) < pos + 2:
            raise SccpError("address too short for its point code", return_cause=ReturnCause.UNQUALIFIED)
        pc = (raw[pos] | (raw[pos + 1] << 8)) & 0x3FFF
        pos += 2
    if ai & 0x02:
        if len(raw) < pos + 1:
            raise SccpError("address too short for its SSN", return_cause=ReturnCause.UNQUALIFIED)
        ssn = raw[pos]
        pos += 1
    gti = (ai >> 2) & 0x0F
    gt = None
    if gti:
        rest = raw[pos:]
        if gti == 1 and rest:
            gt = GlobalTitle(_unbcd(rest[1:], bool(rest[0] & 0x80)), 1, nai=rest[0] & 0x7F, np=0, es=None)
        elif gti == 2 and rest:
            gt = GlobalTitle(_unbcd(rest[1:], False), 2, tt=rest[0], np=0, nai=0)
        elif gti == 3 and len(rest) >= 2:
            es = rest[1] & 0x0F
            gt = GlobalTitle(_unbcd(rest[2:], es == 1), 3, tt=rest[0], np=rest[1] >> 4, nai=0, es=es)
        elif gti == 4 and len(rest) >= 3:
            es = rest[1] & 0x0F
            gt = GlobalTitle(_unbcd(rest[3:], es == 1), 4, tt=rest[0], np=rest[1] >> 4, nai=rest[2] & 0x7F, es=es)
        else:
            raise SccpError(
                f"global title indicator {gti} is not supported or the GT is truncated",
                return_cause=ReturnCause.NO_TRANSLATION_FOR_NATURE,
            )
        if gt.es is not None and gt.es == gt.encoding_scheme() and gt.es in (1, 2):
            gt = GlobalTitle(gt.digits, gt.gti, gt.tt, gt.np, gt.nai, None)  # canonical: es implied by digits
    elif not ai & 0x40:
        raise SccpError("address routed on GT has no global title", return_cause=ReturnCause.NO_TRANSLATION_FOR_NATURE)
    return SccpAddress(bool(ai & 0x40), ssn, pc, gt, bool(ai & 0x80))


# ---- messages ----


def _variable(data: bytes, ptr_pos: int, n: int, what: str) -> bytes:
    """The variable part whose pointer octet is at ``ptr_pos`` (Q.713 §1.5: pointers are relative to themselves)."""
    ptr = data[ptr_pos]
    if ptr == 0:
        raise SccpError(f"{what} pointer is zero", return_cause=ReturnCause.UNQUALIFIED)
    start = ptr_pos + ptr
    if start >= n:
        raise SccpError(f"{what} pointer points outside the message", return_cause=ReturnCause.UNQUALIFIED)
    end = start + 1 + data[start]
    if end > n:
        raise SccpError(f"{what} length overruns the message", return_cause=ReturnCause.UNQUALIFIED)
    return data[start + 1 : end]


def _optional(data: bytes, ptr_pos: int, n: int) -> tuple[Segmentation | None, int | None]:
    ptr = data[ptr_pos]
    if ptr == 0:
        return None, None
    pos = ptr_pos + ptr
    seg = imp = None
    while True:
        if pos >= n:
            raise SccpError("optional part without end of optional parameters", return_cause=ReturnCause.UNQUALIFIED)
        name = data[pos]
        if name == 0:  # end of optional parameters
            return seg, imp
        if pos + 1 >= n or pos + 2 + data[pos + 1] > n:
            raise SccpError("optional parameter overruns the message", return_cause=ReturnCause.UNQUALIFIED)
        length = data[pos + 1]
        value = data[pos + 2 : pos + 2 + length]
        if name == 0x10:  # Q.713 §3.17 segmentation
            if length != 4:
                raise SccpError("segmentation parameter is not 4 octets", return_cause=ReturnCause.UNQUALIFIED)
            seg = Segmentation(
                bool(value[0] & 0x80), bool(value[0] & 0x40), value[0] & 0x0F, int.from_bytes(value[1:4], "little")
            )
        elif name == 0x12:  # Q.713 §3.19 importance
            if length != 1:
                raise SccpError("importance parameter is not 1 octet", return_cause=ReturnCause.UNQUALIFIED)
            imp = value[0] & 0x07
        pos += 2 + length


def decode(data: bytes) -> SccpMessage:
    """Decode a UDT, UDTS, XUDT or XUDTS. Raises :class:`SccpError` (with a return cause) on malformation."""
    n = len(data)
    if n >= 5 and data[0] == UDT and data[2] and data[3] and data[4]:
        # Fast path for the common UDT: three pointers, all inside the message.
        p1 = 2 + data[2]
        p2 = 3 + data[3]
        p3 = 4 + data[4]
        if p1 < n and p2 < n and p3 < n:
            e1 = p1 + 1 + data[p1]
            e2 = p2 + 1 + data[p2]
            e3 = p3 + 1 + data[p3]
            if e1 <= n and e2 <= n and e3 <= n:
                pclass = data[1]
                return Udt(pclass & 0x0F, bool(pclass & RETURN_ON_ERROR), decode_address(data[p1 + 1 : e1]),
                           decode_address(data[p2 + 1 : e2]), data[p3 + 1 : e3])  # fmt: skip
    if n < 5:
        raise SccpError("SCCP message shorter than its fixed part", return_cause=ReturnCause.UNQUALIFIED)
    mtype = data[0]
    try:
        if mtype == UDT:
            pclass = data[1]
            return Udt(
                pclass & 0x0F,
                bool(pclass & RETURN_ON_ERROR),
                decode_address(_variable(data, 2, n, "called party")),
                decode_address(_variable(data, 3, n, "calling party")),
                _variable(data, 4, n, "data"),
            )
        if mtype == UDTS:
            return Udts(
                data[1],
                decode_address(_variable(data, 2, n, "called party")),
                decode_address(_variable(data, 3, n, "calling party")),
                _variable(data, 4, n, "data"),
            )
        if mtype in (XUDT, XUDTS):
            if n < 7:
                raise SccpError("XUDT shorter than its fixed part", return_cause=ReturnCause.UNQUALIFIED)
            called = decode_address(_variable(data, 3, n, "called party"))
            calling = decode_address(_variable(data, 4, n, "calling party"))
            payload = _variable(data, 5, n, "data")
            seg, imp = _optional(data, 6, n)
            if mtype == XUDT:
                pclass = data[1]
                return Udt(pclass & 0x0F, bool(pclass & RETURN_ON_ERROR), called, calling, payload, data[2], seg, imp)
            return Udts(data[1], called, calling, payload, data[2], seg, imp)
    except IndexError:
        raise SccpError("truncated SCCP message", return_cause=ReturnCause.UNQUALIFIED) from None
    raise SccpError(f"SCCP message type 0x{mtype:02x} is not a connectionless unitdata message",
                    return_cause=ReturnCause.UNQUALIFIED)  # fmt: skip


def _data_lv(data: bytes) -> bytes:
    if len(data) > 255:
        raise SccpError(f"{len(data)} octets of data exceed one SCCP message's 255 (Q.713 §3.16)")
    return bytes((len(data),)) + data


def _pointers(*pointers: int) -> bytes:
    """Q.713 §1.5: a pointer is one octet, so a variable part must start within 255 octets of its pointer (the
    addresses and data of a decoded message may overlap, and then not fit a re-encoding)."""
    if max(pointers) > 255:
        raise SccpError("the variable parts do not fit the one-octet pointers of the message (Q.713 §1.5)")
    return bytes(pointers)


def encode(msg: SccpMessage) -> bytes:
    called = msg.called.lv
    calling = msg.calling.lv
    data = _data_lv(msg.data)
    if isinstance(msg, Udt):
        pclass = (msg.protocol_class & 0x0F) | (RETURN_ON_ERROR if msg.return_on_error else 0)
        if msg.hop_counter is None:
            return bytes((UDT, pclass)) + _pointers(3, 2 + len(called), 1 + len(called) + len(calling)) + called \
                + calling + data
        fixed = bytes((XUDT, pclass, msg.hop_counter))
    else:
        if msg.hop_counter is None:
            return (
                bytes((UDTS, msg.return_cause)) + _pointers(3, 2 + len(called), 1 + len(called) + len(calling))
                + called + calling + data
            )  # fmt: skip
        fixed = bytes((XUDTS, msg.return_cause, msg.hop_counter))
    optional = b""
    if msg.segmentation is not None:
        s = msg.segmentation
        first = (0x80 if s.first else 0) | (0x40 if s.in_sequence else 0) | (s.remaining & 0x0F)
        optional += bytes((0x10, 4, first)) + (s.local_reference & 0xFFFFFF).to_bytes(3, "little")
    if msg.importance is not None:
        optional += bytes((0x12, 1, msg.importance & 0x07))
    vlen = len(called) + len(calling) + len(data)
    pointers = _pointers(4, 3 + len(called), 2 + len(called) + len(calling), (1 + vlen) if optional else 0)
    return fixed + pointers + called + calling + data + (optional + b"\x00" if optional else b"")


def build_unitdata(
    called: SccpAddress,
    calling: SccpAddress,
    data: bytes,
    *,
    protocol_class: int = 0,
    return_on_error: bool = False,
    hop_counter: int = MAX_HOP_COUNTER,
    segmentation_reference: int | None = None,
    max_message: int = MAX_MTP_MESSAGE,
    importance: int | None = None,
) -> list[bytes]:
    """Encode ``data`` for sending: one UDT when it fits ``max_message``, else XUDTs segmented per Q.714 §4.1.1.2
    (which needs a ``segmentation_reference`` unique among the sender's reassemblies in progress)."""
    if len(data) <= 255 and importance is None:
        udt = encode(Udt(protocol_class, return_on_error, called, calling, data))
        if len(udt) <= max_message:
            return [udt]
    overhead = len(encode(Udt(protocol_class, return_on_error, called, calling, b"", hop_counter,
                              Segmentation(True, False, 0, 0), importance)))  # fmt: skip
    if overhead + len(data) <= max_message and len(data) <= 255:
        return [encode(Udt(protocol_class, return_on_error, called, calling, data, hop_counter, None, importance))]
    room = min(max_message - overhead, 255)
    if room <= 0:
        raise SccpError("the addresses alone exceed the maximum message size")
    count = -(-len(data) // room)
    if count > 16:
        raise SccpError(
            f"{len(data)} octets need {count} XUDT segments; Q.714 §4.1.1.2 allows at most 16 ({16 * room} octets "
            "with these addresses)"
        )
    if segmentation_reference is None:
        raise SccpError("segmenting into XUDTs needs a segmentation local reference")
    out = []
    for i in range(count):
        seg = Segmentation(i == 0, protocol_class == 1, count - 1 - i, segmentation_reference)
        chunk = data[i * room : (i + 1) * room]
        out.append(encode(Udt(protocol_class, return_on_error, called, calling, chunk, hop_counter, seg, importance)))
    return out


def service_for(msg: Udt, cause: int) -> bytes:
    """The UDTS/XUDTS returning ``msg`` with ``cause`` (Q.714 §4.2): addresses swapped, the data returned."""
    if msg.hop_counter is None:
        return encode(Udts(cause, msg.calling, msg.called, msg.data))
    return encode(Udts(cause, msg.calling, msg.called, msg.data, MAX_HOP_COUNTER, msg.segmentation, msg.importance))
