"""Timers for the dialogue table (Q.774 invocation timers, MAP dialogue guard timers), sans-I/O.

Time is passed in (monotonic seconds). Deadlines are rounded up to ticks of ``resolution`` seconds, so a timer
never fires early and at most one resolution late. Timers of the same tick share one bucket (a dict: O(1) start
and cancel); a heap holds each tick that has a bucket once, so expiry costs what expires plus the ticks that had
timers, never a scan of all timers or of empty slots, and the next deadline is the heap's top. With guard timers
of 1..600 s at 50 ms, the heap holds at most 12,000 ticks however many timers run.
"""

from __future__ import annotations

import heapq
import itertools
import math
from typing import Generic, TypeVar

K = TypeVar("K")


class TimerHandle:
    """What :meth:`TimerWheel.schedule` returns: give it to :meth:`TimerWheel.cancel`."""

    __slots__ = ("ident", "tick")

    def __init__(self, tick: int, ident: int) -> None:
        self.tick = tick
        self.ident = ident


class TimerWheel(Generic[K]):
    __slots__ = ("_buckets", "_count", "_heap", "_ids", "_tick_now", "resolution")

    def __init__(self, resolution: float = 0.05, now: float = 0.0) -> None:
        if resolution <= 0:
            raise ValueError("resolution must be positive")
        self.resolution = resolution
        self._buckets: dict[int, dict[int, K]] = {}
        self._heap: list[int] = []
        self._ids = itertools.count()
        self._count = 0
        self._tick_now = math.floor(now / resolution)

    def __len__(self) -> int:
        return self._count

    def schedule(self, deadline: float, key: K) -> TimerHandle:
        """Fire ``key`` at ``deadline`` (seconds, the same clock as ``now``)."""
        tick = math.ceil(deadline / self.resolution)
        if tick <= self._tick_now:
            tick = self._tick_now + 1  # already due: fires at the next expire() past this tick
        bucket = self._buckets.get(tick)
        if bucket is None:
            bucket = self._buckets[tick] = {}
            heapq.heappush(self._heap, tick)
        ident = next(self._ids)
        bucket[ident] = key
        self._count += 1
        return TimerHandle(tick, ident)

    def cancel(self, handle: TimerHandle) -> bool:
        """Stop a timer. Returns False when it had already fired or been cancelled."""
        bucket = self._buckets.get(handle.tick)
        if bucket is None or handle.ident not in bucket:
            return False
        del bucket[handle.ident]
        self._count -= 1
        if not bucket:
            del self._buckets[handle.tick]  # its heap entry is dropped lazily
        return True

    def expire(self, now: float) -> list[K]:
        """The keys of every timer due at ``now``, in deadline order; they are removed."""
        tick_now = math.floor(now / self.resolution)
        self._tick_now = max(self._tick_now, tick_now)
        out: list[K] = []
        heap = self._heap
        while heap and heap[0] <= tick_now:
            tick = heapq.heappop(heap)
            bucket = self._buckets.pop(tick, None)
            if bucket:
                out.extend(bucket.values())
                self._count -= len(bucket)
        return out

    def next_deadline(self) -> float | None:
        """When the next timer is due (seconds), or None: the asyncio shell sleeps until then."""
        heap = self._heap
        while heap and heap[0] not in self._buckets:
            heapq.heappop(heap)  # ticks whose timers were all cancelled
        return heap[0] * self.resolution if heap else None
