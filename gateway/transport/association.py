"""The transport-independent driver of one M3UA association: what M3UA over TCP and over SCTP have in common.

:class:`AssociationDriver` runs one :class:`gateway.stack.m3ua_asp.M3uaAssociation` in the asyncio loop: whole
received messages in, the association's output written out (with the capture tap and the per-message metrics), its
events to the shell's sink, its timer (T(ack), BEAT), write back-pressure, the connection's loss, and the last-resort
containment of one read. The transports keep only what differs: framing and the socket calls (``transport/tcp.py``
cuts a byte stream, ``transport/sctp.py`` reads and writes whole messages with their stream, RFC 6458 §5.3.4/§5.3.5),
handed to the driver as two callables: write one message on a stream, close the connection.

:class:`DrivenConnection` is the face both transports show the shell (``association``, ``closed``, ``flush``,
``send_data``, ``tap``, ``faults``); :class:`ServerAssociations` is what a server's accepted connections share.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

from gateway.ops.faults import log_only
from gateway.ops.metrics import StackMetrics
from gateway.stack.containment import FaultObserver, fault
from gateway.stack.m3ua_asp import AsRegistry, AssociationConfig, AssociationLost, Event, M3uaAssociation, drain

EventSink = Callable[[M3uaAssociation, Event], None]
Tap = Callable[[bytes, bool], None]  # every whole M3UA message: (octets, sent by us) - for captures
Write = Callable[[bytes, int], bool]  # one message on a stream; False once the connection can take no more


class AssociationDriver:
    """Drives one association over one connection. The transport calls :meth:`connected` once the connection is
    up, :meth:`received` for each whole message then :meth:`flush` after each read, :meth:`pause` and
    :meth:`resume` as its write buffer fills and drains, and :meth:`lost` once the connection is gone."""

    def __init__(self, association: M3uaAssociation, on_event: EventSink, write: Write, close: Callable[[], None],
                 *, metrics: StackMetrics | None = None, faults: FaultObserver | None = None,
                 tap: Tap | None = None) -> None:  # fmt: skip
        self.loop = asyncio.get_running_loop()
        self.association = association
        self.on_event = on_event
        self.metrics = metrics
        self.faults = faults or log_only()
        association.faults = self.faults
        self.tap = tap
        self.closed: asyncio.Future[None] = self.loop.create_future()
        self._write = write
        self._close = close
        self._timer: asyncio.TimerHandle | None = None
        self._paused = False  # the transport's write buffer is above its high-water mark

    def connected(self) -> None:
        self.association.connection_made(self.loop.time())
        self.flush()

    def contained(self, data: bytes, handle: Callable[[], None]) -> None:
        """Run ``handle``, the transport's work for one read of ``data``: the last containment boundary
        (gateway/stack/containment.py). Whatever escapes it is reported and the association stays up."""
        try:
            handle()
        except Exception as exc:
            self.faults.internal_error(fault("transport", exc, data))

    def received(self, message: bytes, now: float, stream: int | None = None) -> None:
        """One whole M3UA message from the peer, on SCTP ``stream`` (None over TCP). :meth:`flush` after the read."""
        if self.tap is not None:
            self.tap(message, False)
        if self.metrics is not None and len(message) >= 8:
            self.metrics.count_m3ua(self.association.config.name, "rx", message[2], message[3])
        self.association.receive(message, now, stream)

    def send_data(self, opc: int, dpc: int, sls: int, payload: bytes) -> bool:
        ok = self.association.send_data(opc, dpc, sls, payload)
        self.flush()
        return ok

    def flush(self) -> None:
        """Write what the association queued, hand its events to the sink and re-arm its timer."""
        if self.closed.done():
            return  # a client's association outlives the connection: its output waits for the next one
        if not self._paused:  # paused: messages stay in the association's bounded queue meanwhile
            out = list(self.association.outgoing)
            self.association.outgoing.clear()
            for item in out:
                if not self._write(item.data, item.stream):
                    break  # the connection is going away, and the rest with it
                if self.tap is not None:
                    self.tap(item.data, True)
                if self.metrics is not None:
                    self.metrics.count_m3ua(self.association.config.name, "tx", item.data[2], item.data[3])
            if self.closed.done():
                return  # the write failed and the transport closed: lost() handed over the events
        events = list(self.association.events)
        self.association.events.clear()
        for event in events:
            self.on_event(self.association, event)
        if any(isinstance(event, AssociationLost) for event in events):
            self._close()
            if self.closed.done():
                return
        self._arm_timer()

    def pause(self) -> None:
        self._paused = True

    def resume(self) -> None:
        self._paused = False
        self.flush()

    def lost(self) -> None:
        """The connection is gone, whichever side closed it: the association goes down (RFC 4666 §4.3.4.1 ASP-DOWN
        at the SG) and its last events reach the sink."""
        if self.closed.done():
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.association.connection_lost()
        _, events = drain(self.association)
        for event in events:
            self.on_event(self.association, event)
        if not self.closed.done():
            self.closed.set_result(None)

    def _arm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.association.next_deadline()
        if deadline is not None:
            self._timer = self.loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if not self.closed.done():
            self.association.handle_timer(self.loop.time())
            self.flush()


class DrivenConnection:
    """What the shell holds of one connection, whatever carries it: the association, ``closed`` (done once the
    connection is gone), :meth:`flush` and :meth:`send_data`, and the ``tap`` and ``faults`` it may set once the
    connection is made."""

    def __init__(self, driver: AssociationDriver) -> None:
        self.driver = driver
        self.association = driver.association
        self.closed = driver.closed

    @property
    def tap(self) -> Tap | None:
        return self.driver.tap

    @tap.setter
    def tap(self, tap: Tap | None) -> None:
        self.driver.tap = tap

    @property
    def faults(self) -> FaultObserver:
        return self.driver.faults

    @faults.setter
    def faults(self, faults: FaultObserver) -> None:
        self.driver.faults = faults

    def flush(self) -> None:
        """Write what the association has queued (the stack host calls this once per loop turn)."""
        self.driver.flush()

    def send_data(self, opc: int, dpc: int, sls: int, payload: bytes) -> bool:
        return self.driver.send_data(opc, dpc, sls, payload)


C = TypeVar("C", bound=DrivenConnection)


class ServerAssociations(Generic[C]):
    """The associations one server (SG or IPSP role) accepts, over whichever transport. They share one
    :class:`AsRegistry`, so that the traffic modes hold across connections (RFC 4666 §4.3.4.3: with override, the
    ASP that becomes active takes over and the previous one gets NTFY Alternate ASP Active, §3.8.2); that NTFY is
    written as soon as the event that caused it has reached the shell."""

    def __init__(self, config: AssociationConfig, on_event: EventSink,
                 on_connection: Callable[[C], None] | None = None) -> None:  # fmt: skip
        self.config = config
        self.on_event = on_event
        self.on_connection = on_connection
        self.registry = AsRegistry()
        self._live: dict[int, C] = {}  # id(association) -> its connection, while up

    def accept(self, connect: Callable[[M3uaAssociation, EventSink], C]) -> C:
        """A new connection: ``connect`` wraps a new association of this server with the transport."""
        association = M3uaAssociation(self.config, registry=self.registry)
        conn = connect(association, self._sink)
        self._live[id(association)] = conn
        conn.closed.add_done_callback(lambda _: self._live.pop(id(association), None))
        if self.on_connection is not None:
            self.on_connection(conn)
        return conn

    def _sink(self, association: M3uaAssociation, event: Event) -> None:
        self.on_event(association, event)
        for ident in list(self.registry.touched):  # another connection was made inactive: send its NTFY now
            self.registry.touched.discard(ident)
            other = self._live.get(ident)
            if other is not None and other.association is not association:
                other.flush()
