"""M3UA association state machine (RFC 4666 §4.3), sans-I/O: whole messages and ``now`` in; events, messages to
send and the next deadline out. The same machine drives M3UA over TCP (framed by gateway.codecs.m3ua_framer) and
over SCTP (the transport picks the stream: management on 0, DATA by SLS).

Two roles:
- ``ASP``: the gateway connects to an SG/STP (the usual deployment). It registers its routing keys with REG_REQ
  when configured (osmo-stp needs that *before* ASPUP for a dynamic ASP), then ASPUP, then ASPAC.
- ``SG``: the gateway accepts an ASP (a directly connected MSC, or the simulator) as SG/IPSP: it answers
  ASPUP/ASPAC/ASPIA/ASPDN/BEAT/REG_REQ.

Errors never close the association by themselves: a malformed or unexpected message is answered with ERR
(RFC 4666 §3.8.1) and the association stays up. Only heartbeat loss and a broken TCP stream end it. Each answer
the SG and the ASP owe the peer is listed, with its clause and its test, in docs/m3ua-conformance.md.
"""

from __future__ import annotations

import enum
import os
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from gateway.codecs import m3ua
from gateway.codecs.errors import M3uaError
from gateway.codecs.m3ua import Aspsm, Asptm, ErrorCode, Mgmt, MsgClass, Rkm, Ssnm
from gateway.stack.containment import CountingObserver, FaultObserver, fault

MGMT_STREAM = 0


class Role(enum.Enum):
    ASP = "asp"
    SG = "sg"


class AspState(enum.Enum):
    DOWN = "down"
    INACTIVE = "inactive"
    ACTIVE = "active"


@dataclass(frozen=True, slots=True)
class AssociationConfig:
    name: str = "m3ua"
    role: Role = Role.ASP
    routing_contexts: tuple[int, ...] = ()  # known RCs (static configuration)
    # Dynamic registration (ASP role): each key registers one routing key (local id, DPC, optional RC).
    routing_keys: tuple[m3ua.RoutingKey, ...] = ()
    traffic_mode: int = m3ua.TrafficMode.LOADSHARE
    asp_identifier: int | None = None
    ack_timeout: float = 2.0  # retransmit ASPUP/ASPAC/REG_REQ (RFC 4666 §4.3.4.1: T(ack))
    beat_interval: float = 10.0  # 0 disables heartbeats
    beat_loss: int = 3  # BEATs without BEAT_ACK before the association is declared lost
    max_queue: int = 10_000  # DATA waiting for ASP-ACTIVE; beyond this sending is refused
    local_point_codes: tuple[int, ...] = ()  # SG role: point codes we answer DAUD for as available
    sg_next_rc: int = 100  # SG role: first routing context handed out to registrations without one


# ---- events ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StateChanged:
    state: AspState


@dataclass(frozen=True, slots=True)
class DataReceived:
    data: m3ua.ProtocolData
    routing_context: int | None


@dataclass(frozen=True, slots=True)
class DestinationState:
    """DUNA/DAVA/DRST/SCON/DUPU for affected point codes (RFC 4666 §3.4)."""

    kind: str  # "unavailable", "available", "restricted", "congested", "user-unavailable"
    point_codes: tuple[m3ua.AffectedPointCode, ...]


@dataclass(frozen=True, slots=True)
class ErrorReceived:
    code: int
    diagnostic: bytes | None


@dataclass(frozen=True, slots=True)
class Notified:
    status_type: int
    status_info: int


@dataclass(frozen=True, slots=True)
class Registered:
    results: tuple[m3ua.RegistrationResult, ...]


