"""MAP USSD dialogues (TS 29.002 §14.7 / TS 24.090 flows), sans-I/O, on top of the TCAP dialogue table.

Pull (mobile-initiated): TC-BEGIN processUnstructuredSS-Request (59) from the MSC/VLR, or relayed by the HLR
(gateway addressed as gsmSCF, IMSI in MAP-OpenInfo destinationReference); then any number of
unstructuredSS-Request (60) exchanges; the final text as the USSD-Res of the 59 invoke in TC-END.

Push (network-initiated), in two calls so that the push store can commit each step before it leaves (write-ahead):
:meth:`UssdService.route` sends sendRoutingInfoForSM (45) to the HLR and reports the IMSI and serving MSC/VLR
number (``PushRouted``); :meth:`UssdService.deliver` then sends the TC-BEGIN to that MSC/VLR with MAP-OpenInfo
(IMSI, gateway GT) and unstructuredSS-Notify (61: the result is the handset's acknowledgement) or
unstructuredSS-Request (60: the result carries the answer).

The application (routing, HTTP, push store) sees only the events below; it calls :meth:`UssdService.reply`,
:meth:`UssdService.finish`, :meth:`UssdService.abort`, :meth:`UssdService.route` and :meth:`UssdService.deliver`.
"""

from __future__ import annotations

import enum
import itertools
from collections import deque
from dataclasses import dataclass, field

from gateway.codecs import map as M  # noqa: N812 - M for MAP reads like the spec's tables
from gateway.codecs import tcap, ussd_string
from gateway.codecs.errors import CodecError, InvokeProblem, ProblemKind
from gateway.codecs.map_address import AddressString, Plan
from gateway.codecs.sccp import SccpAddress
from gateway.stack.containment import CountingObserver, FaultObserver, fault
from gateway.stack.tcap_table import (
    AbortIndication,
    BeginIndication,
    ContinueIndication,
    Dialogue,
    DialogueTable,
    EndIndication,
    InvokeTimeout,
    TableEvent,
    Unhandled,
)

USSD_AC = M.AC_NETWORK_UNSTRUCTURED_SS_V2


class Mode(enum.Enum):
    NOTIFY = 61  # unstructuredSS-Notify: flash text, acknowledged by the handset
    REQUEST = 60  # unstructuredSS-Request: text with an answer


# ---- events to the application ----


@dataclass(frozen=True, slots=True)
class SessionStarted:
    session: int
    text: str
    dcs: int
    msisdn: str | None
    imsi: str | None  # when the HLR relayed the request (MAP-OpenInfo destinationReference)
    peer: SccpAddress  # the MSC/VLR (or HLR) that sent it


@dataclass(frozen=True, slots=True)
class PushSessionStarted:
    """A push in request mode was answered and the MSC/VLR kept the dialogue open: it goes on as a session with
    the application of ``route``, ``answer`` its first input (TS 24.090: the network side continues with
    unstructuredSS-Request and ends with unstructuredSS-Notify)."""

    session: int
    push: int
    route: str
    answer: str
    dcs: int
    msisdn: str
    imsi: str
    peer: SccpAddress  # the MSC/VLR


@dataclass(frozen=True, slots=True)
class UserAnswered:
    session: int
    text: str
    dcs: int


@dataclass(frozen=True, slots=True)
class SessionClosed:
    """The dialogue is over. ``outcome``: completed, user-released, user-aborted, aborted (P-Abort or local
    protocol error), timeout, map-error, rejected."""

    session: int
    outcome: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class PushRouted:
    push: int
    imsi: str
    vlr: str


@dataclass(frozen=True, slots=True)
class PushDelivered:
    """The handset acknowledged a notify (61), or answered a request (60) with ``answer``."""

    push: int
    answer: str | None = None


@dataclass(frozen=True, slots=True)
class PushFailed:
    push: int
    stage: str  # "routing" (HLR) or "delivery" (MSC/VLR)
    reason: str  # MAP error name, "aborted", "refused", "timeout", ...
    error_code: int | None = None


