"""CDRs: one JSON line per session, sensitive inputs masked, appended across writers."""

from __future__ import annotations

import json
from pathlib import Path

from gateway.ops.cdr import Cdr, CdrWriter, mask


def cdr(path: tuple[str, ...]) -> Cdr:
    return Cdr("s1", "491720000001", "262011234567890", "*245#", "bank", 100.0, 112.5, 3, path, "completed",
               (12.0, 8.5, 9.1), "491720000099")


def test_lines_masking_and_append(tmp_path: Path) -> None:
    target = tmp_path / "var" / "cdr.jsonl"
    with CdrWriter(target) as w:
        w.write(cdr(("1", "2")))
        w.write(cdr(("3", "1234", "500")), sensitive=True)
    with CdrWriter(target) as w:  # a restart appends
        w.write(cdr(("9",)))
    records = [json.loads(line) for line in target.read_text().splitlines()]
    assert len(records) == 3
    assert records[0]["menu_path"] == ["1", "2"] and records[0]["duration"] == 12.5
    assert records[1]["menu_path"] == ["*", "****", "***"]
    assert records[0]["app_latency_ms"] == [12.0, 8.5, 9.1] and records[2]["menu_path"] == ["9"]
    assert set(records[0]) >= {"msisdn", "imsi", "service_code", "route", "start", "end", "hops", "outcome"}


def test_mask_keeps_shape() -> None:
    assert mask("*123*4567#") == "*********#"
    assert mask("1.5 EUR") == "*.* EUR"
    assert mask("PIN 1234") == "PIN ****"
