"""SS7 network simulator: an MSC/VLR with handsets and an HLR, on a :class:`SignallingNode` (sans-I/O).

It is the gateway's test peer, the demo network and the load generator:
- handsets dial service codes (:meth:`NetworkSim.dial`) and answer menus from a script;
- the VLR acknowledges notifies, answers requests, or fails them (absentSubscriber, ussd-Busy,
  illegalSubscriber ...) or stays silent (timeout), per subscriber;
- the HLR answers SRI-for-SM with the IMSI and the VLR number, or with unknownSubscriber / absentSubscriberSM;
- with ``any_subscriber`` (a catch-all), every MSISDN not listed exists: the HLR answers for it with an IMSI derived
  from the MSISDN (:func:`derived_imsi`) and the VLR treats it as the template says (for load and crash tests with
  thousands of subscribers). ``received`` counts the pushes the VLR was handed, by MSISDN.
"""

from __future__ import annotations

import itertools
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from gateway.codecs import map as M  # noqa: N812 - M for MAP
from gateway.codecs import tcap
from gateway.codecs.errors import CodecError
from gateway.codecs.map_address import AddressString, Plan
from gateway.codecs.sccp import SccpAddress
from gateway.stack.node import SignallingNode
from gateway.stack.tcap_table import (
    AbortIndication,
    BeginIndication,
    ContinueIndication,
    Dialogue,
    EndIndication,
    TableEvent,
)


@dataclass(frozen=True, slots=True)
class Subscriber:
    msisdn: str
    imsi: str
    # What the VLR does with a push: "ack" (notify acknowledged / request answered with ``answer``), "silent"
    # (no answer: the gateway times out), "handset" (shown to the user: a NetworkUssd event; a request waits for
    # NetworkSim.answer_network), or a MAP error code (e.g. 27 absentSubscriber, 72 ussd-Busy).
    vlr_behaviour: str | int = "ack"
    answer: str = "1"
    hlr_error: int | None = None  # e.g. 1 unknownSubscriber, 6 absentSubscriberSM
    hlr_error_times: int | None = None  # answer SRI-for-SM with hlr_error only this many times (None: always)


TEST_IMSI_PREFIX = "00101"  # MCC 001, MNC 01: the ITU test network


def derived_imsi(msisdn: str) -> str:
    """The catch-all subscriber's IMSI for ``msisdn``: the test network's MCC+MNC and the MSISDN's last 10 digits
    (so MSISDNs that differ only before their last 10 digits share an IMSI: pick test numbers that do not)."""
    return TEST_IMSI_PREFIX + msisdn[-10:].rjust(10, "0")


@dataclass(slots=True)
class HandsetSession:
    """What a handset saw: the menus, then the final text, or the error / abort (handset-ussd-api.txt)."""

    msisdn: str
    code: str
    answers: list[str | None]  # None: the user reads the menu and never answers (the network times out)
    menus: list[str] = field(default_factory=list)
    final: str | None = None
    error: str | None = None
    done: bool = False
    dcs: list[int] = field(default_factory=list)  # the data coding scheme of each text shown, in order
    # Interactive: with no scripted answer left, ``on_menu`` is told and the answer comes via NetworkSim.answer.
    on_menu: Callable[[HandsetSession], None] | None = None
    waiting: tuple[Dialogue, int] | None = None  # the menu awaiting an answer (dialogue, invoke id)
    times: list[float] = field(default_factory=list)  # when it dialled, then when each text arrived (loop time)

    @property
    def status(self) -> str:
        if not self.done:
            return "reply-needed" if self.menus else "pending"
        return "ended" if self.final is not None else "network-error"


@dataclass(slots=True)
class NetworkUssd:
    """A network-initiated USSD text on a handset whose subscriber's VLR behaviour is "handset"."""

    msisdn: str
    text: str
    dcs: int
    request: bool  # unstructuredSS-Request: the network waits for the user's answer (answer_network)
    dialogue: Dialogue
    invoke_id: int


