"""gateway.ops.pcap without tshark: CRC32c against RFC 3720 and a bit-serial reference, and the file layout
parsed back field by field as libpcap, RFC 791/8200 and RFC 4960 define it.
tests/interop/test_tshark_harness.py has Wireshark read the same files.
"""

from __future__ import annotations

import io
import ipaddress
import struct
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.ops import pcap
from gateway.ops.pcap import PcapWriter, crc32c

# RFC 3720 Appendix B.4 (CRC32c examples), plus the CRC catalogue check value of "123456789".
ISCSI_READ_PDU = bytes.fromhex(
    "01c00000000000000000000000000000"  # RFC 3720 B.4 "iSCSI - Read (10) Command PDU", 16 octets a line
    + "14000000000004000000001400000018"
    + "28000000000000000200000000000000"
)
RFC3720_VECTORS = [
    (bytes(32), 0x8A9136AA),
    (b"\xff" * 32, 0x62A8AB43),
    (bytes(range(32)), 0x46DD794E),
    (bytes(range(31, -1, -1)), 0x113FDB5C),
    (ISCSI_READ_PDU, 0xD9963A56),
    (b"123456789", 0xE3069283),
    (b"", 0),
]


def crc32c_bitwise(data: bytes) -> int:
    """RFC 3309 §2 / RFC 4960 App. B written the slow way: reflected Castagnoli polynomial, bit by bit."""
    crc = 0xFFFFFFFF
    for octet in data:
        crc ^= octet
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


@pytest.mark.parametrize(("data", "expected"), RFC3720_VECTORS)
def test_crc32c_rfc3720_vectors(data: bytes, expected: int) -> None:
    assert crc32c(data) == expected
    assert crc32c(bytearray(data)) == expected
    assert crc32c(memoryview(data)) == expected


def test_crc32c_rfc3720_octet_order() -> None:
    # RFC 3720 B.4 lists the 32 zero octets' CRC as the octets "aa 36 91 8a": least significant first, as SCTP
    # sends it (RFC 4960 App. B).
    packet = pcap.sctp_data_packet(b"", src_port=0, dst_port=0, vtag=0, tsn=0, stream=0, ssn=0, ppid=0)
    assert packet[8:12] == crc32c(packet[:8] + bytes(4) + packet[12:]).to_bytes(4, "little")
    assert crc32c(bytes(32)).to_bytes(4, "little") == bytes.fromhex("aa36918a")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.integers(0, 7))
def test_crc32c_matches_bitwise_reference_at_any_offset(data: bytes, offset: int) -> None:
    # a memoryview slice at an odd offset exercises the word loop on unaligned data and the byte tail
    buf = bytes(offset) + data
    assert crc32c(memoryview(buf)[offset:]) == crc32c_bitwise(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=100), st.binary(max_size=100))
def test_crc32c_continues(a: bytes, b: bytes) -> None:
    assert crc32c(b, crc32c(a)) == crc32c(a + b)


# ------------------------------------------------------------------- an independent parser of what we wrote


@dataclass(frozen=True, slots=True)
class Record:
    sec: int
    usec: int
    frame: bytes


def read_pcap(raw: bytes) -> tuple[int, int, list[Record]]:
    """libpcap file: 24-octet global header, then (ts_sec, ts_usec, incl_len, orig_len) + frame per record."""
    magic, major, minor, zone, sigfigs, snaplen, linktype = struct.unpack_from("<IHHiIII", raw, 0)
    assert (magic, major, minor, zone, sigfigs) == (0xA1B2C3D4, 2, 4, 0, 0)
    records = []
    pos = 24
    while pos < len(raw):
        sec, usec, incl, orig = struct.unpack_from("<IIII", raw, pos)
        assert incl == orig <= snaplen
        assert usec < 1_000_000
        records.append(Record(sec, usec, raw[pos + 16 : pos + 16 + incl]))
        pos += 16 + incl
    assert pos == len(raw)
    return linktype, snaplen, records


@dataclass(frozen=True, slots=True)
class SctpData:
    src: str
    dst: str
    sport: int
    dport: int
    vtag: int
    tsn: int
    stream: int
    ssn: int
    ppid: int
    payload: bytes


