"""Issue 4's pull scenarios through osmo-stp: the daemon runs as an ASP of the STP (dynamic registration of a
routing key for its point code), and so does the simulator; osmo-stp routes between them by point code."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import pull_apps, pull_scenarios
from tests.support.osmo_stp import OsmoStp, free_port

pytestmark = pytest.mark.interop


async def test_pull_scenarios_through_osmo_stp(tmp_path: Path) -> None:
    stp = OsmoStp(free_port()).start()
    try:
        cases = pull_scenarios.cases()
        async with pull_apps.serve_apps() as apps:
            result = await pull_scenarios.run(apps, tmp_path, cases, stp_port=stp.port)
    finally:
        stp.stop()
    pull_scenarios.check(result, cases, apps)
    # The gateway's side of the capture shows it as an ASP: registration (RKM) and ASPTM went to the STP.
    from tests.support import tshark

    classes = {v for row in tshark.fields(result.pcap, ["m3ua.message_class"]) for v in row["m3ua.message_class"]}
    assert {"1", "3", "4", "9"} <= classes
