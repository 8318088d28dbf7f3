"""TCAP messages (Q.773 §4.2): transaction portion, dialogue portion (AARQ/AARE/ABRT/AUDT) and components.

This is the hand-tuned path: straight-line BER reading over one buffer and byte concatenation for encoding,
producing the same octets as the asn1tools reference path of :mod:`gateway.codecs.tcap_asn1` (property-tested).
Values are NamedTuples: they are built for every message and tuples construct fastest.

Malformed input raises :class:`TcapError` carrying what Q.774 tells the receiver to answer:
``p_abort_cause`` for transaction-portion faults (with the otid/dtid read so far, to address the P-Abort), or
``reject`` (problem kind and code) for component faults, with ``partial`` holding the message decoded up to the
faulty component so that the stack can answer in the right dialogue.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

from gateway.codecs.ber import decode_oid, encode_oid, read_tlv
from gateway.codecs.errors import (
    BerError,
    GeneralProblem,
    PAbortCause,
    ProblemKind,
    TcapError,
)
from gateway.codecs.values import typed_value

Code = int | tuple[int, ...]  # local INTEGER or global OBJECT IDENTIFIER (Q.773 §4.2.1 OPERATION / ERROR)

# Q.773 §4.2 message tags
TAG_UNIDIRECTIONAL = 0x61
TAG_BEGIN = 0x62
TAG_END = 0x64
TAG_CONTINUE = 0x65
TAG_ABORT = 0x67
TAG_OTID = 0x48
TAG_DTID = 0x49
TAG_P_ABORT_CAUSE = 0x4A
TAG_DIALOGUE = 0x6B
TAG_COMPONENTS = 0x6C
# Component tags
TAG_INVOKE = 0xA1
TAG_RR_LAST = 0xA2
TAG_RETURN_ERROR = 0xA3
TAG_REJECT = 0xA4
TAG_RR_NOT_LAST = 0xA7

DIALOGUE_AS = (0, 0, 17, 773, 1, 1, 1)  # dialogue-as-id
UNIDIALOGUE_AS = (0, 0, 17, 773, 1, 2, 1)  # uni-dialogue-as-id
_DIALOGUE_AS_TLV = b"\x06\x07" + encode_oid(DIALOGUE_AS)
_UNIDIALOGUE_AS_TLV = b"\x06\x07" + encode_oid(UNIDIALOGUE_AS)
_VERSION1 = b"\x80\x02\x07\x80"  # protocol-version [0] BIT STRING {version1}

ACCEPTED = 0
REJECT_PERMANENT = 1
DIAG_USER = 1  # result-source-diagnostic: dialogue-service-user
DIAG_PROVIDER = 2  # dialogue-service-provider
# dialogue-service-user diagnostics
DIAG_NULL = 0
DIAG_NO_REASON = 1
DIAG_AC_NOT_SUPPORTED = 2  # application-context-name-not-supported (user) / no-common-dialogue-portion (provider)
MAX_P_ABORT_CAUSE = 127  # Q.773 §4.2.1 P-AbortCause ::= INTEGER {...} (0..127)
ABORT_SOURCE_USER = 0
ABORT_SOURCE_PROVIDER = 1


@typed_value
class Aarq(NamedTuple):
    """Dialogue request (AARQ-apdu)."""

    application_context: tuple[int, ...]
    user_information: tuple[bytes, ...] = ()  # raw EXTERNAL TLVs (0x28 ...)


@typed_value
class Aare(NamedTuple):
    """Dialogue response (AARE-apdu)."""

    application_context: tuple[int, ...]
    result: int = ACCEPTED
    diagnostic_source: int = DIAG_USER
    diagnostic: int = DIAG_NULL
    user_information: tuple[bytes, ...] = ()


@typed_value
class Abrt(NamedTuple):
    """Dialogue abort (ABRT-apdu)."""

    abort_source: int = ABORT_SOURCE_USER
    user_information: tuple[bytes, ...] = ()


@typed_value
class Audt(NamedTuple):
    """Unidirectional dialogue (AUDT-apdu)."""

    application_context: tuple[int, ...]
    user_information: tuple[bytes, ...] = ()


Dialogue = Aarq | Aare | Abrt | Audt


@typed_value
class Invoke(NamedTuple):
    invoke_id: int
    opcode: Code
    parameter: bytes | None = None  # the whole parameter TLV
    linked_id: int | None = None


@typed_value
class ReturnResult(NamedTuple):
    invoke_id: int
    opcode: Code | None = None
    parameter: bytes | None = None  # the whole parameter TLV
    last: bool = True


@typed_value
class ReturnError(NamedTuple):
    invoke_id: int
    error_code: Code
    parameter: bytes | None = None


@typed_value
class Reject(NamedTuple):
    invoke_id: int | None  # None = not derivable (NULL)
    problem_kind: int  # ProblemKind
    problem: int


Component = Invoke | ReturnResult | ReturnError | Reject


@typed_value
class Begin(NamedTuple):
    otid: bytes
    dialogue: Dialogue | None = None
    components: tuple[Component, ...] = ()


@typed_value
class Continue(NamedTuple):
    otid: bytes
    dtid: bytes
    dialogue: Dialogue | None = None
    components: tuple[Component, ...] = ()


@typed_value
class End(NamedTuple):
    dtid: bytes
    dialogue: Dialogue | None = None
    components: tuple[Component, ...] = ()


@typed_value
class Abort(NamedTuple):
    """TC Abort: a P-Abort carries ``p_abort_cause``; a U-Abort may carry a dialogue portion (ABRT, or AARE
    reject for a refused dialogue)."""

    dtid: bytes
    p_abort_cause: int | None = None
    dialogue: Dialogue | None = None


@typed_value
class Unidirectional(NamedTuple):
    dialogue: Dialogue | None = None
    components: tuple[Component, ...] = ()


TcapMessage = Begin | Continue | End | Abort | Unidirectional


# ---------------------------------------------------------------------------------------------------------------
# encoding


def _len(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    if n < 0x100:
        return bytes((0x81, n))
    return bytes((0x82, n >> 8, n & 0xFF))


def _int(value: int) -> bytes:
    """INTEGER TLV (X.690 §8.3), minimal two's complement."""
    if -128 <= value <= 127:
        return bytes((0x02, 1, value & 0xFF))
    body = value.to_bytes((value + (value < 0)).bit_length() // 8 + 1, "big", signed=True)
    return bytes((0x02, len(body))) + body


def _code(code: Code) -> bytes:
    if isinstance(code, int):
        return _int(code)
    body = encode_oid(code)
    return bytes((0x06, len(body))) + body


def _oid_tlv(oid: tuple[int, ...]) -> bytes:
    body = encode_oid(oid)
    return bytes((0x06, len(body))) + body


def _user_info(user_information: tuple[bytes, ...]) -> bytes:
    if not user_information:
        return b""
    body = b"".join(user_information)
    return b"\xbe" + _len(len(body)) + body


def _ac(oid: tuple[int, ...]) -> bytes:
    inner = _oid_tlv(oid)
    return b"\xa1" + _len(len(inner)) + inner


def encode_dialogue(dialogue: Dialogue) -> bytes:
    """The dialogue portion TLV ([APPLICATION 11] EXTERNAL) for ``dialogue``."""
    return _encode_dialogue_cached(dialogue)


def _encode_dialogue(dialogue: Dialogue) -> bytes:
    if isinstance(dialogue, Aarq):
        apdu_body = _VERSION1 + _ac(dialogue.application_context) + _user_info(dialogue.user_information)
        apdu = b"\x60" + _len(len(apdu_body)) + apdu_body
        ref = _DIALOGUE_AS_TLV
    elif isinstance(dialogue, Aare):
        diag = _int(dialogue.diagnostic)
        result = _int(dialogue.result)
        src_tag = 0xA1 if dialogue.diagnostic_source == DIAG_USER else 0xA2
        rsd = bytes((src_tag, len(diag))) + diag
        apdu_body = (
            _VERSION1
            + _ac(dialogue.application_context)
            + b"\xa2"
            + _len(len(result))  # [2] EXPLICIT INTEGER: the length follows the INTEGER's (X.690 §8.14)
            + result
            + b"\xa3"
            + _len(len(rsd))
            + rsd
            + _user_info(dialogue.user_information)
        )
        apdu = b"\x61" + _len(len(apdu_body)) + apdu_body
        ref = _DIALOGUE_AS_TLV
    elif isinstance(dialogue, Abrt):
        # X.690 §8.3: abort-source is an INTEGER (decoded as up to 4 octets): encode it whole, never masked
        apdu_body = b"\x80" + _int(dialogue.abort_source)[1:] + _user_info(dialogue.user_information)
        apdu = b"\x64" + _len(len(apdu_body)) + apdu_body
        ref = _DIALOGUE_AS_TLV
    else:
        apdu_body = _VERSION1 + _ac(dialogue.application_context) + _user_info(dialogue.user_information)
        apdu = b"\x60" + _len(len(apdu_body)) + apdu_body
        ref = _UNIDIALOGUE_AS_TLV
    single = b"\xa0" + _len(len(apdu)) + apdu
    ext_body = ref + single
    ext = b"\x28" + _len(len(ext_body)) + ext_body
    return b"\x6b" + _len(len(ext)) + ext


# Dialogue portions repeat (the same AARE for every accepted USSD dialogue): encode each distinct one once.
_encode_dialogue_cached = lru_cache(maxsize=1024)(_encode_dialogue)


def encode_component(c: Component) -> bytes:
    # Fast cases first: one-octet invoke ids and local operation codes (every MAP USSD operation).
    if isinstance(c, Invoke):
        op = c.opcode
        if c.linked_id is None and type(op) is int and 0 <= op < 128 and -128 <= c.invoke_id < 128:
            p = c.parameter or b""
            return b"\xa1" + _len(6 + len(p)) + bytes((2, 1, c.invoke_id & 0xFF, 2, 1, op)) + p
    elif isinstance(c, ReturnResult):
        rop = c.opcode
        if type(rop) is int and 0 <= rop < 128 and -128 <= c.invoke_id < 128:
            p = c.parameter or b""
            seq = b"\x30" + _len(3 + len(p)) + bytes((2, 1, rop)) + p
            return (b"\xa2" if c.last else b"\xa7") + _len(3 + len(seq)) + bytes((2, 1, c.invoke_id & 0xFF)) + seq
    if isinstance(c, Invoke):
        body = _int(c.invoke_id)
        if c.linked_id is not None:
            body += b"\x80" + _int(c.linked_id)[1:]  # X.690 §8.3: the whole INTEGER, as decoded
        body += _code(c.opcode)
        if c.parameter is not None:
            body += c.parameter
        return b"\xa1" + _len(len(body)) + body
    if isinstance(c, ReturnResult):
        body = _int(c.invoke_id)
        if c.opcode is not None:
            seq = _code(c.opcode) + (c.parameter or b"")
            body += b"\x30" + _len(len(seq)) + seq
        return (b"\xa2" if c.last else b"\xa7") + _len(len(body)) + body
    if isinstance(c, ReturnError):
        body = _int(c.invoke_id) + _code(c.error_code) + (c.parameter or b"")
        return b"\xa3" + _len(len(body)) + body
    body = (b"\x05\x00" if c.invoke_id is None else _int(c.invoke_id)) + bytes((0x80 | c.problem_kind,)) \
        + _int(c.problem)[1:]  # X.690 §8.3: the whole INTEGER, as decoded
    return b"\xa4" + _len(len(body)) + body


def _components(components: tuple[Component, ...]) -> bytes:
    if not components:
        return b""
    body = b"".join([encode_component(c) for c in components])
    return b"\x6c" + _len(len(body)) + body


def _tid(tag: int, tid: bytes) -> bytes:
    if not 1 <= len(tid) <= 4:
        raise TcapError(f"transaction ID of {len(tid)} octets (Q.773: 1..4)",
                        p_abort_cause=PAbortCause.INCORRECT_TRANSACTION_PORTION)  # fmt: skip
    return bytes((tag, len(tid))) + tid


def encode(msg: TcapMessage) -> bytes:
    """Encode any TCAP message (definite, minimal lengths, as X.690 §10.1 and real MSCs do)."""
    cls = type(msg)
    if cls is Continue or cls is End:
        # Fast path: the messages of every USSD exchange. Same octets as the general code below.
        if cls is Continue:
            otid, dtid = msg.otid, msg.dtid  # type: ignore[union-attr]
            if not (0 < len(otid) < 5 and 0 < len(dtid) < 5):
                raise TcapError("transaction ID of other than 1..4 octets (Q.773)",
                                p_abort_cause=PAbortCause.INCORRECT_TRANSACTION_PORTION)  # fmt: skip
            body = bytes((0x48, len(otid))) + otid + bytes((0x49, len(dtid))) + dtid
            head = b"\x65"
        else:
            dtid = msg.dtid  # type: ignore[union-attr]
            if not 0 < len(dtid) < 5:
                raise TcapError("transaction ID of other than 1..4 octets (Q.773)",
                                p_abort_cause=PAbortCause.INCORRECT_TRANSACTION_PORTION)  # fmt: skip
            body = bytes((0x49, len(dtid))) + dtid
            head = b"\x64"
        dialogue = msg.dialogue
        if dialogue is not None:
            body += _encode_dialogue_cached(dialogue)
        comps = msg.components  # type: ignore[union-attr]
        if len(comps) == 1:
            c = encode_component(comps[0])
            body += b"\x6c" + _len(len(c)) + c
        elif comps:
            body += _components(comps)
        return head + _len(len(body)) + body
    if isinstance(msg, Begin):
        body = _tid(0x48, msg.otid)
        tag = 0x62
    elif isinstance(msg, Continue):
        body = _tid(0x48, msg.otid) + _tid(0x49, msg.dtid)
        tag = 0x65
    elif isinstance(msg, End):
        body = _tid(0x49, msg.dtid)
        tag = 0x64
    elif isinstance(msg, Abort):
        body = _tid(0x49, msg.dtid)
        if msg.p_abort_cause is not None:
            body += b"\x4a" + _int(msg.p_abort_cause)[1:]  # X.690 §8.3: the cause is an INTEGER, as decoded
        elif msg.dialogue is not None:
            body += encode_dialogue(msg.dialogue)
        return b"\x67" + _len(len(body)) + body
    else:
        body = b""
        tag = 0x61
        if not msg.components:
            raise TcapError("a Unidirectional message needs components (Q.773 §4.2)")
    if msg.dialogue is not None:
        body += encode_dialogue(msg.dialogue)
    body += _components(msg.components)
    return bytes((tag,)) + _len(len(body)) + body


# ---------------------------------------------------------------------------------------------------------------
# decoding


def _bad_tx(message: str, otid: bytes | None = None, dtid: bytes | None = None,
            cause: PAbortCause = PAbortCause.BADLY_FORMATTED_TRANSACTION_PORTION) -> TcapError:  # fmt: skip
    return TcapError(message, p_abort_cause=cause, otid=otid, dtid=dtid)


def _read_int(buf: bytes, start: int, end: int) -> int:
    if start == end or end - start > 4:
        raise BerError("INTEGER of bad length")
    return int.from_bytes(buf[start:end], "big", signed=True)


def _read_code(buf: bytes, tag: int, start: int, end: int) -> Code:
    if tag == 0x02:
        return _read_int(buf, start, end)
    if tag == 0x06:
        return decode_oid(buf[start:end])
    raise BerError(f"operation/error code with tag 0x{tag:02x}")


def _decode_user_info(buf: bytes, start: int, end: int) -> tuple[bytes, ...]:
    out = []
    pos = start
    while pos < end:
        t = read_tlv(buf, pos, end)
        if t.tag == 0x28:
            if t.next - t.end == 2:  # indefinite form: keep the EXTERNAL as its octets with definite length
                body = buf[t.start : t.end]
                out.append(b"\x28" + _len(len(body)) + body)
            else:
                out.append(buf[pos : t.next])
        pos = t.next
    return tuple(out)


def _decode_ac(buf: bytes, t_start: int, t_end: int) -> tuple[int, ...]:
    inner = read_tlv(buf, t_start, t_end)
    if inner.tag != 0x06:
        raise BerError("application-context-name is not an OBJECT IDENTIFIER")
    return decode_oid(buf[inner.start : inner.end])


def decode_dialogue(buf: bytes, start: int, end: int) -> Dialogue:
    """Decode the content of a dialogue portion ([APPLICATION 11]): the EXTERNAL and its APDU."""
    return _decode_dialogue_cached(buf[start:end])


@lru_cache(maxsize=1024)
def _decode_dialogue_cached(content: bytes) -> Dialogue:
    # Dialogue portions repeat (the same AARQ from every MSC): decode each distinct one once.
    return _decode_dialogue(content, 0, len(content))


def _decode_dialogue(buf: bytes, start: int, end: int) -> Dialogue:
    ext = read_tlv(buf, start, end)
    if ext.tag != 0x28:
        raise BerError("dialogue portion does not hold an EXTERNAL")
    pos = ext.start
    ref: tuple[int, ...] | None = None
    apdu_start = apdu_end = -1
    while pos < ext.end:
        t = read_tlv(buf, pos, ext.end)
        if t.tag == 0x06:
            ref = decode_oid(buf[t.start : t.end])
        elif t.tag == 0xA0:  # single-ASN1-type
            apdu_start, apdu_end = t.start, t.end
        pos = t.next
    if ref is None or apdu_start < 0:
        raise BerError("EXTERNAL without direct-reference or single-ASN1-type")
    apdu = read_tlv(buf, apdu_start, apdu_end)
    fields: dict[int, tuple[int, int]] = {}
    pos = apdu.start
    while pos < apdu.end:
        t = read_tlv(buf, pos, apdu.end)
        fields.setdefault(t.tag, (t.start, t.end))
        pos = t.next
    ui = fields.get(0xBE)
    user_info = _decode_user_info(buf, *ui) if ui else ()
    if ref == UNIDIALOGUE_AS:
        if apdu.tag != 0x60 or 0xA1 not in fields:
            raise BerError("unidialogue PDU is not an AUDT with an application context")
        return Audt(_decode_ac(buf, *fields[0xA1]), user_info)
    if ref != DIALOGUE_AS:
        raise BerError(f"dialogue portion with unknown abstract syntax {ref}")
    if apdu.tag == 0x60:  # AARQ
        if 0xA1 not in fields:
            raise BerError("AARQ without application-context-name")
        return Aarq(_decode_ac(buf, *fields[0xA1]), user_info)
    if apdu.tag == 0x61:  # AARE
        if 0xA1 not in fields or 0xA2 not in fields or 0xA3 not in fields:
            raise BerError("AARE without application-context-name, result or result-source-diagnostic")
        r = read_tlv(buf, *fields[0xA2])
        result = _read_int(buf, r.start, r.end)
        s_start, s_end = fields[0xA3]
        src = read_tlv(buf, s_start, s_end)
        if src.tag not in (0xA1, 0xA2):
            raise BerError("result-source-diagnostic is neither service-user nor service-provider")
        d = read_tlv(buf, src.start, src.end)
        diag = _read_int(buf, d.start, d.end)
        return Aare(_decode_ac(buf, *fields[0xA1]), result, 1 if src.tag == 0xA1 else 2, diag, user_info)
    if apdu.tag == 0x64:  # ABRT
        if 0x80 not in fields:
            raise BerError("ABRT without abort-source")
        return Abrt(_read_int(buf, *fields[0x80]), user_info)
    raise BerError(f"dialogue APDU with tag 0x{apdu.tag:02x}")


def _parameter(buf: bytes, start: int, end: int) -> bytes | None:
    """The parameter (argument, result, error parameter) ending a component: absent, or exactly one TLV. Q.773
    §4.2.2: the parameter is the last element of a non-extensible SEQUENCE, a single value (X.690 §8.1.1); octets
    after it make the component mistyped (the fast path never took them either)."""
    if start >= end:
        return None
    if read_tlv(buf, start, end).next != end:
        raise BerError("octets after the component's parameter")
    return buf[start:end]


def _decode_component(buf: bytes, tag: int, start: int, end: int) -> Component:
    first = read_tlv(buf, start, end)
    if tag == TAG_REJECT:
        if first.tag == 0x02:
            invoke_id: int | None = _read_int(buf, first.start, first.end)
        elif first.tag == 0x05:
            invoke_id = None
        else:
            raise BerError("Reject without invoke ID")
        p = read_tlv(buf, first.next, end)
        if not 0x80 <= p.tag <= 0x83:
            raise BerError("Reject with an unknown problem")
        return Reject(invoke_id, p.tag & 0x03, _read_int(buf, p.start, p.end))
    if first.tag != 0x02:
        raise BerError("component without invoke ID")
    invoke_id = _read_int(buf, first.start, first.end)
    pos = first.next
    if tag == TAG_INVOKE:
        t = read_tlv(buf, pos, end)
        linked = None
        if t.tag == 0x80:
            linked = _read_int(buf, t.start, t.end)
            t = read_tlv(buf, t.next, end)
        opcode = _read_code(buf, t.tag, t.start, t.end)
        return Invoke(invoke_id, opcode, _parameter(buf, t.next, end), linked)
    if tag in (TAG_RR_LAST, TAG_RR_NOT_LAST):
        if pos >= end:
            return ReturnResult(invoke_id, None, None, tag == TAG_RR_LAST)
        seq = read_tlv(buf, pos, end)
        if seq.tag != 0x30:
            raise BerError("ReturnResult result is not a SEQUENCE")
        t = read_tlv(buf, seq.start, seq.end)
        opcode = _read_code(buf, t.tag, t.start, t.end)
        return ReturnResult(invoke_id, opcode, _parameter(buf, t.next, seq.end), tag == TAG_RR_LAST)
    # ReturnError
    t = read_tlv(buf, pos, end)
    code = _read_code(buf, t.tag, t.start, t.end)
    return ReturnError(invoke_id, code, _parameter(buf, t.next, end))


def _peek_invoke_id(buf: bytes, start: int, end: int) -> int | None:
    try:
        t = read_tlv(buf, start, end)
        return _read_int(buf, t.start, t.end) if t.tag == 0x02 else None
    except (BerError, IndexError):
        return None


_PROBLEM_FOR_TAG = {
    TAG_INVOKE: ProblemKind.INVOKE,
    TAG_RR_LAST: ProblemKind.RETURN_RESULT,
    TAG_RR_NOT_LAST: ProblemKind.RETURN_RESULT,
    TAG_RETURN_ERROR: ProblemKind.RETURN_ERROR,
}


class _SlowPathError(Exception):
    """The fast path met something it does not handle: take the general path."""


def _hdr(buf: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(tag, value start, value end) of a single-octet-tag, definite-length TLV; anything else is _SlowPathError."""
    tag = buf[pos]
    length = buf[pos + 1]
    if length < 0x80:
        start = pos + 2
    elif length == 0x81:
        length = buf[pos + 2]
        start = pos + 3
    elif length == 0x82:
        length = (buf[pos + 2] << 8) | buf[pos + 3]
        start = pos + 4
    else:
        raise _SlowPathError
    stop = start + length
    if stop > end or tag & 0x1F == 0x1F:
        raise _SlowPathError
    return tag, start, stop


def _decode_fast(buf: bytes) -> TcapMessage:
    """Begin/Continue/End with Invoke and ReturnResult components in their usual shape: one-octet invoke IDs and
    local operation codes, short-form lengths inside the components. Anything else is _SlowPathError."""
    n = len(buf)
    tag, pos, end = _hdr(buf, 0, n)
    if end != n:
        raise _SlowPathError
    otid = dtid = b""
    if tag in (TAG_BEGIN, TAG_CONTINUE):
        if buf[pos] != TAG_OTID or not 1 <= buf[pos + 1] <= 4:
            raise _SlowPathError
        b = pos + 2 + buf[pos + 1]
        otid = buf[pos + 2 : b]
        pos = b
    if tag in (TAG_CONTINUE, TAG_END):
        if buf[pos] != TAG_DTID or not 1 <= buf[pos + 1] <= 4:
            raise _SlowPathError
        b = pos + 2 + buf[pos + 1]
        dtid = buf[pos + 2 : b]
        pos = b
    elif tag != TAG_BEGIN:
        raise _SlowPathError
    if pos > end:
        raise _SlowPathError
    dialogue: Dialogue | None = None
    components: list[Component] = []
    if pos < end:
        t, a, b = _hdr(buf, pos, end)
        if t == TAG_DIALOGUE:
            dialogue = _decode_dialogue_cached(buf[a:b])
            pos = b
            if pos < end:
                t, a, b = _hdr(buf, pos, end)
        if pos < end:
            if t != TAG_COMPONENTS or b != end:
                raise _SlowPathError
            pos = a
            while pos < b:
                ct, cs, ce = _hdr(buf, pos, b)
                # invoke ID: 02 01 xx
                if buf[cs] != 0x02 or buf[cs + 1] != 1 or cs + 3 > ce:
                    raise _SlowPathError
                invoke_id = buf[cs + 2]
                if invoke_id > 127:
                    invoke_id -= 256
                x = cs + 3
                if ct == TAG_INVOKE:
                    # local operation code: 02 01 xx (0..127)
                    if x + 3 > ce or buf[x] != 0x02 or buf[x + 1] != 1 or buf[x + 2] > 127:
                        raise _SlowPathError
                    opcode = buf[x + 2]
                    x += 3
                    param = None
                    if x < ce:
                        if _hdr(buf, x, ce)[2] != ce:
                            raise _SlowPathError
                        param = buf[x:ce]
                    components.append(Invoke(invoke_id, opcode, param, None))
                elif ct in (TAG_RR_LAST, TAG_RR_NOT_LAST):
                    if x == ce:
                        components.append(ReturnResult(invoke_id, None, None, ct == TAG_RR_LAST))
                    else:
                        st, ss, se = _hdr(buf, x, ce)
                        if st != 0x30 or se != ce or ss + 3 > se or buf[ss] != 0x02 or buf[ss + 1] != 1 \
                                or buf[ss + 2] > 127:
                            raise _SlowPathError
                        opcode = buf[ss + 2]
                        y = ss + 3
                        param = None
                        if y < se:
                            if _hdr(buf, y, se)[2] != se:
                                raise _SlowPathError
                            param = buf[y:se]
                        components.append(ReturnResult(invoke_id, opcode, param, ct == TAG_RR_LAST))
                else:
                    raise _SlowPathError
                pos = ce
    if tag == TAG_BEGIN:
        return Begin(otid, dialogue, tuple(components))
    if tag == TAG_CONTINUE:
        return Continue(otid, dtid, dialogue, tuple(components))
    return End(dtid, dialogue, tuple(components))


def decode(data: bytes) -> TcapMessage:
    """Decode one TCAP message. Raises :class:`TcapError` as described in the module docstring."""
    buf = bytes(data)
    try:
        return _decode_fast(buf)
    except (_SlowPathError, BerError, IndexError):
        return _decode_general(buf)


def peek_tids(buf: bytes) -> tuple[int, bytes | None, bytes | None] | None:
    """The message type and whatever transaction IDs can be derived from a message that may be malformed
    (Q.774 §3.2.1.2: "if the originating transaction ID is derivable"): the first elements inside the outer TLV,
    read leniently (a wrong outer length is tolerated), each a primitive OTID/DTID of 1..4 octets in short form.
    Never raises; None when not even a type and a length are there."""
    n = len(buf)
    if n < 2:
        return None
    first = buf[1]
    if first <= 0x80:
        pos = 2  # short form, or indefinite (X.690 §8.1.3.6)
    elif first <= 0x84 and n >= 2 + (first & 0x7F):
        pos = 2 + (first & 0x7F)
    else:
        return buf[0], None, None
    tids: list[tuple[int, bytes]] = []
    while len(tids) < 2 and pos + 2 <= n:
        t, length = buf[pos], buf[pos + 1]
        if t not in (TAG_OTID, TAG_DTID) or not 1 <= length <= 4 or pos + 2 + length > n:
            break
        tids.append((t, buf[pos + 2 : pos + 2 + length]))
        pos += 2 + length
    otid = next((v for t, v in tids[:1] if t == TAG_OTID), None)
    dtid = next((v for t, v in tids if t == TAG_DTID), None)
    return buf[0], otid, dtid


def _decode_general(buf: bytes) -> TcapMessage:
    n = len(buf)
    if n < 2:
        raise _bad_tx("TCAP message shorter than a tag and a length")
    tag = buf[0]
    if tag not in (TAG_BEGIN, TAG_CONTINUE, TAG_END, TAG_ABORT, TAG_UNIDIRECTIONAL):
        # Q.774 §3.2.1.2: P-Abort unrecognizedMessageType when an otid can be derived, else discard
        peeked = peek_tids(buf)
        raise _bad_tx(f"unrecognized TCAP message type 0x{tag:02x}", peeked[1] if peeked else None,
                      cause=PAbortCause.UNRECOGNIZED_MESSAGE_TYPE)  # fmt: skip
    otid = dtid = None
    try:
        top = read_tlv(buf, 0, n)
        pos = top.start
        end = top.end
        if tag != TAG_UNIDIRECTIONAL:
            t = read_tlv(buf, pos, end)
            if tag in (TAG_BEGIN, TAG_CONTINUE):
                if t.tag != TAG_OTID:
                    raise _bad_tx("missing originating transaction ID", cause=PAbortCause.INCORRECT_TRANSACTION_PORTION)
                otid = buf[t.start : t.end]
                pos = t.next
                if tag == TAG_CONTINUE:
                    if pos >= end:
                        raise _bad_tx("missing destination transaction ID", otid,
                                      cause=PAbortCause.INCORRECT_TRANSACTION_PORTION)  # fmt: skip
                    t = read_tlv(buf, pos, end)
            if tag != TAG_BEGIN:
                if t.tag != TAG_DTID:
                    raise _bad_tx("missing destination transaction ID", otid,
                                  cause=PAbortCause.INCORRECT_TRANSACTION_PORTION)  # fmt: skip
                dtid = buf[t.start : t.end]
                pos = t.next
            for tid in (otid, dtid):
                if tid is not None and not 1 <= len(tid) <= 4:
                    raise _bad_tx(f"transaction ID of {len(tid)} octets", otid, dtid,
                                  cause=PAbortCause.INCORRECT_TRANSACTION_PORTION)  # fmt: skip
        if tag == TAG_ABORT:
            assert dtid is not None
            if pos >= end:
                return Abort(dtid)
            t = read_tlv(buf, pos, end)
            if t.tag == TAG_P_ABORT_CAUSE:
                cause = _read_int(buf, t.start, t.end)
                if not 0 <= cause <= MAX_P_ABORT_CAUSE:
                    raise _bad_tx(f"P-AbortCause {cause} is outside 0..127", None, dtid)
                return Abort(dtid, cause)
            if t.tag == TAG_DIALOGUE:
                return Abort(dtid, None, decode_dialogue(buf, t.start, t.end))
            raise _bad_tx("Abort reason is neither a P-Abort cause nor a dialogue portion", None, dtid)
        dialogue: Dialogue | None = None
        comp_start = comp_end = -1
        while pos < end:
            t = read_tlv(buf, pos, end)
            if t.tag == TAG_DIALOGUE and dialogue is None and comp_start < 0:
                dialogue = decode_dialogue(buf, t.start, t.end)
            elif t.tag == TAG_COMPONENTS and comp_start < 0:
                comp_start, comp_end = t.start, t.end
            else:
                raise _bad_tx(f"unexpected element 0x{t.tag:02x} in the transaction portion", otid, dtid,
                              cause=PAbortCause.INCORRECT_TRANSACTION_PORTION)  # fmt: skip
            pos = t.next
    except BerError as exc:
        if otid is None and tag in (TAG_BEGIN, TAG_CONTINUE):
            # Q.774 §3.2.1.2: badlyFormattedTransactionPortion goes to the otid whenever it can be derived
            peeked = peek_tids(buf)
            if peeked is not None:
                otid, dtid = peeked[1], dtid if dtid is not None else peeked[2]
        raise _bad_tx(f"badly formatted transaction portion: {exc}", otid, dtid) from None
    components: list[Component] = []
    if comp_start >= 0:
        pos = comp_start
        while pos < comp_end:
            try:
                c = read_tlv(buf, pos, comp_end)
            except BerError as exc:
                raise _component_error(f"badly structured component: {exc}", GeneralProblem.BADLY_STRUCTURED_COMPONENT,
                                       None, tag, otid, dtid, dialogue, components) from None  # fmt: skip
            if c.tag not in (TAG_INVOKE, TAG_RR_LAST, TAG_RR_NOT_LAST, TAG_RETURN_ERROR, TAG_REJECT):
                raise _component_error(f"unrecognized component 0x{c.tag:02x}", GeneralProblem.UNRECOGNIZED_COMPONENT,
                                       _peek_invoke_id(buf, c.start, c.end), tag, otid, dtid, dialogue, components)
            try:
                components.append(_decode_component(buf, c.tag, c.start, c.end))
            except BerError as exc:
                raise _component_error(f"mistyped component: {exc}", GeneralProblem.MISTYPED_COMPONENT,
                                       _peek_invoke_id(buf, c.start, c.end), tag, otid, dtid, dialogue,
                                       components) from None  # fmt: skip
            pos = c.next
    comps = tuple(components)
    if tag == TAG_BEGIN:
        assert otid is not None
        return Begin(otid, dialogue, comps)
    if tag == TAG_CONTINUE:
        assert otid is not None and dtid is not None
        return Continue(otid, dtid, dialogue, comps)
    if tag == TAG_END:
        assert dtid is not None
        return End(dtid, dialogue, comps)
    if not comps:
        raise _bad_tx("Unidirectional without components", cause=PAbortCause.INCORRECT_TRANSACTION_PORTION)
    return Unidirectional(dialogue, comps)


def _component_error(message: str, problem: GeneralProblem, invoke_id: int | None, tag: int, otid: bytes | None,
                     dtid: bytes | None, dialogue: Dialogue | None, good: list[Component]) -> TcapError:  # fmt: skip
    comps = tuple(good)
    partial: TcapMessage | None
    if tag == TAG_BEGIN and otid is not None:
        partial = Begin(otid, dialogue, comps)
    elif tag == TAG_CONTINUE and otid is not None and dtid is not None:
        partial = Continue(otid, dtid, dialogue, comps)
    elif tag == TAG_END and dtid is not None:
        partial = End(dtid, dialogue, comps)
    else:
        partial = Unidirectional(dialogue, comps) if comps else None
    return TcapError(message, reject=(ProblemKind.GENERAL, problem), invoke_id=invoke_id, otid=otid, dtid=dtid,
                     partial=partial)  # fmt: skip
