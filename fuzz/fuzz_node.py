"""Stateful: sequences of messages and clock ticks fed to the gateway's whole signalling side, sans-I/O.

An SG-role M3UA association (made ASP-ACTIVE first), the SignallingNode, the dialogue table and the MAP USSD service,
with a small application (a menu, then an end) and pushes, all on a fake clock; no sockets. The input is read as a
program of steps (see ``STEPS``): raw M3UA, raw SCCP in a DATA, raw TCAP in a UDT, a Begin with a fuzzed USSD-Arg,
a good ``*123#``, answers, Ends and Aborts to live dialogues (ours and the peer's), pushes, HLR answers with fuzzed
results, clock ticks. After every step:

- no internal error: every containment boundary reports to an observer that re-raises here (a defect, even one the
  daemon would contain, is a finding);
- the dialogue table is consistent (ids, TIDs in use, an idle timer armed for each dialogue, the MAP sessions and
  pushes all held by live dialogues);
- every message sent decodes with our decoders down to TCAP, and canonical TCAP replies are read alike by pycrate.

At the end the clock runs past every timer: the table, the MAP service and the SCCP reassemblies must be empty.
"""

from __future__ import annotations

from fuzz.driver import Finding, expect
from gateway.codecs import m3ua, sccp, tcap, ussd_string
from gateway.codecs import map as M
from gateway.codecs.errors import CodecError
from gateway.codecs.sccp import SccpAddress
from gateway.stack.containment import InternalError
from gateway.stack.m3ua_asp import AspState, AssociationConfig, M3uaAssociation, Role, drain
from gateway.stack.map_ussd import Mode, PushRouted, SessionStarted, UserAnswered, UssdService
from gateway.stack.node import SignallingNode
from gateway.stack.sccp_layer import REASSEMBLY_TIMEOUT, SccpConfig, SccpLayer
from gateway.stack.tcap_table import DialogueTable
from gateway.stack.tid import tid_bytes

GW = SccpAddress.gt_e164("491700000001", sccp.SSN_GSMSCF)
MSC = SccpAddress.gt_e164("491720000099", sccp.SSN_MSC)
HLR = SccpAddress.gt_e164("491770000000", sccp.SSN_HLR)
ACS = (M.AC_NETWORK_UNSTRUCTURED_SS_V2, M.AC_SHORT_MSG_GATEWAY_V3, M.AC_SHORT_MSG_GATEWAY_V2)
IDLE, INVOKE = 30.0, 20.0
MAX_STEPS = 64
PYCRATE_PER_INPUT = 4  # pycrate costs a millisecond a message: judge the first few new replies of each input


class Raise:
    """The observer of every boundary: a contained defect is still a defect."""

    def internal_error(self, fault: InternalError) -> None:
        raise Finding(f"internal error at {fault.where}: {fault.kind} on {fault.octets.hex()}") from fault.error


