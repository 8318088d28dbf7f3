"""Push status callbacks: the sender that empties the store's callback outbox into the receivers' URLs.

The store writes a callback (an outbox row: the push as JSON, a delivery id) in the transaction of the change it
reports, at each final state or, when the push asked for it, at every change (gateway/push/store.py). This sender
claims due rows (:meth:`PushStore.outbox_due`, with a lease: two gateway nodes never POST the same row at the same
time) and POSTs each one:

- ``Content-Type: application/json``, the push object as the body;
- ``X-USSD-Delivery``: the row's delivery id, the same on every attempt: the receiver de-duplicates on it;
- ``X-USSD-Timestamp`` and ``X-USSD-Signature`` when a secret is configured, signed like the application calls
  (:mod:`gateway.ops.outbound`);
- the gateway's User-Agent.

A 2xx answer deletes the row. Anything else (another status, a 3xx included, a timeout, a connection error) is a
failed attempt: the row is due again after a capped exponential backoff with jitter, until the row's age passes
the horizon; the first failure past it drops the row (``push.callback_abandoned``, counted). So a callback is
delivered at least once (a crash between the receiver's 2xx and the delete sends it again) unless its receiver
fails for the whole horizon.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp

from gateway.ops import logs
from gateway.ops.metrics import StackMetrics
from gateway.ops.outbound import USER_AGENT, signature_headers
from gateway.push.model import Backoff
from gateway.push.store import OutboxRow, PushStore


@dataclass(frozen=True, slots=True)
class CallbackSettings:
    """How callbacks are sent; the defaults suit production.

    - ``secret``: signs every callback (X-USSD-Timestamp, X-USSD-Signature) when set; None or "": unsigned.
    - ``timeout_s`` (10 s): one POST, from the connection to the answer's status line; slower is a failure.
    - ``horizon_s`` (24 h): counted from the change a callback reports; failed attempts are retried until then,
      and the first failure after it drops the callback. A row already past it (the gateway was down for longer)
      still gets one attempt.
    - ``concurrency`` (16): POSTs in flight at once; the sender claims no more rows than it has room for.
    - ``tick_s`` (1 s): how often the outbox is looked at when nothing wakes the sender (:meth:`CallbackSender.wake`).
    - ``lease_s`` (60 s): how long a claimed row is this node's; longer than ``timeout_s``, so that a row is never
      sent by two nodes at once, and the delay before another node sends the rows of a node that died mid-POST.
    - ``backoff`` (base 10 s, cap 30 min, jitter 50 %): the wait after the n-th failed attempt is
      ``min(cap, base * 2**(n-1))`` scaled by a random factor in [1 - jitter, 1], and never past the horizon: the
      last attempt is made at it.
    """

    secret: str | None = None
    timeout_s: float = 10.0
    horizon_s: float = 86400.0
    concurrency: int = 16
    tick_s: float = 1.0
    lease_s: float = 60.0
    backoff: Backoff = field(default_factory=lambda: Backoff(base=10.0, cap=1800.0))

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {self.concurrency}")
        if self.lease_s <= self.timeout_s:
            raise ValueError(f"lease_s ({self.lease_s:g}) must be longer than timeout_s ({self.timeout_s:g}): a "
                             "lease that runs out mid-POST lets another node send the same callback")  # fmt: skip


class CallbackSender:
    """Loops: claim the due callbacks it has room for, POST each one in a task of its own, record the outcome; then
    wait for :meth:`wake` or the next tick. ``node_id`` names this node's claims (the push service's node id)."""

    def __init__(self, store: PushStore, settings: CallbackSettings, metrics: StackMetrics, *, node_id: str,
                 clock: Callable[[], float] = time.time, rng: random.Random | None = None) -> None:  # fmt: skip
        self.store = store
        self.settings = settings
        self.metrics = metrics
        self.node_id = node_id
        self.clock = clock
        self.rng = rng or random.Random()
        self.log = logs.get("ussd.push.callbacks")
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self._backlog = False  # the last claim filled every free slot: more rows may be due

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.settings.concurrency),
            timeout=aiohttp.ClientTimeout(total=self.settings.timeout_s),
            headers={"User-Agent": USER_AGENT},
            cookie_jar=aiohttp.DummyCookieJar(),  # stateless: nothing one receiver sets goes back to it later
        )
        self._task = asyncio.create_task(self._run(self._session))

    async def stop(self) -> None:
        """Stop claiming and cut the POSTs in flight: their rows stay claimed until the lease runs out, then they
        are sent again (the receiver may see them twice: at least once)."""
        tasks = [t for t in (self._task, *self._sending) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    def wake(self) -> None:
        """A callback was written: look at the outbox now rather than at the next tick."""
        self._wake.set()

    async def _run(self, session: aiohttp.ClientSession) -> None:
        while True:
            try:
                await self._claim(session)
            except Exception as exc:  # the store is unreachable, or refused: the next tick tries again
                self.log.error("push.callback_store_error", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.tick_s)
            self._wake.clear()

    async def _claim(self, session: aiohttp.ClientSession) -> None:
        room = self.settings.concurrency - len(self._sending)
        if room <= 0:
            return
        rows = await self.store.outbox_due(self.clock(), room, self.node_id, self.settings.lease_s)
        self._backlog = len(rows) == room
        for row in rows:
            self._sending.add(task := asyncio.create_task(self._send(session, row)))
            task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sending.discard(task)
        if self._backlog:
            self._wake.set()  # a slot is free and more may be waiting: claim now, not at the next tick

    async def _send(self, session: aiohttp.ClientSession, row: OutboxRow) -> None:
        s = self.settings
        try:
            error = await self._post(session, row)
            if error is None:
                await self.store.outbox_done(row.delivery_id)
                self.metrics.child(self.metrics.push_callbacks, "delivered").inc()
                return
            now = self.clock()
            horizon = row.created_at + s.horizon_s
            if now >= horizon:
                await self.store.outbox_done(row.delivery_id)
                self.metrics.child(self.metrics.push_callbacks, "abandoned").inc()
                self.log.warning("push.callback_abandoned", delivery=row.delivery_id, push=row.push_id,
                                 url=row.url, attempts=row.attempts + 1, age_s=round(now - row.created_at, 1),
                                 error=error)  # fmt: skip
                return
            next_at = min(now + s.backoff.delay(row.attempts + 1, self.rng), horizon)
            await self.store.outbox_retry(row.delivery_id, next_at, error)
            self.metrics.child(self.metrics.push_callbacks, "retried").inc()
            self.log.info("push.callback_failed", delivery=row.delivery_id, push=row.push_id, url=row.url,
                          attempts=row.attempts + 1, error=error, retry_in_s=round(next_at - now, 1))  # fmt: skip
        except Exception as exc:  # the outcome was not recorded: the lease runs out and the row is sent again
            self.log.error("push.callback_error", delivery=row.delivery_id, error=repr(exc))

    async def _post(self, session: aiohttp.ClientSession, row: OutboxRow) -> str | None:
        """POST the row; None for a 2xx, else why the attempt failed."""
        body = json.dumps(row.payload, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "X-USSD-Delivery": row.delivery_id}
        if self.settings.secret:
            headers.update(signature_headers(self.settings.secret, body, self.clock()))
        started = time.monotonic()
        try:
            # Redirects are not followed, and a 3xx is a failure: the callback goes to the URL the push was created
            # with and nowhere else (a redirect could take the signed push to any host, internal ones included), and
            # aiohttp follows a 301/302/303 with a GET without the body, whose 2xx would count as delivered a
            # callback whose payload never arrived.
            async with session.post(row.url, data=body, headers=headers, allow_redirects=False) as resp:
                status = resp.status
        except TimeoutError:
            return f"timeout after {self.settings.timeout_s:g} s"
        except aiohttp.ClientError as exc:
            return f"{type(exc).__name__}: {exc}"
        self.metrics.push_callback_latency.observe(time.monotonic() - started)
        return None if 200 <= status < 300 else f"HTTP {status}"
