"""Issue 4's pull scenarios against the daemon, with the simulator as the MSC/VLR connected directly (the gateway
is the SG). See tests/support/pull_scenarios.py for the cases and what each one checks."""

from __future__ import annotations

from pathlib import Path

from tests.support import pull_apps, pull_scenarios


async def test_pull_scenarios_direct(tmp_path: Path) -> None:
    cases = pull_scenarios.cases()
    async with pull_apps.serve_apps() as apps:
        result = await pull_scenarios.run(apps, tmp_path, cases)
    pull_scenarios.check(result, cases, apps)
