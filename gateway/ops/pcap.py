"""Capture of the gateway's M3UA traffic to a classic libpcap file that Wireshark reads.

Each M3UA message (whole, header included) becomes one packet, in one of two forms:

* ``"sctp"``: a synthetic IPv4 or IPv6 packet (LINKTYPE_RAW) carrying an SCTP packet with one DATA chunk,
  PPID 3 and a correct CRC32c, between the addresses and ports the caller names (the real peers, even when the
  real transport is TCP). Wireshark checks it with ``-o sctp.checksum:CRC-32C``.
* ``"exported_pdu"``: Wireshark's upper-PDU export (LINKTYPE_WIRESHARK_UPPER_PDU) naming the ``m3ua``
  dissector, with the addresses and ports as tags; no checksum to compute.

The frame builders are pure functions; :class:`PcapWriter` adds only the file and the per-association
counters (verification tags, TSNs, stream sequence numbers) that make the capture look like one SCTP
association per peer pair.
"""

from __future__ import annotations

import importlib
import ipaddress
import os
import struct
import sys
import zlib
from collections.abc import Callable
from typing import BinaryIO, Literal

PCAP_MAGIC = 0xA1B2C3D4  # microsecond timestamps
LINKTYPE_RAW = 101  # raw IPv4/IPv6, version from the first nibble
LINKTYPE_WIRESHARK_UPPER_PDU = 252
SCTP_PPID_M3UA = 3  # RFC 4666: SCTP payload protocol identifier registered with IANA for M3UA
IPPROTO_SCTP = 132
DEFAULT_SNAPLEN = 65535

Format = Literal["sctp", "exported_pdu"]
Endpoint = tuple[str, int]
Crc32cFunction = Callable[[bytes], int]

# Wireshark epan/exported_pdu.h
_EXP_PDU_TAG_END_OF_OPT = 0
_EXP_PDU_TAG_PROTO_NAME = 12
_EXP_PDU_TAG_IPV4_SRC = 20
_EXP_PDU_TAG_IPV4_DST = 21
_EXP_PDU_TAG_IPV6_SRC = 22
_EXP_PDU_TAG_IPV6_DST = 23
_EXP_PDU_TAG_PORT_TYPE = 24
_EXP_PDU_TAG_SRC_PORT = 25
_EXP_PDU_TAG_DST_PORT = 26
_EXP_PDU_PT_SCTP = 1

_SCTP_DATA_FLAGS_BE = 0x03  # RFC 4960 §3.3.1: B and E bits, ordered, unfragmented
_MAX_IP_PAYLOAD = 0xFFFF


_CRC32C_POLY = 0x82F63B78  # RFC 3309 §2 / RFC 4960 Appendix B: Castagnoli, bit-reflected


def _slicing_tables() -> tuple[tuple[int, ...], ...]:
    """Tables for four octets at a time ("slicing by 4"): ``t[k][v]`` is the register after feeding octet
    ``v`` followed by ``k`` zero octets into a zero register. Four 256-entry tables stay in the CPU cache;
    16-bit tables measured slower on varying data because of cache misses.
    """
    t0 = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (_CRC32C_POLY if c & 1 else 0)
        t0.append(c)
    tables = [tuple(t0)]
    for _ in range(3):
        prev = tables[-1]
        tables.append(tuple(t0[c & 0xFF] ^ (c >> 8) for c in prev))
    return tuple(tables)


_T8, _T8_1, _T8_2, _T8_3 = _slicing_tables()
_NATIVE_LE_WORDS = sys.byteorder == "little" and struct.calcsize("I") == 4