def parse_ip_sctp(frame: bytes) -> SctpData:
    version = frame[0] >> 4
    if version == 4:
        ihl = (frame[0] & 0x0F) * 4
        assert ihl == 20
        total, flags, ttl, proto = struct.unpack_from("!2xH2xHBB", frame, 0)
        assert total == len(frame)
        assert flags == 0x4000  # DF, no fragment
        assert ttl > 0
        assert proto == 132
        # RFC 1071: the ones' complement sum over a header with a valid checksum is 0xFFFF
        s = sum(struct.unpack("!10H", frame[:20]))
        while s > 0xFFFF:
            s = (s & 0xFFFF) + (s >> 16)
        assert s == 0xFFFF
        src, dst = str(ipaddress.IPv4Address(frame[12:16])), str(ipaddress.IPv4Address(frame[16:20]))
        sctp = frame[20:]
    else:
        assert version == 6
        plen, nxt, hlim = struct.unpack_from("!HBB", frame, 4)
        assert plen == len(frame) - 40
        assert nxt == 132
        assert hlim > 0
        src, dst = str(ipaddress.IPv6Address(frame[8:24])), str(ipaddress.IPv6Address(frame[24:40]))
        sctp = frame[40:]
    sport, dport, vtag = struct.unpack_from("!HHI", sctp, 0)
    assert sctp[8:12] == crc32c_bitwise(sctp[:8] + bytes(4) + sctp[12:]).to_bytes(4, "little")
    ctype, cflags, clen, tsn, stream, ssn, ppid = struct.unpack_from("!BBHIHHI", sctp, 12)
    assert (ctype, cflags) == (0, 0x03)
    assert len(sctp) == 12 + clen + (-clen & 3)  # one chunk, padded to 4 octets
    assert sctp[12 + clen :] == bytes(-clen & 3)
    return SctpData(src, dst, sport, dport, vtag, tsn, stream, ssn, ppid, sctp[28 : 12 + clen])


def parse_exported_pdu(frame: bytes) -> tuple[dict[int, bytes], bytes]:
    tags: dict[int, bytes] = {}
    pos = 0
    while True:
        tag, length = struct.unpack_from("!HH", frame, pos)
        pos += 4
        if tag == 0:
            assert length == 0
            return tags, frame[pos:]
        tags[tag] = frame[pos : pos + length]
        pos += length


A = ("10.1.2.3", 2905)
B = ("10.9.8.7", 14001)
C6 = ("2001:db8::10", 2905)
D6 = ("2001:db8::20", 2906)


def test_sctp_capture_layout_and_counters() -> None:
    buf = io.BytesIO()
    with PcapWriter(buf) as w:
        w.write_m3ua(b"\x01\x00\x01\x01\x00\x00\x00\x08", src=A, dst=B, ts=1700000000.123456)
        w.write_m3ua(b"abcde", src=A, dst=B, ts=1700000000.5, stream=2)
        w.write_m3ua(b"xyz", src=B, dst=A, ts=1700000001.0)
        w.write_m3ua(b"0123", src=A, dst=B, ts=1700000002.0)
        w.write_m3ua(b"v6", src=C6, dst=D6, ts=1700000003.0, stream=0)
    assert not buf.closed  # a caller's file object stays open
    linktype, _, records = read_pcap(buf.getvalue())
    assert linktype == 101
    assert [(r.sec, r.usec) for r in records] == [
        (1700000000, 123456),
        (1700000000, 500000),
        (1700000001, 0),
        (1700000002, 0),
        (1700000003, 0),
    ]
    p = [parse_ip_sctp(r.frame) for r in records]
    assert [x.payload for x in p] == [b"\x01\x00\x01\x01\x00\x00\x00\x08", b"abcde", b"xyz", b"0123", b"v6"]
    assert {x.ppid for x in p} == {3}
    assert (p[0].src, p[0].sport, p[0].dst, p[0].dport) == ("10.1.2.3", 2905, "10.9.8.7", 14001)
    assert (p[2].src, p[2].sport, p[2].dst, p[2].dport) == ("10.9.8.7", 14001, "10.1.2.3", 2905)
    assert (p[4].src, p[4].dst) == ("2001:db8::10", "2001:db8::20")
    # one association per peer pair: each direction carries the other end's tag, constant and nonzero
    assert p[0].vtag == p[1].vtag == p[3].vtag != p[2].vtag
    assert all(x.vtag for x in p)
    # TSN per direction, SSN per direction and stream
    assert [p[0].tsn, p[1].tsn, p[3].tsn] == [p[0].tsn, p[0].tsn + 1, p[0].tsn + 2]
    assert [(x.stream, x.ssn) for x in (p[0], p[1], p[3])] == [(1, 0), (2, 0), (1, 1)]
    assert (p[2].stream, p[2].ssn) == (1, 0)


