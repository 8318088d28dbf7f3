"""Shared benchmark helpers: time callables in the same process and report ratios against references.

Every benchmark module under bench/ exposes ``rows() -> list[Row]``; ``python -m bench`` prints them as one table.
A ratio is ours / reference: below 1.0 means we are faster. CI never fails on these numbers.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Row:
    case: str  # what is measured, e.g. "GSM 7-bit USSD encode, 182 chars"
    ours_us: float  # microseconds per operation (ours)
    refs: dict[str, float]  # reference name -> microseconds per operation
    target: str = ""  # the target in words, e.g. "ratio <= 1.0 vs libosmocore" or "<= 10 us"
    met: bool | None = None  # whether the target is met (None when there is none)


def _loops(fn: Callable[[], object], min_time: float) -> int:
    """How many calls of ``fn`` last about ``min_time`` seconds."""
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        dt = time.perf_counter() - t0
        if dt >= min_time / 4:
            return max(1, int(n * (min_time / max(dt, 1e-9))))
        n *= 4


def time_per_op(fn: Callable[[], object], *, min_time: float = 0.01, repeat: int = 80) -> float:
    """Best-of-``repeat`` microseconds per call of ``fn``, each run lasting at least ``min_time`` seconds."""
    n = _loops(fn, min_time)
    best = float("inf")
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeat):
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            best = min(best, (time.perf_counter() - t0) / n)
    finally:
        if gc_was:
            gc.enable()
    return best * 1e6


def time_interleaved(fns: dict[str, Callable[[], object]], *, min_time: float = 0.01,
                     repeat: int = 80) -> dict[str, float]:
    """Best microseconds per call of each function, the runs of all functions interleaved round-robin so that
    a slow spell of the machine hits ours and the references alike (ratios then hold even when times drift)."""
    loops = {name: _loops(fn, min_time) for name, fn in fns.items()}
    best = dict.fromkeys(fns, float("inf"))
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeat):
            for name, fn in fns.items():
                n = loops[name]
                gc.collect()  # outside the timing: a reference's garbage must not slow the next function down
                t0 = time.perf_counter()
                for _ in range(n):
                    fn()
                best[name] = min(best[name], (time.perf_counter() - t0) / n)
    finally:
        if gc_was:
            gc.enable()
    return {name: value * 1e6 for name, value in best.items()}