def crc32c(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
    """CRC32c (Castagnoli) of ``data`` as in RFC 3720 §B.4; pass a previous result as ``crc`` to continue.

    ``crc32c(a + b) == crc32c(b, crc32c(a))``. Pure Python, about 70 ns per octet; a C extension (PyPI
    ``crc32c``) would be some 50 times faster.
    """
    view = memoryview(data).cast("B")
    crc ^= 0xFFFFFFFF
    t0, t1, t2, t3 = _T8, _T8_1, _T8_2, _T8_3
    n = len(view)
    words = n & ~3 if _NATIVE_LE_WORDS else 0
    for w in view[:words].cast("I"):  # native little-endian: the first octet is the low one
        x = crc ^ w
        crc = t3[x & 0xFF] ^ t2[(x >> 8) & 0xFF] ^ t1[(x >> 16) & 0xFF] ^ t0[x >> 24]
    for b in view[words:]:
        crc = t0[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def fastest_crc32c() -> Crc32cFunction:
    """The C CRC32c of the PyPI package ``google-crc32c`` (Apache-2.0) when it is installed with its C
    extension, about 50 times faster than :func:`crc32c`; otherwise :func:`crc32c`."""
    try:
        module = importlib.import_module("google_crc32c")
    except ImportError:
        return crc32c
    if getattr(module, "implementation", None) != "c":
        return crc32c
    value: Crc32cFunction = module.value  # value(data: bytes) -> int, same convention as crc32c(data)
    if value(b"123456789") != 0xE3069283:  # the CRC-32C check value (RFC 3720 §B.4 algorithm)
        return crc32c
    return value


def pcap_file_header(linktype: int, snaplen: int = DEFAULT_SNAPLEN) -> bytes:
    """The 24-octet libpcap global header (version 2.4, UTC, microsecond resolution), little-endian."""
    return struct.pack("<IHHiIII", PCAP_MAGIC, 2, 4, 0, 0, snaplen, linktype)


def _timestamp(ts: float) -> tuple[int, int]:
    usec = round(ts * 1_000_000) if ts >= 0 else -1
    sec, usec = divmod(usec, 1_000_000)
    if not 0 <= sec < 2**32:
        raise ValueError(f"timestamp {ts!r} is outside the pcap range (0 .. 2**32 s)")
    return sec, usec


def pcap_record(ts: float, frame: bytes, snaplen: int = DEFAULT_SNAPLEN) -> bytes:
    """One libpcap record: header (seconds, microseconds, captured and original length) and the frame."""
    sec, usec = _timestamp(ts)
    n = len(frame)
    if n > snaplen:
        raise ValueError(f"frame of {n} octets exceeds the snapshot length {snaplen}")
    return struct.pack("<IIII", sec, usec, n, n) + frame


def _check_port(port: int) -> None:
    if not 0 <= port <= 0xFFFF:
        raise ValueError(f"port {port!r} is not a 16-bit value")


def sctp_data_packet(
    payload: bytes,
    *,
    src_port: int,
    dst_port: int,
    vtag: int,
    tsn: int,
    stream: int,
    ssn: int,
    ppid: int = SCTP_PPID_M3UA,
    crc: Crc32cFunction = crc32c,
) -> bytes:
    """An SCTP packet (RFC 4960 §3.1 common header), one DATA chunk (§3.3.1) and its CRC32c (Appendix B)."""
    _check_port(src_port)
    _check_port(dst_port)
    if not 0 <= stream <= 0xFFFF or not 0 <= ssn <= 0xFFFF:
        raise ValueError(f"stream {stream!r} / SSN {ssn!r} are not 16-bit values")
    length = 16 + len(payload)
    if length > 0xFFFF:
        raise ValueError(f"payload of {len(payload)} octets does not fit one DATA chunk")
    pad = b"\x00" * (-length & 3)  # §3.2: chunks padded to 4 octets, padding not counted in the length
    packet = bytearray(
        struct.pack(
            "!HHIIBBHIHHI",
            src_port,
            dst_port,
            vtag,
            0,
            0,  # chunk type DATA
            _SCTP_DATA_FLAGS_BE,
            length,
            tsn,
            stream,
            ssn,
            ppid,
        )
    )
    packet += payload
    packet += pad
    # Appendix B: the CRC is computed with the checksum field zero and sent least significant octet first.
    packet[8:12] = crc(bytes(packet)).to_bytes(4, "little")
    return bytes(packet)


def _ipv4_header_checksum(header: bytes) -> int:
    """RFC 791 §3.1: ones' complement of the ones' complement sum of the header's 16-bit words."""
    total: int = sum(struct.unpack("!10H", header))
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ip_packet(
    src: ipaddress.IPv4Address | ipaddress.IPv6Address,
    dst: ipaddress.IPv4Address | ipaddress.IPv6Address,
    payload: bytes,
    *,
    protocol: int = IPPROTO_SCTP,
    ident: int = 0,
) -> bytes:
    """An IPv4 (RFC 791, DF set, TTL 64) or IPv6 (RFC 8200, hop limit 64) packet around ``payload``."""
    if src.version != dst.version:
        raise ValueError(f"cannot mix IPv{src.version} source {src} with IPv{dst.version} destination {dst}")
    if src.version == 4:
        total = 20 + len(payload)
        if total > _MAX_IP_PAYLOAD:
            raise ValueError(f"IPv4 packet of {total} octets is too long")
        header = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, total, ident & 0xFFFF, 0x4000, 64, protocol, 0, src.packed, dst.packed
        )
        checksum = _ipv4_header_checksum(header)
        return header[:10] + checksum.to_bytes(2, "big") + header[12:] + payload
    if len(payload) > _MAX_IP_PAYLOAD:
        raise ValueError(f"IPv6 payload of {len(payload)} octets is too long")
    return struct.pack("!IHBB16s16s", 6 << 28, len(payload), protocol, 64, src.packed, dst.packed) + payload


def _exp_tag(tag: int, value: bytes) -> bytes:
    return struct.pack("!HH", tag, len(value)) + value


def exported_pdu_tags(src: Endpoint, dst: Endpoint, proto: str = "m3ua") -> bytes:
    """The tags of a LINKTYPE_WIRESHARK_UPPER_PDU frame: the dissector to call and the SCTP endpoints.

    Tags are (type, length) big-endian pairs ending with END_OF_OPT; the protocol name is padded with NULs to
    4 octets. The PDU follows the tags.
    """
    src_ip = ipaddress.ip_address(src[0])
    dst_ip = ipaddress.ip_address(dst[0])
    if src_ip.version != dst_ip.version:
        raise ValueError(f"cannot mix IPv{src_ip.version} and IPv{dst_ip.version} addresses")
    _check_port(src[1])
    _check_port(dst[1])
    name = proto.encode("ascii")
    name += b"\x00" * (-len(name) & 3)
    v4 = src_ip.version == 4
    return b"".join(
        (
            _exp_tag(_EXP_PDU_TAG_PROTO_NAME, name),
            _exp_tag(_EXP_PDU_TAG_IPV4_SRC if v4 else _EXP_PDU_TAG_IPV6_SRC, src_ip.packed),
            _exp_tag(_EXP_PDU_TAG_IPV4_DST if v4 else _EXP_PDU_TAG_IPV6_DST, dst_ip.packed),
            _exp_tag(_EXP_PDU_TAG_PORT_TYPE, _EXP_PDU_PT_SCTP.to_bytes(4, "big")),
            _exp_tag(_EXP_PDU_TAG_SRC_PORT, src[1].to_bytes(4, "big")),
            _exp_tag(_EXP_PDU_TAG_DST_PORT, dst[1].to_bytes(4, "big")),
            _exp_tag(_EXP_PDU_TAG_END_OF_OPT, b""),
        )
    )


def verification_tag(receiver: Endpoint, sender: Endpoint) -> int:
    """A stable, nonzero synthetic verification tag for the packets sent to ``receiver`` (RFC 4960 §8.5)."""
    key = f"{receiver[0]}|{receiver[1]}|{sender[0]}|{sender[1]}".encode()
    return zlib.crc32(key) or 1


class _Flow:
    """Counters of one direction of one synthetic association."""

    __slots__ = ("dst_ip", "dst_port", "src_ip", "src_port", "ssn", "tsn", "vtag")

    def __init__(self, src: Endpoint, dst: Endpoint) -> None:
        self.src_ip = ipaddress.ip_address(src[0])
        self.dst_ip = ipaddress.ip_address(dst[0])
        if self.src_ip.version != self.dst_ip.version:
            raise ValueError(f"cannot mix addresses {src[0]} and {dst[0]}")
        _check_port(src[1])
        _check_port(dst[1])
        self.src_port = src[1]
        self.dst_port = dst[1]
        self.vtag = verification_tag(dst, src)
        self.tsn = 1  # RFC 4960 §5.1 initial TSN; any value is valid
        self.ssn: dict[int, int] = {}


class PcapWriter:
    """Writes M3UA messages to a libpcap file; usable as a context manager.

    ``target`` is a path (opened, truncated and closed by the writer) or a binary file object (left open on
    :meth:`close`, only flushed). ``crc`` computes the SCTP checksum (default :func:`fastest_crc32c`).
    Endpoints are ``(IP address, port)``; one synthetic association is kept per
    endpoint pair, so the peers should be the configured ones, not arbitrary values.
    """

    def __init__(
        self,
        target: str | os.PathLike[str] | BinaryIO,
        *,
        fmt: Format = "sctp",
        snaplen: int = DEFAULT_SNAPLEN,
        crc: Crc32cFunction | None = None,
    ) -> None:
        if fmt not in ("sctp", "exported_pdu"):
            raise ValueError(f"unknown capture format {fmt!r}")
        self.fmt: Format = fmt
        self._snaplen = snaplen
        self._crc = crc or fastest_crc32c()
        self._flows: dict[tuple[Endpoint, Endpoint], _Flow] = {}
        self._exp_tags: dict[tuple[Endpoint, Endpoint], bytes] = {}
        self._ip_ident = 0
        self._closed = False
        if isinstance(target, str | os.PathLike):
            self._file: BinaryIO = open(target, "wb")  # noqa: SIM115 - owned until close()
            self._owned = True
        else:
            self._file = target
            self._owned = False
        linktype = LINKTYPE_RAW if fmt == "sctp" else LINKTYPE_WIRESHARK_UPPER_PDU
        self._file.write(pcap_file_header(linktype, snaplen))

    @property
    def closed(self) -> bool:
        return self._closed

    def frame(self, data: bytes, *, src: Endpoint, dst: Endpoint, stream: int = 1) -> bytes:
        """The link-layer frame :meth:`write_m3ua` would record next (advances the SCTP counters)."""
        key = (src, dst)
        if self.fmt == "exported_pdu":
            tags = self._exp_tags.get(key)
            if tags is None:
                tags = self._exp_tags[key] = exported_pdu_tags(src, dst)
            return tags + data
        flow = self._flows.get(key)
        if flow is None:
            flow = self._flows[key] = _Flow(src, dst)
        ssn = flow.ssn.get(stream, 0)
        packet = sctp_data_packet(
            data,
            src_port=flow.src_port,
            dst_port=flow.dst_port,
            vtag=flow.vtag,
            tsn=flow.tsn,
            stream=stream,
            ssn=ssn,
            crc=self._crc,
        )
        ident = (self._ip_ident + 1) & 0xFFFF
        frame = ip_packet(flow.src_ip, flow.dst_ip, packet, ident=ident)
        # RFC 4960 §3.3.1: TSN and SSN are serial numbers that wrap
        flow.tsn = (flow.tsn + 1) & 0xFFFFFFFF
        flow.ssn[stream] = (ssn + 1) & 0xFFFF
        self._ip_ident = ident
        return frame

    def write_m3ua(self, data: bytes, *, src: Endpoint, dst: Endpoint, ts: float, stream: int = 1) -> None:
        """Record one whole M3UA message sent from ``src`` to ``dst`` at ``ts`` (seconds since the epoch)."""
        if self._closed:
            raise ValueError("write to a closed PcapWriter")
        sec, usec = _timestamp(ts)
        frame = self.frame(data, src=src, dst=dst, stream=stream)
        n = len(frame)
        if n > self._snaplen:
            raise ValueError(f"frame of {n} octets exceeds the snapshot length {self._snaplen}")
        self._file.write(struct.pack("<IIII", sec, usec, n, n) + frame)

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._owned:
            self._file.close()
        else:
            self._file.flush()

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