def test_exported_pdu_layout(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    with PcapWriter(path, fmt="exported_pdu") as w:
        w.write_m3ua(b"M3UA-bytes", src=A, dst=B, ts=5.25)
        w.write_m3ua(b"6", src=C6, dst=D6, ts=6.0)
    linktype, _, records = read_pcap(path.read_bytes())
    assert linktype == 252
    tags, payload = parse_exported_pdu(records[0].frame)
    assert payload == b"M3UA-bytes"
    assert tags[12].rstrip(b"\x00") == b"m3ua"
    assert len(tags[12]) % 4 == 0
    assert tags[20] == bytes([10, 1, 2, 3])
    assert tags[21] == bytes([10, 9, 8, 7])
    assert tags[24] == (1).to_bytes(4, "big")  # EXP_PDU_PT_SCTP
    assert (tags[25], tags[26]) == ((2905).to_bytes(4, "big"), (14001).to_bytes(4, "big"))
    tags6, payload6 = parse_exported_pdu(records[1].frame)
    assert payload6 == b"6"
    assert tags6[22] == ipaddress.IPv6Address("2001:db8::10").packed
    assert tags6[23] == ipaddress.IPv6Address("2001:db8::20").packed
    assert (records[0].sec, records[0].usec) == (5, 250000)


def test_path_target_is_closed(tmp_path: Path) -> None:
    w = PcapWriter(tmp_path / "a.pcap")
    w.write_m3ua(b"x", src=A, dst=B, ts=1.0)
    w.close()
    w.close()  # idempotent
    assert w.closed
    with pytest.raises(ValueError, match="closed"):
        w.write_m3ua(b"x", src=A, dst=B, ts=1.0)
    assert len(read_pcap((tmp_path / "a.pcap").read_bytes())[2]) == 1


def test_timestamp_rounding_carries_into_seconds() -> None:
    buf = io.BytesIO()
    with PcapWriter(buf, fmt="exported_pdu") as w:
        w.write_m3ua(b"x", src=A, dst=B, ts=1.9999999)
        w.write_m3ua(b"x", src=A, dst=B, ts=0.0)
    assert [(r.sec, r.usec) for r in read_pcap(buf.getvalue())[2]] == [(2, 0), (0, 0)]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"src": A, "dst": D6}, "mix"),
        ({"src": ("10.0.0.1", 70000)}, "port"),
        ({"dst": ("10.0.0.1", -1)}, "port"),
        ({"src": ("not-an-address", 1)}, "does not appear to be an IPv4 or IPv6 address"),
        ({"ts": -1.0}, "timestamp"),
        ({"ts": 2.0**32}, "timestamp"),
        ({"stream": 65536}, "stream"),
        ({"data": bytes(65536)}, "octets"),
    ],
)
def test_bad_arguments_raise_value_error_and_write_nothing(kwargs: dict[str, object], match: str) -> None:
    formats: tuple[pcap.Format, ...] = ("sctp",) if "stream" in kwargs else ("sctp", "exported_pdu")
    for fmt in formats:
        buf = io.BytesIO()
        # the exported PDU has no length field to overflow: the snapshot length limits it
        w = PcapWriter(buf, fmt=fmt, snaplen=1000 if fmt == "exported_pdu" else pcap.DEFAULT_SNAPLEN)
        args: dict[str, object] = {"data": b"m3ua", "src": A, "dst": B, "ts": 1.0, **kwargs}
        before = len(buf.getvalue())
        with pytest.raises(ValueError, match=match):
            w.write_m3ua(**args)  # type: ignore[arg-type]
        assert len(buf.getvalue()) == before


def test_failed_write_does_not_advance_counters() -> None:
    buf = io.BytesIO()
    with PcapWriter(buf) as w:
        w.write_m3ua(b"a", src=A, dst=B, ts=1.0)
        with pytest.raises(ValueError):
            w.write_m3ua(b"b", src=A, dst=B, ts=-5.0)
        with pytest.raises(ValueError):
            w.write_m3ua(b"b", src=A, dst=B, ts=1.0, stream=-1)
        w.write_m3ua(b"c", src=A, dst=B, ts=2.0)
    first, second = (parse_ip_sctp(r.frame) for r in read_pcap(buf.getvalue())[2])
    assert second.tsn == first.tsn + 1
    assert second.ssn == first.ssn + 1


