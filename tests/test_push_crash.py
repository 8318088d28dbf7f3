"""The crash rule, shown on the real daemon: 5,000 pushes through the push API while the daemon process is killed
(SIGKILL, its whole process group) five times at random moments and restarted on the same SQLite file and ports.

- The daemon is `python -m gateway.cli run -c FILE` in its own process group; the store is a file (WAL,
  synchronous=FULL), `[push] rate` high enough that the kills land while pushes are in every state.
- The network is the simulator in this process: an HLR and a VLR that answer for any MSISDN (the catch-all
  subscriber, "ack": every notify acknowledged) and count every push the VLR was handed, by MSISDN; it reconnects
  after each kill.
- The application is a real callback receiver recording every delivery id (it may see one more than once).
- The pushes are created by concurrent POSTs with a token made by the CLI, each with an Idempotency-Key: a POST cut
  by a kill is sent again until it gets its answer, and never makes a second push.

At the end (every push final: acknowledged, or unconfirmed, or expired with the short ttl) the store, read
directly, must hold exactly one push per request, each with exactly one final state; the VLR must have seen no
MSISDN twice (each push has its own); every push must have been called back (de-duplicated by delivery id) with
its final state; and every push that was "sent" at a kill must have ended "unconfirmed". The counts per final state
are printed (pytest -s shows them).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from gateway.config.load import load
from gateway.push.model import FINAL, State
from gateway.sim.network import Subscriber
from gateway.sim.run import SimSettings, connected
from tests.support.daemon import default_config
from tests.support.http import serving
from tests.test_push_daemon import make_token

pytestmark = pytest.mark.slow

PUSHES = 5000
KILLS = 5
TTL_S = 40.0  # a push the kills left waiting (e.g. under a dead claim's lease) ends expired within the test
POSTERS = 64  # POSTs in flight at once
ROOT = Path(__file__).resolve().parent.parent


def msisdn(i: int) -> str:
    return f"4917300{i:05d}"  # distinct in their last 10 digits: distinct IMSIs from the catch-all subscriber


class Daemon:
    """`ussd-gateway run -c FILE` as a process of its own, in a process group of its own."""

    def __init__(self, config: Path, logs: Path) -> None:
        self.config = config
        self.logs = logs
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    async def start(self, api: str) -> None:
        self.starts += 1
        log = (self.logs / f"gateway-{self.starts}.log").open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "run", "-c", str(self.config)],
                                     stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + 30
        async with aiohttp.ClientSession() as http:
            while True:  # ready when its push API answers (it starts after the store's recovery)
                if self.proc.poll() is not None:
                    raise AssertionError(f"the daemon exited: {self.log_tail()}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"the daemon did not start: {self.log_tail()}")
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with http.get(f"{api}/v1/pushes") as resp:
                        if resp.status == 401:
                            return
                await asyncio.sleep(0.05)

    def kill(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                return self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
                raise
        return self.proc.returncode

    def log_tail(self) -> str:
        return (self.logs / f"gateway-{self.starts}.log").read_text()[-2000:]


def read_store(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


def states(db: Path) -> dict[str, tuple[str, str]]:
    """push id -> (msisdn, state), read from the file."""
    with contextlib.closing(read_store(db)) as conn:
        return {i: (m, s) for i, m, s in conn.execute("SELECT id, msisdn, state FROM pushes")}


def claimed_waiting(db: Path, now: float) -> set[str]:
    with contextlib.closing(read_store(db)) as conn:
        return {i for (i,) in conn.execute("SELECT id FROM pushes WHERE state IN ('queued', 'retry_wait') "
                                           "AND claimed_until > ?", (now,))}  # fmt: skip


def outbox_size(db: Path) -> int:
    with contextlib.closing(read_store(db)) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM callback_outbox").fetchone()[0])


async def test_sigkill_five_times_during_5000_pushes(tmp_path: Path) -> None:
    started = time.monotonic()
    seed = int(os.environ.get("CRASH_SEED", random.randrange(1 << 32)))
    rng = random.Random(seed)
    path = default_config(tmp_path)
    text = path.read_text().replace("rate = 100 ", "rate = 5000 ")  # the kills find pushes in every state
    path.write_text(text.replace("[push_api]", '[log]\nlevel = "warning"\n\n[push_api]'))
    cfg = load(path)
    assert cfg.push is not None and cfg.push.rate == 5000 and cfg.push_api_listen is not None
    db = tmp_path / "push.db"
    api = "http://{}:{}".format(*cfg.push_api_listen)
    token = make_token(path)
    daemon = Daemon(path, tmp_path)

    deliveries: dict[str, list[tuple[str, str]]] = defaultdict(list)  # delivery id -> (push id, state) each time

    async def receiver(request: web.Request) -> web.Response:
        body = await request.json()
        deliveries[request.headers["X-USSD-Delivery"]].append((body["id"], body["state"]))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/cb", receiver)
    ids: dict[int, str] = {}  # request number -> the push id the API answered (first answer or a replay)
    retried = Counter[str]()
    sent_at_kill: set[str] = set()
    claimed_at_kill: set[str] = set()  # queued, under this node's claim (claimed, not yet routing): its lease holds
    at_kills: list[dict[str, int]] = []

    async def post_all(http: aiohttp.ClientSession, callback: str) -> None:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(PUSHES):
            queue.put_nowait(i)

        async def poster() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                body = {"msisdn": msisdn(i), "text": f"crash test {i}", "ttl_s": TTL_S, "callback_url": callback}
                while True:
                    try:
                        async with http.post(f"{api}/v1/pushes", json=body,
                                             headers={"Idempotency-Key": f"crash-{i}"}) as resp:  # fmt: skip
                            if resp.status == 202:
                                ids[i] = (await resp.json())["id"]
                                if resp.headers.get("Idempotent-Replayed") == "true":
                                    retried["replayed"] += 1
                                break
                            assert resp.status in (409, 500, 503), (resp.status, await resp.text())
                            retried[f"HTTP {resp.status}"] += 1
                    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                        retried[type(exc).__name__] += 1
                    await asyncio.sleep(0.05)  # the daemon is down or restarting: the same request again

        await asyncio.gather(*(poster() for _ in range(POSTERS)))

    async def killer() -> None:
        for _ in range(KILLS):
            await asyncio.sleep(rng.uniform(0.5, 2.5))  # a random moment of this run of the daemon
            daemon.kill()
            now = states(db)
            at_kills.append(dict(Counter(s for _, s in now.values())))
            sent_at_kill.update(i for i, (_, s) in now.items() if s == State.SENT.value)
            claimed_at_kill.update(claimed_waiting(db, time.time()))
            await daemon.start(api)

    await daemon.start(api)
    sim_settings = SimSettings(subscribers=(), any_subscriber=Subscriber("", "", vlr_behaviour="ack"))
    try:
        async with serving(app) as cb_base, connected("127.0.0.1", cfg.listen_port, sim_settings) as (sim, _), \
                aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"},
                                      timeout=aiohttp.ClientTimeout(total=10)) as http:  # fmt: skip
            posting = asyncio.create_task(post_all(http, f"{cb_base}/cb"))
            await killer()
            await asyncio.wait_for(posting, 60)
            posted = time.monotonic() - started
            # Everything final and every callback delivered (a row leased by a killed daemon waits out its lease).
            deadline = time.monotonic() + 150
            while True:
                now = states(db)
                waiting = Counter(s for _, s in now.values() if State(s) not in FINAL)
                if not waiting and outbox_size(db) == 0:
                    break
                assert time.monotonic() < deadline, (waiting, outbox_size(db), daemon.log_tail())
                await asyncio.sleep(0.5)
            await asyncio.sleep(0.2)  # the last callback's answer was counted before its row went
            received = Counter(sim.received)
    finally:
        stopped = daemon.stop()
    assert stopped == 0, daemon.log_tail()

    # The store, read directly: one push per request (the retried POSTs replayed, never duplicated) ...
    with contextlib.closing(read_store(db)) as conn:
        pushes = {i: (m, State(s)) for i, m, s in conn.execute("SELECT id, msisdn, state FROM pushes")}
        keys = dict(conn.execute("SELECT key, push_id FROM idempotency_keys"))
        history: dict[str, list[State]] = defaultdict(list)
        for push_id, state in conn.execute("SELECT push_id, state FROM push_history ORDER BY push_id, seq"):
            history[push_id].append(State(state))
    assert len(ids) == PUSHES and len(set(ids.values())) == PUSHES
    assert len(pushes) == PUSHES and set(pushes) == set(ids.values())
    assert keys == {f"crash-{i}": ids[i] for i in range(PUSHES)}
    assert sorted(m for m, _ in pushes.values()) == [msisdn(i) for i in range(PUSHES)]
    # ... each with exactly one final state, its last
    for push_id, (_, state) in pushes.items():
        finals = [s for s in history[push_id] if s in FINAL]
        assert finals == [state] and history[push_id][-1] is state, (push_id, history[push_id])
    final = Counter(state.value for _, state in pushes.values())

    # The VLR saw no MSISDN twice; every acknowledged push reached it (once), the others at most once.
    assert set(received) <= {m for m, _ in pushes.values()}
    twice = {m: n for m, n in received.items() if n > 1}
    assert not twice, f"delivered more than once: {twice}"
    by_msisdn = {m: (i, s) for i, (m, s) in pushes.items()}
    assert all(received[m] == 1 for m, (_, s) in by_msisdn.items() if s is State.ACKNOWLEDGED)
    # A push that was "sent" at a kill ended unconfirmed, never sent again.
    assert {pushes[i][1] for i in sent_at_kill} <= {State.UNCONFIRMED}, Counter(pushes[i][1] for i in sent_at_kill)

    # Every push called back with its final state: one delivery id each, received at least once.
    called: dict[str, set[str]] = defaultdict(set)
    for delivery, seen in deliveries.items():
        assert len({push for push, _ in seen}) == 1
        push_id, state = seen[0]
        assert state == pushes[push_id][1].value, (push_id, state, pushes[push_id])
        called[push_id].add(delivery)
    assert set(called) == set(pushes), f"{len(set(pushes) - set(called))} pushes never called back"
    assert all(len(d) == 1 for d in called.values())
    repeats = sum(len(seen) - 1 for seen in deliveries.values())

    elapsed = time.monotonic() - started
    print(f"\ncrash test (seed {seed}): {PUSHES} pushes, {KILLS} SIGKILLs, {elapsed:.1f} s "
          f"(POSTs done after {posted:.1f} s)")  # fmt: skip
    print("  final states:", dict(sorted(final.items())))
    print("  at each kill:", at_kills)
    print(f"  sent at a kill: {len(sent_at_kill)} (all unconfirmed; the VLR had seen "
          f"{sum(received[pushes[i][0]] for i in sent_at_kill)} of them, once each)")  # fmt: skip
    expired = {i for i, (_, s) in pushes.items() if s is State.EXPIRED}
    print(f"  claimed but not yet routing at a kill: {len(claimed_at_kill)}, of which expired: "
          f"{len(claimed_at_kill & expired)}; expired in all: {len(expired)} (histories: "
          f"{dict(Counter(' > '.join(history[i]) for i in expired))})")  # fmt: skip
    print(f"  VLR: {sum(received.values())} pushes to {len(received)} MSISDNs, none twice")
    print(f"  POST retries: {dict(retried)}; callbacks: {len(deliveries)} delivery ids, {repeats} repeated")
