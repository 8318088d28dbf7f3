"""Wireshark 4.0's dissectors (tshark) as an independent judge of the bytes we produce.

Every call reads the capture with ``-o sctp.checksum:CRC-32C`` (so a wrong SCTP checksum is an error),
``-n`` (no name resolution) and an empty configuration folder (no personal preferences or "Decode As" rules).
tshark is required: when it is missing the calling test fails, unless ``USSD_ALLOW_MISSING_TOOLS=1`` turns
that into a skip.
Each tshark start costs about 0.3 s: put many messages in one capture and ask for all fields at once.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from gateway.ops.pcap import Endpoint, Format, PcapWriter

PROBLEM_FILTER = '_ws.malformed || _ws.expert.severity >= "Error"'
BASE_OPTIONS = ("sctp.checksum:CRC-32C",)
DEFAULT_SRC: Endpoint = ("192.0.2.1", 2905)  # RFC 5737 TEST-NET-1
DEFAULT_DST: Endpoint = ("192.0.2.2", 2905)
DEFAULT_TS = 1_700_000_000.0


class TsharkError(RuntimeError):
    """tshark ran but failed (bad field name, unreadable capture, ...)."""


def tshark_path() -> str:
    """The tshark executable; fails the test (skips it with USSD_ALLOW_MISSING_TOOLS=1) when there is none."""
    path = shutil.which("tshark")
    if path is None:
        reason = "tshark (Wireshark 4.0) is required for the interop tests: apt-get install tshark"
        if os.environ.get("USSD_ALLOW_MISSING_TOOLS") == "1":
            pytest.skip(reason)
        pytest.fail(reason)
    return path


def run_tshark(pcap: Path | str, args: Sequence[str], *, options: Sequence[str] = ()) -> str:
    """Run tshark on ``pcap`` with ``args`` and the base options; return its standard output."""
    cmd = [tshark_path(), "-n", "-r", os.fspath(pcap)]
    for opt in (*BASE_OPTIONS, *options):
        cmd += ["-o", opt]
    cmd += list(args)
    with tempfile.TemporaryDirectory(prefix="ws-config-") as config:
        env = {**os.environ, "WIRESHARK_CONFIG_DIR": config}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=False)
    if proc.returncode != 0:
        raise TsharkError(f"{' '.join(cmd)} exited with {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


def fields(
    pcap: Path | str,
    names: list[str],
    *,
    display_filter: str | None = None,
    options: Sequence[str] = (),
) -> list[dict[str, list[str]]]:
    """One dict per (displayed) packet: each name in ``names`` -> all its occurrences in the packet, in order.

    A field absent from a packet maps to ``[]``. Values are tshark's field texts (as ``-T fields`` prints
    them: byte fields as plain hex, integers in decimal, strings decoded). ``-T json`` keeps values that
    contain separators, CR or LF intact. ``options`` are extra ``-o name:value`` preferences.
    """
    args = ["-T", "json"]
    for name in names:
        args += ["-e", name]
    if display_filter is not None:
        args += ["-Y", display_filter]
    out = run_tshark(pcap, args, options=options)
    packets = json.loads(out) if out.strip() else []
    rows: list[dict[str, list[str]]] = []
    for packet in packets:
        layers: dict[str, list[str]] = packet["_source"]["layers"]
        rows.append({name: list(layers.get(name, [])) for name in names})
    return rows


def _problem_rows(pcap: Path | str, options: Sequence[str]) -> list[dict[str, list[str]]]:
    names = ["frame.number", "_ws.col.Info", "_ws.expert.message"]
    return fields(pcap, names, display_filter=PROBLEM_FILTER, options=options)


def problems(pcap: Path | str, *, options: Sequence[str] = ()) -> list[str]:
    """The packets Wireshark finds malformed or flags with an expert error, as "frame N: info [experts]".

    An empty list means a clean capture.
    """
    out = []
    for row in _problem_rows(pcap, options):
        info = " ".join(row["_ws.col.Info"]).strip()
        experts = "; ".join(row["_ws.expert.message"])
        out.append(f"frame {row['frame.number'][0]}: {info}" + (f" [{experts}]" if experts else ""))
    return out


def problem_frames(pcap: Path | str, *, options: Sequence[str] = ()) -> list[int]:
    """The frame numbers of the packets :func:`problems` lists."""
    return [int(row["frame.number"][0]) for row in _problem_rows(pcap, options)]


def write_pcap(
    tmp_path: Path,
    messages: list[bytes],
    *,
    fmt: Format = "sctp",
    name: str | None = None,
    src: Endpoint = DEFAULT_SRC,
    dst: Endpoint = DEFAULT_DST,
) -> Path:
    """A capture of ``messages`` (whole M3UA messages) sent ``src`` -> ``dst``, one millisecond apart."""
    path = tmp_path / (name or f"messages-{fmt}.pcap")
    with PcapWriter(path, fmt=fmt) as writer:
        for i, message in enumerate(messages):
            writer.write_m3ua(message, src=src, dst=dst, ts=DEFAULT_TS + i / 1000)
    return path
