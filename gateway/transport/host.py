"""The stack's host in the asyncio shell: the one owner of a signalling node, its TC-user and the connections.

Everything the stack produces goes through here and nowhere else: the transports hand it their associations'
events (:meth:`StackHost.sink`), it runs the node, gives each table event to the TC-user (the MAP USSD service, or
the network simulator), and dispatches what the TC-user emits to the service registered for that event type
(:meth:`StackHost.on`: the session manager for pull events, the push service for push events). Services act
through the host (:class:`UssdHost`: ``reply``, ``finish``, ``abort``, ``route``, ``deliver``), which supplies
``now`` from the loop's clock. Output is flushed once per loop turn (``call_soon``, as aioquic's ``transmit``),
never re-entered: a service acting while an event is being dispatched only schedules the next flush.

It is also the shell's containment boundary for one event to a service and one timer tick
(gateway/stack/containment.py).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from gateway.codecs.sccp import SccpAddress
from gateway.stack.containment import fault
from gateway.stack.m3ua_asp import Event, M3uaAssociation
from gateway.stack.map_ussd import Mode, UssdService
from gateway.stack.node import SignallingNode
from gateway.stack.tcap_table import AbortIndication, Dialogue, TableEvent


class TcUser(Protocol):
    """The TC-user of the node's dialogue table: takes table events, emits events for the services."""

    events: deque[Any]

    def handle(self, event: TableEvent, now: float) -> None: ...


class Connection(Protocol):
    association: M3uaAssociation
    closed: asyncio.Future[None]

    def flush(self) -> None: ...


U = TypeVar("U", bound=TcUser)


class StackHost(Generic[U]):
    def __init__(self, node: SignallingNode, user: U) -> None:
        self.node = node
        self.user = user
        self.loop = asyncio.get_running_loop()
        self.connections: list[Connection] = []
        self._handlers: dict[type, Callable[[Any], None]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._scheduled = False

    # ---- wiring ----

    def on(self, kind: type, handler: Callable[[Any], None]) -> None:
        """Give every event of type ``kind`` the TC-user emits to ``handler`` (one service per type)."""
        if kind in self._handlers:
            raise ValueError(f"{kind.__name__} already goes to {self._handlers[kind]!r}")
        self._handlers[kind] = handler

    def add(self, connection: Connection) -> None:
        """A transport connection (TCP or SCTP) whose association the node may send on."""
        live: list[Connection] = []
        for c in self.connections:
            if c.association is connection.association:
                continue  # a client's association, reconnected
            if c.closed.done():
                self.node.detach(c.association)  # an accepted connection that has gone: its association with it
                continue
            live.append(c)
        live.append(connection)
        self.connections = live
        self.node.attach(connection.association)

    def sink(self, association: M3uaAssociation, event: Event) -> None:
        """The transports' event sink: one association event into the node, the output at the end of this turn."""
        self.node.attach(association)
        self.node.on_m3ua_event(association, event, self.loop.time())
        self.schedule()

    def now(self) -> float:
        return self.loop.time()

    # ---- output, once per loop turn ----

    def schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        now = self.loop.time()
        if self.user.events:  # emitted by a service's own call (a handset's cancel), not by a table event
            try:
                self._dispatch()
            except Exception as exc:
                self.user.events.clear()
                self.node.faults.internal_error(fault("service", exc))
        table = self.node.table
        for _ in range(100):
            while table.events:
                self._deliver(table.events.popleft(), now)
            self.node.flush(now)
            if not table.events:
                break
        for connection in self.connections:
            connection.flush()
        self._arm(now)

    def _deliver(self, ev: TableEvent, now: float) -> None:
        try:  # the shell's containment boundary: one event to the TC-user and its services
            self.user.handle(ev, now)
            self._dispatch()
        except Exception as exc:
            self.node.faults.internal_error(fault("service", exc))
            self._release(ev, now)

    def _dispatch(self) -> None:
        events = self.user.events
        while events:
            ev = events.popleft()
            handler = self._handlers.get(type(ev))
            if handler is not None:
                handler(ev)

    def _release(self, ev: TableEvent, now: float) -> None:
        """A service failed on ``ev``: abort its dialogue and let the TC-user close what it holds for it."""
        d = getattr(ev, "dialogue", None)
        if not isinstance(d, Dialogue) or isinstance(ev, AbortIndication):
            self.user.events.clear()
            return
        table = self.node.table
        if d.did in table.dialogues:
            table.u_abort(d, outcome="internal-error")
        try:
            self.user.handle(AbortIndication(d, local_reason="internal-error"), now)
            self._dispatch()
        except Exception as exc:
            self.user.events.clear()
            self.node.faults.internal_error(fault("service", exc))

    # ---- time ----

    def _arm(self, now: float) -> None:
        deadline = self.node.next_deadline()
        timer = self._timer
        if deadline is None:
            if timer is not None:
                timer.cancel()
                self._timer = None
        elif timer is None or timer.when() > deadline:
            if timer is not None:
                timer.cancel()
            self._timer = self.loop.call_at(deadline, self._on_timer)
        # else: the armed timer fires no later than needed; _on_timer re-arms for what is due then

    def _on_timer(self) -> None:
        self._timer = None
        try:  # a failing tick must not stop the timers of every other dialogue
            self.node.handle_timer(self.loop.time())
        except Exception as exc:
            self.node.faults.internal_error(fault("timer", exc))
        self._flush()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class UssdHost(StackHost[UssdService]):
    """The gateway's host: the MAP USSD service as TC-user; what services call to act on sessions and pushes."""

    def reply(self, session: int, text: str) -> None:
        self.user.reply(session, text, self.loop.time())
        self.schedule()

    def finish(self, session: int, text: str) -> None:
        self.user.finish(session, text, self.loop.time())
        self.schedule()

    def abort(self, session: int, outcome: str) -> None:
        self.user.abort(session, outcome)
        self.schedule()

    def route(self, msisdn: str, *, hlr: SccpAddress) -> int:
        ident = self.user.route(msisdn, hlr=hlr, now=self.loop.time())
        self.schedule()
        return ident

    def deliver_via_hlr(self, msisdn: str, text: str, *, hlr: SccpAddress, mode: Mode,
                        route: str | None = None) -> int:  # fmt: skip
        ident = self.user.deliver_via_hlr(msisdn, text, hlr=hlr, mode=mode, now=self.loop.time(), route=route)
        self.schedule()
        return ident

    def deliver(self, push: int, imsi: str, vlr: str, text: str, *, mode: Mode, route: str | None = None,
                msisdn: str = "") -> None:  # fmt: skip
        self.user.deliver(push, imsi, vlr, text, mode=mode, now=self.loop.time(), route=route, msisdn=msisdn)
        self.schedule()
