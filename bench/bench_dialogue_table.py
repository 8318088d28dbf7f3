"""TCAP dialogue table at one million concurrent dialogues: memory per dialogue and the rate of
create + lookup + release (TID allocation, dict, idle timer) with the table full."""

from __future__ import annotations

import gc
import time
import tracemalloc

from bench.common import Row
from gateway.codecs import map as M
from gateway.stack.tcap_table import DialogueTable, DState
from gateway.stack.tid import tid_bytes

CONCURRENT = 1_000_000
CYCLES = 200_000


def _fill(table: DialogueTable, n: int) -> None:
    for i in range(n):
        d = table._new(i & 0xFFFF, DState.INITIAL_RECEIVED, M.AC_NETWORK_UNSTRUCTURED_SS_V2, i * 1e-6)
        d.remote = b"\x00\x00\x00\x01"


def rows() -> list[Row]:
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    table = DialogueTable(supported_acs=[M.AC_NETWORK_UNSTRUCTURED_SS_V2], capacity=CONCURRENT + CYCLES)
    _fill(table, CONCURRENT)
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    del table
    gc.collect()

    table = DialogueTable(supported_acs=[M.AC_NETWORK_UNSTRUCTURED_SS_V2], capacity=CONCURRENT + CYCLES)
    _fill(table, CONCURRENT)
    gc.disable()
    best = float("inf")
    batch = CYCLES // 20
    for _ in range(20):  # best of 20 batches: this VM's speed drifts by half between seconds
        t0 = time.perf_counter()
        for _ in range(batch):
            d = table._new(7, DState.INITIAL_RECEIVED, None, 2.0)
            found = table._lookup(tid_bytes(d.did))
            assert found is d
            table._release(d, "end-local")
        best = min(best, (time.perf_counter() - t0) / batch)
    gc.enable()
    per_cycle_us = best * 1e6
    total_mib = used / 2**20
    rate = 1 / best
    return [
        Row(f"dialogue table: memory at {CONCURRENT:,} dialogues ({used / CONCURRENT:.0f} B each), MiB", total_mib,
            {}, "<= 512 MiB", total_mib <= 512),
        Row(f"dialogue table: create+lookup+release at 1M concurrent ({rate:,.0f}/s), us per cycle", per_cycle_us,
            {}, ">= 500k ops/s (one op = create, lookup and release)", rate >= 500_000),
    ]  # fmt: skip
