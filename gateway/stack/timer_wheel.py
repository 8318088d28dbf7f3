"""Timers for the dialogue table (Q.774 invocation timers, MAP dialogue guard timers), sans-I/O.

A hierarchical timing wheel (Varghese & Lauck): 6 levels of 64 slots; level L holds the timers due within the
current level-(L+1) block, in the slot of their tick's L-th 6-bit digit. Start and cancel are O(1) (a dict insert
or delete and an occupancy bit); as time passes, a slot of level L is cascaded into the levels below when its
block begins, so each timer moves at most 5 times in its life; expiry costs what expires plus those moves. Empty
stretches are skipped with per-level occupancy bitmaps, which also give the next deadline in O(levels).

Time is passed in (monotonic seconds). Deadlines are rounded up to ticks of ``resolution`` seconds: a timer never
fires early and at most one resolution late. With 50 ms ticks the wheel spans 64^6 ticks (over 100 years).
"""

from __future__ import annotations

import math
from typing import Generic, TypeVar

K = TypeVar("K")

BITS = 6
SLOTS = 1 << BITS
MASK = SLOTS - 1
LEVELS = 6
SPAN = 1 << (BITS * LEVELS)


class TimerHandle:
    """What :meth:`TimerWheel.schedule` returns: give it to :meth:`TimerWheel.cancel`."""

    __slots__ = ("idx", "key", "level", "tick")

    def __init__(self, tick: int, key: object) -> None:
        self.tick = tick
        self.key = key
        self.level = -1  # -1: not in the wheel (fired or cancelled)
        self.idx = 0


class TimerWheel(Generic[K]):
    __slots__ = ("_count", "_now", "_occupied", "_slots", "resolution")

    def __init__(self, resolution: float = 0.05, now: float = 0.0) -> None:
        if resolution <= 0:
            raise ValueError("resolution must be positive")
        self.resolution = resolution
        self._now = math.floor(now / resolution)  # the last tick processed
        # level L, slot i is self._slots[L * SLOTS + i] (one flat list: one index instead of two)
        self._slots: list[set[TimerHandle]] = [set() for _ in range(SLOTS * LEVELS)]
        self._occupied = [0] * LEVELS  # bit i set: slot i of the level holds timers
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def schedule(self, deadline: float, key: K) -> TimerHandle:
        """Fire ``key`` at ``deadline`` (seconds, the same clock as ``now``). O(1)."""
        now = self._now
        tick = math.ceil(deadline / self.resolution)
        if tick <= now:
            tick = now + 1  # already due: fires at the next expire() past this tick
        elif tick - now >= SPAN:
            tick = now + SPAN - 1
        handle = TimerHandle(tick, key)
        # The level: the highest 6-bit digit where tick and now differ (same block above it).
        level = ((tick ^ now).bit_length() - 1) // BITS
        idx = (tick >> (BITS * level)) & MASK
        self._slots[level * SLOTS + idx].add(handle)
        self._occupied[level] |= 1 << idx
        handle.level = level
        handle.idx = idx
        self._count += 1
        return handle

    def cancel(self, handle: TimerHandle) -> bool:
        """Stop a timer. O(1). Returns False when it had already fired or been cancelled."""
        if handle.level < 0:
            return False
        slot = self._slots[handle.level * SLOTS + handle.idx]
        slot.discard(handle)
        if not slot:
            self._occupied[handle.level] &= ~(1 << handle.idx)
        handle.level = -1
        self._count -= 1
        return True

    def expire(self, now: float) -> list[K]:
        """The keys of every timer due at ``now``, in deadline order; they are removed."""
        target = math.floor(now / self.resolution)
        out: list[K] = []
        while True:
            nxt = self._next_tick()
            if nxt is None or nxt > target:
                break
            self._now = nxt
            self._cascade(nxt)
            idx = nxt & MASK
            slot = self._slots[idx]
            if slot:
                for handle in slot:  # a level-0 slot holds a single tick
                    handle.level = -1
                    out.append(handle.key)  # type: ignore[arg-type]
                self._count -= len(slot)
                slot.clear()
                self._occupied[0] &= ~(1 << idx)
        self._now = max(self._now, target)
        return out

    def next_deadline(self) -> float | None:
        """When the wheel next needs attention (seconds): a deadline, or a cascade point just before one.
        Never later than the earliest deadline. None when no timer runs."""
        nxt = self._next_tick()
        return None if nxt is None else nxt * self.resolution

    # ---- internals ----

    def _place(self, handle: TimerHandle) -> None:
        tick = handle.tick
        diff = tick ^ self._now
        level = (diff.bit_length() - 1) // BITS if diff else 0
        idx = (tick >> (BITS * level)) & MASK
        self._slots[level * SLOTS + idx].add(handle)
        self._occupied[level] |= 1 << idx
        handle.level = level
        handle.idx = idx

    def _cascade(self, tick: int) -> None:
        """At the start of a level-L block, move the timers of its level-L slot down (top level first)."""
        for level in range(LEVELS - 1, 0, -1):
            if tick & ((1 << (BITS * level)) - 1):
                continue  # not the start of a level-`level` block
            idx = (tick >> (BITS * level)) & MASK
            slot = self._slots[level * SLOTS + idx]
            if not slot:
                continue
            moving = list(slot)
            slot.clear()
            self._occupied[level] &= ~(1 << idx)
            for handle in moving:
                self._place(handle)

    def _next_tick(self) -> int | None:
        """The next tick (after the last processed) at which a slot fires or cascades."""
        now = self._now
        best: int | None = None
        for level in range(LEVELS):
            occ = self._occupied[level]
            if not occ:
                continue
            shift = BITS * level
            cur = (now >> shift) & MASK
            ahead = occ & ~((2 << cur) - 1)  # slots after the current one; the current one is always empty
            if not ahead:
                continue
            idx = (ahead & -ahead).bit_length() - 1
            block = now >> (shift + BITS) << (shift + BITS)
            tick = block + (idx << shift)
            if best is None or tick < best:
                best = tick
        return best
