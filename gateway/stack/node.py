"""A signalling node: M3UA associations <-> SCCP <-> the TCAP dialogue table, sans-I/O.

The node owns no sockets. The transport shell calls :meth:`SignallingNode.on_m3ua_event` with what an
association delivered and :meth:`SignallingNode.flush` after the TC-user acted; the node hands SCCP messages to
an ACTIVE association (the one chosen by SLS among those up: load sharing, and failover when one goes down) and
TCAP messages to the table. Both the gateway and the network simulator are built on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.codecs import tcap
from gateway.codecs.errors import CodecError, PAbortCause
from gateway.codecs.sccp import SccpAddress
from gateway.stack.containment import CountingObserver, FaultObserver, fault
from gateway.stack.m3ua_asp import (
    AspState,
    DataReceived,
    DestinationState,
    ErrorReceived,
    Event,
    M3uaAssociation,
    MalformedErrorReceived,
    ProtocolErrorSent,
    StateChanged,
)
from gateway.stack.observer import NULL, StackObserver
from gateway.stack.sccp_layer import NoticeIndication, SccpDropped, SccpLayer, UnitdataIndication
from gateway.stack.tcap_table import AbortIndication, Dialogue, DialogueTable
from gateway.stack.tid import tid_int


@dataclass(slots=True)
class SignallingNode:
    local: SccpAddress  # our calling address (GT + SSN)
    sccp: SccpLayer
    table: DialogueTable
    observer: StackObserver = NULL  # the node's and its table's (gateway/stack/observer.py)
    associations: list[M3uaAssociation] = field(default_factory=list)
    undeliverable: int = 0  # SCCP messages with no ACTIVE association to carry them
    faults: FaultObserver = field(default_factory=CountingObserver)

    def __post_init__(self) -> None:
        self.table.observer = self.observer

    def attach(self, association: M3uaAssociation) -> None:
        if association not in self.associations:
            self.associations.append(association)

    def detach(self, association: M3uaAssociation) -> None:
        if association in self.associations:
            self.associations.remove(association)

    # ---- from the network ----

    def on_m3ua_event(self, association: M3uaAssociation, event: Event, now: float) -> None:
        if isinstance(event, DataReceived):
            self._data_received(event, now)
            return
        name = association.config.name
        if isinstance(event, StateChanged):
            self.observer.asp_state_changed(name, event.state.value)
        elif isinstance(event, DestinationState):
            for apc in event.point_codes:
                self.observer.destination(apc.pc, event.kind != "unavailable")
        elif isinstance(event, ErrorReceived | ProtocolErrorSent):
            self.observer.m3ua_error(name, "rx" if isinstance(event, ErrorReceived) else "tx", str(event.code))
        elif isinstance(event, MalformedErrorReceived):
            self.observer.m3ua_error(name, "rx", "malformed")

    def _data_received(self, event: DataReceived, now: float) -> None:
        """One M3UA DATA: the containment boundary of the SCCP and TCAP layers (gateway/stack/containment.py).
        Whatever this message makes SCCP or the table raise, it is answered as an undecodable message would be, the
        dialogue it started or touched is released, and the fault is reported; the association carries on."""
        table = self.table
        newest = next(reversed(table.dialogues), None)  # dialogues created after it belong to this message
        tcap_data: list[tuple[bytes, SccpAddress]] = []  # the TCAP message being handled and its sender
        try:
            self.sccp.receive(event.data, now)
            self._sccp_events(now, tcap_data)
        except Exception as exc:
            if not tcap_data:
                self.sccp.events.clear()
                self.faults.internal_error(fault("sccp", exc, event.data.data))
                return  # Q.714 §4.3: discarded
            data, peer = tcap_data[-1]
            self.faults.internal_error(fault("tcap", exc, data))
            self._tcap_failed(data, peer, newest)

    def _tcap_failed(self, data: bytes, peer: SccpAddress, newest: int | None) -> None:
        """The table failed on ``data``: release the dialogues it opened or addressed, P-Abort a readable otid."""
        table = self.table
        for did in reversed(list(table.dialogues)):
            if did == newest:
                break
            self._abort_internal(table.dialogues[did])
        tids = tcap.peek_tids(data)
        if tids is None:
            return
        tag, otid, dtid = tids
        if dtid is not None and len(dtid) == 4 and (d := table.dialogues.get(tid_int(dtid))) is not None:
            self._abort_internal(d)
        if otid is not None and tag in (tcap.TAG_BEGIN, tcap.TAG_CONTINUE):
            # Q.774 §3.2.1.2: a message that cannot be processed, with a derivable otid -> P-Abort
            table.p_abort(peer, otid, PAbortCause.BADLY_FORMATTED_TRANSACTION_PORTION, "internal error")

    def _abort_internal(self, d: Dialogue) -> None:
        self.table._release(d, "internal-error")
        self.table.events.append(AbortIndication(d, local_reason="internal-error"))

    def _sccp_events(self, now: float, tcap_data: list[tuple[bytes, SccpAddress]] | None = None) -> None:
        while self.sccp.events:
            ev = self.sccp.events.popleft()
            if isinstance(ev, UnitdataIndication):
                if tcap_data is not None:
                    tcap_data.append((ev.data, ev.calling))
                self.observer.sccp_message("rx", "unitdata")
                self.table.receive(ev.data, ev.calling, now)
            elif isinstance(ev, NoticeIndication):
                self.observer.sccp_return("rx", ev.cause)
                self._returned(ev)
            elif isinstance(ev, SccpDropped):
                self.observer.sccp_dropped(ev.reason)

    def _returned(self, ev: NoticeIndication) -> None:
        """A message of ours came back (UDTS): the dialogue that sent it has failed (Q.714 §4.2)."""
        try:
            msg = tcap.decode(ev.data)
        except CodecError:
            return
        otid = getattr(msg, "otid", None)
        if otid is None or len(otid) != 4:
            return
        d = self.table.dialogues.get(tid_int(otid))
        if d is not None:
            self.table._release(d, "sccp-return")
            self.table.events.append(AbortIndication(d, local_reason=f"sccp-return-cause-{ev.cause}"))

    # ---- to the network ----

    def flush(self, now: float) -> None:
        """Move what the table produced down through SCCP to an active association."""
        while self.table.outgoing:
            peer, data = self.table.outgoing.popleft()
            called = peer if isinstance(peer, SccpAddress) else None
            if called is None:
                continue
            self.sccp.send(called, self.local, data, sls=hash(peer) & 0x0F)
        self._sccp_events(now)
        while self.sccp.outgoing:
            dpc, sls, message = self.sccp.outgoing.popleft()
            active = [a for a in self.associations if a.state is AspState.ACTIVE and dpc not in a.unavailable]
            if not active:
                self.undeliverable += 1
                continue
            assoc = active[sls % len(active)]
            if not assoc.send_data(self.sccp.config.local_pc, dpc, sls, message):
                self.undeliverable += 1  # the association's queue is full

        self.observer.dialogues_active(len(self.table))

    def next_deadline(self) -> float | None:
        times = [t for t in (self.table.next_deadline(), self.sccp.next_deadline()) if t is not None]
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        self.table.handle_timer(now)
        self.sccp.handle_timer(now)
        self._sccp_events(now)
