"""M3UA messages (RFC 4666 §3): common header, parameters, every message class, and a fast DATA path.

A message is one frozen :class:`Message` (class, type, parameters in order); typed accessors read the
parameters the stack needs, and :class:`ProtocolData` is the decoded Protocol Data parameter (§3.3.1). DATA, the
hot message, has dedicated :func:`encode_data` / :func:`decode_data` that avoid building the generic form.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from gateway.codecs.errors import M3uaError
from gateway.codecs.values import typed_value

VERSION = 1
HEADER = struct.Struct("!BBBBI")  # version, reserved, class, type, length (RFC 4666 §3.1)
TAG_LEN = struct.Struct("!HH")
PD_LABEL = struct.Struct("!IIBBBB")  # OPC, DPC, SI, NI, MP, SLS (§3.3.1)
U32 = struct.Struct("!I")


class MsgClass(enum.IntEnum):
    """RFC 4666 §3.1.2 message classes."""

    MGMT = 0
    TRANSFER = 1
    SSNM = 2
    ASPSM = 3
    ASPTM = 4
    RKM = 9


class Mgmt(enum.IntEnum):
    ERR = 0
    NTFY = 1


class Transfer(enum.IntEnum):
    DATA = 1


class Ssnm(enum.IntEnum):
    DUNA = 1
    DAVA = 2
    DAUD = 3
    SCON = 4
    DUPU = 5
    DRST = 6


class Aspsm(enum.IntEnum):
    ASPUP = 1
    ASPDN = 2
    BEAT = 3
    ASPUP_ACK = 4
    ASPDN_ACK = 5
    BEAT_ACK = 6


class Asptm(enum.IntEnum):
    ASPAC = 1
    ASPIA = 2
    ASPAC_ACK = 3
    ASPIA_ACK = 4


class Rkm(enum.IntEnum):
    REG_REQ = 1
    REG_RSP = 2
    DEREG_REQ = 3
    DEREG_RSP = 4


VALID_TYPES: dict[int, frozenset[int]] = {
    MsgClass.MGMT: frozenset(Mgmt),
    MsgClass.TRANSFER: frozenset(Transfer),
    MsgClass.SSNM: frozenset(Ssnm),
    MsgClass.ASPSM: frozenset(Aspsm),
    MsgClass.ASPTM: frozenset(Asptm),
    MsgClass.RKM: frozenset(Rkm),
}


class Tag(enum.IntEnum):
    """RFC 4666 §3.2 common parameters and §3.3 M3UA-specific parameters."""

    INFO_STRING = 0x0004
    ROUTING_CONTEXT = 0x0006
    DIAGNOSTIC_INFORMATION = 0x0007
    HEARTBEAT_DATA = 0x0009
    TRAFFIC_MODE_TYPE = 0x000B
    ERROR_CODE = 0x000C
    STATUS = 0x000D
    ASP_IDENTIFIER = 0x0011
    AFFECTED_POINT_CODE = 0x0012
    CORRELATION_ID = 0x0013
    NETWORK_APPEARANCE = 0x0200
    USER_CAUSE = 0x0204
    CONGESTION_INDICATIONS = 0x0205
    CONCERNED_DESTINATION = 0x0206
    ROUTING_KEY = 0x0207
    REGISTRATION_RESULT = 0x0208
    DEREGISTRATION_RESULT = 0x0209
    LOCAL_ROUTING_KEY_IDENTIFIER = 0x020A
    DESTINATION_POINT_CODE = 0x020B
    SERVICE_INDICATORS = 0x020C
    ORIGINATING_POINT_CODE_LIST = 0x020E
    PROTOCOL_DATA = 0x0210
    REGISTRATION_STATUS = 0x0212
    DEREGISTRATION_STATUS = 0x0213


class ErrorCode(enum.IntEnum):
    """RFC 4666 §3.8.1 error codes."""

    INVALID_VERSION = 0x01
    UNSUPPORTED_MESSAGE_CLASS = 0x03
    UNSUPPORTED_MESSAGE_TYPE = 0x04
    UNSUPPORTED_TRAFFIC_MODE_TYPE = 0x05
    UNEXPECTED_MESSAGE = 0x06
    PROTOCOL_ERROR = 0x07
    INVALID_STREAM_IDENTIFIER = 0x09
    REFUSED_MANAGEMENT_BLOCKING = 0x0D
    ASP_IDENTIFIER_REQUIRED = 0x0E
    INVALID_ASP_IDENTIFIER = 0x0F
    INVALID_PARAMETER_VALUE = 0x11
    PARAMETER_FIELD_ERROR = 0x12
    UNEXPECTED_PARAMETER = 0x13
    DESTINATION_STATUS_UNKNOWN = 0x14
    INVALID_NETWORK_APPEARANCE = 0x15
    MISSING_PARAMETER = 0x16
    INVALID_ROUTING_CONTEXT = 0x19
    NO_CONFIGURED_AS_FOR_ASP = 0x1A


class TrafficMode(enum.IntEnum):
    OVERRIDE = 1
    LOADSHARE = 2
    BROADCAST = 3


class StatusType(enum.IntEnum):
    """RFC 4666 §3.8.2 Status Type."""

    AS_STATE_CHANGE = 1
    OTHER = 2


class AsStateInfo(enum.IntEnum):
    AS_INACTIVE = 2
    AS_ACTIVE = 3
    AS_PENDING = 4


class OtherInfo(enum.IntEnum):
    INSUFFICIENT_ASP_RESOURCES_ACTIVE = 1
    ALTERNATE_ASP_ACTIVE = 2
    ASP_FAILURE = 3


class RegistrationStatus(enum.IntEnum):
    """RFC 4666 §3.6.2."""

    SUCCESSFULLY_REGISTERED = 0
    UNKNOWN = 1
    INVALID_DPC = 2
    INVALID_NETWORK_APPEARANCE = 3
    INVALID_ROUTING_KEY = 4
    PERMISSION_DENIED = 5
    CANNOT_SUPPORT_UNIQUE_ROUTING = 6
    ROUTING_KEY_NOT_CURRENTLY_PROVISIONED = 7
    INSUFFICIENT_RESOURCES = 8
    UNSUPPORTED_RK_PARAMETER_FIELD = 9
    UNSUPPORTED_INVALID_TRAFFIC_HANDLING_MODE = 10
    ROUTING_KEY_CHANGE_REFUSED = 11
    ROUTING_KEY_ALREADY_REGISTERED = 12


class DeregistrationStatus(enum.IntEnum):
    SUCCESSFULLY_DEREGISTERED = 0
    UNKNOWN = 1
    INVALID_ROUTING_CONTEXT = 2
    PERMISSION_DENIED = 3
    NOT_REGISTERED = 4
    ASP_CURRENTLY_ACTIVE_FOR_ROUTING_CONTEXT = 5


@dataclass(frozen=True, slots=True)
class Parameter:
    tag: int
    value: bytes


@typed_value
class ProtocolData(NamedTuple):
    """RFC 4666 §3.3.1 Protocol Data: the MTP3 routing label and service information, and the user data.

    A NamedTuple rather than a frozen dataclass: it is built for every message, and tuples construct ~3x faster.
    """

    opc: int
    dpc: int
    si: int
    ni: int
    mp: int
    sls: int
    data: bytes

    def encode(self) -> bytes:
        return PD_LABEL.pack(self.opc, self.dpc, self.si, self.ni, self.mp, self.sls) + self.data

    @classmethod
    def decode(cls, value: bytes) -> ProtocolData:
        if len(value) < 12:
            raise M3uaError("Protocol Data shorter than its 12-octet label", error_code=ErrorCode.PARAMETER_FIELD_ERROR)
        opc, dpc, si, ni, mp, sls = PD_LABEL.unpack_from(value)
        return cls(opc, dpc, si, ni, mp, sls, bytes(value[12:]))


@dataclass(frozen=True, slots=True)
class AffectedPointCode:
    """RFC 4666 §3.4.1: a mask (number of wildcarded low bits) and a point code."""

    pc: int
    mask: int = 0


@dataclass(frozen=True, slots=True)
class RoutingKey:
    """RFC 4666 §3.6.1 Routing Key (the parameters osmo-stp and most SGs use)."""

    local_rk_id: int
    dpc: int
    routing_context: int | None = None
    traffic_mode: int | None = None
    network_appearance: int | None = None
    service_indicators: tuple[int, ...] = ()
    opc_list: tuple[int, ...] = ()

    def encode(self) -> bytes:
        out = [param(Tag.LOCAL_ROUTING_KEY_IDENTIFIER, U32.pack(self.local_rk_id))]
        if self.routing_context is not None:
            out.append(param(Tag.ROUTING_CONTEXT, U32.pack(self.routing_context)))
        if self.traffic_mode is not None:
            out.append(param(Tag.TRAFFIC_MODE_TYPE, U32.pack(self.traffic_mode)))
        out.append(param(Tag.DESTINATION_POINT_CODE, U32.pack(self.dpc & 0xFFFFFF)))
        if self.network_appearance is not None:
            out.append(param(Tag.NETWORK_APPEARANCE, U32.pack(self.network_appearance)))
        if self.service_indicators:
            out.append(param(Tag.SERVICE_INDICATORS, bytes(self.service_indicators)))
        if self.opc_list:
            out.append(param(Tag.ORIGINATING_POINT_CODE_LIST, b"".join(U32.pack(p & 0xFFFFFF) for p in self.opc_list)))
        return b"".join(out)

    @classmethod
    def decode(cls, value: bytes) -> RoutingKey:
        fields = {p.tag: p.value for p in decode_parameters(value, 0, len(value))}
        if Tag.LOCAL_ROUTING_KEY_IDENTIFIER not in fields or Tag.DESTINATION_POINT_CODE not in fields:
            raise M3uaError("Routing Key without Local-RK-Identifier or DPC", error_code=ErrorCode.MISSING_PARAMETER)
        opcs = fields.get(Tag.ORIGINATING_POINT_CODE_LIST, b"")
        return cls(
            local_rk_id=_u32(fields[Tag.LOCAL_ROUTING_KEY_IDENTIFIER]),
            dpc=_u32(fields[Tag.DESTINATION_POINT_CODE]) & 0xFFFFFF,
            routing_context=_opt_u32(fields.get(Tag.ROUTING_CONTEXT)),
            traffic_mode=_opt_u32(fields.get(Tag.TRAFFIC_MODE_TYPE)),
            network_appearance=_opt_u32(fields.get(Tag.NETWORK_APPEARANCE)),
            service_indicators=tuple(fields.get(Tag.SERVICE_INDICATORS, b"").rstrip(b"\x00")),
            opc_list=tuple(U32.unpack_from(opcs, i)[0] & 0xFFFFFF for i in range(0, len(opcs) - 3, 4)),
        )


@dataclass(frozen=True, slots=True)
class RegistrationResult:
    """RFC 4666 §3.6.2."""

    local_rk_id: int
    status: int
    routing_context: int

    def encode(self) -> bytes:
        return (
            param(Tag.LOCAL_ROUTING_KEY_IDENTIFIER, U32.pack(self.local_rk_id))
            + param(Tag.REGISTRATION_STATUS, U32.pack(self.status))
            + param(Tag.ROUTING_CONTEXT, U32.pack(self.routing_context))
        )

    @classmethod
    def decode(cls, value: bytes) -> RegistrationResult:
        fields = {p.tag: p.value for p in decode_parameters(value, 0, len(value))}
        try:
            return cls(
                _u32(fields[Tag.LOCAL_ROUTING_KEY_IDENTIFIER]),
                _u32(fields[Tag.REGISTRATION_STATUS]),
                _u32(fields[Tag.ROUTING_CONTEXT]),
            )
        except KeyError as exc:
            raise M3uaError(f"Registration Result without {exc}", error_code=ErrorCode.MISSING_PARAMETER) from None


@dataclass(frozen=True, slots=True)
class DeregistrationResult:
    """RFC 4666 §3.6.4."""

    routing_context: int
    status: int

    def encode(self) -> bytes:
        return param(Tag.ROUTING_CONTEXT, U32.pack(self.routing_context)) + param(
            Tag.DEREGISTRATION_STATUS, U32.pack(self.status)
        )

    @classmethod
    def decode(cls, value: bytes) -> DeregistrationResult:
        fields = {p.tag: p.value for p in decode_parameters(value, 0, len(value))}
        try:
            return cls(_u32(fields[Tag.ROUTING_CONTEXT]), _u32(fields[Tag.DEREGISTRATION_STATUS]))
        except KeyError as exc:
            raise M3uaError(f"Deregistration Result without {exc}", error_code=ErrorCode.MISSING_PARAMETER) from None


@dataclass(frozen=True, slots=True)
class Message:
    """One M3UA message: class, type and its parameters in wire order."""

    msg_class: int
    msg_type: int
    params: tuple[Parameter, ...] = ()

    def get(self, tag: int) -> bytes | None:
        for p in self.params:
            if p.tag == tag:
                return p.value
        return None

    def get_all(self, tag: int) -> list[bytes]:
        return [p.value for p in self.params if p.tag == tag]

    def u32(self, tag: int) -> int | None:
        return _opt_u32(self.get(tag))

    def u32_list(self, tag: int) -> tuple[int, ...]:
        value = self.get(tag)
        if value is None:
            return ()
        if len(value) % 4:
            raise M3uaError(f"parameter 0x{tag:04x} is not a list of 32-bit values",
                            error_code=ErrorCode.PARAMETER_FIELD_ERROR)  # fmt: skip
        return tuple(U32.unpack_from(value, i)[0] for i in range(0, len(value), 4))

    @property
    def routing_contexts(self) -> tuple[int, ...]:
        return self.u32_list(Tag.ROUTING_CONTEXT)

    @property
    def protocol_data(self) -> ProtocolData | None:
        value = self.get(Tag.PROTOCOL_DATA)
        return None if value is None else ProtocolData.decode(value)

    @property
    def affected_point_codes(self) -> tuple[AffectedPointCode, ...]:
        return tuple(AffectedPointCode(v & 0xFFFFFF, v >> 24) for v in self.u32_list(Tag.AFFECTED_POINT_CODE))

    @property
    def error_code(self) -> int | None:
        return self.u32(Tag.ERROR_CODE)

    @property
    def status(self) -> tuple[int, int] | None:
        value = self.get(Tag.STATUS)
        if value is None:
            return None
        if len(value) != 4:
            raise M3uaError("Status parameter is not 4 octets", error_code=ErrorCode.PARAMETER_FIELD_ERROR)
        return int.from_bytes(value[:2], "big"), int.from_bytes(value[2:], "big")

    @property
    def routing_keys(self) -> tuple[RoutingKey, ...]:
        return tuple(RoutingKey.decode(v) for v in self.get_all(Tag.ROUTING_KEY))

    @property
    def registration_results(self) -> tuple[RegistrationResult, ...]:
        return tuple(RegistrationResult.decode(v) for v in self.get_all(Tag.REGISTRATION_RESULT))

    @property
    def deregistration_results(self) -> tuple[DeregistrationResult, ...]:
        return tuple(DeregistrationResult.decode(v) for v in self.get_all(Tag.DEREGISTRATION_RESULT))

    @property
    def info_string(self) -> str | None:
        value = self.get(Tag.INFO_STRING)
        return None if value is None else value.decode("utf-8", "replace")


def param(tag: int, value: bytes) -> bytes:
    """One parameter TLV padded to 4 octets; the length excludes the padding (§3.2)."""
    n = len(value) + 4
    return TAG_LEN.pack(tag, n) + value + b"\x00" * (-n & 3)


def encode_parameters(params: Iterable[Parameter]) -> bytes:
    return b"".join(param(p.tag, p.value) for p in params)


def decode_parameters(buf: bytes, pos: int, end: int) -> list[Parameter]:
    out: list[Parameter] = []
    while pos < end:
        if end - pos < 4:
            raise M3uaError(
                "trailing octets shorter than a parameter header", error_code=ErrorCode.PARAMETER_FIELD_ERROR
            )
        tag, length = TAG_LEN.unpack_from(buf, pos)
        if length < 4 or pos + length > end:
            raise M3uaError(f"parameter 0x{tag:04x} has a bad length {length}",
                            error_code=ErrorCode.PARAMETER_FIELD_ERROR)  # fmt: skip
        out.append(Parameter(tag, bytes(buf[pos + 4 : pos + length])))
        pos += (length + 3) & ~3
    return out


def encode(msg: Message) -> bytes:
    body = encode_parameters(msg.params)
    return HEADER.pack(VERSION, 0, msg.msg_class, msg.msg_type, 8 + len(body)) + body


def check_header(data: bytes) -> tuple[int, int, int]:
    """Validate the common header (§3.1); returns (class, type, length)."""
    if len(data) < 8:
        raise M3uaError("message shorter than the 8-octet common header", error_code=ErrorCode.PROTOCOL_ERROR)
    version, _, msg_class, msg_type, length = HEADER.unpack_from(data)
    if version != VERSION:
        raise M3uaError(f"version {version} is not 1", error_code=ErrorCode.INVALID_VERSION)
    types = VALID_TYPES.get(msg_class)
    if types is None:
        raise M3uaError(f"message class {msg_class} is not supported", error_code=ErrorCode.UNSUPPORTED_MESSAGE_CLASS)
    if msg_type not in types:
        raise M3uaError(f"message type {msg_type} of class {msg_class} is not supported",
                        error_code=ErrorCode.UNSUPPORTED_MESSAGE_TYPE)  # fmt: skip
    if length != len(data):
        raise M3uaError(f"header length {length} differs from the message's {len(data)} octets",
                        error_code=ErrorCode.PROTOCOL_ERROR)  # fmt: skip
    return msg_class, msg_type, length


def decode(data: bytes) -> Message:
    """Decode one whole M3UA message. Raises :class:`M3uaError` with the §3.8.1 code to answer with (and the
    message's first octets as the diagnostic)."""
    try:
        return _decode(data)
    except M3uaError as exc:
        if not exc.diagnostic:
            exc.diagnostic = diagnostic(data)
        raise


def _decode(data: bytes) -> Message:
    msg_class, msg_type, length = check_header(data)
    params = decode_parameters(data, 8, length)
    if msg_class == MsgClass.TRANSFER and not any(p.tag == Tag.PROTOCOL_DATA for p in params):
        raise M3uaError("DATA without Protocol Data", error_code=ErrorCode.MISSING_PARAMETER)
    return Message(msg_class, msg_type, tuple(params))


def diagnostic(data: bytes) -> bytes:
    """Diagnostic Information for an ERR: the offending message's first octets (§3.8.1)."""
    return bytes(data[:40])


# ---- DATA fast path (§3.3.1) ----

_DATA_HDR_RC = struct.Struct("!BBBBIHHI")  # header + Routing Context TLV (one RC)
_PD_HEAD = struct.Struct("!HHIIBBBB")  # Protocol Data tag/len + label


@typed_value
class Data(NamedTuple):
    """A decoded DATA message (the hot path)."""

    protocol_data: ProtocolData
    routing_context: int | None = None
    network_appearance: int | None = None
    correlation_id: int | None = None


def encode_data(
    opc: int,
    dpc: int,
    si: int,
    ni: int,
    mp: int,
    sls: int,
    payload: bytes,
    routing_context: int | None = None,
    network_appearance: int | None = None,
    correlation_id: int | None = None,
) -> bytes:
    """DATA message (§3.3.1): [Network Appearance] [Routing Context] Protocol Data [Correlation Id]."""
    n = len(payload)
    pd_len = 16 + n
    pad = -pd_len & 3
    if network_appearance is None and correlation_id is None:
        if routing_context is None:
            return (
                HEADER.pack(VERSION, 0, 1, 1, 8 + pd_len + pad)
                + _PD_HEAD.pack(0x0210, pd_len, opc, dpc, si, ni, mp, sls)
                + payload
                + b"\x00" * pad
            )
        return (
            _DATA_HDR_RC.pack(VERSION, 0, 1, 1, 16 + pd_len + pad, 0x0006, 8, routing_context)
            + _PD_HEAD.pack(0x0210, pd_len, opc, dpc, si, ni, mp, sls)
            + payload
            + b"\x00" * pad
        )
    params: list[Parameter] = []
    if network_appearance is not None:
        params.append(Parameter(Tag.NETWORK_APPEARANCE, U32.pack(network_appearance)))
    if routing_context is not None:
        params.append(Parameter(Tag.ROUTING_CONTEXT, U32.pack(routing_context)))
    params.append(Parameter(Tag.PROTOCOL_DATA, PD_LABEL.pack(opc, dpc, si, ni, mp, sls) + payload))
    if correlation_id is not None:
        params.append(Parameter(Tag.CORRELATION_ID, U32.pack(correlation_id)))
    return encode(Message(MsgClass.TRANSFER, Transfer.DATA, tuple(params)))


def decode_data(data: bytes) -> Data:
    """Decode a DATA message (the caller knows it is class 1 type 1, e.g. from :func:`peek_class_type`)."""
    n = len(data)
    if n >= 36 and data[0] == 1 and data[2] == 1 and data[3] == 1 and data[8:12] == b"\x00\x06\x00\x08":
        # Common layout: header, one Routing Context, Protocol Data last.
        length = U32.unpack_from(data, 4)[0]
        if length == n and data[16:18] == b"\x02\x10":
            rc = U32.unpack_from(data, 12)[0]
            pd_len = (data[18] << 8) | data[19]
            if pd_len >= 16 and 16 + ((pd_len + 3) & ~3) == n:
                opc, dpc, si, ni, mp, sls = PD_LABEL.unpack_from(data, 20)
                return Data(ProtocolData(opc, dpc, si, ni, mp, sls, data[32 : 16 + pd_len]), rc)
    msg = decode(data)
    if msg.msg_class != MsgClass.TRANSFER:
        raise M3uaError("not a DATA message", error_code=ErrorCode.UNEXPECTED_MESSAGE)
    pd = msg.protocol_data
    assert pd is not None  # decode() refuses DATA without Protocol Data
    rcs = msg.routing_contexts
    return Data(
        pd,
        rcs[0] if rcs else None,
        msg.u32(Tag.NETWORK_APPEARANCE),
        msg.u32(Tag.CORRELATION_ID),
    )


def peek_class_type(data: bytes) -> tuple[int, int]:
    """(class, type) of a framed message without decoding it."""
    return data[2], data[3]


# ---- constructors for the messages the stack sends ----


def _u32(value: bytes) -> int:
    if len(value) != 4:
        raise M3uaError("expected a 32-bit value", error_code=ErrorCode.PARAMETER_FIELD_ERROR)
    return int(U32.unpack(value)[0])


def _opt_u32(value: bytes | None) -> int | None:
    return None if value is None else _u32(value)


def _rc(routing_contexts: Sequence[int]) -> list[Parameter]:
    if not routing_contexts:
        return []
    return [Parameter(Tag.ROUTING_CONTEXT, b"".join(U32.pack(rc) for rc in routing_contexts))]


def _info(info: str | None) -> list[Parameter]:
    return [] if info is None else [Parameter(Tag.INFO_STRING, info.encode())]


def aspup(asp_identifier: int | None = None, info: str | None = None) -> Message:
    params = [] if asp_identifier is None else [Parameter(Tag.ASP_IDENTIFIER, U32.pack(asp_identifier))]
    return Message(MsgClass.ASPSM, Aspsm.ASPUP, tuple(params + _info(info)))


def aspup_ack(asp_identifier: int | None = None, info: str | None = None) -> Message:
    params = [] if asp_identifier is None else [Parameter(Tag.ASP_IDENTIFIER, U32.pack(asp_identifier))]
    return Message(MsgClass.ASPSM, Aspsm.ASPUP_ACK, tuple(params + _info(info)))


def aspdn(info: str | None = None) -> Message:
    return Message(MsgClass.ASPSM, Aspsm.ASPDN, tuple(_info(info)))


def aspdn_ack(info: str | None = None) -> Message:
    return Message(MsgClass.ASPSM, Aspsm.ASPDN_ACK, tuple(_info(info)))


def beat(data: bytes) -> Message:
    return Message(MsgClass.ASPSM, Aspsm.BEAT, (Parameter(Tag.HEARTBEAT_DATA, data),))


def beat_ack(data: bytes) -> Message:
    return Message(MsgClass.ASPSM, Aspsm.BEAT_ACK, (Parameter(Tag.HEARTBEAT_DATA, data),))


def aspac(traffic_mode: int | None = None, routing_contexts: Sequence[int] = (), info: str | None = None) -> Message:
    params = [] if traffic_mode is None else [Parameter(Tag.TRAFFIC_MODE_TYPE, U32.pack(traffic_mode))]
    return Message(MsgClass.ASPTM, Asptm.ASPAC, tuple(params + _rc(routing_contexts) + _info(info)))


def aspac_ack(
    traffic_mode: int | None = None, routing_contexts: Sequence[int] = (), info: str | None = None
) -> Message:
    params = [] if traffic_mode is None else [Parameter(Tag.TRAFFIC_MODE_TYPE, U32.pack(traffic_mode))]
    return Message(MsgClass.ASPTM, Asptm.ASPAC_ACK, tuple(params + _rc(routing_contexts) + _info(info)))


def aspia(routing_contexts: Sequence[int] = (), info: str | None = None) -> Message:
    return Message(MsgClass.ASPTM, Asptm.ASPIA, tuple(_rc(routing_contexts) + _info(info)))


def aspia_ack(routing_contexts: Sequence[int] = (), info: str | None = None) -> Message:
    return Message(MsgClass.ASPTM, Asptm.ASPIA_ACK, tuple(_rc(routing_contexts) + _info(info)))


def err(code: int, *, routing_contexts: Sequence[int] = (), diagnostic_info: bytes | None = None,
        network_appearance: int | None = None, affected: Sequence[AffectedPointCode] = ()) -> Message:  # fmt: skip
    params = [Parameter(Tag.ERROR_CODE, U32.pack(code)), *_rc(routing_contexts)]
    if network_appearance is not None:
        params.append(Parameter(Tag.NETWORK_APPEARANCE, U32.pack(network_appearance)))
    if affected:
        params.append(_apc(affected))
    if diagnostic_info is not None:
        params.append(Parameter(Tag.DIAGNOSTIC_INFORMATION, diagnostic_info))
    return Message(MsgClass.MGMT, Mgmt.ERR, tuple(params))


def ntfy(status_type: int, status_info: int, *, asp_identifier: int | None = None,
         routing_contexts: Sequence[int] = (), info: str | None = None) -> Message:  # fmt: skip
    params = [Parameter(Tag.STATUS, struct.pack("!HH", status_type, status_info))]
    if asp_identifier is not None:
        params.append(Parameter(Tag.ASP_IDENTIFIER, U32.pack(asp_identifier)))
    return Message(MsgClass.MGMT, Mgmt.NTFY, tuple(params + _rc(routing_contexts) + _info(info)))


def _apc(affected: Sequence[AffectedPointCode]) -> Parameter:
    return Parameter(
        Tag.AFFECTED_POINT_CODE, b"".join(U32.pack(((a.mask & 0xFF) << 24) | (a.pc & 0xFFFFFF)) for a in affected)
    )


def ssnm(msg_type: Ssnm, affected: Sequence[AffectedPointCode], *, routing_contexts: Sequence[int] = (),
         network_appearance: int | None = None, user_cause: tuple[int, int] | None = None,
         congestion_level: int | None = None, concerned_destination: int | None = None,
         info: str | None = None) -> Message:  # fmt: skip
    """DUNA/DAVA/DAUD/SCON/DUPU/DRST (§3.4) in the parameter order of the RFC."""
    params: list[Parameter] = []
    if network_appearance is not None:
        params.append(Parameter(Tag.NETWORK_APPEARANCE, U32.pack(network_appearance)))
    params += _rc(routing_contexts)
    params.append(_apc(affected))
    if concerned_destination is not None:
        params.append(Parameter(Tag.CONCERNED_DESTINATION, U32.pack(concerned_destination & 0xFFFFFF)))
    if congestion_level is not None:
        params.append(Parameter(Tag.CONGESTION_INDICATIONS, U32.pack(congestion_level)))
    if user_cause is not None:
        params.append(Parameter(Tag.USER_CAUSE, struct.pack("!HH", *user_cause)))  # cause, user
    return Message(MsgClass.SSNM, msg_type, tuple(params + _info(info)))


def reg_req(keys: Sequence[RoutingKey]) -> Message:
    return Message(MsgClass.RKM, Rkm.REG_REQ, tuple(Parameter(Tag.ROUTING_KEY, k.encode()) for k in keys))


def reg_rsp(results: Sequence[RegistrationResult]) -> Message:
    return Message(MsgClass.RKM, Rkm.REG_RSP, tuple(Parameter(Tag.REGISTRATION_RESULT, r.encode()) for r in results))


def dereg_req(routing_contexts: Sequence[int]) -> Message:
    return Message(MsgClass.RKM, Rkm.DEREG_REQ, tuple(_rc(routing_contexts)))


def dereg_rsp(results: Sequence[DeregistrationResult]) -> Message:
    return Message(
        MsgClass.RKM, Rkm.DEREG_RSP, tuple(Parameter(Tag.DEREGISTRATION_RESULT, r.encode()) for r in results)
    )
