"""Pushes end to end: the push API's accept rate, acknowledged notify pushes per second (API POST -> SRI-for-SM ->
USSD notify -> the handset's acknowledgement -> the final state committed) on SQLite and on PostgreSQL, and the
latency POST -> acknowledged at 100 pushes a second.

The gateway is `ussd-gateway run` in its own process (JSON logs at info, as in production; `[push] rate` high
enough not to pace); the network is the simulator in this process (an HLR and a VLR answering for any MSISDN, every
notify acknowledged); the POSTs come from this process too (64 in flight, aiohttp), so the gateway has one of the
VM's two cores and the benchmark process the other.

- API accept rate: 5,000 POSTs while no network is attached (the push service claims nothing without an
  ASP-ACTIVE association), so that the figure is the API's alone.
- End to end: 5,000 pushes POSTed as fast as the API takes them with the network attached; from the first POST
  to the last acknowledged state committed (read from the store). Also the gateway process's CPU per push.
- Latency: 1,000 pushes POSTed at 100 a second; per push, the acknowledged state's commit time (the store's
  updated_at) minus the moment its POST left.
SQLite is the default store (WAL, synchronous=FULL); PostgreSQL is a temporary durable server (fsync and
synchronous_commit on), as in bench/bench_push_store.py.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from bench.bench_pull import _cpu_seconds, _start
from bench.common import Row
from gateway.config.load import load
from gateway.push.backends import open_store
from gateway.push.model import State
from gateway.push.store import PushStore
from gateway.sim.network import Subscriber
from gateway.sim.run import SimSettings, connected

PUSHES = 5000
LATENCY_PUSHES = 1000
LATENCY_RATE = 100.0
IN_FLIGHT = 64
TARGET_E2E, FLOOR_E2E, TARGET_POST = 1000.0, 500.0, 2000.0
SIM = SimSettings(subscribers=(), any_subscriber=Subscriber("", "", vlr_behaviour="ack"))


def _msisdn(run: int, i: int) -> str:
    return f"49173{run:02d}{i:05d}"


def _config(tmp: Path, store: str | None) -> Path:
    from tests.support.daemon import default_config

    path = default_config(tmp)
    text = path.read_text().replace("rate = 100 ", "rate = 100000 ")
    if store is not None:
        text = text.replace(f'store = "sqlite:{tmp}/push.db"', f'store = "{store}"')
    path.write_text(text)
    return path


def _token(config: Path) -> str:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "gateway.cli", "token", "create", "bench", "--scope", "push:write",
                           "--scope", "push:read", "-c", str(config)], capture_output=True, text=True, check=True,
                          timeout=60)  # fmt: skip
    return done.stdout.strip().splitlines()[-1]


async def _post(http: aiohttp.ClientSession, api: str, msisdns: list[str],
                sent: dict[str, float] | None = None) -> None:  # fmt: skip
    """POST a notify push to each MSISDN, IN_FLIGHT at once; ``sent``: MSISDN -> when its POST left."""
    queue = list(reversed(msisdns))

    async def worker() -> None:
        while queue:
            m = queue.pop()
            if sent is not None:
                sent[m] = time.time()
            async with http.post(f"{api}/v1/pushes", json={"msisdn": m, "text": "Your parcel arrives today"}) as r:
                assert r.status == 202, await r.text()
                await r.read()

    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))


async def _acknowledged(store: PushStore, total: int, timeout: float = 120.0) -> float:
    """Wait until ``total`` pushes are acknowledged; when it was seen (time.perf_counter)."""
    deadline = time.perf_counter() + timeout
    while True:
        counts = await store.counts()
        if counts[State.ACKNOWLEDGED] >= total:
            return time.perf_counter()
        if time.perf_counter() > deadline:
            raise RuntimeError(f"not all acknowledged in {timeout:g} s: {counts}")
        await asyncio.sleep(0.02)


@asynccontextmanager
async def _gateway(store_url: str | None) -> AsyncIterator[tuple[str, int, int, str, PushStore]]:
    """The daemon as a process: (API base URL, M3UA port, pid, token, the store opened here too)."""
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        path = _config(tmp, store_url)
        cfg = load(path)
        assert cfg.push is not None and cfg.push_api_listen is not None
        token = _token(path)
        proc = _start(["-m", "gateway.cli", "run", "-c", str(path)], '"ready"', tmp / "gateway.log")
        store = await open_store(cfg.push.store)
        try:
            yield "http://{}:{}".format(*cfg.push_api_listen), cfg.listen_port, proc.pid, token, store
        finally:
            await store.close()
            proc.terminate()
            proc.wait(20)


def _session(token: str) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"},
                                 connector=aiohttp.TCPConnector(limit=IN_FLIGHT))  # fmt: skip


async def _throughput(store_url: str | None) -> dict[str, float]:
    out: dict[str, float] = {}
    async with _gateway(store_url) as (api, port, pid, token, store), _session(token) as http:
        await _post(http, api, [_msisdn(90, i) for i in range(200)])  # warm up the API (no network yet)
        t0 = time.perf_counter()
        await _post(http, api, [_msisdn(1, i) for i in range(PUSHES)])
        out["post_rate"] = PUSHES / (time.perf_counter() - t0)
        async with connected("127.0.0.1", port, SIM):  # the queued ones drain: the service alone
            t0 = time.perf_counter()
            out["drain_rate"] = PUSHES / (await _acknowledged(store, PUSHES + 200) - t0)
            cpu0 = _cpu_seconds(pid)
            t0 = time.perf_counter()
            await _post(http, api, [_msisdn(2, i) for i in range(PUSHES)])
            out["e2e_posted"] = PUSHES / (time.perf_counter() - t0)
            out["e2e_rate"] = PUSHES / (await _acknowledged(store, 2 * PUSHES + 200) - t0)
            out["gw_cpu_us"] = (_cpu_seconds(pid) - cpu0) / PUSHES * 1e6
    return out


async def _latency() -> list[float]:
    """Milliseconds from each POST leaving to its acknowledged state committed, at LATENCY_RATE pushes/s."""
    async with _gateway(None) as (api, port, _, token, store), _session(token) as http, \
            connected("127.0.0.1", port, SIM):  # fmt: skip
        await _post(http, api, [_msisdn(91, i) for i in range(200)])  # warm up
        await _acknowledged(store, 200)
        sent: dict[str, float] = {}
        ids: dict[str, str] = {}
        loop = asyncio.get_running_loop()
        start = loop.time()

        async def one(i: int) -> None:
            m = _msisdn(3, i)
            sent[m] = time.time()
            async with http.post(f"{api}/v1/pushes", json={"msisdn": m, "text": "Your code is 4711"}) as r:
                assert r.status == 202, await r.text()
                ids[m] = (await r.json())["id"]

        tasks = []
        for i in range(LATENCY_PUSHES):
            await asyncio.sleep(max(0.0, start + i / LATENCY_RATE - loop.time()))
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        await _acknowledged(store, 200 + LATENCY_PUSHES)
        return [((await store.get(ids[m])).updated_at - t) * 1000 for m, t in sent.items()]


def _postgres(fn: Callable[[str], dict[str, float]]) -> tuple[dict[str, float] | None, str]:
    from tests.support.postgres import PostgresServer, bindir

    found = bindir()
    if found is None:
        return None, "PostgreSQL not installed"
    server = PostgresServer(found, durable=True).start()
    try:
        return fn(server.new_database()), ""
    finally:
        server.stop()


def rows() -> list[Row]:
    lite = asyncio.run(_throughput(None))
    pg, why = _postgres(lambda dsn: asyncio.run(_throughput(dsn)))
    lat = asyncio.run(_latency())
    q = statistics.quantiles(lat, n=100)
    out = [Row(f"push API accept rate: {lite['post_rate']:,.0f} POST/s (SQLite, no network attached, "
               f"{IN_FLIGHT} in flight; µs per POST)", 1e6 / lite["post_rate"], {},
               f">= {TARGET_POST:,.0f} POST/s", lite["post_rate"] >= TARGET_POST)]  # fmt: skip
    for name, r in (("SQLite", lite), ("PostgreSQL 15 fsync on", pg)):
        if r is None:
            out.append(Row(f"pushes end to end, {name}: n/a ({why})", 0.0, {}, "informative", None))
            continue
        rate = r["e2e_rate"]
        out.append(Row(f"pushes end to end, {name}: {rate:,.0f} acknowledged/s (POST -> SRI-for-SM -> notify -> "
                       f"ACK -> committed; POSTs at {r['e2e_posted']:,.0f}/s; µs per push)", 1e6 / rate, {},
                       f">= {TARGET_E2E:,.0f}/s (floor {FLOOR_E2E:,.0f}/s)", rate >= FLOOR_E2E))  # fmt: skip
        out.append(Row(f"push service alone, {name}: {r['drain_rate']:,.0f} acknowledged/s draining a queue of "
                       f"{PUSHES:,}; gateway process CPU per push end to end: one core carries "
                       f"{1e6 / r['gw_cpu_us']:,.0f} pushes/s (µs per push)", r["gw_cpu_us"], {}, "informative",
                       None))  # fmt: skip
    out.append(Row(f"push latency POST -> acknowledged at {LATENCY_RATE:g} pushes/s, p50 / p99 = {q[49]:.1f} / "
                   f"{q[98]:.1f} ms (SQLite; µs, p50)", q[49] * 1000, {}, "informative", None))  # fmt: skip
    return out
