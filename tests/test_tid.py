"""Transaction ID allocation: prefix, no duplicates among live IDs, no immediate reuse, exhaustion."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.stack.tid import TidAllocator, TidSpaceExhaustedError, tid_bytes, tid_int


def test_prefix_and_bytes() -> None:
    alloc = TidAllocator(prefix=0xA, prefix_bits=4)
    tid = alloc.allocate()
    assert tid >> 28 == 0xA and alloc.owns(tid) and not alloc.owns(0x1000_0000)
    assert tid_bytes(tid)[0] >> 4 == 0xA and tid_int(tid_bytes(tid)) == tid


def test_released_id_is_not_reused_at_once() -> None:
    alloc = TidAllocator(prefix_bits=24, prefix=1)  # 256 IDs
    first = alloc.allocate()
    alloc.release(first)
    seen = {alloc.allocate() for _ in range(255)}
    assert first not in seen
    assert alloc.allocate() == first  # only after the whole space went round


def test_exhaustion() -> None:
    alloc = TidAllocator(prefix_bits=28, prefix=3)  # 16 IDs
    ids = [alloc.allocate() for _ in range(16)]
    assert len(set(ids)) == 16
    with pytest.raises(TidSpaceExhaustedError):
        alloc.allocate()
    alloc.release(ids[5])
    assert alloc.allocate() == ids[5]


def test_bad_prefix() -> None:
    with pytest.raises(ValueError):
        TidAllocator(prefix=16, prefix_bits=4)


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 50)), max_size=300), st.integers(0, 255))
@settings(max_examples=200, deadline=None)
def test_live_ids_are_unique(ops: list[tuple[bool, int]], prefix: int) -> None:
    alloc = TidAllocator(prefix=prefix, prefix_bits=8)
    live: list[int] = []
    for allocate, index in ops:
        if allocate or not live:
            tid = alloc.allocate()
            assert tid not in live and tid >> 24 == prefix
            live.append(tid)
        else:
            alloc.release(live.pop(index % len(live)))
        assert len(alloc) == len(live)