@dataclass(slots=True)
class NetworkSim:
    node: SignallingNode
    gateway: SccpAddress  # where handsets' service codes go (the gateway's GT, gsmSCF)
    subscribers: dict[str, Subscriber] = field(default_factory=dict)
    sessions: dict[int, HandsetSession] = field(default_factory=dict)  # by dialogue id
    pushes_received: list[tuple[str, str, int]] = field(default_factory=list)  # (imsi, text, opcode)
    # network-initiated dialogues on "handset" subscribers, open at the VLR: dialogue id -> MSISDN
    network_dialogues: dict[int, str] = field(default_factory=dict)
    events: deque[HandsetSession | NetworkUssd] = field(default_factory=deque)  # sessions over, texts shown
    # The catch-all: every MSISDN not in ``subscribers`` is this subscriber (its behaviours; msisdn and imsi are
    # ignored), with the IMSI :func:`derived_imsi` gives; added to ``subscribers`` at its first SRI-for-SM.
    any_subscriber: Subscriber | None = None
    received: Counter[str] = field(default_factory=Counter)  # pushes (USSN/USSR invokes) the VLR got, by MSISDN
    _by_imsi: dict[str, Subscriber] = field(default_factory=dict)
    _hlr_failures: dict[str, int] = field(default_factory=dict)  # MSISDN -> SRI-for-SM answered with its error
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def add(self, sub: Subscriber) -> None:
        self.subscribers[sub.msisdn] = sub
        self._by_imsi[sub.imsi] = sub

    def dial(self, msisdn: str, code: str, answers: Sequence[str | None] | None, now: float,
             dcs: int | None = None) -> HandsetSession:  # fmt: skip
        """Dial ``code``; ``dcs`` forces the handset's data coding scheme (e.g. one naming its language)."""
        arg = M.encode_ussd_arg(M.ussd_arg(code, dcs=dcs, msisdn=msisdn))
        d = self.node.table.begin(self.gateway, M.AC_NETWORK_UNSTRUCTURED_SS_V2, (tcap.Invoke(1, 59, arg),),
                                  now=now)  # fmt: skip
        session = HandsetSession(msisdn, code, list(answers or []))
        session.times.append(now)
        self.sessions[d.did] = session
        return session

    def answer(self, session: HandsetSession, text: str | None, now: float) -> None:
        """The user's answer to the menu ``session`` is showing; None presses cancel (TC-U-ABORT)."""
        if session.waiting is None or session.done:
            return
        d, invoke_id = session.waiting
        session.waiting = None
        if text is None:
            self.node.table.u_abort(d)
            self._done(d, session, error="user-cancelled")
            return
        res = M.encode_ussd_res(M.ussd_res(text))
        self.node.table.continue_(d, (tcap.ReturnResult(invoke_id, M.OP_USSR, res),), now)

    def answer_network(self, ussd: NetworkUssd, text: str | None, now: float) -> None:
        """The user's answer to a network-initiated request; None presses cancel (TC-U-ABORT)."""
        if ussd.dialogue.did not in self.node.table.dialogues:
            return  # the network gave up meanwhile
        if text is None:
            self.network_dialogues.pop(ussd.dialogue.did, None)
            self.node.table.u_abort(ussd.dialogue)
            return
        # The answer in a TC-CONTINUE: the network side decides whether the dialogue goes on (TS 24.090 §4.2).
        res = M.encode_ussd_res(M.ussd_res(text))
        self.node.table.continue_(ussd.dialogue, (tcap.ReturnResult(ussd.invoke_id, M.OP_USSR, res),), now)

    def handle(self, event: TableEvent, now: float) -> None:
        if isinstance(event, BeginIndication):
            self._network_begin(event, now)
            return
        d = getattr(event, "dialogue", None)
        if d is None:
            return
        if d.did in self.network_dialogues:
            self._network_continues(d, event, now)
            return
        session = self.sessions.get(d.did)
        if session is None:
            return
        if isinstance(event, ContinueIndication):
            for c in event.components:
                if isinstance(c, tcap.Invoke) and c.opcode == M.OP_USSR:
                    arg = M.decode_ussd_arg(c.parameter or b"")
                    session.menus.append(arg.text())
                    session.dcs.append(arg.dcs)
                    session.times.append(now)
                    if session.answers and session.answers[0] is None:
                        continue  # the user never answers: the gateway's invoke timer will end it
                    if session.answers:
                        answer = session.answers.pop(0)
                        assert answer is not None
                        res = M.encode_ussd_res(M.ussd_res(answer))
                        self.node.table.continue_(d, (tcap.ReturnResult(c.invoke_id, M.OP_USSR, res),), now)
                    elif session.on_menu is not None:
                        session.waiting = (d, c.invoke_id)
                        session.on_menu(session)
                    else:  # the user presses cancel
                        self.node.table.u_abort(d)
                        self._done(d, session, error="user-cancelled")
        elif isinstance(event, EndIndication):
            for c in event.components:
                if isinstance(c, tcap.ReturnResult) and c.parameter is not None:
                    shown = M.decode_ussd_res(c.parameter)
                    session.final = shown.text()
                    session.dcs.append(shown.dcs)
                    session.times.append(now)
                elif isinstance(c, tcap.ReturnError):
                    session.error = M.decode_error(c.error_code if isinstance(c.error_code, int) else -1,
                                                   c.parameter).name  # fmt: skip
            self._done(d, session)
        elif isinstance(event, AbortIndication):
            self._done(d, session, error=event.local_reason or "aborted")

    def _done(self, d: Dialogue, session: HandsetSession, error: str | None = None) -> None:
        if error is not None:
            session.error = error
        session.done = True
        self.sessions.pop(d.did, None)
        self.events.append(session)

    def _network_begin(self, ev: BeginIndication, now: float) -> None:
        d = ev.dialogue
        inv = next((c for c in ev.components if isinstance(c, tcap.Invoke)), None)
        if inv is None:
            self.node.table.end(d)
            return
        if inv.opcode == M.OP_SEND_ROUTING_INFO_FOR_SM:  # the HLR
            try:
                msisdn = M.decode_sri_sm_arg(inv.parameter or b"").msisdn.digits
            except CodecError:
                self.node.table.end(d, (tcap.Reject(inv.invoke_id, 1, 2),))
                return
            sub = self.subscribers.get(msisdn) or self._catch_all(msisdn)
            failing = sub is not None and sub.hlr_error is not None and (
                sub.hlr_error_times is None or self._hlr_failures.get(msisdn, 0) < sub.hlr_error_times)
            if failing:
                self._hlr_failures[msisdn] = self._hlr_failures.get(msisdn, 0) + 1
            if sub is None or failing:
                code = 1 if sub is None else sub.hlr_error or 1
                self.node.table.end(d, (tcap.ReturnError(inv.invoke_id, code, M.encode_error(code, 0)
                                                         if code in (1, 6) else None),))  # fmt: skip
                return
            res = M.RoutingInfoForSmRes(sub.imsi, AddressString.e164(self._vlr_gt()))
            self.node.table.end(d, (tcap.ReturnResult(inv.invoke_id, 45, M.encode_sri_sm_res(res)),))
            return
        if inv.opcode in (M.OP_USSN, M.OP_USSR):  # the VLR, for a push
            open_info = M.find_map_dialogue(ev.user_information) if ev.user_information else None
            ref = open_info.destination_reference if isinstance(open_info, M.MapOpen) else None
            if ref is not None and ref.plan == Plan.ISDN_TELEPHONY:  # through the HLR (TS 23.090): by MSISDN
                sub = self.subscribers.get(ref.digits) or self._catch_all(ref.digits)
                imsi = sub.imsi if sub is not None else ""
            else:  # at the VLR after SRI-for-SM: by IMSI
                imsi = ref.digits if ref is not None else ""
                sub = self._by_imsi.get(imsi)
            arg = M.decode_ussd_arg(inv.parameter or b"")
            text = arg.text()
            self.pushes_received.append((imsi, text, int(inv.opcode)))
            if sub is not None:
                self.received[sub.msisdn] += 1
            if sub is None:
                self.node.table.end(d, (tcap.ReturnError(inv.invoke_id, 27),))  # absentSubscriber
                return
            if sub.vlr_behaviour == "silent":
                return
            if sub.vlr_behaviour == "handset":
                request = inv.opcode == M.OP_USSR
                self.events.append(NetworkUssd(sub.msisdn, text, arg.dcs, request, d, inv.invoke_id))
                if request:
                    self.network_dialogues[d.did] = sub.msisdn
                else:  # the handset shows the flash text and acknowledges it
                    self.node.table.end(d, (tcap.ReturnResult(inv.invoke_id, None, None),))
                return
            if isinstance(sub.vlr_behaviour, int):
                self.node.table.end(d, (tcap.ReturnError(inv.invoke_id, sub.vlr_behaviour),))
                return
            if inv.opcode == M.OP_USSN:
                self.node.table.end(d, (tcap.ReturnResult(inv.invoke_id, None, None),))
            else:
                answer = M.encode_ussd_res(M.ussd_res(sub.answer))
                self.node.table.end(d, (tcap.ReturnResult(inv.invoke_id, M.OP_USSR, answer),))
            return
        self.node.table.end(d, (tcap.Reject(inv.invoke_id, 1, 1),))  # unrecognized operation

    def _network_continues(self, d: Dialogue, event: TableEvent, now: float) -> None:
        """A network-initiated dialogue the handset answered goes on: further requests and notifies, then its end."""
        msisdn = self.network_dialogues[d.did]
        if isinstance(event, ContinueIndication):
            for c in event.components:
                if isinstance(c, tcap.Invoke) and c.opcode in (M.OP_USSR, M.OP_USSN):
                    arg = M.decode_ussd_arg(c.parameter or b"")
                    request = c.opcode == M.OP_USSR
                    self.events.append(NetworkUssd(msisdn, arg.text(), arg.dcs, request, d, c.invoke_id))
                    if not request:  # shown, acknowledged; the network releases the dialogue next
                        self.node.table.continue_(d, (tcap.ReturnResult(c.invoke_id, None, None),), now)
        elif isinstance(event, EndIndication | AbortIndication):
            del self.network_dialogues[d.did]

    def _catch_all(self, msisdn: str) -> Subscriber | None:
        if self.any_subscriber is None or not msisdn:
            return None
        sub = replace(self.any_subscriber, msisdn=msisdn, imsi=derived_imsi(msisdn))
        self.add(sub)
        return sub

    def _vlr_gt(self) -> str:
        return self.node.local.gt.digits if self.node.local.gt is not None else ""