UssdEvent = (SessionStarted | PushSessionStarted | UserAnswered | SessionClosed | PushRouted | PushDelivered
             | PushFailed)  # fmt: skip


class _Kind(enum.Enum):
    PULL = "pull"
    SRI = "sri"
    PUSH = "push"


@dataclass(slots=True)
class _State:
    kind: _Kind
    ident: int
    invoke_59: int | None = None  # pull: the processUnstructuredSS-Request invoke to answer at the end
    pending_60: int | None = None  # our outstanding unstructuredSS-Request
    push_mode: Mode = Mode.NOTIFY
    msisdn: str = ""
    route: str | None = None  # a request push's route: its answer continues as a session
    imsi: str = ""
    closing: int | None = None  # a push-born session's final unstructuredSS-Notify, awaiting its result
    hlr_ac: tuple[int, ...] = M.AC_SHORT_MSG_GATEWAY_V3


@dataclass(slots=True)
class UssdService:
    """Pull and push USSD over a :class:`DialogueTable`. ``local`` is the gateway's own SCCP address."""

    table: DialogueTable
    local: SccpAddress
    events: deque[UssdEvent] = field(default_factory=deque)
    sessions: dict[int, Dialogue] = field(default_factory=dict)
    pushes: dict[int, Dialogue] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    faults: FaultObserver = field(default_factory=CountingObserver)

    # ---- the table's events ----

    def handle(self, event: TableEvent, now: float) -> None:
        """One TC indication: the MAP layer's containment boundary (gateway/stack/containment.py)."""
        try:
            self._handle(event, now)
        except Exception as exc:
            self.faults.internal_error(fault("map", exc, _octets(event)))
            self._contain(event)

    def _contain(self, event: TableEvent) -> None:
        """Answer the indication the MAP layer failed on as an undecodable one, and release its dialogue."""
        d = getattr(event, "dialogue", None)
        if not isinstance(d, Dialogue):
            return
        st = d.user
        if isinstance(st, _State):  # still open for the application: tell it how it ended
            if self.sessions.pop(st.ident, None) is not None:
                self.events.append(SessionClosed(st.ident, "gateway-error", "internal error in the MAP layer"))
            if self.pushes.pop(st.ident, None) is not None:
                stage = "routing" if st.kind is _Kind.SRI else "delivery"
                self.events.append(PushFailed(st.ident, stage, "gateway-error"))
        if d.did not in self.table.dialogues:
            return
        invokes = [c for c in getattr(event, "components", ()) if isinstance(c, tcap.Invoke)]
        if isinstance(event, BeginIndication) and invokes:
            # TS 29.002 §15.6 / Q.774 §3.2.2.2: an operation whose parameter cannot be processed -> Reject
            reject = tcap.Reject(invokes[0].invoke_id, ProblemKind.INVOKE, InvokeProblem.MISTYPED_PARAMETER)
            self.table.end(d, (reject,))
        else:
            self.table.u_abort(d, outcome="internal-error")

    def _handle(self, event: TableEvent, now: float) -> None:
        if isinstance(event, BeginIndication):
            self._on_begin(event)
            return
        if isinstance(event, Unhandled):
            return  # answered or dropped by the table itself: metrics only
        d = event.dialogue
        st = d.user
        if not isinstance(st, _State):
            return
        if st.kind is _Kind.PULL:
            self._pull_event(d, st, event)
        elif st.kind is _Kind.SRI:
            self._sri_event(d, st, event, now)
        else:
            self._push_event(d, st, event)

    # ---- pull ----

    def _on_begin(self, ev: BeginIndication) -> None:
        d = ev.dialogue
        invokes = [c for c in ev.components if isinstance(c, tcap.Invoke)]
        if ev.ac != USSD_AC or len(invokes) != 1 or invokes[0].opcode != M.OP_PROCESS_USSR:
            # An operation the gateway does not serve (TS 29.002 §15.6): reject it and end the dialogue.
            iid = invokes[0].invoke_id if invokes else None
            reject = tcap.Reject(iid, ProblemKind.INVOKE, InvokeProblem.UNRECOGNIZED_OPERATION)
            self.table.end(d, (reject,) if iid is not None else ())
            return
        inv = invokes[0]
        try:
            arg = M.decode_ussd_arg(inv.parameter or b"")
            text = ussd_string.decode(arg.dcs, arg.string)
        except CodecError:
            self.table.end(d, (tcap.Reject(inv.invoke_id, ProblemKind.INVOKE, InvokeProblem.MISTYPED_PARAMETER),))
            return
        imsi = None
        try:
            open_info = M.find_map_dialogue(ev.user_information) if ev.user_information else None
        except CodecError:
            # TS 29.002 §12.1 / §17.4: a MAP dialogue PDU that cannot be decoded is an abnormal dialogue: TC-U-ABORT
            # with MAP-ProviderAbortInfo (abnormalDialogue); no operation is served.
            self.table.u_abort(d, (M.encode_dialogue_external(M.MapProviderAbort()),), outcome="refused")
            return
        if isinstance(open_info, M.MapOpen) and open_info.destination_reference is not None:
            ref = open_info.destination_reference
            if ref.plan == Plan.LAND_MOBILE:  # HLR relay: the IMSI, E.212 (captures/wiki_m2ua_ussd)
                imsi = ref.digits
        ident = next(self._ids)
        d.user = _State(_Kind.PULL, ident, invoke_59=inv.invoke_id)
        self.sessions[ident] = d
        peer = d.peer if isinstance(d.peer, SccpAddress) else self.local
        self.events.append(SessionStarted(ident, text, arg.dcs, arg.msisdn.digits if arg.msisdn else None, imsi,
                                          peer))  # fmt: skip

    def reply(self, session: int, text: str, now: float) -> None:
        """Show ``text`` and wait for the user's answer (unstructuredSS-Request, opcode 60)."""
        parameter = M.encode_ussd_arg(M.ussd_arg(text))  # first: a text that cannot be encoded changes nothing
        d = self.sessions[session]
        st: _State = d.user
        iid = self.table.new_invoke_id(d)
        st.pending_60 = iid
        self.table.continue_(d, (tcap.Invoke(iid, M.OP_USSR, parameter),), now)

    def finish(self, session: int, text: str, now: float) -> None:
        """End the session with ``text``: the USSD-Res of processUnstructuredSS-Request in TC-END; for a session
        born of a push (no such invoke), an unstructuredSS-Notify whose result ends the dialogue."""
        d = self.sessions[session]
        st: _State = d.user
        if st.invoke_59 is None:
            parameter = M.encode_ussd_arg(M.ussd_arg(text))  # first: a text that cannot be encoded changes nothing
            del self.sessions[session]
            st.closing = self.table.new_invoke_id(d)
            self.table.continue_(d, (tcap.Invoke(st.closing, M.OP_USSN, parameter),), now)
        else:
            parameter = M.encode_ussd_res(M.ussd_res(text))
            del self.sessions[session]
            self.table.end(d, (tcap.ReturnResult(st.invoke_59, M.OP_PROCESS_USSR, parameter),))
        self.events.append(SessionClosed(session, "completed"))

    def abort(self, session: int, outcome: str = "aborted") -> None:
        """U-Abort the session (MAP-UserAbort userSpecificReason)."""
        d = self.sessions.pop(session, None) or self.pushes.pop(session, None)
        if d is None:
            return
        self.table.u_abort(d, (M.encode_dialogue_external(M.MapUserAbort()),))
        self.events.append(SessionClosed(session, outcome))

    def _pull_event(self, d: Dialogue, st: _State, ev: TableEvent) -> None:
        sid = st.ident
        if st.closing is not None:  # the session is over for the application: only the dialogue's end is left
            if isinstance(ev, ContinueIndication) and any(c.invoke_id == st.closing for c in ev.components):
                self.table.end(d)
            elif isinstance(ev, InvokeTimeout):
                self.table.u_abort(d)
            return
        if isinstance(ev, ContinueIndication):
            for c in ev.components:
                if isinstance(c, tcap.ReturnResult) and c.invoke_id == st.pending_60 and c.parameter is not None:
                    st.pending_60 = None
                    try:
                        res = M.decode_ussd_res(c.parameter)
                        text = ussd_string.decode(res.dcs, res.string)
                    except CodecError:
                        self.table.u_abort(d)
                        self.sessions.pop(sid, None)
                        self.events.append(SessionClosed(sid, "rejected", "mistyped USSD-Res"))
                        return
                    self.events.append(UserAnswered(sid, text, res.dcs))
                elif isinstance(c, tcap.ReturnError):
                    self._pull_failed(d, sid, c)
                    return
        elif isinstance(ev, EndIndication):
            self.sessions.pop(sid, None)
            err = next((c for c in ev.components if isinstance(c, tcap.ReturnError)), None)
            if err is not None:
                info = M.decode_error(err.error_code if isinstance(err.error_code, int) else -1, err.parameter)
                self.events.append(SessionClosed(sid, "map-error", info.name))
            else:
                self.events.append(SessionClosed(sid, "user-released"))
        elif isinstance(ev, AbortIndication):
            self.sessions.pop(sid, None)
            if ev.local_reason == "idle-timeout":
                outcome = "timeout"
            elif ev.local_reason == "internal-error":
                outcome = "gateway-error"
            elif ev.local_reason is None and ev.p_abort_cause is None:
                outcome = "user-aborted"  # TC-U-ABORT from the MSC: the subscriber cancelled (or the MSC gave up)
            else:
                outcome = "aborted"
            self.events.append(SessionClosed(sid, outcome, _abort_detail(ev)))
        elif isinstance(ev, InvokeTimeout):
            self.sessions.pop(sid, None)
            self.table.u_abort(d, (M.encode_dialogue_external(M.MapUserAbort()),))
            self.events.append(SessionClosed(sid, "timeout", f"no answer to invoke {ev.invoke_id}"))

    def _pull_failed(self, d: Dialogue, sid: int, err: tcap.ReturnError) -> None:
        info = M.decode_error(err.error_code if isinstance(err.error_code, int) else -1, err.parameter)
        self.sessions.pop(sid, None)
        self.table.end(d)
        self.events.append(SessionClosed(sid, "map-error", info.name))

    # ---- push ----

    def route(self, msisdn: str, *, hlr: SccpAddress, now: float) -> int:
        """Step 1 of a push: SRI-for-SM to ``hlr`` for ``msisdn``. Returns the push id its events carry
        (``PushRouted`` with the IMSI and MSC/VLR number, or ``PushFailed`` at stage "routing")."""
        ident = next(self._ids)
        self._send_sri(_State(_Kind.SRI, ident, msisdn=msisdn), hlr, now)
        return ident

    def deliver(self, push: int, imsi: str, vlr: str, text: str, *, mode: Mode, now: float,
                route: str | None = None, msisdn: str = "") -> None:  # fmt: skip
        """Step 2: ``text`` to the handset through the MSC/VLR ``vlr`` (E.164 digits) serving ``imsi``
        (``PushDelivered`` or ``PushFailed`` at stage "delivery"); a request with a ``route`` whose answer comes in
        a TC-CONTINUE goes on as a session (``PushSessionStarted``). A text that cannot be encoded raises before
        anything is sent."""
        arg = M.encode_ussd_arg(M.ussd_arg(text))  # first: a text that cannot be encoded changes nothing
        open_info = M.encode_dialogue_external(M.MapOpen(AddressString.imsi(imsi),
                                                         AddressString.e164(self._local_gt())))  # fmt: skip
        called = SccpAddress.gt_e164(vlr, 7)  # VLR SSN (Q.713 Annex B)
        d = self.table.begin(called, USSD_AC, (tcap.Invoke(1, mode.value, arg),), (open_info,), now=now)
        d.user = _State(_Kind.PUSH, push, push_mode=mode, route=route, imsi=imsi, msisdn=msisdn)
        self.pushes[push] = d

    def deliver_via_hlr(self, msisdn: str, text: str, *, hlr: SccpAddress, mode: Mode, now: float,
                        route: str | None = None) -> int:  # fmt: skip
        """A push in one step, for networks that take network-initiated USSD only through the HLR (TS 23.090 §4.2:
        the gsmSCF's invoke goes to the HLR, which relays it to the VLR): the TC-BEGIN to ``hlr`` names the
        subscriber by MSISDN in MAP-OpenInfo (destinationReference, E.164), no SRI-for-SM first. Returns the push
        id of its events (``PushDelivered``, ``PushFailed`` at stage "delivery", ``PushSessionStarted``)."""
        arg = M.encode_ussd_arg(M.ussd_arg(text))  # first: a text that cannot be encoded changes nothing
        open_info = M.encode_dialogue_external(M.MapOpen(AddressString.e164(msisdn),
                                                         AddressString.e164(self._local_gt())))  # fmt: skip
        ident = next(self._ids)
        d = self.table.begin(hlr, USSD_AC, (tcap.Invoke(1, mode.value, arg),), (open_info,), now=now)
        d.user = _State(_Kind.PUSH, ident, push_mode=mode, route=route, msisdn=msisdn)
        self.pushes[ident] = d
        return ident

    def _send_sri(self, st: _State, hlr: SccpAddress, now: float) -> None:
        arg = M.RoutingInfoForSmArg(AddressString.e164(st.msisdn), True, AddressString.e164(self._local_gt()))
        d = self.table.begin(hlr, st.hlr_ac, (tcap.Invoke(1, M.OP_SEND_ROUTING_INFO_FOR_SM,
                                                          M.encode_sri_sm_arg(arg)),), now=now)  # fmt: skip
        d.user = st
        self.pushes[st.ident] = d

    def _sri_event(self, d: Dialogue, st: _State, ev: TableEvent, now: float) -> None:
        pid = st.ident
        self.pushes.pop(pid, None)
        if isinstance(ev, EndIndication | ContinueIndication):
            for c in ev.components:
                if isinstance(c, tcap.ReturnResult) and c.opcode == M.OP_SEND_ROUTING_INFO_FOR_SM:
                    try:
                        res = M.decode_sri_sm_res(c.parameter or b"")
                    except CodecError as exc:
                        self._fail(d, pid, "routing", f"mistyped RoutingInfoForSM-Res: {exc}", end=True)
                        return
                    vlr = res.network_node_number.digits
                    if not (vlr.isdigit() and len(vlr) <= 15 and res.imsi.isdigit()):
                        # An MSC/VLR number that is no E.164 number (E.164 §6: up to 15 digits) cannot be a
                        # called GT, nor an IMSI of other than digits a MAP-OpenInfo: the push cannot be routed.
                        self._fail(d, pid, "routing", "unusable networkNode-Number or IMSI in the HLR's answer",
                                   end=isinstance(ev, ContinueIndication))  # fmt: skip
                        return
                    if isinstance(ev, ContinueIndication):
                        self.table.end(d)
                    self.events.append(PushRouted(pid, res.imsi, res.network_node_number.digits))
                    return
                if isinstance(c, tcap.ReturnError):
                    code = c.error_code if isinstance(c.error_code, int) else -1
                    self._fail(d, pid, "routing", M.decode_error(code, c.parameter).name, code,
                               end=isinstance(ev, ContinueIndication))  # fmt: skip
                    return
            self._fail(d, pid, "routing", "no result", end=isinstance(ev, ContinueIndication))
        elif isinstance(ev, AbortIndication):
            refusal = ev.user_abort
            if isinstance(refusal, tcap.Aare) and st.hlr_ac == M.AC_SHORT_MSG_GATEWAY_V3:
                st.hlr_ac = M.AC_SHORT_MSG_GATEWAY_V2  # TS 29.002 §15.1: fall back to the version the HLR has
                peer = d.peer if isinstance(d.peer, SccpAddress) else self.local
                self._send_sri(st, peer, now)
                return
            self.events.append(PushFailed(pid, "routing", "timeout" if ev.local_reason else "aborted"))
        elif isinstance(ev, InvokeTimeout):
            self._fail(d, pid, "routing", "timeout", abort=True)

    def _push_event(self, d: Dialogue, st: _State, ev: TableEvent) -> None:
        pid = st.ident
        if isinstance(ev, EndIndication | ContinueIndication):
            for c in ev.components:
                if isinstance(c, tcap.ReturnResult) and c.invoke_id == 1:
                    answer = None
                    dcs = 0x0F
                    if st.push_mode is Mode.REQUEST and c.parameter is not None:
                        try:
                            res = M.decode_ussd_res(c.parameter)
                            answer = ussd_string.decode(res.dcs, res.string)
                        except CodecError as exc:
                            self._fail(d, pid, "delivery", f"mistyped USSD-Res: {exc}",
                                       end=isinstance(ev, ContinueIndication))  # fmt: skip
                            return
                        dcs = res.dcs
                    self.pushes.pop(pid, None)
                    self.events.append(PushDelivered(pid, answer))
                    if isinstance(ev, ContinueIndication):
                        if st.route is not None and answer is not None:
                            self._continue_as_session(d, st, answer, dcs)
                        else:
                            self.table.end(d)
                    return
                if isinstance(c, tcap.ReturnError):
                    code = c.error_code if isinstance(c.error_code, int) else -1
                    self._fail(d, pid, "delivery", M.decode_error(code, c.parameter).name, code,
                               end=isinstance(ev, ContinueIndication))  # fmt: skip
                    return
            if isinstance(ev, EndIndication):
                self._fail(d, pid, "delivery", "ended without a result")
        elif isinstance(ev, AbortIndication):
            self.pushes.pop(pid, None)
            reason = "refused" if isinstance(ev.user_abort, tcap.Aare) else (
                "timeout" if ev.local_reason == "idle-timeout" else "aborted")
            self.events.append(PushFailed(pid, "delivery", reason))
        elif isinstance(ev, InvokeTimeout):
            self._fail(d, pid, "delivery", "timeout", abort=True)

    def _continue_as_session(self, d: Dialogue, st: _State, answer: str, dcs: int) -> None:
        """The answered request's dialogue becomes a session: the application's replies go out as further
        unstructuredSS-Request invokes, its last text as unstructuredSS-Notify (TS 24.090 §4.2: network-initiated)."""
        assert st.route is not None
        ident = next(self._ids)
        d.user = _State(_Kind.PULL, ident, msisdn=st.msisdn, imsi=st.imsi)
        self.sessions[ident] = d
        peer = d.peer if isinstance(d.peer, SccpAddress) else self.local
        self.events.append(PushSessionStarted(ident, st.ident, st.route, answer, dcs, st.msisdn, st.imsi, peer))

    def _fail(self, d: Dialogue, pid: int, stage: str, reason: str, code: int | None = None, *,
              end: bool = False, abort: bool = False) -> None:  # fmt: skip
        self.pushes.pop(pid, None)
        if abort:
            self.table.u_abort(d)
        elif end and d.did in self.table.dialogues:
            self.table.end(d)
        self.events.append(PushFailed(pid, stage, reason, code))

    def _local_gt(self) -> str:
        return self.local.gt.digits if self.local.gt is not None else ""


def _abort_detail(ev: AbortIndication) -> str:
    if ev.local_reason:
        return ev.local_reason
    if ev.p_abort_cause is not None:
        return f"p-abort {ev.p_abort_cause}"
    if isinstance(ev.user_abort, tcap.Abrt | tcap.Aare) and ev.user_abort.user_information:
        try:
            pdu = M.find_map_dialogue(ev.user_abort.user_information)
        except CodecError:
            return "u-abort (undecodable MAP dialogue PDU)"
        if pdu is not None:
            return type(pdu).__name__
    return "u-abort"


def _octets(event: TableEvent) -> bytes:
    """The parameters the indication carried, for the fault report."""
    return b"".join(getattr(c, "parameter", None) or b"" for c in getattr(event, "components", ()))
