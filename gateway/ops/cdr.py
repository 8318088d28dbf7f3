"""Call detail records: one JSON line per USSD session (JSON Lines), written append-only and flushed per record.

Inputs of routes marked sensitive (PINs, amounts) are masked in the record: the menu path keeps its length and
shape but not the digits.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO


@dataclass(frozen=True, slots=True)
class Cdr:
    session_id: str
    msisdn: str | None
    imsi: str | None
    service_code: str
    route: str | None
    start: float  # Unix seconds
    end: float
    hops: int  # app round trips
    menu_path: tuple[str, ...]  # the user's inputs, in order
    outcome: str  # completed, user-released, aborted, timeout, app-timeout, app-down, busy, unknown-code, ...
    app_latency_ms: tuple[float, ...] = ()
    vlr: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return max(0.0, self.end - self.start)


def mask(value: str) -> str:
    """Digits become '*': the shape stays (for support), the secret does not."""
    return "".join("*" if c.isdigit() else c for c in value)


class CdrWriter:
    """Appends CDRs to a JSON Lines file (created with its folder). One write and flush per record, so a crash
    loses at most the record being written."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = self.path.open("a", encoding="utf-8")

    def write(self, cdr: Cdr, *, sensitive: bool = False) -> None:
        # Built by hand: dataclasses.asdict deep-copies recursively and cost more than the rest of a session.
        record = {
            "session_id": cdr.session_id, "msisdn": cdr.msisdn, "imsi": cdr.imsi, "service_code": cdr.service_code,
            "route": cdr.route, "start": cdr.start, "end": cdr.end, "hops": cdr.hops,
            "menu_path": [mask(x) for x in cdr.menu_path] if sensitive else list(cdr.menu_path),
            "outcome": cdr.outcome, "app_latency_ms": list(cdr.app_latency_ms), "vlr": cdr.vlr,
            "extra": dict(cdr.extra), "duration": round(cdr.duration, 3),
        }  # fmt: skip
        self._file.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> CdrWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
