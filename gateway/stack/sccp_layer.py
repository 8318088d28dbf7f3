"""SCCP connectionless service for the gateway (Q.714 §4), sans-I/O.

- Incoming unitdata for a local subsystem is delivered; XUDT segments are reassembled (Q.714 §4.1.2.2) within a
  timer; unitdata for a subsystem we do not have is returned with UDTS/XUDTS (unequipped user) when the sender
  asked for return on error.
- Incoming UDTS/XUDTS are reported with their cause and the returned data, so the dialogue that sent can fail.
- Outgoing unitdata is routed from the called GT by longest prefix to a DPC (the STP routes by DPC only), sent
  as UDT, or XUDT segments when it does not fit.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from gateway.codecs import sccp
from gateway.codecs.errors import SccpError
from gateway.codecs.m3ua import ProtocolData
from gateway.codecs.sccp import ReturnCause, SccpAddress, Segmentation, Udt, Udts

REASSEMBLY_TIMEOUT = 10.0  # Q.714 §4.1.2.2: T(reassembly), 10-20 s
MAX_REASSEMBLIES = 1024  # reassemblies in progress at once: a peer that opens and never finishes cannot hoard memory


@dataclass(frozen=True, slots=True)
class SccpConfig:
    local_pc: int
    local_ssns: frozenset[int]
    routes: tuple[tuple[str, int], ...] = ()  # (called GT prefix, DPC); the longest prefix wins
    default_dpc: int | None = None
    max_message: int = sccp.MAX_MTP_MESSAGE
    max_reassemblies: int = MAX_REASSEMBLIES


@dataclass(frozen=True, slots=True)
class UnitdataIndication:
    called: SccpAddress
    calling: SccpAddress
    data: bytes
    opc: int
    sls: int
    protocol_class: int


@dataclass(frozen=True, slots=True)
class NoticeIndication:
    """A UDTS/XUDTS: our message could not be delivered (Q.714 §4.2)."""

    cause: int
    called: SccpAddress
    calling: SccpAddress
    data: bytes


@dataclass(frozen=True, slots=True)
class SccpDropped:
    """A received message discarded (Q.714 §4.2 / §4.3). ``reason`` is a metric label: malformed,
    unequipped-user, hop-counter-violation, segmentation-failure, reassembly-timeout, reassembly-limit."""

    reason: str
    detail: str = ""


SccpEvent = UnitdataIndication | NoticeIndication | SccpDropped


@dataclass(slots=True)
class _Reassembly:
    parts: list[bytes]
    expected: int
    deadline: float


@dataclass(slots=True)
class SccpLayer:
    config: SccpConfig
    events: deque[SccpEvent] = field(default_factory=deque)
    outgoing: deque[tuple[int, int, bytes]] = field(default_factory=deque)  # (dpc, sls, SCCP message)
    _reassembly: dict[tuple[bytes, int], _Reassembly] = field(default_factory=dict)
    _seg_ref: int = 0

    def route(self, called: SccpAddress) -> int | None:
        """DPC for a called address: its point code when routed on SSN with a PC, else by GT prefix."""
        if called.route_on_ssn and called.pc is not None:
            return called.pc
        if called.gt is not None:
            best: tuple[int, int] | None = None
            for prefix, dpc in self.config.routes:
                if called.gt.digits.startswith(prefix) and (best is None or len(prefix) > best[0]):
                    best = (len(prefix), dpc)
            if best is not None:
                return best[1]
        if called.pc is not None:
            return called.pc
        return self.config.default_dpc

    def send(self, called: SccpAddress, calling: SccpAddress, data: bytes, *, sls: int = 0,
             protocol_class: int = 1, return_on_error: bool = True) -> bool:  # fmt: skip
        """Queue unitdata; False (and a NoticeIndication) when there is no route for ``called``."""
        dpc = self.route(called)
        if dpc is None:
            self.events.append(NoticeIndication(ReturnCause.NO_TRANSLATION_FOR_ADDRESS, called, calling, data))
            return False
        self._seg_ref = (self._seg_ref + 1) & 0xFFFFFF
        for message in sccp.build_unitdata(called, calling, data, protocol_class=protocol_class,
                                           return_on_error=return_on_error, segmentation_reference=self._seg_ref,
                                           max_message=self.config.max_message):  # fmt: skip
            self.outgoing.append((dpc, sls, message))
        return True

    def receive(self, pd: ProtocolData, now: float) -> None:
        try:
            msg = sccp.decode(pd.data)
        except SccpError as exc:
            # Q.714 §4.3: a message that cannot be decoded is discarded (no UDTS: its addresses are not trusted).
            self.events.append(SccpDropped("malformed", f"from {pd.opc}: {exc}"))
            return
        if isinstance(msg, Udts):
            self.events.append(NoticeIndication(msg.return_cause, msg.called, msg.calling, msg.data))
            return
        if msg.called.ssn not in self.config.local_ssns:
            self._return(msg, ReturnCause.UNEQUIPPED_USER, pd)
            return
        if msg.hop_counter is not None and msg.hop_counter == 0:
            self._return(msg, ReturnCause.HOP_COUNTER_VIOLATION, pd)
            return
        data = msg.data
        if msg.segmentation is not None and not (msg.segmentation.first and msg.segmentation.remaining == 0):
            assembled = self._reassemble(msg, msg.segmentation, now, pd)
            if assembled is None:
                return
            data = assembled
        self.events.append(UnitdataIndication(msg.called, msg.calling, data, pd.opc, pd.sls, msg.protocol_class))

    def handle_timer(self, now: float) -> None:
        # Reassemblies are kept in the order they started, each with the same timeout: the first is due first.
        while self._reassembly:
            key, r = next(iter(self._reassembly.items()))
            if now < r.deadline:
                break
            del self._reassembly[key]
            self.events.append(SccpDropped("reassembly-timeout", "XUDT reassembly timed out (Q.714 §4.1.2.2)"))

    def next_deadline(self) -> float | None:
        for r in self._reassembly.values():
            return r.deadline
        return None

    def _reassemble(self, msg: Udt, seg: Segmentation, now: float, pd: ProtocolData) -> bytes | None:
        key = (msg.calling.lv, seg.local_reference)
        if seg.first:
            self._reassembly.pop(key, None)  # a new first segment restarts it, at the end of the timeout order
            if len(self._reassembly) >= self.config.max_reassemblies:
                self._return(msg, ReturnCause.SEGMENTATION_FAILURE, pd, "reassembly-limit")
                return None
            self._reassembly[key] = _Reassembly([msg.data], seg.remaining, now + REASSEMBLY_TIMEOUT)
            return None
        r = self._reassembly.get(key)
        if r is None or seg.remaining != r.expected - 1:
            self._reassembly.pop(key, None)
            self._return(msg, ReturnCause.SEGMENTATION_FAILURE, pd)
            return None
        r.parts.append(msg.data)
        r.expected = seg.remaining
        if seg.remaining:
            return None
        del self._reassembly[key]
        return b"".join(r.parts)

    def _return(self, msg: Udt, cause: ReturnCause, pd: ProtocolData, reason: str | None = None) -> None:
        if msg.return_on_error:
            self.outgoing.append((pd.opc, pd.sls, sccp.service_for(msg, cause)))
        self.events.append(SccpDropped(reason or cause.name.lower().replace("_", "-"),
                                       f"{cause.name.lower()} for SSN {msg.called.ssn} from {pd.opc}"))
