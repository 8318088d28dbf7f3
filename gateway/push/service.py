"""The push service: takes due pushes from the store, drives them through the network, records every step.

It is a service of the stack's host (gateway/transport/host.py), registered for the push events, beside the
session manager. Each step is committed before the SS7 message that depends on it leaves (write-ahead,
gateway/push/model.py): ``routing`` before the SRI-for-SM, ``sent`` before the TC-BEGIN with the USSD invoke. The
commits of one loop turn go to the store together (:class:`_Committer`: one transaction per turn, design.md §8).

Pacing toward the network: at most ``rate`` new pushes a second and ``max_in_flight`` at once; nothing is claimed
while no association is ASP-ACTIVE (``ready``) so that an outage holds pushes in the queue instead of failing
them; a push whose subscriber is in a pull session waits (``busy``).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.codecs import sccp
from gateway.codecs.sccp import SccpAddress
from gateway.ops import logs
from gateway.ops.metrics import StackMetrics
from gateway.push.model import Backoff, Mode, State, after_failure
from gateway.push.store import Push, PushStore, StoreError, Transition
from gateway.stack import map_ussd
from gateway.stack.map_ussd import PushDelivered, PushFailed, PushRouted


class PushPort(Protocol):
    """What the service does to the network (gateway/transport/host.py's UssdHost)."""

    def route(self, msisdn: str, *, hlr: SccpAddress) -> int: ...

    def deliver(self, push: int, imsi: str, vlr: str, text: str, *, mode: map_ussd.Mode, route: str | None = None,
                msisdn: str = "") -> None: ...  # fmt: skip

    def deliver_via_hlr(self, msisdn: str, text: str, *, hlr: SccpAddress, mode: map_ussd.Mode,
                        route: str | None = None) -> int: ...  # fmt: skip


@dataclass(frozen=True, slots=True)
class PushSettings:
    node_id: str = "gw1"
    hlr_gt: str | None = None  # the HLR's GT; None: address the SRI-for-SM to the MSISDN (the STP routes it)
    rate: float = 100.0  # new pushes a second toward the network
    max_in_flight: int = 1000
    lease_s: float = 120.0  # a claimed push not moved on by then may be taken by another node
    tick_s: float = 0.2  # how often the queue is looked at when nothing wakes the service
    via_hlr: bool = False  # deliver through the HLR (TS 23.090), no SRI-for-SM: networks that want it that way
    backoff: Backoff = field(default_factory=Backoff)


_MODES = {Mode.NOTIFY: map_ussd.Mode.NOTIFY, Mode.REQUEST: map_ussd.Mode.REQUEST}


class PushService:
    def __init__(self, store: PushStore, network: PushPort, settings: PushSettings, *,
                 ready: Callable[[], bool] = lambda: True, busy: Callable[[str], bool] = lambda msisdn: False,
                 clock: Callable[[], float] = time.time, rng: random.Random | None = None,
                 metrics: StackMetrics | None = None) -> None:  # fmt: skip
        self.store = store
        self.network = network
        self.settings = settings
        self.ready = ready
        self.busy = busy
        self.clock = clock
        self.rng = rng or random.Random()
        self.log = logs.get("ussd.push")
        self.metrics = metrics
        self.flight: dict[int, Push] = {}  # the stack's push id -> the push it carries
        self._routing_since: dict[int, float] = {}  # the stack's push id -> when its SRI-for-SM left (loop time)
        self._queue_seen = 0.0  # when the queue depth was last read from the store
        self._committer = _Committer(store, clock)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._allowance = 0.0  # the token bucket of ``rate``
        self._last = clock()

    # ---- lifecycle ----

    async def start(self) -> dict[State, int]:
        """Apply the crash rule to what this node left unfinished, then start taking pushes. Returns the recovery
        counts (logged)."""
        recovered = await self.store.recover(self.clock(), node_id=self.settings.node_id)
        if any(recovered.values()):
            self.log.warning("push.recovered", **{state.value: n for state, n in recovered.items()})
        self._task = asyncio.create_task(self._run())
        return recovered

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._committer.drain()

    def wake(self) -> None:
        """A push was created: look at the queue now rather than at the next tick."""
        self._wake.set()

    # ---- the queue ----

    async def _run(self) -> None:
        while True:
            try:
                await self._step()
            except (StoreError, OSError) as exc:  # the store is unreachable: try again at the next tick
                self.log.error("push.store_error", error=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.tick_s)
            self._wake.clear()

    async def _step(self) -> None:
        s = self.settings
        now = self.clock()
        expired = await self.store.expire_due(now)
        if expired and self.metrics is not None:  # waited past expires_at in the queue (their last cause stays)
            self.metrics.child(self.metrics.push_states, State.EXPIRED.value, "in-queue").inc(expired)
        if self.metrics is not None and now - self._queue_seen >= 1.0:
            self._queue_seen = now
            for state, n in (await self.store.counts()).items():
                self.metrics.push_queue.labels(state.value).set(n)
        self._allowance = min(s.rate, self._allowance + (now - self._last) * s.rate)
        self._last = now
        room = min(s.max_in_flight - len(self.flight), int(self._allowance))
        if room <= 0 or not self.ready():
            return
        claimed: list[Push] = []
        busy: list[Push] = []
        for p in await self.store.claim_due(s.node_id, now, room, s.lease_s):
            (busy if self.busy(p.msisdn) else claimed).append(p)
        if busy:  # the subscriber is in a session: claimable again at once, taken when the session has ended
            await self.store.release(s.node_id, [p.id for p in busy])
        if not claimed:
            return
        self._allowance -= len(claimed)
        step = "the HLR, to relay" if s.via_hlr else "SRI-for-SM"
        changes = [Transition(p.id, State.ROUTING, f"{step}, attempt {p.attempts + 1}", attempts=p.attempts + 1)
                   for p in claimed]  # fmt: skip
        routed = await self.store.transition_many(changes, self.clock())
        if s.via_hlr:
            for p in routed:
                self._spawn(self._via_hlr(p))
            return
        started = asyncio.get_running_loop().time()
        for p in routed:
            hlr = SccpAddress.gt_e164(s.hlr_gt or p.msisdn, sccp.SSN_HLR)
            ident = self.network.route(p.msisdn, hlr=hlr)
            self.flight[ident] = p
            self._routing_since[ident] = started
            self._count(p)
        if self.metrics is not None:
            self.metrics.push_in_flight.set(len(self.flight))

    # ---- the network's answers (the host's push events) ----

    def on_event(self, ev: PushRouted | PushDelivered | PushFailed) -> None:
        p = self.flight.get(ev.push)
        if p is None:
            return
        since = self._routing_since.pop(ev.push, None)
        if isinstance(ev, PushRouted):
            if since is not None and self.metrics is not None:
                self.metrics.push_sri_latency.observe(asyncio.get_running_loop().time() - since)
            self._spawn(self._routed(ev, p))
            return
        del self.flight[ev.push]
        if self.metrics is not None:
            self.metrics.push_in_flight.set(len(self.flight))
        if isinstance(ev, PushDelivered):
            state = State.ANSWERED if p.mode is Mode.REQUEST else State.ACKNOWLEDGED
            detail = "answered" if state is State.ANSWERED else "acknowledged by the handset"
            self._spawn(self._commit(Transition(p.id, state, detail, answer=ev.answer)))
            return
        state, at = after_failure(p.attempts, ev.error_code, ev.reason, self.clock(), p.expires_at,
                                  self.settings.backoff, self.rng)  # fmt: skip
        detail = f"{ev.stage}: {ev.reason}" + ("" if at is None else f"; next attempt in {at - self.clock():.0f} s")
        self._spawn(self._commit(Transition(p.id, state, detail, cause=ev.reason, next_attempt_at=at)))

    async def _via_hlr(self, p: Push) -> None:
        hlr = SccpAddress.gt_e164(self.settings.hlr_gt or p.msisdn, sccp.SSN_HLR)
        sent = await self._commit(Transition(p.id, State.SENT, "USSD invoke to the HLR for relay to the VLR"))
        if sent is None:
            return  # not committed: it must not leave (at most once to the handset)
        ident = self.network.deliver_via_hlr(p.msisdn, p.text, hlr=hlr, mode=_MODES[p.mode],
                                             route=p.route if p.mode is Mode.REQUEST else None)  # fmt: skip
        self.flight[ident] = sent
        if self.metrics is not None:
            self.metrics.push_in_flight.set(len(self.flight))

    async def _routed(self, ev: PushRouted, p: Push) -> None:
        sent = await self._commit(Transition(p.id, State.SENT, f"USSD invoke to VLR {ev.vlr} for IMSI {ev.imsi}"))
        if sent is None:  # not committed: it must not leave (at most once to the handset)
            self.flight.pop(ev.push, None)
            return
        self.network.deliver(ev.push, ev.imsi, ev.vlr, p.text, mode=_MODES[p.mode], msisdn=p.msisdn,
                             route=p.route if p.mode is Mode.REQUEST else None)  # fmt: skip

    async def _commit(self, change: Transition) -> Push | None:
        try:
            p = await self._committer.commit(change)
        except Exception as exc:
            self.log.error("push.commit_failed", push=change.id, state=change.state.value, error=str(exc))
            return None
        self._count(p)
        if self.metrics is not None and p.state in (State.ACKNOWLEDGED, State.ANSWERED):
            self.metrics.push_latency.observe(max(0.0, p.updated_at - p.created_at))
        return p

    def _count(self, p: Push) -> None:
        if self.metrics is not None:
            # the cause's kind only (a MAP error name, timeout, "mistyped USSD-Res", ...): no free text in a label
            failed = p.state in (State.RETRY_WAIT, State.FAILED, State.EXPIRED)
            cause = (p.cause or "").split(":", 1)[0] if failed else ""
            self.metrics.child(self.metrics.push_states, p.state.value, cause).inc()

    def _spawn(self, coro: Any) -> None:
        self._committer.tasks.add(task := asyncio.create_task(coro))
        task.add_done_callback(self._committer.tasks.discard)


class _Committer:
    """Group commit: the transitions asked for in one loop turn go to the store in one transaction; each caller
    gets its push back once it is durable. A batch the store refuses is retried one by one, so that one bad
    transition does not fail the others."""

    def __init__(self, store: PushStore, clock: Callable[[], float]) -> None:
        self.store = store
        self.clock = clock
        self.pending: list[tuple[Transition, asyncio.Future[Push]]] = []
        self.tasks: set[asyncio.Task[Any]] = set()

    def commit(self, change: Transition) -> asyncio.Future[Push]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Push] = loop.create_future()
        if not self.pending:
            loop.call_soon(self._spawn_flush)
        self.pending.append((change, future))
        return future

    def _spawn_flush(self) -> None:
        self.tasks.add(task := asyncio.create_task(self._flush()))
        task.add_done_callback(self.tasks.discard)

    async def _flush(self) -> None:
        batch, self.pending = self.pending, []
        if not batch:
            return
        try:
            pushes = await self.store.transition_many([c for c, _ in batch], self.clock())
        except Exception:
            for change, future in batch:
                try:
                    (push,) = await self.store.transition_many([change], self.clock())
                except Exception as exc:
                    future.set_exception(exc)
                else:
                    future.set_result(push)
            return
        for (_, future), push in zip(batch, pushes, strict=True):
            future.set_result(push)

    async def drain(self) -> None:
        while self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
