"""Drives a :class:`SignallingNode` and its TC-user from the transports' events, in the asyncio loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from gateway.stack.containment import fault
from gateway.stack.m3ua_asp import Event, M3uaAssociation
from gateway.stack.node import SignallingNode
from gateway.stack.tcap_table import AbortIndication, Dialogue, TableEvent


class Flushable(Protocol):
    association: M3uaAssociation

    def flush(self) -> None: ...


class NodeRunner:
    """Glue: association events -> node -> table events -> TC-user -> node -> associations -> sockets."""

    def __init__(self, node: SignallingNode, on_table_event: Callable[[TableEvent, float], None]) -> None:
        self.node = node
        self.on_table_event = on_table_event
        self.connections: list[Flushable] = []
        self._timer: asyncio.TimerHandle | None = None

    def add(self, connection: Flushable) -> None:
        self.connections = [c for c in self.connections if c.association is not connection.association]
        self.connections.append(connection)
        self.node.attach(connection.association)

    def sink(self, association: M3uaAssociation, event: Event) -> None:
        now = asyncio.get_running_loop().time()
        self.node.attach(association)
        self.node.on_m3ua_event(association, event, now)
        self.pump(now)

    def pump(self, now: float | None = None) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time() if now is None else now
        table = self.node.table
        for _ in range(100):
            while table.events:
                ev = table.events.popleft()
                try:  # the shell's containment boundary: one event to the TC-user (gateway/stack/containment.py)
                    self.on_table_event(ev, now)
                except Exception as exc:
                    self.node.faults.internal_error(fault("service", exc))
                    self._release(ev, now)
            self.node.flush(now)
            if not table.events:
                break
        for connection in self.connections:
            connection.flush()
        deadline = self.node.next_deadline()
        timer = self._timer
        if deadline is None:
            if timer is not None:
                timer.cancel()
                self._timer = None
        elif timer is None or timer.when() > deadline:
            if timer is not None:
                timer.cancel()
            self._timer = loop.call_at(deadline, self._on_timer)
        # else: the armed timer fires no later than needed; _on_timer re-arms for what is due then

    def _release(self, ev: TableEvent, now: float) -> None:
        """The TC-user failed on ``ev``: abort its dialogue and let the TC-user close what it holds for it."""
        d = getattr(ev, "dialogue", None)
        if not isinstance(d, Dialogue) or isinstance(ev, AbortIndication):
            return
        table = self.node.table
        if d.did in table.dialogues:
            table.u_abort(d, outcome="internal-error")
        try:
            self.on_table_event(AbortIndication(d, local_reason="internal-error"), now)
        except Exception as exc:
            self.node.faults.internal_error(fault("service", exc))

    def _on_timer(self) -> None:
        self._timer = None
        now = asyncio.get_running_loop().time()
        try:  # a failing tick must not stop the timers of every other dialogue
            self.node.handle_timer(now)
        except Exception as exc:
            self.node.faults.internal_error(fault("timer", exc))
        self.pump(now)
