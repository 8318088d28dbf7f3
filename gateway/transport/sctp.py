"""M3UA over SCTP (RFC 4666 §1.3.1): the same association state machine as over TCP, on a kernel SCTP socket.

SCTP keeps message boundaries, so there is no framer: one recvmsg is one M3UA message. Each message carries the
payload protocol identifier 3 (M3UA) and a stream: management on stream 0, DATA on the stream the association
chose from the SLS. The stdlib socket module is enough: ``sendmsg`` with an SCTP_SNDINFO control message and
``recvmsg`` with SCTP_RCVINFO (RFC 6458 §5.3.4/§5.3.5). Everything else (output, events, timer, containment, the
server's shared AS registry) is :mod:`gateway.transport.association`, as over TCP. This machine's kernel has no
SCTP; the tests run this module under User-Mode Linux (tests/support/uml.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Callable

from gateway.ops.metrics import StackMetrics
from gateway.stack.containment import FaultObserver
from gateway.stack.m3ua_asp import AssociationConfig, M3uaAssociation
from gateway.transport.association import AssociationDriver, DrivenConnection, EventSink, ServerAssociations
from gateway.transport.reconnect import keep_connected

IPPROTO_SCTP = 132
SCTP_INITMSG = 2  # sockopt: struct sctp_initmsg
SCTP_NODELAY = 3
SCTP_RECVRCVINFO = 32  # sockopt: deliver SCTP_RCVINFO with each message
SCTP_SNDINFO = 2  # cmsg type (RFC 6458 §5.3.4)
SCTP_RCVINFO = 3  # cmsg type (RFC 6458 §5.3.5)
M3UA_PPID = 3
STREAMS = 17  # stream 0 for management + 16 for DATA (1 + SLS mod 16)
SCTP_SOCKOPT_BINDX_ADD = 100  # RFC 6458 §9.1 sctp_bindx(), as the Linux sockopt
SCTP_STATUS = 14  # struct sctp_status: the negotiated stream counts
SCTP_GET_PEER_ADDRS = 108
SCTP_GET_LOCAL_ADDRS = 109

_SNDINFO = struct.Struct("=HHIIi")  # snd_sid, snd_flags, snd_ppid (network order), snd_context, snd_assoc_id
_RCVINFO = struct.Struct("=HHHxxIIIIi")  # sid, ssn, flags, (pad), ppid, tsn, cumtsn, context, assoc_id


def sctp_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_SCTP)
    sock.setsockopt(IPPROTO_SCTP, SCTP_INITMSG, struct.pack("=HHHH", STREAMS, STREAMS, 4, 0))
    sock.setsockopt(IPPROTO_SCTP, SCTP_RECVRCVINFO, 1)
    sock.setsockopt(IPPROTO_SCTP, SCTP_NODELAY, 1)
    return sock


def _sockaddr_in(host: str, port: int) -> bytes:
    return struct.pack("=H", socket.AF_INET) + struct.pack("!H", port) + socket.inet_aton(host) + b"\x00" * 8


def bind_multihomed(sock: socket.socket, addresses: list[str], port: int) -> None:
    """Bind to several local IPv4 addresses (multi-homing, RFC 4960 §6.4): the first with bind(), the others
    added with sctp_bindx(SCTP_BINDX_ADD_ADDR); the peer learns them all from the INIT / INIT-ACK."""
    sock.bind((addresses[0], port))
    if len(addresses) > 1:
        port = sock.getsockname()[1]
        packed = b"".join(_sockaddr_in(a, port) for a in addresses[1:])
        sock.setsockopt(IPPROTO_SCTP, SCTP_SOCKOPT_BINDX_ADD, packed)


def addresses_of(sock: socket.socket, *, peer: bool = True) -> list[str]:
    """The IPv4 addresses of the association's peer (or our own), as the kernel knows them."""
    # struct sctp_getaddrs {assoc_id, addr_num, addrs[]}; a one-to-one socket ignores assoc_id (RFC 6458 §8.3)
    raw = sock.getsockopt(IPPROTO_SCTP, SCTP_GET_PEER_ADDRS if peer else SCTP_GET_LOCAL_ADDRS, 8 + 16 * 32)
    _assoc, count = struct.unpack_from("=iI", raw)
    out = []
    pos = 8
    for _ in range(count):
        family = struct.unpack_from("=H", raw, pos)[0]
        if family == socket.AF_INET:
            out.append(socket.inet_ntoa(raw[pos + 4 : pos + 8]))
            pos += 16
        else:  # AF_INET6: sockaddr_in6
            pos += 28
    return out


def outbound_streams(sock: socket.socket) -> int:
    """The number of outbound streams the peer granted (struct sctp_status: assoc_id, state, rwnd, unackdata,
    penddata, instrms, outstrms, ...)."""
    raw = sock.getsockopt(IPPROTO_SCTP, SCTP_STATUS, 256)
    _assoc, _state, _rwnd, _unack, _pend, _instrms, outstrms = struct.unpack_from("=iiIHHHH", raw)
    return int(outstrms)


