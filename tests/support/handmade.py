"""M3UA DATA + SCCP UDT built by hand with struct, straight from the specs, for tests that must not depend on
the project's own M3UA/SCCP codecs (their encoders are what those tests judge, or are not written yet).
"""

from __future__ import annotations

import struct

# design.md §3: processUnstructuredSS-Request "*123#", DCS 0x0F, msisdn 491720000001, otid 00000001;
# produced identically by pycrate and asn1tools.
TC_BEGIN_USSD = bytes.fromhex(
    "62454804000000016b1e281c060700118605010101a011600f80020780a1090607040000010013026c1da11b02010102013b301304"
    "010f0405aa986c3602800791947102000010"
)


def _tl(tag: int, value: bytes) -> bytes:
    if len(value) > 127:
        raise ValueError("short-form lengths only")  # X.690 §8.1.3.4
    return bytes((tag, len(value))) + value


def pack_gsm7_ussd(text: str) -> bytes:
    """GSM 7-bit packing for USSD (TS 23.038 §6.1.2.3.1), for texts whose characters have the same code in the
    GSM default alphabet as in ASCII (digits, letters, space, ``*`` ``#`` ``%`` ``+`` ...; not ``@ $ _``)."""
    if any(c in "@$_`[]{}\\^~|" or (not " " <= c <= "z" and c != "\r") for c in text):
        raise ValueError("only the ASCII-identical part of the GSM 7-bit alphabet")
    septets = [ord(c) for c in text]
    if len(septets) % 8 == 7 or (len(septets) % 8 == 0 and septets and septets[-1] == 0x0D):
        septets.append(0x0D)  # 7 spare bits: pad with CR, not zeros; a final CR on a boundary gets another
    value = 0
    for i, septet in enumerate(septets):
        value |= septet << (7 * i)
    return value.to_bytes((7 * len(septets) + 7) // 8, "little")


def ussd_arg(
    ussd_string: bytes, *, dcs: int = 0x0F, msisdn: bytes | None = bytes.fromhex("91947102000010")
) -> bytes:
    """TS 29.002 USSD-Arg SEQUENCE { ussd-DataCodingScheme OCTET STRING, ussd-String OCTET STRING,
    ..., msisdn [0] ISDN-AddressString OPTIONAL }."""
    body = _tl(0x04, bytes((dcs,))) + _tl(0x04, ussd_string)
    if msisdn is not None:
        body += _tl(0x80, msisdn)
    return _tl(0x30, body)


def ussd_invoke(invoke_id: int, *, opcode: int = 59, parameter: bytes = TC_BEGIN_USSD[50:]) -> bytes:
    """A Q.773 Invoke component [1] (invokeId INTEGER, local opcode INTEGER, parameter); by default the
    USSD-Arg of :data:`TC_BEGIN_USSD`."""
    return _tl(0xA1, _tl(0x02, bytes((invoke_id,))) + _tl(0x02, bytes((opcode,))) + parameter)


def tc_begin(components: list[bytes], *, otid: bytes = b"\x00\x00\x00\x01") -> bytes:
    """A Q.773 TC-BEGIN [APPLICATION 2]: otid [APPLICATION 8], the dialogue portion of
    :data:`TC_BEGIN_USSD` (AARQ, networkUnstructuredSsContext-v2) and a component portion
    [APPLICATION 12] holding ``components``."""
    return _tl(0x62, _tl(0x48, otid) + TC_BEGIN_USSD[8:40] + _tl(0x6C, b"".join(components)))


SSN_HLR = 6
SSN_VLR = 7
SSN_MSC = 8
SSN_GSMSCF = 147


def bcd_digits(digits: str) -> bytes:
    """TBCD digits, low nibble first, odd count padded with 0 in the high nibble (Q.713 §3.4.2.3.1)."""
    nibbles = [int(d, 16) for d in digits]
    if len(nibbles) % 2:
        nibbles.append(0)
    return bytes(lo | (hi << 4) for lo, hi in zip(nibbles[::2], nibbles[1::2], strict=True))


def gt4_address(digits: str, ssn: int | None, *, tt: int = 0, np: int = 1, nai: int = 4) -> bytes:
    """An SCCP party address with GT format 4 (Q.713 §3.4.1, §3.4.2.3.4), routed on GT, no point code.

    Address indicator: bit 8 reserved for national use (0), bit 7 routing indicator (0 = on GT),
    bits 6-3 GTI = 4, bit 2 SSN indicator, bit 1 PC indicator (0).
    """
    indicator = (4 << 2) | (0x02 if ssn is not None else 0)
    encoding_scheme = 1 if len(digits) % 2 else 2  # BCD odd / even
    out = bytes((indicator,))
    if ssn is not None:
        out += bytes((ssn,))
    return out + bytes((tt, (np << 4) | encoding_scheme, nai & 0x7F)) + bcd_digits(digits)


def sccp_udt(called: bytes, calling: bytes, data: bytes, *, protocol_class: int = 0x80) -> bytes:
    """Q.713 §4.10 UDT: type 0x09, protocol class, three pointers, then the variable parts each with a length.

    Each pointer counts octets from the pointer itself to the length octet of its parameter (Q.713 §2.3).
    """
    if len(data) > 255:
        raise ValueError("a UDT carries at most 255 octets of data")
    called_at = 5
    calling_at = called_at + 1 + len(called)
    data_at = calling_at + 1 + len(calling)
    return (
        bytes((0x09, protocol_class, called_at - 2, calling_at - 3, data_at - 4))
        + bytes((len(called),))
        + called
        + bytes((len(calling),))
        + calling
        + bytes((len(data),))
        + data
    )


def _param(tag: int, value: bytes) -> bytes:
    """RFC 4666 §3.2: tag, length (header included, padding excluded), value padded to 4 octets."""
    return struct.pack("!HH", tag, 4 + len(value)) + value + b"\x00" * (-len(value) & 3)


def m3ua_data(
    payload: bytes,
    *,
    opc: int,
    dpc: int,
    si: int = 3,
    ni: int = 2,
    mp: int = 0,
    sls: int = 0,
    routing_context: int | None = 1,
) -> bytes:
    """RFC 4666 §3.3.1 DATA (class 1 Transfer, type 1): Routing Context 0x0006, Protocol Data 0x0210."""
    params = b""
    if routing_context is not None:
        params += _param(0x0006, struct.pack("!I", routing_context))
    params += _param(0x0210, struct.pack("!IIBBBB", opc, dpc, si, ni, mp, sls) + payload)
    # §3.1: version 1, reserved, class, type, length of the whole message
    return struct.pack("!BBBBI", 1, 0, 1, 1, 8 + len(params)) + params


def ussd_begin(
    tcap: bytes = TC_BEGIN_USSD,
    *,
    called_gt: str = "491700000001",
    calling_gt: str = "491700000002",
    called_ssn: int = SSN_GSMSCF,
    calling_ssn: int = SSN_MSC,
    opc: int = 100,
    dpc: int = 200,
    sls: int = 5,
    routing_context: int | None = 1,
) -> bytes:
    """An M3UA DATA message carrying a UDT carrying ``tcap`` (by default the design.md TC-BEGIN)."""
    udt = sccp_udt(gt4_address(called_gt, called_ssn), gt4_address(calling_gt, calling_ssn), tcap)
    return m3ua_data(udt, opc=opc, dpc=dpc, sls=sls, routing_context=routing_context)
