"""Packet capture cost per M3UA message (gateway/ops/pcap.py), the capture being on in production.

References run in the same process: zlib.crc32 (C; another polynomial, the same work) shows what a C
CRC32c extension such as the PyPI package ``crc32c`` would cost; a plain byte-table loop is the textbook
pure-Python CRC; the exported-PDU format is the record without any checksum. The CRC inputs vary from call to
call, as real packets do (TSN, SSN, IP id), so that table look-ups are not all cache hits.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable

from bench.common import Row, time_per_op
from gateway.ops.pcap import _T8, PcapWriter, crc32c, fastest_crc32c

MSC = ("10.20.30.40", 2905)
GW = ("10.20.30.1", 14001)
# the size of a typical USSD M3UA DATA (TC-BEGIN with dialogue portion, UDT with two GT4 addresses)
M3UA_180 = bytes(range(180))
# 180 + 28 octets of SCTP headers, rounded; distinct inputs
SCTP_200 = [bytes((i + j) & 0xFF for j in range(200)) for i in range(256)]


def _crc32c_bytewise(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc = _T8[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def rows() -> list[Row]:
    out: list[Row] = []
    i = [0]

    def rotating(fn: Callable[[bytes], int]) -> Callable[[], int]:
        def call() -> int:
            i[0] = (i[0] + 1) & 0xFF
            return fn(SCTP_200[i[0]])

        return call

    ours = time_per_op(rotating(crc32c))
    out.append(
        Row(
            "CRC32c, 200 octets (pure Python, slicing by 4)",
            ours,
            {
                "zlib.crc32 (C)": time_per_op(rotating(zlib.crc32)),
                "byte-table loop": time_per_op(rotating(_crc32c_bytewise)),
            },
            "<= 20 µs",
            ours <= 20,
        )
    )
    backend = "pure-Python CRC32c" if fastest_crc32c() is crc32c else "google-crc32c"
    with open(os.devnull, "wb") as sink:
        sctp = PcapWriter(sink)
        exported = PcapWriter(sink, fmt="exported_pdu")
        t = [0.0]

        def write_sctp() -> None:
            t[0] += 0.001
            sctp.write_m3ua(M3UA_180, src=MSC, dst=GW, ts=1_700_000_000 + t[0])

        def write_exported() -> None:
            t[0] += 0.001
            exported.write_m3ua(M3UA_180, src=MSC, dst=GW, ts=1_700_000_000 + t[0])

        ours = time_per_op(write_sctp)
        out.append(
            Row(
                f"pcap record, IPv4+SCTP, {backend}, 180-octet M3UA",
                ours,
                {"exported PDU record (no CRC)": time_per_op(write_exported)},
                "<= 25 µs (25% of a core at 10k msg/s)",
                ours <= 25,
            )
        )
    return out


if __name__ == "__main__":
    from bench.__main__ import render

    print(render(rows()))