def send_m3ua(sock: socket.socket, data: bytes, stream: int) -> None:
    info = _SNDINFO.pack(stream, 0, socket.htonl(M3UA_PPID), 0, 0)
    sock.sendmsg([data], [(IPPROTO_SCTP, SCTP_SNDINFO, info)])


def parse_rcvinfo(ancdata: list[tuple[int, int, bytes]]) -> tuple[int, int] | None:
    """(stream, ppid) from the control messages of a recvmsg, when present."""
    for level, kind, value in ancdata:
        if level == IPPROTO_SCTP and kind == SCTP_RCVINFO and len(value) >= _RCVINFO.size:
            sid, _ssn, _flags, ppid, *_ = _RCVINFO.unpack_from(value)
            return sid, socket.ntohl(ppid)
    return None


class M3uaSctpConnection(DrivenConnection):
    """One SCTP association carrying one M3UA association, driven by the event loop's reader callbacks."""

    def __init__(self, sock: socket.socket, association: M3uaAssociation, on_event: EventSink,
                 metrics: StackMetrics | None = None, faults: FaultObserver | None = None) -> None:  # fmt: skip
        self.sock = sock
        self.loop = asyncio.get_running_loop()
        self.received_streams: list[tuple[int, int]] = []  # (stream, ppid) of the last messages, for tests/metrics
        try:
            self.streams = outbound_streams(sock)  # DATA streams are 1..streams-1 (RFC 4666 §1.4.7)
        except OSError:
            self.streams = STREAMS
        super().__init__(AssociationDriver(association, on_event, self._send, self.close, metrics=metrics,
                                           faults=faults))  # fmt: skip
        sock.setblocking(False)
        self.loop.add_reader(sock.fileno(), self._readable)
        self.driver.connected()

    def close(self) -> None:
        if self.closed.done():
            return
        self.loop.remove_reader(self.sock.fileno())
        with contextlib.suppress(OSError):
            self.sock.close()
        self.driver.lost()

    def _readable(self) -> None:
        try:
            data, ancdata, _flags, _addr = self.sock.recvmsg(65536, socket.CMSG_SPACE(_RCVINFO.size))
        except BlockingIOError:
            return
        except OSError:
            self.close()
            return
        if not data:
            self.close()
            return
        self.driver.contained(data, lambda: self._received(data, ancdata))

    def _received(self, data: bytes, ancdata: list[tuple[int, int, bytes]]) -> None:
        info = parse_rcvinfo(ancdata)
        if info is not None:
            self.received_streams.append(info)
            del self.received_streams[:-64]
        self.driver.received(data, self.loop.time(), info[0] if info is not None else None)
        self.driver.flush()

    def _send(self, data: bytes, stream: int) -> bool:
        if stream >= self.streams:  # the peer granted fewer streams than we asked for
            stream = 1 + (stream - 1) % (self.streams - 1) if self.streams > 1 else 0
        try:
            send_m3ua(self.sock, data, stream)
        except OSError:
            self.close()
            return False
        return True


async def serve(host: str, port: int, config: AssociationConfig, on_event: EventSink,
                on_connection: Callable[[M3uaSctpConnection], None] | None = None,
                metrics: StackMetrics | None = None, extra_addresses: tuple[str, ...] = (),
                faults: FaultObserver | None = None) -> socket.socket:  # fmt: skip
    """Accept ASPs over SCTP (SG/IPSP role). Returns the listening socket (close it to stop). Each connection gets
    its own association built from ``config``; they share one :class:`AsRegistry` so that traffic modes (override /
    loadshare) hold across connections, as over TCP."""
    loop = asyncio.get_running_loop()
    listener = sctp_socket()
    bind_multihomed(listener, [host, *extra_addresses], port)
    listener.listen(16)
    listener.setblocking(False)
    server = ServerAssociations(config, on_event, on_connection)

    def accept() -> None:
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            return
        server.accept(lambda association, sink: M3uaSctpConnection(conn, association, sink, metrics, faults))

    loop.add_reader(listener.fileno(), accept)
    return listener


async def run_client(host: str, port: int, config: AssociationConfig, on_event: EventSink, *,
                     on_connection: Callable[[M3uaSctpConnection], None] | None = None,
                     backoff_initial: float = 0.5, backoff_max: float = 30.0,
                     stop: asyncio.Event | None = None, metrics: StackMetrics | None = None,
                     local_addresses: tuple[str, ...] = (),
                     on_error: Callable[[OSError], None] | None = None,
                     faults: FaultObserver | None = None) -> None:  # fmt: skip
    """Keep one ASP association up over SCTP, reconnecting with exponential backoff and full jitter. With
    ``local_addresses`` the association is multi-homed on our side too."""
    loop = asyncio.get_running_loop()
    association = M3uaAssociation(config)

    async def connect() -> M3uaSctpConnection | None:
        sock = sctp_socket()
        if local_addresses:
            bind_multihomed(sock, list(local_addresses), 0)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, (host, port))
        except OSError as exc:
            sock.close()
            if on_error is not None:
                on_error(exc)
            return None
        return M3uaSctpConnection(sock, association, on_event, metrics, faults)

    await keep_connected(connect, stop=stop or asyncio.Event(), on_connection=on_connection,
                         backoff_initial=backoff_initial, backoff_max=backoff_max)  # fmt: skip
