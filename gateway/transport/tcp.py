"""M3UA over TCP: the asyncio shell around :class:`gateway.stack.m3ua_asp.M3uaAssociation`.

TCP has no message boundaries: :class:`gateway.codecs.m3ua_framer.Framer` cuts the stream by the M3UA header
length. A length it cannot resynchronise from is answered with an ERR (protocol error) and the connection is
closed; the server keeps accepting others. The client reconnects with exponential backoff and jitter. Everything
else (output, events, timer, back-pressure, containment) is :class:`gateway.transport.association.AssociationDriver`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from gateway.codecs.m3ua_framer import Framer, FramingError
from gateway.ops.metrics import StackMetrics
from gateway.stack.containment import FaultObserver
from gateway.stack.m3ua_asp import AssociationConfig, M3uaAssociation
from gateway.transport.association import AssociationDriver, DrivenConnection, EventSink, ServerAssociations, Tap
from gateway.transport.reconnect import keep_connected


class M3uaTcpProtocol(DrivenConnection, asyncio.Protocol):
    """One TCP connection carrying one M3UA association."""

    def __init__(self, association: M3uaAssociation, on_event: EventSink, *, max_message: int = 65536,
                 tap: Tap | None = None, metrics: StackMetrics | None = None,
                 faults: FaultObserver | None = None) -> None:  # fmt: skip
        self.framer = Framer(max_message)
        self.transport: asyncio.Transport | None = None
        super().__init__(AssociationDriver(association, on_event, self._write, self.close, metrics=metrics,
                                           faults=faults, tap=tap))  # fmt: skip

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.driver.connected()

    def data_received(self, data: bytes) -> None:
        self.driver.contained(data, lambda: self._received(data))

    def _received(self, data: bytes) -> None:
        now = self.driver.loop.time()
        try:
            messages = self.framer.feed(data)
        except FramingError as exc:
            # Messages complete before the bad header are handled first: nothing the peer sent whole is lost.
            for message in exc.messages:
                self.driver.received(message, now)
            # RFC 4666 §3.8.1 protocol error: tell the peer, then drop a stream we cannot resynchronise.
            self.association._protocol_error(exc.error_code, str(exc), exc.diagnostic or b"")
            self.driver.flush()
            self.close()
            return
        for message in messages:
            self.driver.received(message, now)
        self.driver.flush()

    def pause_writing(self) -> None:
        self.driver.pause()

    def resume_writing(self) -> None:
        self.driver.resume()

    def connection_lost(self, exc: Exception | None) -> None:
        self.driver.lost()

    # shell
    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _write(self, data: bytes, stream: int) -> bool:
        if self.transport is None or self.transport.is_closing():
            return False
        self.transport.write(data)  # TCP: one stream, the SCTP stream number does not apply
        return True


async def serve(host: str, port: int, config: AssociationConfig, on_event: EventSink,
                on_connection: Callable[[M3uaTcpProtocol], None] | None = None,
                metrics: StackMetrics | None = None,
                faults: FaultObserver | None = None) -> asyncio.Server:  # fmt: skip
    """Accept ASPs (SG/IPSP role): each connection gets its own association built from ``config``; they share
    one :class:`AsRegistry` so that traffic modes (override / loadshare) hold across connections."""
    server = ServerAssociations(config, on_event, on_connection)

    def factory() -> M3uaTcpProtocol:
        return server.accept(lambda association, sink: M3uaTcpProtocol(association, sink, metrics=metrics,
                                                                       faults=faults))  # fmt: skip

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
