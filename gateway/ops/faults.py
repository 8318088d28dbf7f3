"""The shell's :class:`gateway.stack.containment.FaultObserver`: counts internal errors and logs them, rate-limited.

Each kind (exception type and innermost frame) is logged once in full (the message in hex, the traceback) when it
first happens; after that at most once per ``interval`` with the number of occurrences since the last line. A
flood of one bad message therefore costs one log line a minute, not one per message. The number of kinds
remembered is bounded; past it, new kinds are still counted but logged only as ``internal_error.kinds_full``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from gateway.ops import logs
from gateway.ops.metrics import StackMetrics
from gateway.stack.containment import InternalError

WHERE = ("m3ua", "sccp", "tcap", "map", "service", "timer", "transport")
MAX_KINDS = 256
MAX_HEX = 1024  # octets of the message shown in a log line


class FaultReporter:
    def __init__(self, metrics: StackMetrics | None, *, interval: float = 60.0, log: Any = None,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.metrics = metrics
        self.interval = interval
        self.log = log if log is not None else logs.get("ussd.containment")
        self.clock = clock
        self._kinds: dict[str, list[float]] = {}  # kind -> [time of the last line, occurrences since]
        self._full_logged = False
        if metrics is not None:
            for where in WHERE:
                metrics.internal_errors.labels(where)

    def internal_error(self, fault: InternalError) -> None:
        if self.metrics is not None:
            self.metrics.internal_errors.labels(fault.where).inc()
        now = self.clock()
        seen = self._kinds.get(fault.kind)
        if seen is None:
            if len(self._kinds) >= MAX_KINDS:
                if not self._full_logged:
                    self._full_logged = True
                    self.log.error("internal_error.kinds_full", kinds=MAX_KINDS)
                return
            self._kinds[fault.kind] = [now, 0]
            self.log.error("internal_error", where=fault.where, kind=fault.kind, error=str(fault.error)[:200],
                           octets=fault.octets[:MAX_HEX].hex(), length=len(fault.octets),
                           exc_info=fault.error)  # fmt: skip
            return
        seen[1] += 1
        if now - seen[0] >= self.interval:
            self.log.error("internal_error.repeated", where=fault.where, kind=fault.kind, occurrences=int(seen[1]),
                           seconds=round(now - seen[0], 1), octets=fault.octets[:MAX_HEX].hex())  # fmt: skip
            seen[0], seen[1] = now, 0


_LOG_ONLY: list[FaultReporter] = []


def log_only() -> FaultReporter:
    """The process's reporter for shells built without metrics (simulator, tools): logs, counts nothing."""
    if not _LOG_ONLY:
        _LOG_ONLY.append(FaultReporter(None))
    return _LOG_ONLY[0]
