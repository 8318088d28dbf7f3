"""USSD operations (TS 29.002 §14.7.x, §17.7.4): USSD-Arg for processUnstructuredSS-Request (59),
unstructuredSS-Request (60) and unstructuredSS-Notify (61), and USSD-Res.

Hand-tuned: these are parsed and built for every message of every USSD dialogue. The asn1tools reference path
(:mod:`gateway.codecs.map_asn1`) must agree byte for byte (property-tested).
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

from gateway.codecs import ussd_string
from gateway.codecs.ber import read_tlv
from gateway.codecs.errors import BerError, MapError
from gateway.codecs.map_address import AddressString
from gateway.codecs.values import typed_value

OP_PROCESS_USSR = 59  # processUnstructuredSS-Request
OP_USSR = 60  # unstructuredSS-Request
OP_USSN = 61  # unstructuredSS-Notify


@typed_value
class UssdArg(NamedTuple):
    dcs: int
    string: bytes  # the USSD-String octets; gateway.codecs.ussd_string turns them into text
    alerting_pattern: int | None = None
    msisdn: AddressString | None = None

    def text(self) -> str:
        return ussd_string.decode(self.dcs, self.string)


@typed_value
class UssdRes(NamedTuple):
    dcs: int
    string: bytes

    def text(self) -> str:
        return ussd_string.decode(self.dcs, self.string)


def _len(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    return bytes((0x81, n))


def _check_string(string: bytes) -> None:
    if not 1 <= len(string) <= 160:
        raise MapError(f"USSD-String of {len(string)} octets (TS 29.002: 1..160)")


def encode_ussd_arg(arg: UssdArg) -> bytes:
    s = arg.string
    n = len(s)
    if not 1 <= n <= 160:
        _check_string(s)
    body = bytes((0x04, 1, arg.dcs, 0x04, n)) + s if n < 0x80 else bytes((0x04, 1, arg.dcs, 0x04, 0x81, n)) + s
    if arg.alerting_pattern is not None:
        body += bytes((0x04, 1, arg.alerting_pattern))
    if arg.msisdn is not None:
        m = _encode_msisdn(arg.msisdn)
        body += bytes((0x80, len(m))) + m
    return b"\x30" + _len(len(body)) + body


@lru_cache(maxsize=4096)
def _encode_msisdn(address: AddressString) -> bytes:
    return address.encode()


def encode_ussd_res(res: UssdRes) -> bytes:
    s = res.string
    n = len(s)
    if not 1 <= n <= 160:
        _check_string(s)
    if n < 0x7A:  # the whole SEQUENCE body stays below 128 octets: short lengths throughout
        return bytes((0x30, n + 5, 0x04, 1, res.dcs, 0x04, n)) + s
    body = bytes((0x04, 1, res.dcs, 0x04)) + _len(n) + s
    return b"\x30" + _len(len(body)) + body


def _fields(param: bytes) -> tuple[int, bytes, int, int]:
    """Validate the SEQUENCE and read DCS and USSD-String; returns (dcs, string, position after, end)."""
    try:
        seq = read_tlv(param, 0, len(param))
        if seq.tag != 0x30:
            raise MapError("USSD argument is not a SEQUENCE")
        d = read_tlv(param, seq.start, seq.end)
        if d.tag != 0x04 or d.end - d.start != 1:
            raise MapError("ussd-DataCodingScheme is not one octet")
        s = read_tlv(param, d.next, seq.end)
        if s.tag != 0x04:
            raise MapError("ussd-String is not an OCTET STRING")
    except BerError as exc:
        raise MapError(f"malformed USSD argument: {exc}") from None
    string = param[s.start : s.end]
    _check_string(string)
    return param[d.start], string, s.next, seq.end


def decode_ussd_arg(param: bytes) -> UssdArg:
    # Fast path: short definite lengths, DCS, string, then an optional msisdn [0] and nothing else.
    n = len(param)
    if n > 7 and param[0] == 0x30 and param[1] == n - 2 and param[2] == 0x04 and param[3] == 1 and param[5] == 0x04:
        slen = param[6]
        pos = 7 + slen
        if 0 < slen < 0x80 and pos <= n:
            if pos == n:
                return UssdArg(param[4], param[7:pos], None, None)
            # X.690 §8.1.3: a [0] TLV needs its length octet; a parameter ending in a lone 0x80 is for _fields
            if pos + 1 < n and param[pos] == 0x80 and pos + 2 + param[pos + 1] == n:
                return UssdArg(param[4], param[7:pos], None, _msisdn(param[pos + 2 : n]))
    return _decode_ussd_arg(param)


@lru_cache(maxsize=4096)
def _msisdn(octets: bytes) -> AddressString:
    return AddressString.decode(octets)


def _decode_ussd_arg(param: bytes) -> UssdArg:
    dcs, string, pos, end = _fields(param)
    alerting = None
    msisdn = None
    try:
        while pos < end:  # after the extension marker: alertingPattern, msisdn [0]; unknown fields skipped
            t = read_tlv(param, pos, end)
            if t.tag == 0x04 and t.end - t.start == 1:
                alerting = param[t.start]
            elif t.tag == 0x80:
                msisdn = AddressString.decode(param[t.start : t.end])
            pos = t.next
    except BerError as exc:
        raise MapError(f"malformed USSD-Arg extension: {exc}") from None
    return UssdArg(dcs, string, alerting, msisdn)


def decode_ussd_res(param: bytes) -> UssdRes:
    n = len(param)
    if n > 7 and param[0] == 0x30 and param[1] == n - 2 and param[2] == 0x04 and param[3] == 1 and param[5] == 0x04:
        slen = param[6]
        if 0 < slen < 0x80 and 7 + slen == n:
            return UssdRes(param[4], param[7:])
    dcs, string, _, _ = _fields(param)
    return UssdRes(dcs, string)


def ussd_arg(text: str, *, dcs: int | None = None, msisdn: str | None = None,
             alerting_pattern: int | None = None) -> UssdArg:  # fmt: skip
    """Build a USSD-Arg from text (GSM 7-bit when it fits, else UCS2)."""
    used, octets = ussd_string.encode(text, dcs)
    return UssdArg(used, octets, alerting_pattern, None if msisdn is None else AddressString.e164(msisdn))


def ussd_res(text: str, *, dcs: int | None = None) -> UssdRes:
    used, octets = ussd_string.encode(text, dcs)
    return UssdRes(used, octets)
