"""sendRoutingInfoForSM (opcode 45; TS 29.002 §12.1, §17.7.6): the push originator asks the HLR where the
subscriber is (IMSI and the serving MSC/VLR number)."""

from __future__ import annotations

from typing import NamedTuple

from gateway.codecs.ber import read_tlv, tlv
from gateway.codecs.errors import BerError, MapError
from gateway.codecs.map_address import AddressString, decode_imsi, encode_imsi
from gateway.codecs.values import typed_value

OP_SEND_ROUTING_INFO_FOR_SM = 45
MAX_SM_RP_MTI = 10  # TS 29.002 §17.7.6 SM-RP-MTI ::= INTEGER (0..10)


@typed_value
class RoutingInfoForSmArg(NamedTuple):
    msisdn: AddressString
    sm_rp_pri: bool
    service_centre_address: AddressString
    gprs_support_indicator: bool = False
    sm_rp_mti: int | None = None
    sm_rp_smea: bytes | None = None


@typed_value
class RoutingInfoForSmRes(NamedTuple):
    imsi: str
    network_node_number: AddressString  # the serving MSC/VLR (or SGSN) number
    lmsi: bytes | None = None
    gprs_node_indicator: bool = False
    additional_number: AddressString | None = None
    additional_is_sgsn: bool = False


def encode_sri_sm_arg(arg: RoutingInfoForSmArg) -> bytes:
    body = (
        tlv(0x80, arg.msisdn.encode())
        + bytes((0x81, 1, 0xFF if arg.sm_rp_pri else 0x00))
        + tlv(0x82, arg.service_centre_address.encode())
    )
    if arg.gprs_support_indicator:
        body += b"\x87\x00"
    if arg.sm_rp_mti is not None:
        body += bytes((0x88, 1, arg.sm_rp_mti))
    if arg.sm_rp_smea is not None:
        body += tlv(0x89, arg.sm_rp_smea)
    return tlv(0x30, body)


def _seq(param: bytes) -> tuple[int, int]:
    seq = read_tlv(param, 0, len(param))
    if seq.tag != 0x30:
        raise MapError("argument is not a SEQUENCE")
    return seq.start, seq.end


def decode_sri_sm_arg(param: bytes) -> RoutingInfoForSmArg:
    try:
        pos, end = _seq(param)
        fields: dict[int, bytes] = {}
        while pos < end:
            t = read_tlv(param, pos, end)
            fields.setdefault(t.tag, param[t.start : t.end])
            pos = t.next
    except BerError as exc:
        raise MapError(f"malformed RoutingInfoForSM-Arg: {exc}") from None
    if 0x80 not in fields or 0x81 not in fields or 0x82 not in fields:
        raise MapError("RoutingInfoForSM-Arg without msisdn, sm-RP-PRI or serviceCentreAddress")
    if len(fields[0x81]) != 1:
        raise MapError("sm-RP-PRI is not a one-octet BOOLEAN")  # X.690 §8.2.1
    mti = fields.get(0x88)
    if mti is not None and (len(mti) != 1 or mti[0] > MAX_SM_RP_MTI):
        raise MapError(f"sm-RP-MTI {mti.hex()} is not an INTEGER (0..10)")  # TS 29.002 §17.7.6, X.690 §8.3
    return RoutingInfoForSmArg(
        AddressString.decode(fields[0x80]),
        fields[0x81] != b"\x00",
        AddressString.decode(fields[0x82]),
        0x87 in fields,
        None if mti is None else int.from_bytes(mti, "big"),
        fields.get(0x89),
    )


def encode_sri_sm_res(res: RoutingInfoForSmRes) -> bytes:
    loc = tlv(0x81, res.network_node_number.encode())
    if res.lmsi is not None:
        loc += tlv(0x04, res.lmsi)
    if res.gprs_node_indicator:
        loc += b"\x85\x00"
    if res.additional_number is not None:
        loc += tlv(0xA6, tlv(0x81 if res.additional_is_sgsn else 0x80, res.additional_number.encode()))
    return tlv(0x30, tlv(0x04, encode_imsi(res.imsi)) + tlv(0xA0, loc))


def decode_sri_sm_res(param: bytes) -> RoutingInfoForSmRes:
    try:
        pos, end = _seq(param)
        imsi: str | None = None
        node = lmsi = None
        gprs = sgsn = False
        additional = None
        while pos < end:
            t = read_tlv(param, pos, end)
            if t.tag == 0x04 and imsi is None:
                imsi = decode_imsi(param[t.start : t.end])
            elif t.tag == 0xA0:  # locationInfoWithLMSI
                p = t.start
                while p < t.end:
                    f = read_tlv(param, p, t.end)
                    value = param[f.start : f.end]
                    if f.tag == 0x81:
                        node = AddressString.decode(value)
                    elif f.tag == 0x04:
                        if len(value) != 4:
                            raise MapError("LMSI is not 4 octets")
                        lmsi = value
                    elif f.tag == 0x85:
                        gprs = True
                    elif f.tag == 0xA6:
                        a = read_tlv(param, f.start, f.end)
                        additional = AddressString.decode(param[a.start : a.end])
                        sgsn = a.tag == 0x81
                    p = f.next
            pos = t.next
    except BerError as exc:
        raise MapError(f"malformed RoutingInfoForSM-Res: {exc}") from None
    if imsi is None or node is None:
        raise MapError("RoutingInfoForSM-Res without IMSI or networkNode-Number")
    return RoutingInfoForSmRes(imsi, node, lmsi, gprs, additional, sgsn)