@dataclass(frozen=True, slots=True)
class ProtocolErrorSent:
    """We answered the peer's message with an ERR (counted; the association stays up)."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class MalformedErrorReceived:
    """The peer sent an ERR we cannot decode; never answered with an ERR (RFC 4666 §3.8.1), only counted."""

    reason: str
    diagnostic: bytes


@dataclass(frozen=True, slots=True)
class AssociationLost:
    reason: str


Event = (StateChanged | DataReceived | DestinationState | ErrorReceived | Notified | Registered | ProtocolErrorSent
         | MalformedErrorReceived | AssociationLost)  # fmt: skip


@dataclass(slots=True)
class Outgoing:
    stream: int
    data: bytes


@dataclass(slots=True)
class _Pending:
    message: bytes
    deadline: float


@dataclass(slots=True)
class AsRegistry:
    """SG role: the Application Servers (by routing context) and which ASPs serve them (RFC 4666 §4.3.4.3).

    Shared by the associations a server accepts. With the override traffic mode a newly active ASP takes over and
    the previous one is made inactive (NTFY Alternate ASP Active); with loadshare (or broadcast) all stay active;
    a mode other than the one the AS has is refused (ERR Unsupported Traffic Mode Type).
    """

    modes: dict[int, int] = field(default_factory=dict)
    active: dict[int, list[M3uaAssociation]] = field(default_factory=dict)
    touched: set[int] = field(default_factory=set)  # ids of associations with output the shell must flush
    asp_ids: dict[int, M3uaAssociation] = field(default_factory=dict)  # ASP Identifier -> the ASP that is up with it

    def claim_asp_id(self, a: M3uaAssociation, asp_id: int) -> bool:
        """RFC 4666 §3.8.1 Invalid ASP Identifier: an identifier is unique among the ASPs that are up."""
        holder = self.asp_ids.get(asp_id)
        if holder is not None and holder is not a and holder.state is not AspState.DOWN and holder._connected:
            return False
        self.release_asp_id(a)
        self.asp_ids[asp_id] = a
        return True

    def asp_id_of(self, a: M3uaAssociation) -> int | None:
        return next((asp_id for asp_id, holder in self.asp_ids.items() if holder is a), None)

    def release_asp_id(self, a: M3uaAssociation) -> None:
        for asp_id in [i for i, holder in self.asp_ids.items() if holder is a]:
            del self.asp_ids[asp_id]

    def others_active(self, a: M3uaAssociation, rcs: tuple[int, ...]) -> bool:
        """Whether another ASP keeps one of the ASes of ``rcs`` active (then the AS state did not change)."""
        return any(other is not a and other.state is AspState.ACTIVE
                   for rc in rcs for other in self.active.get(rc, ()))  # fmt: skip

    def activate(self, a: M3uaAssociation, rcs: tuple[int, ...], mode: int | None) -> None:
        mode = mode or m3ua.TrafficMode.LOADSHARE
        for rc in rcs:
            known = self.modes.get(rc)
            if known is not None and known != mode and self.active.get(rc):
                raise M3uaError(f"routing context {rc} runs traffic mode {known}, not {mode}",
                                error_code=ErrorCode.UNSUPPORTED_TRAFFIC_MODE_TYPE)  # fmt: skip
        for rc in rcs:
            self.modes[rc] = mode
            members = self.active.setdefault(rc, [])
            if mode == m3ua.TrafficMode.OVERRIDE:
                for other in members:
                    if other is not a and other.state is AspState.ACTIVE:
                        other._set_state(AspState.INACTIVE)
                        # RFC 4666 §3.8.2: the NTFY names the ASP that took over (ETSI TS 102 381 asptm-v-015).
                        other._emit(m3ua.encode(m3ua.ntfy(m3ua.StatusType.OTHER, m3ua.OtherInfo.ALTERNATE_ASP_ACTIVE,
                                                          asp_identifier=self.asp_id_of(a),
                                                          routing_contexts=(rc,))))  # fmt: skip
                        self.touched.add(id(other))
                members[:] = [a]
            elif a not in members:
                members.append(a)

    def deactivate(self, a: M3uaAssociation) -> None:
        for members in self.active.values():
            if a in members:
                members.remove(a)


@dataclass(slots=True)
class M3uaAssociation:
    """One M3UA association in one role. Call :meth:`connection_made` when the transport is up."""

    config: AssociationConfig
    state: AspState = AspState.DOWN
    routing_contexts: tuple[int, ...] = ()
    outgoing: deque[Outgoing] = field(default_factory=deque)
    events: deque[Event] = field(default_factory=deque)
    unavailable: set[int] = field(default_factory=set)  # point codes the peer told us are unavailable (DUNA)
    restricted: set[int] = field(default_factory=set)  # DRST
    congested: dict[int, int] = field(default_factory=dict)  # SCON: point code -> congestion level (0 = cleared)
    user_unavailable: dict[int, tuple[int, int]] = field(default_factory=dict)  # DUPU: pc -> (cause, MTP3 user)
    _pending: _Pending | None = None
    _queue: deque[tuple[int, bytes]] = field(default_factory=deque)
    _next_beat: float | None = None
    _beats_unanswered: int = 0
    _beat_data: bytes = b""
    _connected: bool = False
    _registered: bool = False
    _sg_rcs: dict[int, int] = field(default_factory=dict)  # SG role: local RK id -> RC
    _sg_next_rc: int = 0
    _rx: bytes = b""  # the message being handled, for the Diagnostic Information of an ERR (RFC 4666 §3.8.1)
    registry: AsRegistry | None = None  # SG role: the ASes shared with the server's other associations
    faults: FaultObserver = field(default_factory=CountingObserver)

    def __post_init__(self) -> None:
        self.routing_contexts = self.config.routing_contexts
        self._sg_next_rc = self.config.sg_next_rc

    # ---- inputs ----

    def connection_made(self, now: float) -> None:
        self._connected = True
        self._beats_unanswered = 0
        if self.config.beat_interval > 0:
            self._next_beat = now + self.config.beat_interval
        if self.config.role is Role.ASP:
            if self.config.routing_keys and not self._registered:
                self._send_with_retry(m3ua.encode(m3ua.reg_req(self.config.routing_keys)), now)
            else:
                self._send_aspup(now)

    def connection_lost(self) -> None:
        if self.registry is not None:
            self.registry.deactivate(self)
            self.registry.release_asp_id(self)
        self._connected = False
        self._pending = None
        self._next_beat = None
        self._registered = False
        self._set_state(AspState.DOWN)

    def receive(self, data: bytes, now: float, stream: int | None = None) -> None:
        """One whole M3UA message from the peer; ``stream`` is the SCTP stream it came on (None over TCP).
        The M3UA layer's containment boundary (gateway/stack/containment.py): a defect hit by this message is
        answered with ERR Protocol Error (RFC 4666 §3.8.1) and reported; the association stays up."""
        try:
            self._receive(data, now, stream)
        except Exception as exc:
            self.faults.internal_error(fault("m3ua", exc, data))
            self._rx = b""
            self._reject(data, ErrorCode.PROTOCOL_ERROR, "internal error", bytes(data[:40]))

    def _receive(self, data: bytes, now: float, stream: int | None) -> None:
        try:
            msg_class, msg_type = data[2], data[3]
            if msg_class == MsgClass.TRANSFER and msg_type == 1:
                self._on_data(m3ua.decode_data(data), data, stream)
                return
            msg = m3ua.decode(data)
        except M3uaError as exc:
            self._reject(data, exc.error_code, str(exc), exc.diagnostic or m3ua.diagnostic(data))
            return
        except IndexError:
            self._reject(data, ErrorCode.PROTOCOL_ERROR, "message shorter than its header", bytes(data[:40]))
            return
        self._beats_unanswered = 0  # any message shows the peer is alive
        if stream is not None and stream != MGMT_STREAM and msg.msg_class == MsgClass.MGMT:
            # RFC 4666 §3.8.1 Invalid Stream Identifier: "a Management message was received on a stream other
            # than 0".
            self._reject(data, ErrorCode.INVALID_STREAM_IDENTIFIER, f"MGMT message on stream {stream}",
                         m3ua.diagnostic(data))  # fmt: skip
            return
        handler = _HANDLERS.get((msg.msg_class, msg.msg_type))
        if handler is None:
            self._protocol_error(ErrorCode.UNEXPECTED_MESSAGE, f"{msg.msg_class}/{msg.msg_type} not handled here",
                                 m3ua.diagnostic(data))  # fmt: skip
            return
        if self.config.role is Role.SG:
            allowed = _SG_PARAMETERS.get((msg.msg_class, msg.msg_type))
            extra = [p.tag for p in msg.params if allowed is not None and p.tag not in allowed]
            if extra:
                # RFC 4666 §3.8.1 Unexpected Parameter: the message holds a parameter its definition (§3) lacks.
                self._reject(data, ErrorCode.UNEXPECTED_PARAMETER, f"parameter 0x{extra[0]:04x} is not expected in "
                             f"{msg.msg_class}/{msg.msg_type}", m3ua.diagnostic(data))  # fmt: skip
                return
            na = msg.u32(m3ua.Tag.NETWORK_APPEARANCE)
            if na is not None:
                self._invalid_na(na, data)
                return
        self._rx = data
        try:
            handler(self, msg, now)
        except _AnsweredError:
            pass
        except M3uaError as exc:
            self._reject(data, exc.error_code, str(exc), m3ua.diagnostic(data))
        finally:
            self._rx = b""

    def _reject(self, data: bytes, code: int, reason: str, diagnostic: bytes) -> None:
        if len(data) >= 4 and data[2] == MsgClass.MGMT and data[3] == 0:
            # RFC 4666 §3.8.1: an ERR is never answered with an ERR, however malformed.
            self.events.append(MalformedErrorReceived(reason, bytes(data[:40])))
            return
        self._protocol_error(code, reason, diagnostic)

    def handle_timer(self, now: float) -> None:
        if self._pending is not None and now >= self._pending.deadline:
            self._emit(self._pending.message)  # T(ack) expired: retransmit (RFC 4666 §4.3.4.1)
            self._pending.deadline = now + self.config.ack_timeout
        if self._next_beat is not None and now >= self._next_beat:
            if self._beats_unanswered >= self.config.beat_loss:
                self._next_beat = None
                self.events.append(AssociationLost(f"{self._beats_unanswered} heartbeats unanswered"))
                return
            self._beats_unanswered += 1
            self._beat_data = os.urandom(8)
            self._emit(m3ua.encode(m3ua.beat(self._beat_data)))
            self._next_beat = now + self.config.beat_interval

    def next_deadline(self) -> float | None:
        times = [t for t in (None if self._pending is None else self._pending.deadline, self._next_beat)
                 if t is not None]  # fmt: skip
        return min(times) if times else None

    # ---- sending DATA ----

    def send_data(self, opc: int, dpc: int, sls: int, payload: bytes, *, si: int = 3, ni: int = 2) -> bool:
        """Send user data; queued (bounded) until ASP-ACTIVE. Returns False when refused (queue full)."""
        rc = self.routing_contexts[0] if self.routing_contexts else None
        message = m3ua.encode_data(opc, dpc, si, ni, 0, sls, payload, rc)
        if self.state is AspState.ACTIVE:
            if len(self.outgoing) >= self.config.max_queue:
                return False  # the transport is not draining (peer slow, TCP window full): refuse, never hoard
            self.outgoing.append(Outgoing(1 + (sls & 0x0F), message))
            return True
        if len(self._queue) >= self.config.max_queue:
            return False
        self._queue.append((sls, message))
        return True

    # ---- internals ----

    def _emit(self, message: bytes, stream: int = MGMT_STREAM) -> None:
        self.outgoing.append(Outgoing(stream, message))

    def _send_with_retry(self, message: bytes, now: float) -> None:
        self._emit(message)
        self._pending = _Pending(message, now + self.config.ack_timeout)

    def _send_aspup(self, now: float) -> None:
        self._send_with_retry(m3ua.encode(m3ua.aspup(self.config.asp_identifier)), now)

    def _set_state(self, state: AspState) -> None:
        if state is not self.state:
            self.state = state
            self.events.append(StateChanged(state))
            if state is AspState.ACTIVE:
                while self._queue:
                    sls, message = self._queue.popleft()
                    self.outgoing.append(Outgoing(1 + (sls & 0x0F), message))

    def _protocol_error(self, code: int, reason: str, diagnostic: bytes, *,
                        routing_contexts: tuple[int, ...] = ()) -> None:  # fmt: skip
        self._emit(m3ua.encode(m3ua.err(code, routing_contexts=routing_contexts, diagnostic_info=diagnostic)))
        self.events.append(ProtocolErrorSent(code, reason))

    def _on_data(self, data: m3ua.Data, raw: bytes, stream: int | None) -> None:
        diagnostic = m3ua.diagnostic(raw)  # RFC 4666 §3.8.1: the Diagnostic Information holds the offending message
        if stream == MGMT_STREAM:
            # RFC 4666 §1.4.7: stream 0 carries management only; ETSI TS 102 381 m3ua-sgp-mtr-v-003 (change
            # request) wants ERR Invalid Stream Identifier for DATA on it.
            self._protocol_error(ErrorCode.INVALID_STREAM_IDENTIFIER, "DATA on stream 0", diagnostic)
            return
        if self.state is not AspState.ACTIVE:
            self._protocol_error(ErrorCode.UNEXPECTED_MESSAGE, "DATA while the ASP is not active", diagnostic)
            return
        if self.config.role is Role.SG and data.network_appearance is not None:
            self._invalid_na(data.network_appearance, raw)
            return
        rc = data.routing_context
        if rc is not None and self.routing_contexts and rc not in self.routing_contexts:
            # RFC 4666 §3.8.1 Invalid Routing Context: the ERR names the offending routing context.
            self._protocol_error(ErrorCode.INVALID_ROUTING_CONTEXT, f"DATA for routing context {rc}", diagnostic,
                                 routing_contexts=(rc,))  # fmt: skip
            return
        dpc = data.protocol_data.dpc
        if self.config.role is Role.SG and self.config.local_point_codes and dpc not in self.config.local_point_codes:
            # This SG reaches no other point code: MTP3 would discard the message, and the ASP learns that the
            # destination is unavailable from a DUNA (RFC 4666 §3.4.1, §4.5.1) rather than an ERR (§3.8.1 has none).
            self._emit(m3ua.encode(m3ua.ssnm(Ssnm.DUNA, [m3ua.AffectedPointCode(dpc)],
                                             routing_contexts=(rc,) if rc is not None else ())))  # fmt: skip
            return  # the DUNA shows in the per-type message counters
        self.events.append(DataReceived(data.protocol_data, rc))

    def _invalid_na(self, na: int, data: bytes) -> None:
        # RFC 4666 §3.8.1 Invalid Network Appearance: this SG configures none, so any value is unconfigured; the
        # ERR carries it.
        self._emit(m3ua.encode(m3ua.err(ErrorCode.INVALID_NETWORK_APPEARANCE, network_appearance=na,
                                        diagnostic_info=m3ua.diagnostic(data))))  # fmt: skip
        self.events.append(ProtocolErrorSent(ErrorCode.INVALID_NETWORK_APPEARANCE, f"network appearance {na}"))

    def _as_state(self) -> int:
        """The AS state to notify this ASP of: active while another ASP of its AS is (loadshare), else inactive."""
        if self.registry is not None and self.registry.others_active(self, self.routing_contexts):
            return m3ua.AsStateInfo.AS_ACTIVE
        return m3ua.AsStateInfo.AS_INACTIVE

    def _ntfy_as(self, info: int) -> None:
        self._emit(m3ua.encode(m3ua.ntfy(m3ua.StatusType.AS_STATE_CHANGE, info,
                                         routing_contexts=self.routing_contexts)))  # fmt: skip


# ---- handlers: (class, type) -> function(assoc, msg, now) ----


def _unexpected(what: str) -> M3uaError:
    # RFC 4666 §3.8.1 Unexpected Message: a defined message that is not expected in this role or state.
    return M3uaError(what, error_code=ErrorCode.UNEXPECTED_MESSAGE)


def _aspup(a: M3uaAssociation, msg: m3ua.Message, now: float) -> None:
    if a.config.role is not Role.SG:
        raise _unexpected("ASPUP sent to an ASP")
    asp_id = msg.u32(m3ua.Tag.ASP_IDENTIFIER)  # a value that is not 32 bits: Parameter Field Error
    if asp_id is not None and a.registry is not None and not a.registry.claim_asp_id(a, asp_id):
        # RFC 4666 §3.8.1 Invalid ASP Identifier: another ASP that is up already uses it; this one stays down.
        raise M3uaError(f"ASP Identifier {asp_id} is in use", error_code=ErrorCode.INVALID_ASP_IDENTIFIER)
    was = a.state
    if was is AspState.ACTIVE:
        # RFC 4666 §4.3.4.1: ASP Up from an ASP-ACTIVE ASP is answered with ASP Up Ack "as well as an Error message
        # ('Unexpected Message')"; the ASP becomes ASP-INACTIVE in all its ASes and its registered routing keys are
        # considered deregistered. The ERR goes first, as ETSI TS 102 381 m3ua-sgp-aspsm-o-003 expects it.
        a._protocol_error(ErrorCode.UNEXPECTED_MESSAGE, "ASPUP while ASP-ACTIVE", m3ua.diagnostic(a._rx))
        if a.registry is not None:
            a.registry.deactivate(a)
        a._sg_rcs.clear()
        a.routing_contexts = a.config.routing_contexts
    a._emit(m3ua.encode(m3ua.aspup_ack(a.config.asp_identifier)))
    a._set_state(AspState.INACTIVE)
    if was is not AspState.INACTIVE:
        # RFC 4666 §4.3.4.5: the ASP is told the state of its AS. A duplicate ASP Up (already ASP-INACTIVE) gets
        # the ASP Up Ack and "no further action is taken" (§4.3.4.1): no NTFY.
        a._ntfy_as(a._as_state())


def _aspup_ack(a: M3uaAssociation, msg: m3ua.Message, now: float) -> None:
    if a.config.role is not Role.ASP:
        raise _unexpected("ASPUP_ACK sent to an SG")
    if a.state is not AspState.DOWN:
        return  # a duplicate ACK after a retransmission: nothing to do
    a._pending = None
    a._set_state(AspState.INACTIVE)
    a._send_with_retry(m3ua.encode(m3ua.aspac(a.config.traffic_mode, a.routing_contexts)), now)


def _check_rcs(a: M3uaAssociation, rcs: tuple[int, ...]) -> None:
    known = set(a.config.routing_contexts) | set(a._sg_rcs.values())
    bad = tuple(rc for rc in rcs if rc not in known)
    if known and bad:
        # RFC 4666 §3.8.1 Invalid Routing Context (ETSI TS 102 381 m3ua-sgp-asptm-i-005); the ERR names them.
        a._protocol_error(ErrorCode.INVALID_ROUTING_CONTEXT, f"routing contexts {bad} are not configured",
                          m3ua.diagnostic(a._rx), routing_contexts=bad)  # fmt: skip
        raise _AnsweredError


class _AnsweredError(Exception):
    """The handler has already answered with an ERR."""


def _aspac(a: M3uaAssociation, msg: m3ua.Message, now: float) -> None:
    if a.config.role is not Role.SG:
        raise _unexpected("ASPAC sent to an ASP")
    if a.state is AspState.DOWN:
        raise _unexpected("ASPAC before ASPUP")  # RFC 4666 §4.3.4.3; ETSI TS 102 381 m3ua-sgp-aspsm-i-003
    mode = msg.u32(m3ua.Tag.TRAFFIC_MODE_TYPE)
    if mode is not None and mode not in (m3ua.TrafficMode.OVERRIDE, m3ua.TrafficMode.LOADSHARE):
        # RFC 4666 §3.8.1 Unsupported Traffic Mode Type. Broadcast is refused too: the node hands each message to
        # one ASP, never to all (ETSI TS 102 381 m3ua-sgp-asptm-i-003 / -i-004).
        raise M3uaError(f"traffic mode {mode}", error_code=ErrorCode.UNSUPPORTED_TRAFFIC_MODE_TYPE)
    rcs = msg.routing_contexts
    _check_rcs(a, rcs)
    if rcs:
        a.routing_contexts = rcs
    if a.registry is not None:
        a.registry.activate(a, rcs or a.routing_contexts, mode)
    a._emit(m3ua.encode(m3ua.aspac_ack(mode, rcs)))
    if a.state is not AspState.ACTIVE:
        a._set_state(AspState.ACTIVE)
        a._emit(m3ua.encode(m3ua.ntfy(m3ua.StatusType.AS_STATE_CHANGE, m3ua.AsStateInfo.AS_ACTIVE,
                                      routing_contexts=rcs)))  # fmt: skip
    # else: a duplicate ASP Active (ETSI TS 102 381 m3ua-sgp-asptm-o-001) is acknowledged; the AS did not change.


def _aspac_ack(a: M3uaAssociation, msg: m3ua.Message, now: float) -> None:
    if a.config.role is not Role.ASP:
        raise _unexpected("ASPAC_ACK sent to an SG")
    a._pending = None
    if msg.routing_contexts:
        a.routing_contexts = msg.routing_contexts
    a._set_state(AspState.ACTIVE)


def _aspia(a: M3uaAssociation, msg: m3ua.Message, now: float) -> None:
    if a.config.role is not Role.SG:
        raise _unexpected("ASPIA sent to an ASP")
    if a.state is AspState.DOWN:
        raise _unexpected("ASPIA before ASPUP")  # RFC 4666 §4.3.1: ASPTM only once the ASP is up
    _check_rcs(a, msg.routing_contexts)
    was = a.state
    if a.registry is not None:
        a.registry.deactivate(a)
    a._emit(m3ua.encode(m3ua.aspia_ack(msg.routing_contexts)))
    if was is AspState.ACTIVE:
        a._set_state(AspState.INACTIVE)
        if a._as_state() == m3ua.AsStateInfo.AS_INACTIVE:
            # RFC 4666 §4.3.4.4 / §4.3.2: the last active ASP went inactive, the AS goes AS-PENDING (NTFY to its
            # inactive ASPs, ETSI TS 102 381 m3ua-sgp-asptm-v-008); this SG buffers nothing, so T(r) is 0 and the
            # AS is AS-INACTIVE at once.
            a._ntfy_as(m3ua.AsStateInfo.AS_PENDING)
            a._ntfy_as(m3ua.AsStateInfo.AS_INACTIVE)


def _aspia_ack(a: M3uaAssociation, msg: m3ua.Message, now: float) -> None:
    if a.config.role is not Role.ASP:
        raise _unexpected("ASPIA_ACK sent to an SG")
    a._pending = None
    if a.state is AspState.ACTIVE:
        a._set_state(AspState.INACTIVE)


def _aspdn(a: M3uaAssociation, msg: m3ua.Message, now: float) -> None:
    if a.config.role is not Role.SG:
        raise _unexpected("ASPDN sent to an ASP")
    if a.registry is not None:
        a.registry.deactivate(a)
        a.registry.release_asp_id(a)
    a._emit(m3ua.encode(m3ua.aspdn_ack()))  # RFC 4666 §4.3.4.2: acknowledged in every state (m3ua-sgp-aspsm-o-004)
    a._set_state(AspState.DOWN)


def _aspdn_ack(a: M3uaAssociation, msg: m3ua.Message, now: float) -> None:
    if a.config.role is not Role.ASP:
        raise _unexpected("ASPDN_ACK sent to an SG")
    a._pending = None
    a._set_state(AspState.DOWN)


def _beat(a: M3uaAssociation, msg: m3ua.Message, now: float) -> None:
    # RFC 4666 §3.5.6: the BEAT Ack carries the BEAT's parameters "without any change" (none when it had none).
    a._emit(m3ua.encode(m3ua.Message(MsgClass.ASPSM, Aspsm.BEAT_ACK, msg.params)))


def _beat_ack(a: M3uaAssociation, msg: m3ua.Message, now: float) -> None:
    a._beats_unanswered = 0


def _err(a: M3uaAssociation, msg: m3ua.Message, now: float) -> None:
    if msg.error_code is None:
        raise M3uaError("ERR without Error Code", error_code=ErrorCode.MISSING_PARAMETER)  # counted, not answered
    a.events.append(ErrorReceived(msg.error_code, msg.get(m3ua.Tag.DIAGNOSTIC_INFORMATION)))


def _ntfy(a: M3uaAssociation, msg: m3ua.Message, now: float) -> None:
    status = msg.status
    if status is None:
        raise M3uaError("NTFY without Status", error_code=ErrorCode.MISSING_PARAMETER)
    if status[0] not in (m3ua.StatusType.AS_STATE_CHANGE, m3ua.StatusType.OTHER):
        # RFC 4666 §3.8.2: Status Type 1 or 2; §3.8.1 Invalid Parameter Value
        raise M3uaError(f"status type {status[0]}", error_code=ErrorCode.INVALID_PARAMETER_VALUE)
    a.events.append(Notified(*status))
    if (a.config.role is Role.ASP and status == (m3ua.StatusType.OTHER, m3ua.OtherInfo.ALTERNATE_ASP_ACTIVE)
            and a.state is AspState.ACTIVE):
        a._set_state(AspState.INACTIVE)  # RFC 4666 §4.3.4.3: another ASP took over (override)


_SSNM_KINDS = {Ssnm.DUNA: "unavailable", Ssnm.DAVA: "available", Ssnm.DRST: "restricted", Ssnm.SCON: "congested",
               Ssnm.DUPU: "user-unavailable"}  # fmt: skip


def _ssnm(a: M3uaAssociation, msg: m3ua.Message, now: float) -> None:
    if a.config.role is Role.SG and msg.msg_type != Ssnm.SCON:
        # RFC 4666 §3.4: DUNA/DAVA/DRST/DUPU go from the SGP to the ASP; only SCON may also come from an ASP.
        raise _unexpected(f"SSNM {Ssnm(msg.msg_type).name} sent to an SG")
    apcs = msg.affected_point_codes
    if not apcs:
        raise M3uaError("SSNM without Affected Point Code", error_code=ErrorCode.MISSING_PARAMETER)
    kind = _SSNM_KINDS[Ssnm(msg.msg_type)]
    level = msg.u32(m3ua.Tag.CONGESTION_INDICATIONS) or 0
    if level > 3:  # RFC 4666 §3.4.4: congestion levels 0..3; §3.8.1 Invalid Parameter Value
        raise M3uaError(f"congestion level {level}", error_code=ErrorCode.INVALID_PARAMETER_VALUE)
    cause = msg.get(m3ua.Tag.USER_CAUSE)
    for apc in apcs:
        pc = apc.pc
        if kind == "unavailable":
            a.unavailable.add(pc)
        elif kind == "available":  # DAVA clears everything known about the destination
            a.unavailable.discard(pc)
            a.restricted.discard(pc)
            a.congested.pop(pc, None)
            a.user_unavailable.pop(pc, None)
        elif kind == "restricted":
            a.restricted.add(pc)
        elif kind == "congested":
            if level:
                a.congested[pc] = level
            else:
                a.congested.pop(pc, None)
        elif cause is not None and len(cause) == 4:
            a.user_unavailable[pc] = (int.from_bytes(cause[:2], "big"), int.from_bytes(cause[2:], "big"))
    a.events.append(DestinationState(kind, apcs))


def _daud(a: M3uaAssociation, msg: m3ua.Message, now: float) -> None:
    if a.config.role is not Role.SG:
        raise M3uaError("DAUD sent to an ASP", error_code=ErrorCode.UNEXPECTED_MESSAGE)
    for apc in msg.affected_point_codes:
        available = not a.config.local_point_codes or apc.pc in a.config.local_point_codes
        kind = Ssnm.DAVA if available else Ssnm.DUNA
        a._emit(m3ua.encode(m3ua.ssnm(kind, [apc], routing_contexts=msg.routing_contexts)))


def _reg_req(a: M3uaAssociation, msg: m3ua.Message, now: float) -> None:
    if a.config.role is not Role.SG:
        raise _unexpected("REG_REQ sent to an ASP")
    results = []
    for value in msg.get_all(m3ua.Tag.ROUTING_KEY):
        try:
            key = m3ua.RoutingKey.decode(value)
        except M3uaError:
            # RFC 4666 §3.6.2 / §4.4.1: a key we cannot use is refused in the REG_RSP ("Error - Invalid Routing
            # Key"), not with an ERR (ETSI TS 102 381 m3ua-sgp-rkm-i-003).
            results.append(m3ua.RegistrationResult(_local_rk_id(value), m3ua.RegistrationStatus.INVALID_ROUTING_KEY,
                                                    0))  # fmt: skip
            continue
        rc = key.routing_context
        if rc is None:
            rc = a._sg_rcs.get(key.local_rk_id)
            if rc is None:
                rc = a._sg_next_rc
                a._sg_next_rc += 1
        a._sg_rcs[key.local_rk_id] = rc
        results.append(m3ua.RegistrationResult(key.local_rk_id, m3ua.RegistrationStatus.SUCCESSFULLY_REGISTERED, rc))
    if not results:
        raise M3uaError("REG_REQ without Routing Key", error_code=ErrorCode.MISSING_PARAMETER)
    a._emit(m3ua.encode(m3ua.reg_rsp(results)))


def _local_rk_id(value: bytes) -> int:
    try:
        params = m3ua.decode_parameters(value, 0, len(value))
    except M3uaError:
        return 0
    found = next((p.value for p in params if p.tag == m3ua.Tag.LOCAL_ROUTING_KEY_IDENTIFIER), b"")
    return int.from_bytes(found, "big") if len(found) == 4 else 0


def _reg_rsp(a: M3uaAssociation, msg: m3ua.Message, now: float) -> None:
    if a.config.role is not Role.ASP:
        raise _unexpected("REG_RSP sent to an SG")  # (before, it re-pointed the SG's routing contexts)
    results = msg.registration_results
    a.events.append(Registered(results))
    ok = [r.routing_context for r in results if r.status == m3ua.RegistrationStatus.SUCCESSFULLY_REGISTERED]
    if not ok:
        a._pending = None
        return  # the operator sees the Registered event with the refusal; no ASPUP without a routing key
    a.routing_contexts = tuple(ok)
    a._registered = True
    a._pending = None
    if a.state is AspState.DOWN:
        a._send_aspup(now)


def _dereg_req(a: M3uaAssociation, msg: m3ua.Message, now: float) -> None:
    if a.config.role is not Role.SG:
        raise _unexpected("DEREG_REQ sent to an ASP")
    rcs = msg.routing_contexts
    if not rcs:
        raise M3uaError("DEREG_REQ without Routing Context", error_code=ErrorCode.MISSING_PARAMETER)
    registered = {rc: rk for rk, rc in a._sg_rcs.items()}
    results = []
    for rc in rcs:  # RFC 4666 §3.6.4 / §4.4.2: each routing context gets its own status
        if rc not in registered:
            status = m3ua.DeregistrationStatus.NOT_REGISTERED
        elif a.state is AspState.ACTIVE and rc in a.routing_contexts:
            status = m3ua.DeregistrationStatus.ASP_CURRENTLY_ACTIVE_FOR_ROUTING_CONTEXT
        else:
            status = m3ua.DeregistrationStatus.SUCCESSFULLY_DEREGISTERED
            del a._sg_rcs[registered[rc]]
        results.append(m3ua.DeregistrationResult(rc, status))
    a._emit(m3ua.encode(m3ua.dereg_rsp(results)))


def _dereg_rsp(a: M3uaAssociation, msg: m3ua.Message, now: float) -> None:
    if a.config.role is not Role.ASP:
        raise _unexpected("DEREG_RSP sent to an SG")


Handler = Callable[[M3uaAssociation, m3ua.Message, float], None]
_HANDLERS: dict[tuple[int, int], Handler] = {
    (MsgClass.ASPSM, Aspsm.ASPUP): _aspup,
    (MsgClass.ASPSM, Aspsm.ASPUP_ACK): _aspup_ack,
    (MsgClass.ASPSM, Aspsm.ASPDN): _aspdn,
    (MsgClass.ASPSM, Aspsm.ASPDN_ACK): _aspdn_ack,
    (MsgClass.ASPSM, Aspsm.BEAT): _beat,
    (MsgClass.ASPSM, Aspsm.BEAT_ACK): _beat_ack,
    (MsgClass.ASPTM, Asptm.ASPAC): _aspac,
    (MsgClass.ASPTM, Asptm.ASPAC_ACK): _aspac_ack,
    (MsgClass.ASPTM, Asptm.ASPIA): _aspia,
    (MsgClass.ASPTM, Asptm.ASPIA_ACK): _aspia_ack,
    (MsgClass.MGMT, Mgmt.ERR): _err,
    (MsgClass.MGMT, Mgmt.NTFY): _ntfy,
    (MsgClass.SSNM, Ssnm.DUNA): _ssnm,
    (MsgClass.SSNM, Ssnm.DAVA): _ssnm,
    (MsgClass.SSNM, Ssnm.DRST): _ssnm,
    (MsgClass.SSNM, Ssnm.SCON): _ssnm,
    (MsgClass.SSNM, Ssnm.DUPU): _ssnm,
    (MsgClass.SSNM, Ssnm.DAUD): _daud,
    (MsgClass.RKM, Rkm.REG_REQ): _reg_req,
    (MsgClass.RKM, Rkm.REG_RSP): _reg_rsp,
    (MsgClass.RKM, Rkm.DEREG_REQ): _dereg_req,
    (MsgClass.RKM, Rkm.DEREG_RSP): _dereg_rsp,
}


_T = m3ua.Tag
_INFO = frozenset({_T.INFO_STRING})
# RFC 4666 §3: the parameters each message an SG receives may carry (anything else: ERR Unexpected Parameter).
_SG_PARAMETERS: dict[tuple[int, int], frozenset[int]] = {
    (MsgClass.ASPSM, Aspsm.ASPUP): _INFO | {_T.ASP_IDENTIFIER},
    (MsgClass.ASPSM, Aspsm.ASPDN): _INFO,
    (MsgClass.ASPSM, Aspsm.BEAT): frozenset({_T.HEARTBEAT_DATA}),
    (MsgClass.ASPSM, Aspsm.BEAT_ACK): frozenset({_T.HEARTBEAT_DATA}),
    (MsgClass.ASPTM, Asptm.ASPAC): _INFO | {_T.TRAFFIC_MODE_TYPE, _T.ROUTING_CONTEXT},
    (MsgClass.ASPTM, Asptm.ASPIA): _INFO | {_T.ROUTING_CONTEXT},
    (MsgClass.MGMT, Mgmt.NTFY): _INFO | {_T.STATUS, _T.ASP_IDENTIFIER, _T.ROUTING_CONTEXT},
    (MsgClass.SSNM, Ssnm.DAUD): _INFO | {_T.NETWORK_APPEARANCE, _T.ROUTING_CONTEXT, _T.AFFECTED_POINT_CODE},
    (MsgClass.SSNM, Ssnm.SCON): _INFO | {_T.NETWORK_APPEARANCE, _T.ROUTING_CONTEXT, _T.AFFECTED_POINT_CODE,
                                         _T.CONCERNED_DESTINATION, _T.CONGESTION_INDICATIONS},
    (MsgClass.RKM, Rkm.REG_REQ): frozenset({_T.ROUTING_KEY}),
    (MsgClass.RKM, Rkm.DEREG_REQ): frozenset({_T.ROUTING_CONTEXT}),
}  # ERR is never answered with an ERR, so it is not checked


def drain(assoc: M3uaAssociation) -> tuple[list[Outgoing], list[Event]]:
    """Take everything the machine produced since the last call."""
    out = list(assoc.outgoing)
    events = list(assoc.events)
    assoc.outgoing.clear()
    assoc.events.clear()
    return out, events


__all__: Sequence[str] = [
    "AsRegistry", "AspState", "AssociationConfig", "AssociationLost", "DataReceived", "DestinationState",
    "ErrorReceived", "M3uaAssociation", "Notified", "Outgoing", "ProtocolErrorSent", "Registered", "Role",
    "StateChanged", "drain",
]  # fmt: skip
