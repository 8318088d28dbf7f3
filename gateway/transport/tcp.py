"""M3UA over TCP: the asyncio shell around :class:`gateway.stack.m3ua_asp.M3uaAssociation`.

TCP has no message boundaries: :class:`gateway.codecs.m3ua_framer.Framer` cuts the stream by the M3UA header
length. A length it cannot resynchronise from is answered with an ERR (protocol error) and the connection is
closed; the server keeps accepting others. The client reconnects with exponential backoff and jitter.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from gateway.codecs.m3ua_framer import Framer, FramingError
from gateway.ops.faults import log_only
from gateway.ops.metrics import StackMetrics
from gateway.stack.containment import FaultObserver, fault
from gateway.stack.m3ua_asp import (
    AsRegistry,
    AssociationConfig,
    AssociationLost,
    Event,
    M3uaAssociation,
    Outgoing,
    drain,
)
from gateway.transport.reconnect import keep_connected

EventSink = Callable[[M3uaAssociation, Event], None]


class M3uaTcpProtocol(asyncio.Protocol):
    """One TCP connection carrying one M3UA association."""

    def __init__(self, association: M3uaAssociation, on_event: EventSink, *, max_message: int = 65536,
                 tap: Callable[[bytes, bool], None] | None = None,
                 metrics: StackMetrics | None = None, faults: FaultObserver | None = None) -> None:  # fmt: skip
        self.metrics = metrics
        self.faults = faults or log_only()
        association.faults = self.faults
        self.tap = tap  # sees every whole M3UA message: (octets, sent by us) - for captures
        self.association = association
        self.on_event = on_event
        self.framer = Framer(max_message)
        self.transport: asyncio.Transport | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._timer: asyncio.TimerHandle | None = None
        self._paused = False  # the transport's write buffer is above its high-water mark

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.association.connection_made(self._now())
        self._after_input()

    def data_received(self, data: bytes) -> None:
        try:  # the last resort: an exception escaping here would make asyncio close the association
            self._received(data)
        except Exception as exc:
            self.faults.internal_error(fault("transport", exc, data))

    def _received(self, data: bytes) -> None:
        now = self._now()
        try:
            messages = self.framer.feed(data)
        except FramingError as exc:
            # Messages complete before the bad header are handled first: nothing the peer sent whole is lost.
            self._deliver(exc.messages, now)
            # RFC 4666 §3.8.1 protocol error: tell the peer, then drop a stream we cannot resynchronise.
            self.association._protocol_error(exc.error_code, str(exc), exc.diagnostic or b"")
            self._after_input()
            if self.transport is not None:
                self.transport.close()
            return
        self._deliver(messages, now)
        self._after_input()

    def _deliver(self, messages: list[bytes], now: float) -> None:
        for message in messages:
            if self.tap is not None:
                self.tap(message, False)
            if self.metrics is not None:
                self.metrics.count_m3ua(self.association.config.name, "rx", message[2], message[3])
            self.association.receive(message, now)

    def pause_writing(self) -> None:
        self._paused = True  # messages stay in the association's bounded queue meanwhile

    def resume_writing(self) -> None:
        self._paused = False
        self._after_input()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.association.connection_lost()
        _, events = drain(self.association)
        for event in events:
            self.on_event(self.association, event)
        if not self.closed.done():
            self.closed.set_result(None)

    # shell
    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def send_data(self, opc: int, dpc: int, sls: int, payload: bytes) -> bool:
        ok = self.association.send_data(opc, dpc, sls, payload)
        self._after_input()
        return ok

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def flush(self) -> None:
        """Write what the association has queued (after the node above handed it DATA)."""
        self._after_input()

    def _after_input(self) -> None:
        if self._paused:
            out: list[Outgoing] = []
            events = list(self.association.events)
            self.association.events.clear()
        else:
            out, events = drain(self.association)
        if self.transport is not None and not self.transport.is_closing():
            for item in out:
                self.transport.write(item.data)  # TCP: one stream, the SCTP stream number does not apply
                if self.tap is not None:
                    self.tap(item.data, True)
                if self.metrics is not None:
                    self.metrics.count_m3ua(self.association.config.name, "tx", item.data[2], item.data[3])
        for event in events:
            self.on_event(self.association, event)
            if isinstance(event, AssociationLost) and self.transport is not None:
                self.transport.close()
        self._arm_timer()

    def _arm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.association.next_deadline()
        if deadline is not None:
            self._timer = asyncio.get_running_loop().call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.association.handle_timer(self._now())
        self._after_input()


async def serve(host: str, port: int, config: AssociationConfig, on_event: EventSink,
                on_connection: Callable[[M3uaTcpProtocol], None] | None = None,
                metrics: StackMetrics | None = None,
                faults: FaultObserver | None = None) -> asyncio.Server:  # fmt: skip
    """Accept ASPs (SG/IPSP role): each connection gets its own association built from ``config``; they share
    one :class:`AsRegistry` so that traffic modes (override / loadshare) hold across connections."""
    registry = AsRegistry()
    live: dict[int, M3uaTcpProtocol] = {}

    def sink(association: M3uaAssociation, event: Event) -> None:
        on_event(association, event)
        for ident in list(registry.touched):  # another connection was made inactive: send its NTFY now
            registry.touched.discard(ident)
            other = live.get(ident)
            if other is not None and other.association is not association:
                other.flush()

    def factory() -> M3uaTcpProtocol:
        association = M3uaAssociation(config, registry=registry)
        proto = M3uaTcpProtocol(association, sink, metrics=metrics, faults=faults)
        live[id(association)] = proto
        proto.closed.add_done_callback(lambda _: live.pop(id(association), None))
        if on_connection is not None:
            on_connection(proto)
        return proto

    return await asyncio.get_running_loop().create_server(factory, host, port)


async def run_client(host: str, port: int, config: AssociationConfig, on_event: EventSink, *,
                     on_connection: Callable[[M3uaTcpProtocol], None] | None = None,
                     backoff_initial: float = 0.5, backoff_max: float = 30.0,
                     stop: asyncio.Event | None = None, metrics: StackMetrics | None = None,
                     on_error: Callable[[OSError], None] | None = None,
                     faults: FaultObserver | None = None) -> None:  # fmt: skip
    """Keep one ASP association to an SG/STP up: connect, run until lost, reconnect with exponential backoff and
    full jitter (so that several gateways do not reconnect in step after an STP restart). ``on_error`` hears
    each failed attempt."""
    loop = asyncio.get_running_loop()
    association = M3uaAssociation(config)

    async def connect() -> M3uaTcpProtocol | None:
        try:
            _, proto = await loop.create_connection(
                lambda: M3uaTcpProtocol(association, on_event, metrics=metrics, faults=faults), host, port
            )
        except OSError as exc:
            if on_error is not None:
                on_error(exc)
            return None
        return proto

    await keep_connected(connect, stop=stop or asyncio.Event(), on_connection=on_connection,
                         backoff_initial=backoff_initial, backoff_max=backoff_max)  # fmt: skip
