"""M3UA over kernel SCTP, under User-Mode Linux (this machine's kernel has no SCTP): association up, DATA both
ways with PPID 3 and per-SLS streams, heartbeats, peer loss and reconnection; traffic modes across associations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.uml import run_in_uml

pytestmark = pytest.mark.interop

SCENARIO = Path(__file__).with_name("uml_sctp_scenario.py")


def test_m3ua_over_kernel_sctp(tmp_path: Path) -> None:
    status, output = run_in_uml(SCENARIO, tmp_path)
    lines = [line for line in output.splitlines() if line.startswith("{")]
    assert lines, f"no report from the guest: {output[-3000:]}"
    report = json.loads(lines[-1])
    assert all(report.values()), report
    assert status == 0, output[-3000:]


def test_override_traffic_mode_across_sctp_associations(tmp_path: Path) -> None:
    """The SCTP server shares one AS registry across its associations, as the TCP one does: a second ASP
    activating in override mode makes the first inactive (NTFY Alternate ASP Active, RFC 4666 §4.3.4.3)."""
    status, output = run_in_uml(Path(__file__).with_name("uml_sctp_override_scenario.py"), tmp_path)
    lines = [line for line in output.splitlines() if line.startswith("{")]
    assert lines, f"no report from the guest: {output[-3000:]}"
    report = json.loads(lines[-1])
    assert all(report.values()), report
    assert status == 0, output[-3000:]


def test_daemon_over_kernel_sctp(tmp_path: Path) -> None:
    """The daemon as SG over kernel SCTP, dialled by the simulator over SCTP; its pcap is clean in tshark."""
    from tests.support import tshark

    status, output = run_in_uml(Path(__file__).with_name("uml_daemon_sctp_scenario.py"), tmp_path, timeout=120)
    lines = [line for line in output.splitlines() if line.startswith("{")]
    assert lines, f"no report from the guest: {output[-3000:]}"
    report = json.loads(lines[-1])
    assert all(report.values()), (report, output[-3000:])
    assert status == 0, output[-3000:]
    pcap = tmp_path / "uml-out" / "gateway.pcap"
    assert tshark.problems(pcap) == []
    strings = {v for row in tshark.fields(pcap, ["gsm_map.ussd_string"]) for v in row["gsm_map.ussd_string"]}
    assert {"*123#", "Demo menu\n1. Balance\n2. Help", "Your balance is 42.00 EUR"} <= strings
