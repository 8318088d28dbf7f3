"""MAP errors (TS 29.002 §17.6.6 error codes, §17.7.7 parameters), decoded tolerantly."""

from __future__ import annotations

import enum
from typing import NamedTuple

from gateway.codecs.ber import encode_integer, read_tlv, tlv
from gateway.codecs.errors import BerError, MapError
from gateway.codecs.values import typed_value


class MapErrorCode(enum.IntEnum):
    SYSTEM_FAILURE = 34
    DATA_MISSING = 35
    UNEXPECTED_DATA_VALUE = 36
    FACILITY_NOT_SUPPORTED = 21
    INCOMPATIBLE_TERMINAL = 28
    RESOURCE_LIMITATION = 51
    UNKNOWN_SUBSCRIBER = 1
    NUMBER_CHANGED = 44
    UNKNOWN_MSC = 3
    UNIDENTIFIED_SUBSCRIBER = 5
    UNKNOWN_EQUIPMENT = 7
    ROAMING_NOT_ALLOWED = 8
    ILLEGAL_SUBSCRIBER = 9
    ILLEGAL_EQUIPMENT = 12
    BEARER_SERVICE_NOT_PROVISIONED = 10
    TELESERVICE_NOT_PROVISIONED = 11
    CALL_BARRED = 13
    SS_ERROR_STATUS = 17
    SS_NOT_AVAILABLE = 18
    SS_SUBSCRIPTION_VIOLATION = 19
    SS_INCOMPATIBILITY = 20
    NEGATIVE_PW_CHECK = 38
    NUMBER_OF_PW_ATTEMPTS_VIOLATION = 43
    ABSENT_SUBSCRIBER = 27
    ABSENT_SUBSCRIBER_SM = 6
    SM_DELIVERY_FAILURE = 32
    MESSAGE_WAITING_LIST_FULL = 33
    SUBSCRIBER_BUSY_FOR_MT_SMS = 31
    UNKNOWN_ALPHABET = 71
    USSD_BUSY = 72


@typed_value
class MapErrorInfo(NamedTuple):
    code: int
    diagnostic: int | None = None  # the error's main diagnostic value where it has one
    raw: bytes | None = None  # the parameter as received

    @property
    def name(self) -> str:
        try:
            return MapErrorCode(self.code).name.lower()
        except ValueError:
            return f"error{self.code}"


def _first_scalar(param: bytes, start: int, end: int, tags: tuple[int, ...]) -> int | None:
    pos = start
    while pos < end:
        t = read_tlv(param, pos, end)
        if t.tag in tags and 1 <= t.end - t.start <= 2:
            return int.from_bytes(param[t.start : t.end], "big")
        pos = t.next
    return None


def decode_error(code: int, param: bytes | None) -> MapErrorInfo:
    """Read the diagnostic of the errors that carry one; anything unexpected is kept raw, never refused."""
    if not param:
        return MapErrorInfo(code, None, param)
    try:
        top = read_tlv(param, 0, len(param))
        diag = None
        if code in (MapErrorCode.SYSTEM_FAILURE, MapErrorCode.CALL_BARRED):
            # CHOICE: a bare ENUMERATED, or an extensible SEQUENCE holding it
            if top.tag == 0x0A and 1 <= top.end - top.start <= 2:  # as _first_scalar reads them
                diag = int.from_bytes(param[top.start : top.end], "big")
            elif top.tag == 0x30:
                diag = _first_scalar(param, top.start, top.end, (0x0A,))
        elif code == MapErrorCode.ABSENT_SUBSCRIBER_SM and top.tag == 0x30:
            diag = _first_scalar(param, top.start, top.end, (0x02,))
        elif code == MapErrorCode.UNKNOWN_SUBSCRIBER and top.tag == 0x30:
            diag = _first_scalar(param, top.start, top.end, (0x0A,))
        elif code == MapErrorCode.ABSENT_SUBSCRIBER and top.tag == 0x30:
            diag = _first_scalar(param, top.start, top.end, (0x80,))
    except BerError:
        return MapErrorInfo(code, None, param)
    return MapErrorInfo(code, diag, param)


def encode_error(code: int, diagnostic: int | None = None) -> bytes | None:
    """The parameter for ``code`` (None: send the error without one)."""
    if diagnostic is None:
        return None
    if code in (MapErrorCode.SYSTEM_FAILURE, MapErrorCode.CALL_BARRED):
        return tlv(0x0A, encode_integer(diagnostic))
    # X.690 §8.3/§8.4: INTEGER and ENUMERATED content in two's complement, as long as the value needs
    if code == MapErrorCode.ABSENT_SUBSCRIBER_SM:
        return tlv(0x30, tlv(0x02, encode_integer(diagnostic)))
    if code == MapErrorCode.UNKNOWN_SUBSCRIBER:
        return tlv(0x30, tlv(0x0A, encode_integer(diagnostic)))
    if code == MapErrorCode.ABSENT_SUBSCRIBER:
        return tlv(0x30, tlv(0x80, encode_integer(diagnostic)))
    raise MapError(f"MAP error {code} has no diagnostic parameter")
