"""CI honesty (pytest plugin, loaded by tests/conftest.py): when ``CI`` is set, a skipped test fails instead.

Tests skip only when a reference tool (tshark, libosmocore, osmo-stp, User-Mode Linux, atheris) is missing; on a
developer's machine that is a hint, in CI it means a broken install step, which must not pass as green.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest


def ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if report.skipped and ci() and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped in CI (CI={os.environ['CI']!r}): {reason} - a reference tool is missing"
