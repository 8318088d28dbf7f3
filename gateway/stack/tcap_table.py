"""The TCAP dialogue table: Q.774 transaction and component sub-layers for the gateway's side, sans-I/O.

Input: TCAP octets with an opaque peer (the SCCP calling address) and ``now``; the TC-user's requests (begin,
continue, end, abort). Output: ``outgoing`` (peer, TCAP octets) and ``events`` for the TC-user (the MAP layer),
and :meth:`next_deadline` for the shell's timer.

What the table answers by itself, as Q.774 §3.2 requires:
- a malformed transaction portion -> P-Abort with its cause (to the otid when it could be read);
- a Continue or Abort for an unknown dtid -> P-Abort unrecognizedTransactionID (Continue) / discarded (Abort);
- a Begin when the table is full -> P-Abort resourceLimitation;
- a Begin with an application context the gateway does not support -> dialogue refused: U-Abort carrying an AARE
  reject-permanent, dialogue-service-user application-context-name-not-supported (Q.773 §4.2.2);
- a malformed component -> Reject (general problem) in a Continue of the same dialogue.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Any

from gateway.codecs import tcap
from gateway.codecs.errors import PAbortCause, ProblemKind, ReturnResultProblem, TcapError
from gateway.stack.observer import NULL, StackObserver
from gateway.stack.tid import TidAllocator, TidSpaceExhaustedError, tid_bytes, tid_int
from gateway.stack.timer_wheel import TimerHandle, TimerWheel

Peer = Hashable  # the SCCP address the dialogue talks to; opaque here

# Q.773 §3.1 message types and §3.2 problem kinds, as counter labels
_KINDS = {tcap.TAG_BEGIN: "begin", tcap.TAG_CONTINUE: "continue", tcap.TAG_END: "end", tcap.TAG_ABORT: "abort",
          tcap.TAG_UNIDIRECTIONAL: "unidirectional"}  # fmt: skip
_TYPE_KINDS: dict[type, str] = {tcap.Begin: "begin", tcap.Continue: "continue", tcap.End: "end", tcap.Abort: "abort",
                                tcap.Unidirectional: "unidirectional"}  # fmt: skip
_PROBLEM_KINDS = {k.value: k.name.lower() for k in ProblemKind}


class DState(enum.Enum):
    INITIAL_SENT = "initiation-sent"
    INITIAL_RECEIVED = "initiation-received"
    ACTIVE = "active"


class Dialogue:
    """One dialogue. Slotted: the table holds up to a million of them."""

    __slots__ = ("ac", "did", "idle_timer", "invokes", "local", "next_invoke", "peer", "remote", "started",
                 "state", "user")  # fmt: skip

    def __init__(self, did: int, peer: Peer, state: DState, ac: tuple[int, ...] | None, now: float) -> None:
        self.did = did
        self.peer = peer
        self.state = state
        self.ac = ac
        self.remote: bytes | None = None
        self.idle_timer: TimerHandle | None = None
        self.invokes: dict[int, TimerHandle] | None = None  # pending invokes we sent, with their timers
        self.next_invoke = 1
        self.started = now
        self.local = state is DState.INITIAL_SENT  # we began it (TC-BEGIN sent), else the peer did
        self.user: Any = None  # the TC-user's state (the MAP dialogue)


# ---- events to the TC-user ----


@dataclass(frozen=True, slots=True)
class BeginIndication:
    dialogue: Dialogue
    ac: tuple[int, ...] | None
    user_information: tuple[bytes, ...]
    components: tuple[tcap.Component, ...]


@dataclass(frozen=True, slots=True)
class ContinueIndication:
    dialogue: Dialogue
    components: tuple[tcap.Component, ...]
    accepted: bool = False  # the first Continue answering our Begin (AARE accepted, or none for AC v1)


@dataclass(frozen=True, slots=True)
class EndIndication:
    dialogue: Dialogue
    components: tuple[tcap.Component, ...]
    user_information: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class AbortIndication:
    """The dialogue ended abnormally: by the peer (P-Abort cause, U-Abort ABRT, or refusal AARE) or locally."""

    dialogue: Dialogue
    p_abort_cause: int | None = None
    user_abort: tcap.Dialogue | None = None
    local_reason: str | None = None  # "idle-timeout", "protocol-error" ...


@dataclass(frozen=True, slots=True)
class InvokeTimeout:
    dialogue: Dialogue
    invoke_id: int


@dataclass(frozen=True, slots=True)
class Unhandled:
    """Something the table answered or dropped by itself (for metrics and logs)."""

    what: str
    detail: str


TableEvent = (BeginIndication | ContinueIndication | EndIndication | AbortIndication | InvokeTimeout
              | Unhandled)  # fmt: skip


class TableFullError(Exception):
    """No room for a new dialogue (capacity or TID space)."""


class DialogueTable:
    def __init__(
        self,
        *,
        supported_acs: Iterable[tuple[int, ...]],
        capacity: int = 100_000,
        idle_timeout: float = 120.0,
        invoke_timeout: float = 30.0,
        tid_prefix: int = 0,
        tid_prefix_bits: int = 0,
        resolution: float = 0.05,
        now: float = 0.0,
    ) -> None:
        self.supported_acs = frozenset(supported_acs)
        self.capacity = capacity
        self.idle_timeout = idle_timeout
        self.invoke_timeout = invoke_timeout
        self.tids = TidAllocator(tid_prefix, tid_prefix_bits)
        self.timers: TimerWheel[tuple[int, int]] = TimerWheel(resolution, now)  # (did, invoke id or -1)
        self.dialogues: dict[int, Dialogue] = {}
        self.outgoing: deque[tuple[Peer, bytes]] = deque()
        self.events: deque[TableEvent] = deque()
        self.now = now  # the latest time the table was given
        # Told of every message and every dialogue's end; outcomes: end-sent, end-received, end-local, u-abort-sent,
        # u-abort-received, p-abort-received, refused, protocol-error, idle-timeout, sccp-return, internal-error.
        self.observer: StackObserver = NULL

    def __len__(self) -> int:
        return len(self.dialogues)

    # ---- from the network ----

    def receive(self, data: bytes, peer: Peer, now: float) -> None:
        self.now = now
        self.observer.tcap_message("rx", _KINDS.get(data[0], "unknown") if data else "unknown")
        try:
            msg = tcap.decode(data)
        except TcapError as exc:
            self._on_error(exc, peer, now)
            return
        self._count("rx", msg)
        if isinstance(msg, tcap.Begin):
            self._on_begin(msg, peer, now)
        elif isinstance(msg, tcap.Continue):
            d = self._lookup(msg.dtid)
            if d is None:
                self.p_abort(peer, msg.otid, PAbortCause.UNRECOGNIZED_TRANSACTION_ID, "Continue for unknown dtid")
                return
            accepted = False
            if d.state is DState.INITIAL_SENT:
                d.remote = msg.otid
                dlg = msg.dialogue
                if isinstance(dlg, tcap.Aare) and dlg.result != tcap.ACCEPTED:
                    self._release(d, "refused")
                    self.events.append(AbortIndication(d, user_abort=dlg))
                    return
                d.state = DState.ACTIVE
                accepted = True
            d.peer = peer  # the peer may answer from another GT of its pool (Q.714 §4.1.1 note)
            self._touch(d, now)
            self._results(d, msg.components)
            self.events.append(ContinueIndication(d, msg.components, accepted))
        elif isinstance(msg, tcap.End):
            d = self._lookup(msg.dtid)
            if d is None:
                self.events.append(Unhandled("end-unknown-dtid", msg.dtid.hex()))
                return
            self._results(d, msg.components)
            dlg = msg.dialogue
            refused = d.state is DState.INITIAL_SENT and isinstance(dlg, tcap.Aare) and dlg.result != tcap.ACCEPTED
            self._release(d, "refused" if refused else "end-received")
            if d.state is DState.INITIAL_SENT and isinstance(dlg, tcap.Aare) and dlg.result != tcap.ACCEPTED:
                self.events.append(AbortIndication(d, user_abort=dlg))
                return
            ui = dlg.user_information if dlg is not None else ()
            self.events.append(EndIndication(d, msg.components, ui))
        elif isinstance(msg, tcap.Abort):
            d = self._lookup(msg.dtid)
            if d is None:
                self.events.append(Unhandled("abort-unknown-dtid", msg.dtid.hex()))
                return
            self._release(d, "p-abort-received" if msg.p_abort_cause is not None else "u-abort-received")
            self.events.append(AbortIndication(d, msg.p_abort_cause, msg.dialogue))
        else:
            self.events.append(Unhandled("unidirectional", repr(msg.components)[:80]))

    def _on_begin(self, msg: tcap.Begin, peer: Peer, now: float) -> None:
        ac = msg.dialogue.application_context if isinstance(msg.dialogue, tcap.Aarq) else None
        if ac is not None and ac not in self.supported_acs:
            # Q.773 §4.2.2 / TS 29.002 §15.1: refuse with AARE reject-permanent, AC name not supported, and the
            # AC we would accept for this operation family when there is one of the same family.
            offer = next((a for a in sorted(self.supported_acs, reverse=True) if a[:-1] == ac[:-1]), ac)
            refusal = tcap.Aare(offer, tcap.REJECT_PERMANENT, tcap.DIAG_USER, tcap.DIAG_AC_NOT_SUPPORTED)
            self._send(peer, tcap.Abort(msg.otid, None, refusal))
            self.events.append(Unhandled("ac-not-supported", ".".join(map(str, ac))))
            return
        try:
            d = self._new(peer, DState.INITIAL_RECEIVED, ac, now)
        except TableFullError as exc:
            self.p_abort(peer, msg.otid, PAbortCause.RESOURCE_LIMITATION, str(exc))
            return
        d.remote = msg.otid
        ui = msg.dialogue.user_information if isinstance(msg.dialogue, tcap.Aarq) else ()
        self.events.append(BeginIndication(d, ac, ui, msg.components))

    def _on_error(self, exc: TcapError, peer: Peer, now: float) -> None:
        if exc.reject is not None and isinstance(exc.partial, tcap.Begin | tcap.Continue):
            # A bad component inside a good transaction: handle the good part, then Reject the bad component.
            self.receive(tcap.encode(exc.partial), peer, now)
            local = exc.partial.dtid if isinstance(exc.partial, tcap.Continue) else None
            d = self._lookup(local) if local is not None else self._by_remote(exc.partial.otid, peer)
            if d is not None and d.remote is not None:
                kind, code = exc.reject
                reject = tcap.Reject(exc.invoke_id, kind, code)
                self._send_continue(d, (reject,))
            return
        if exc.p_abort_cause is not None and exc.otid is not None:
            self.p_abort(peer, exc.otid, exc.p_abort_cause, str(exc))
            if exc.dtid is not None and (d := self._lookup(exc.dtid)) is not None:
                self._release(d, "protocol-error")
                self.events.append(AbortIndication(d, local_reason="protocol-error"))
            return
        if exc.dtid is not None and (d := self._lookup(exc.dtid)) is not None:
            # No otid to answer to (End/Abort): the dialogue is over for us; tell the TC-user.
            self._release(d, "protocol-error")
            self.events.append(AbortIndication(d, local_reason="protocol-error"))
            return
        self.events.append(Unhandled("discarded", str(exc)))

    # ---- from the TC-user ----

    def begin(self, peer: Peer, ac: tuple[int, ...], components: tuple[tcap.Component, ...],
              user_information: tuple[bytes, ...] = (), *, now: float) -> Dialogue:  # fmt: skip
        self.now = max(self.now, now)
        d = self._new(peer, DState.INITIAL_SENT, ac, now)
        self._track_invokes(d, components, now)
        msg = tcap.Begin(tid_bytes(d.did), tcap.Aarq(ac, user_information), components)
        self._send(peer, msg)
        return d

    def new_invoke_id(self, d: Dialogue) -> int:
        """An invoke ID not pending in this dialogue (Q.774 §3.2.2.1: 1..127 here, wrapping)."""
        pending = d.invokes or {}
        for _ in range(127):
            iid = d.next_invoke
            d.next_invoke = iid % 127 + 1
            if iid not in pending:
                return iid
        raise TableFullError("127 invokes pending in one dialogue")

    def continue_(self, d: Dialogue, components: tuple[tcap.Component, ...], now: float) -> None:
        if self.dialogues.get(d.did) is not d:
            return  # already ended (its AbortIndication is on its way to the TC-user): nothing to send
        self.now = max(self.now, now)
        self._track_invokes(d, components, now)
        self._touch(d, now)
        self._send_continue(d, components)

    def end(self, d: Dialogue, components: tuple[tcap.Component, ...] = (),
            user_information: tuple[bytes, ...] = ()) -> None:  # fmt: skip
        if self.dialogues.get(d.did) is not d:
            return  # already ended: a second TC-END for the same transaction would reach nobody
        if d.remote is None:
            self._release(d, "end-local")  # prearranged end of a dialogue the peer never answered: nothing to send
            return
        dialogue = None
        if d.state is DState.INITIAL_RECEIVED and d.ac is not None:
            dialogue = tcap.Aare(d.ac, user_information=user_information)
        self._send(d.peer, tcap.End(d.remote, dialogue, components))
        self._release(d, "end-sent")

    def u_abort(self, d: Dialogue, user_information: tuple[bytes, ...] = (), *,
                outcome: str = "u-abort-sent") -> None:  # fmt: skip
        if self.dialogues.get(d.did) is not d:
            return  # already ended (e.g. the idle timer fired in the same tick as an invoke timer): no second abort
        if d.remote is not None:
            abrt: tcap.Dialogue = tcap.Abrt(tcap.ABORT_SOURCE_USER, user_information)
            self._send(d.peer, tcap.Abort(d.remote, None, abrt))
        self._release(d, outcome)

    # ---- time ----

    def handle_timer(self, now: float) -> None:
        self.now = now
        for did, iid in self.timers.expire(now):
            d = self.dialogues.get(did)
            if d is None:
                continue
            if iid < 0:
                d.idle_timer = None
                self.u_abort(d, outcome="idle-timeout")
                self.events.append(AbortIndication(d, local_reason="idle-timeout"))
            elif d.invokes is not None and d.invokes.pop(iid, None) is not None:
                self.events.append(InvokeTimeout(d, iid))

    def next_deadline(self) -> float | None:
        return self.timers.next_deadline()

    # ---- internals ----

    def _new(self, peer: Peer, state: DState, ac: tuple[int, ...] | None, now: float) -> Dialogue:
        if len(self.dialogues) >= self.capacity:
            raise TableFullError(f"{self.capacity} dialogues in progress")
        try:
            did = self.tids.allocate()
        except TidSpaceExhaustedError as exc:
            raise TableFullError(str(exc)) from None
        d = Dialogue(did, peer, state, ac, now)
        self.dialogues[did] = d
        d.idle_timer = self.timers.schedule(now + self.idle_timeout, (did, -1))
        return d

    def _lookup(self, dtid: bytes | None) -> Dialogue | None:
        if dtid is None or len(dtid) != 4:
            return None
        return self.dialogues.get(tid_int(dtid))

    def _by_remote(self, otid: bytes, peer: Peer) -> Dialogue | None:
        for d in reversed(self.dialogues.values()):  # the newest: a Begin just handled
            if d.remote == otid and d.peer == peer:
                return d
        return None

    def _touch(self, d: Dialogue, now: float) -> None:
        if d.idle_timer is not None:
            self.timers.cancel(d.idle_timer)
        d.idle_timer = self.timers.schedule(now + self.idle_timeout, (d.did, -1))

    def _track_invokes(self, d: Dialogue, components: tuple[tcap.Component, ...], now: float) -> None:
        for c in components:
            if isinstance(c, tcap.Invoke):
                if d.invokes is None:
                    d.invokes = {}
                d.invokes[c.invoke_id] = self.timers.schedule(now + self.invoke_timeout, (d.did, c.invoke_id))

    def _results(self, d: Dialogue, components: tuple[tcap.Component, ...]) -> None:
        if not d.invokes:
            unexpected = [c for c in components if isinstance(c, tcap.ReturnResult | tcap.ReturnError)]
        else:
            unexpected = []
            for c in components:
                if isinstance(c, tcap.ReturnResult | tcap.ReturnError):
                    handle = d.invokes.get(c.invoke_id)
                    if handle is None:
                        unexpected.append(c)
                    elif not isinstance(c, tcap.ReturnResult) or c.last:
                        self.timers.cancel(handle)
                        del d.invokes[c.invoke_id]
        for c in unexpected:
            self.events.append(Unhandled("result-for-unknown-invoke", f"invoke id {c.invoke_id}"))
            if d.remote is not None and d.did in self.dialogues:
                kind = ProblemKind.RETURN_RESULT if isinstance(c, tcap.ReturnResult) else ProblemKind.RETURN_ERROR
                self._send_continue(d, (tcap.Reject(c.invoke_id, kind, ReturnResultProblem.UNRECOGNIZED_INVOKE_ID),))

    def _send_continue(self, d: Dialogue, components: tuple[tcap.Component, ...]) -> None:
        assert d.remote is not None, "the peer's transaction ID is not known yet"
        dialogue = None
        if d.state is DState.INITIAL_RECEIVED:
            dialogue = tcap.Aare(d.ac) if d.ac is not None else None  # the first answer accepts the dialogue
            d.state = DState.ACTIVE
        self._send(d.peer, tcap.Continue(tid_bytes(d.did), d.remote, dialogue, components))

    def p_abort(self, peer: Peer, otid: bytes, cause: int, detail: str) -> None:
        """Send a P-Abort with ``cause`` to the peer's transaction ``otid`` (Q.774 §3.2.1.2); an otid of other than
        1..4 octets cannot be addressed (Q.773 §3.1: OrigTransactionID is 1..4 octets), so the message is discarded."""
        if not 1 <= len(otid) <= 4:
            self.events.append(Unhandled("discarded", f"{detail} (otid of {len(otid)} octets)"))
            return
        self._send(peer, tcap.Abort(otid, cause))
        self.events.append(Unhandled(f"p-abort-{PAbortCause(cause).name.lower()}", detail))

    def _send(self, peer: Peer, msg: tcap.TcapMessage) -> None:
        self.outgoing.append((peer, tcap.encode(msg)))
        self.observer.tcap_message("tx", _TYPE_KINDS[type(msg)])
        self._count("tx", msg)

    def _count(self, direction: str, msg: tcap.TcapMessage) -> None:
        """Aborts by cause and Rejects by problem, from the value in hand (Q.773 §3.1, §3.2)."""
        if isinstance(msg, tcap.Abort):
            if msg.p_abort_cause is not None:
                self.observer.tcap_abort(direction, "p-abort", str(msg.p_abort_cause))
            else:
                self.observer.tcap_abort(direction, "u-abort", type(msg.dialogue).__name__.lower())
            return
        for c in msg.components:
            if isinstance(c, tcap.Reject):
                kind = _PROBLEM_KINDS.get(c.problem_kind, str(c.problem_kind))
                self.observer.tcap_reject(direction, f"{kind}-{c.problem}")

    def _release(self, d: Dialogue, outcome: str) -> None:
        if self.dialogues.pop(d.did, None) is None:
            return
        self.observer.dialogue_ended("local" if d.local else "remote", outcome, self.now - d.started)
        if d.idle_timer is not None:
            self.timers.cancel(d.idle_timer)
            d.idle_timer = None
        if d.invokes:
            for handle in d.invokes.values():
                self.timers.cancel(handle)
            d.invokes = None
        self.tids.release(d.did)
