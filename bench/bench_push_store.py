"""The push store: state changes per second, one transaction per change against group commits (design.md §8), on
SQLite (synchronous=FULL and NORMAL) and on a durable PostgreSQL (fsync and synchronous_commit on), with how long
the event loop stalls meanwhile.

Each push goes queued -> routing -> sent -> acknowledged (three changes, the last writing its callback row), as the
push service will move it; a group commit moves a batch of pushes one step in one transaction.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

from bench.common import Row
from gateway.push.model import Mode, State
from gateway.push.store import PushStore, Transition, new_push
from gateway.push.store_postgres import PostgresStore
from gateway.push.store_sqlite import SqliteStore, Synchronous

SYNCHRONOUS: tuple[Synchronous, ...] = ("FULL", "NORMAL")
STEPS = (State.ROUTING, State.SENT, State.ACKNOWLEDGED)
TARGET = 3000.0  # transitions/s: design.md §8's 1,000 pushes/s at three changes each


async def _run(store: PushStore, pushes: int, batch: int) -> tuple[float, float, float]:
    """(transitions per second, p99 and max event-loop stall in ms) for ``pushes`` pushes in batches of ``batch``."""
    now = time.time()
    ids = []
    for i in range(pushes):
        push = new_push(msisdn=f"49{i:010d}", text="Hello", mode=Mode.NOTIFY, now=now, ttl_s=3600,
                        callback_url="http://127.0.0.1:9/cb")  # fmt: skip
        ids.append((await store.create(push, None, "h", "bench")).push.id)
    gaps: list[float] = []
    running = True

    async def ticker() -> None:
        loop = asyncio.get_running_loop()
        while running:
            t0 = loop.time()
            await asyncio.sleep(0)
            gaps.append(loop.time() - t0)

    tick = asyncio.create_task(ticker())
    t0 = time.perf_counter()
    for start in range(0, pushes, batch):
        chunk = ids[start:start + batch]
        for state in STEPS:
            await store.transition_many([Transition(i, state, "bench") for i in chunk], now)
    elapsed = time.perf_counter() - t0
    running = False
    await tick
    gaps.sort()
    return pushes * len(STEPS) / elapsed, gaps[int(len(gaps) * 0.99)] * 1e3, gaps[-1] * 1e3


def _row(label: str, batch: int, result: tuple[float, float, float]) -> Row:
    rate, p99, worst = result
    what = "one transaction per change" if batch == 1 else f"group commits of {batch}"
    case = (f"push store, {label}, {what}: {rate:,.0f} transitions/s; loop stall p99 / max {p99:.2f} / "
            f"{worst:.1f} ms (µs per transition)")
    return Row(case, 1e6 / rate, {}, f">= {TARGET:,.0f} transitions/s" if batch > 1 else "informative",
               rate >= TARGET if batch > 1 else None)  # fmt: skip


async def _measure(open_store: Callable[[], Awaitable[PushStore]], pushes: int,
                   batch: int) -> tuple[float, float, float]:
    store = await open_store()
    try:
        return await _run(store, pushes, batch)
    finally:
        await store.close()


def rows() -> list[Row]:
    out: list[Row] = []
    for synchronous in SYNCHRONOUS:
        for pushes, batch in ((300, 1), (4000, 200)):
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "push.db"
                opener = partial(SqliteStore.open, path, synchronous=synchronous)
                out.append(_row(f"SQLite WAL synchronous={synchronous}", batch,
                                asyncio.run(_measure(opener, pushes, batch))))  # fmt: skip
    from tests.support.postgres import PostgresServer, bindir

    found = bindir()
    if found is None:
        return out  # no PostgreSQL here: its rows are missing, which the table shows
    server = PostgresServer(found, durable=True).start()
    try:
        for pushes, batch in ((300, 1), (4000, 200)):
            opener = partial(PostgresStore.open, server.new_database())
            out.append(_row("PostgreSQL 15 fsync on", batch, asyncio.run(_measure(opener, pushes, batch))))
    finally:
        server.stop()
    return out