def test_unknown_format() -> None:
    with pytest.raises(ValueError, match="format"):
        PcapWriter(io.BytesIO(), fmt="pcapng")  # type: ignore[arg-type]


def test_serial_numbers_wrap() -> None:
    w = PcapWriter(io.BytesIO())
    w.frame(b"x", src=A, dst=B)
    flow = w._flows[(A, B)]
    flow.tsn = 0xFFFFFFFF
    flow.ssn[1] = 0xFFFF
    frames = [parse_ip_sctp(w.frame(b"x", src=A, dst=B)) for _ in range(2)]
    assert [(f.tsn, f.ssn) for f in frames] == [(0xFFFFFFFF, 0xFFFF), (0, 0)]


endpoints4 = st.tuples(st.ip_addresses(v=4).map(str), st.integers(0, 0xFFFF))
endpoints6 = st.tuples(st.ip_addresses(v=6).map(str), st.integers(0, 0xFFFF))


@settings(max_examples=150, deadline=None)
@given(
    st.one_of(st.tuples(endpoints4, endpoints4), st.tuples(endpoints6, endpoints6)),
    st.lists(
        st.tuples(st.binary(max_size=600), st.integers(0, 0xFFFF), st.floats(0, 4e9)),
        min_size=1,
        max_size=8,
    ),
)
def test_any_message_round_trips(
    ends: tuple[tuple[str, int], tuple[str, int]], messages: list[tuple[bytes, int, float]]
) -> None:
    src, dst = ends
    buf_sctp, buf_exp = io.BytesIO(), io.BytesIO()
    with PcapWriter(buf_sctp) as ws, PcapWriter(buf_exp, fmt="exported_pdu") as we:
        for data, stream, ts in messages:
            ws.write_m3ua(data, src=src, dst=dst, ts=ts, stream=stream)
            we.write_m3ua(data, src=src, dst=dst, ts=ts)
    sctp_records = read_pcap(buf_sctp.getvalue())[2]
    exp_records = read_pcap(buf_exp.getvalue())[2]
    parsed = [parse_ip_sctp(r.frame) for r in sctp_records]
    assert [p.payload for p in parsed] == [m[0] for m in messages]
    assert [parse_exported_pdu(r.frame)[1] for r in exp_records] == [m[0] for m in messages]
    for rec, (_, _, ts) in zip(sctp_records, messages, strict=True):
        assert abs(rec.sec + rec.usec / 1e6 - ts) <= 5e-7 + ts * 1e-15
    for p in parsed:
        assert ipaddress.ip_address(p.src) == ipaddress.ip_address(src[0])
        assert (p.sport, p.dport) == (src[1], dst[1])
    assert [p.tsn for p in parsed] == [(parsed[0].tsn + i) & 0xFFFFFFFF for i in range(len(parsed))]


def _fake_google_crc32c(implementation: str, value: pcap.Crc32cFunction) -> types.ModuleType:
    module = types.ModuleType("google_crc32c")
    module.implementation = implementation  # type: ignore[attr-defined]
    module.value = value  # type: ignore[attr-defined]
    return module


def test_fastest_crc32c_prefers_the_c_package_only_when_it_is_right(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bytes] = []

    def c_like(data: bytes) -> int:
        calls.append(data)
        return crc32c_bitwise(data)

    monkeypatch.setitem(sys.modules, "google_crc32c", None)  # import fails
    assert pcap.fastest_crc32c() is crc32c
    monkeypatch.setitem(sys.modules, "google_crc32c", _fake_google_crc32c("python", c_like))
    assert pcap.fastest_crc32c() is crc32c
    monkeypatch.setitem(sys.modules, "google_crc32c", _fake_google_crc32c("c", lambda data: 0))
    assert pcap.fastest_crc32c() is crc32c  # fails the check value
    monkeypatch.setitem(sys.modules, "google_crc32c", _fake_google_crc32c("c", c_like))
    assert pcap.fastest_crc32c() is c_like
    buf = io.BytesIO()
    with PcapWriter(buf) as w:
        w.write_m3ua(b"payload", src=A, dst=B, ts=1.0)
    assert calls[-1].endswith(b"payload\x00")  # the writer used it, over the padded SCTP packet
    parse_ip_sctp(read_pcap(buf.getvalue())[2][0].frame)  # and the checksum is right