class Program:
    """The input read as small integers and byte strings; reads past the end give zeros and empty strings."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def more(self) -> bool:
        return self.pos < len(self.data)

    def u8(self) -> int:
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def octets(self) -> bytes:
        n = self.u8()
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out


class Gateway:
    def __init__(self) -> None:
        self.now = 0.0
        self.table = DialogueTable(supported_acs=ACS, capacity=32, idle_timeout=IDLE, invoke_timeout=INVOKE)
        self.sccp = SccpLayer(SccpConfig(1, frozenset({sccp.SSN_GSMSCF}), default_dpc=2, max_reassemblies=8))
        self.node = SignallingNode(GW, self.sccp, self.table, faults=Raise())
        self.ussd = UssdService(self.table, GW, faults=Raise())
        self.assoc = M3uaAssociation(AssociationConfig(name="sg", role=Role.SG, routing_contexts=(1,),
                                                       beat_interval=0, local_point_codes=(1,)), faults=Raise())
        self.node.attach(self.assoc)
        self.sent: list[bytes] = []
        self.judged = 0
        self.seen: set[bytes] = set()
        self.assoc.connection_made(0.0)
        self.receive(m3ua.encode(m3ua.aspup()))
        self.receive(m3ua.encode(m3ua.aspac(m3ua.TrafficMode.LOADSHARE, (1,))))
        expect(self.assoc.state is AspState.ACTIVE, "the association did not become active")

    # ---- inputs ----

    def receive(self, message: bytes) -> None:
        self.assoc.receive(message, self.now)
        self.pump()

    def data(self, sccp_octets: bytes) -> None:
        self.receive(m3ua.encode_data(2, 1, 3, 2, 0, 5, sccp_octets, 1))

    def tcap(self, octets: bytes, calling: SccpAddress = MSC) -> None:
        try:
            udt = sccp.encode(sccp.Udt(1, True, GW, calling, octets))
        except CodecError:
            return  # more than one UDT holds: not this step's business
        self.data(udt)

    def tick(self, dt: float) -> None:
        self.now += dt
        self.node.handle_timer(self.now)
        self.pump()

    # ---- the TC-user and the way down, as the shell's runner does it ----

    def pump(self) -> None:
        for _ in range(100):
            events = list(self.assoc.events)
            self.assoc.events.clear()
            for ev in events:
                self.node.on_m3ua_event(self.assoc, ev, self.now)
            while self.table.events:
                self.ussd.handle(self.table.events.popleft(), self.now)
                while self.ussd.events:
                    self.app(self.ussd.events.popleft())
            self.node.flush(self.now)
            if not self.table.events and not self.assoc.events:
                break
        out, _ = drain(self.assoc)
        for item in out:
            self.judge(item.data)

    def app(self, ev: object) -> None:
        if isinstance(ev, SessionStarted):
            if ev.text.endswith("#") and len(ev.text) < 12:
                self.ussd.reply(ev.session, "1. Balance\n2. Exit", self.now)
            else:
                self.ussd.finish(ev.session, "Unknown code", self.now)
        elif isinstance(ev, UserAnswered):
            self.ussd.finish(ev.session, "Bye " + ev.text[:20], self.now)
        elif isinstance(ev, PushRouted):  # the push service would commit "sent" here, then deliver
            self.ussd.deliver(ev.push, ev.imsi, ev.vlr, "Your code is 1234", mode=Mode.NOTIFY, now=self.now)

    # ---- invariants ----

    def judge(self, message: bytes) -> None:
        msg = m3ua.decode(message)
        if (msg.msg_class, msg.msg_type) != (1, 1):
            return
        data = m3ua.decode_data(message).protocol_data.data
        unit = sccp.decode(data)
        if not isinstance(unit, sccp.Udt) or unit.segmentation is not None:
            return
        reply = tcap.decode(unit.data)
        self.sent.append(unit.data)
        if unit.data not in self.seen and self.judged < PYCRATE_PER_INPUT:
            self.seen.add(unit.data)
            self.judged += 1
            from fuzz import _pycrate_tcap

            _pycrate_tcap.compare(unit.data, reply)

    def check(self) -> None:
        t = self.table
        expect(len(t.tids) == len(t.dialogues), "TIDs in use differ from the dialogues", len(t.tids), len(t))
        for did, d in t.dialogues.items():
            expect(d.did == did and t.tids.owns(did), "dialogue under another id", did, d.did)
            expect(d.idle_timer is not None, "a dialogue without an idle timer is never released", did)
        live = {id(d) for d in t.dialogues.values()}
        for kind, held in (("session", self.ussd.sessions), ("push", self.ussd.pushes)):
            for ident, d in held.items():
                expect(id(d) in live, f"a MAP {kind} held by a released dialogue", ident, d.did)

    def settle(self) -> None:
        self.tick(IDLE + INVOKE + REASSEMBLY_TIMEOUT + 1.0)
        self.tick(IDLE + 1.0)
        expect(len(self.table) == 0, "dialogues left after every timer", list(self.table.dialogues))
        expect(not self.ussd.sessions and not self.ussd.pushes, "MAP state left after every timer")
        expect(not self.sccp._reassembly, "SCCP reassemblies left after every timer")


def _live(gw: Gateway, p: Program, local: bool) -> tuple[bytes, bytes | None] | None:
    """(our TID, the peer's TID) of a live dialogue, picked by the program, among ours or the peer's."""
    ds = [d for d in gw.table.dialogues.values() if d.local is local]
    if not ds:
        return None
    d = ds[p.u8() % len(ds)]
    return tid_bytes(d.did), d.remote


def _begin(otid: bytes, parameter: bytes) -> bytes:
    aarq = tcap.Aarq(M.AC_NETWORK_UNSTRUCTURED_SS_V2, ())
    return tcap.encode(tcap.Begin(otid, aarq, (tcap.Invoke(1, M.OP_PROCESS_USSR, parameter),)))


def _good_arg(text: str) -> bytes:
    dcs, octets = ussd_string.encode(text)
    return M.encode_ussd_arg(M.UssdArg(dcs, octets))


def step(gw: Gateway, p: Program, otid: int) -> None:
    op = p.u8() % 12
    if op == 0:
        gw.receive(p.octets())  # raw M3UA
    elif op == 1:
        gw.data(p.octets())  # raw SCCP
    elif op == 2:
        gw.tcap(p.octets())  # raw TCAP
    elif op == 3:
        gw.tcap(_begin(otid.to_bytes(4, "big"), p.octets()))  # a Begin with a fuzzed USSD-Arg
    elif op == 4:
        gw.tcap(_begin(otid.to_bytes(4, "big"), _good_arg("*123#")))
    elif op in (5, 6):  # the handset answers a menu: a good USSD-Res, or fuzzed components
        tids = _live(gw, p, local=False)
        if tids is not None and tids[1] is not None:
            ours, theirs = tids
            if op == 5:
                res = M.encode_ussd_res(M.ussd_res(str(p.u8() % 10)))
                comps = tcap.encode(tcap.Continue(theirs, ours, None, (tcap.ReturnResult(p.u8() % 4, M.OP_USSR,
                                                                                         res),)))  # fmt: skip
                gw.tcap(comps)
            else:
                body = b"\x48" + bytes((len(theirs),)) + theirs + b"\x49\x04" + ours + p.octets()
                gw.tcap(b"\x65" + bytes((len(body),)) + body if len(body) < 128 else b"\x65\x81" + bytes((len(body),))
                        + body)  # fmt: skip
    elif op == 7:  # End or Abort to a live dialogue, either side's
        tids = _live(gw, p, local=bool(p.u8() & 1))
        if tids is not None:
            ours = tids[0]
            kind = p.u8() % 3
            if kind == 0:
                gw.tcap(tcap.encode(tcap.Abort(ours, p.u8() % 5)))
            elif kind == 1:
                gw.tcap(tcap.encode(tcap.Abort(ours, None, tcap.Abrt(tcap.ABORT_SOURCE_USER, ()))))
            else:
                gw.tcap(b"\x64" + bytes((6,)) + b"\x49\x04" + ours)
    elif op == 8:
        gw.tick(p.u8() * 0.25)
    elif op == 9:
        if len(gw.table) < gw.table.capacity:
            gw.ussd.route("4917" + str(p.u8()).zfill(8), hlr=HLR, now=gw.now)
            gw.pump()
    elif op == 10:  # the HLR or the MSC answers one of our Begins with fuzzed components in an End
        tids = _live(gw, p, local=True)
        if tids is not None:
            body = b"\x49\x04" + tids[0] + p.octets()
            gw.tcap(b"\x64" + bytes((len(body),)) + body if len(body) < 128 else b"\x64\x81" + bytes((len(body),))
                    + body, calling=HLR)  # fmt: skip
    else:  # an SRI-for-SM result for one of our Begins, fuzzed inside
        tids = _live(gw, p, local=True)
        if tids is not None:
            comp = tcap.ReturnResult(1, M.OP_SEND_ROUTING_INFO_FOR_SM, p.octets())
            gw.tcap(tcap.encode(tcap.End(tids[0], None, (comp,))), calling=HLR)


def run(data: bytes) -> Gateway:
    gw = Gateway()
    p = Program(data)
    for n in range(MAX_STEPS):
        if not p.more():
            break
        step(gw, p, 0x1000 + n)
        gw.check()
    gw.settle()
    gw.check()
    return gw


def test_one_input(data: bytes) -> None:
    run(data)


def seeds() -> list[bytes]:
    """Programs that walk the main paths (fuzz/make_corpus.py writes them to fuzz/corpus/node)."""
    sri = M.encode_sri_sm_res(M.RoutingInfoForSmRes("262011234567890", M.AddressString.e164("491720000099")))
    acked = tcap.encode(tcap.End(b"\0\0\0\0", None, (tcap.ReturnResult(1, M.OP_USSN, None),)))[8:]  # components
    unserved = _good_arg("*99#")
    return [
        bytes((4, 5, 0, 3, 1)),  # *123#, the menu, answer "3" to invoke 1: the session ends
        bytes((4, 5, 0, 1, 2)),  # an answer to an invoke that is not pending: Reject
        bytes((4, 8, 255, 8, 255)),  # *123#, then the subscriber never answers: invoke and idle timers
        bytes((4, 7, 0, 0, 1)),  # *123#, then the MSC cancels (U-ABORT)
        bytes((4, 7, 0, 0, 0, 2)),  # *123#, then a P-Abort
        bytes((3, len(unserved))) + unserved,  # a code the app does not serve
        bytes((9, 7, 11, 0, len(sri))) + sri,  # a push: SRI-for-SM answered, then the Begin to the MSC
        bytes((9, 7, 11, 0, len(sri))) + sri + bytes((10, 0, len(acked))) + acked,  # ... and acknowledged
        bytes((9, 3, 8, 255, 8, 255)),  # a push the HLR never answers
        bytes((6, 0)),  # an answer with nothing to answer
    ]
