"""MAP USSD pull and push dialogues over two dialogue tables: the gateway's, and a network side playing the
MSC/VLR and the HLR."""

from __future__ import annotations

from gateway.codecs import map as M
from gateway.codecs import sccp, tcap
from gateway.codecs.errors import InvokeProblem, ProblemKind
from gateway.codecs.map_address import AddressString
from gateway.codecs.sccp import SccpAddress
from gateway.stack.map_ussd import (
    Mode,
    PushDelivered,
    PushFailed,
    PushRouted,
    SessionClosed,
    SessionStarted,
    UserAnswered,
    UssdService,
)
from gateway.stack.tcap_table import AbortIndication, BeginIndication, ContinueIndication, DialogueTable, EndIndication

GW = SccpAddress.gt_e164("491700000001", sccp.SSN_GSMSCF)
MSC = SccpAddress.gt_e164("491720000001", sccp.SSN_MSC)
HLR = SccpAddress.gt_e164("491770000000", sccp.SSN_HLR)
ALL_ACS = [M.AC_NETWORK_UNSTRUCTURED_SS_V2, M.AC_SHORT_MSG_GATEWAY_V3, M.AC_SHORT_MSG_GATEWAY_V2]


class Net:
    """The gateway and a network side wired back to back."""

    def __init__(self, net_acs: list[tuple[int, ...]] | None = None) -> None:
        self.gw = UssdService(DialogueTable(supported_acs=[M.AC_NETWORK_UNSTRUCTURED_SS_V2]), GW)
        self.net = DialogueTable(supported_acs=net_acs or ALL_ACS)
        self.net_events: list[object] = []

    def pump(self, now: float = 0.0) -> None:
        for _ in range(20):
            moved = False
            while self.gw.table.outgoing:
                _, data = self.gw.table.outgoing.popleft()
                self.net.receive(data, GW, now)
                moved = True
            while self.net.outgoing:
                _, data = self.net.outgoing.popleft()
                self.gw.table.receive(data, MSC, now)  # the network answers from the MSC's address
                moved = True
            while self.gw.table.events:
                self.gw.handle(self.gw.table.events.popleft(), now)
            self.net_events.extend(self.net.events)
            self.net.events.clear()
            if not moved:
                return

    def dial(self, text: str, user_information: tuple[bytes, ...] = ()) -> None:
        arg = M.encode_ussd_arg(M.ussd_arg(text, msisdn="491720000001"))
        self.net.begin(GW, M.AC_NETWORK_UNSTRUCTURED_SS_V2, (tcap.Invoke(1, 59, arg),), user_information, now=0.0)
        self.pump()

    def app_events(self) -> list[object]:
        out = list(self.gw.events)
        self.gw.events.clear()
        return out

    def net_last(self, kind: type) -> object:
        return next(e for e in reversed(self.net_events) if isinstance(e, kind))


def test_pull_menu_answer_and_final_text() -> None:
    n = Net()
    n.dial("*123#")
    (started,) = n.app_events()
    assert isinstance(started, SessionStarted)
    assert (started.text, started.msisdn, started.imsi, started.peer) == ("*123#", "491720000001", None, MSC)
    n.gw.reply(started.session, "1. Balance\n2. Top-up", 0.0)
    n.pump()
    cont = n.net_last(ContinueIndication)
    assert isinstance(cont, ContinueIndication) and cont.accepted  # the AARE accepted the MSC's dialogue
    inv = cont.components[0]
    assert isinstance(inv, tcap.Invoke) and inv.opcode == 60
    assert M.decode_ussd_arg(inv.parameter or b"").text() == "1. Balance\n2. Top-up"
    n.net.continue_(cont.dialogue, (tcap.ReturnResult(inv.invoke_id, 60, M.encode_ussd_res(M.ussd_res("1"))),), 0.0)
    n.pump()
    (answer,) = n.app_events()
    assert answer == UserAnswered(started.session, "1", 0x0F)
    n.gw.finish(started.session, "Your balance is 12.50 EUR", 0.0)
    n.pump()
    end = n.net_last(EndIndication)
    assert isinstance(end, EndIndication)
    rr = end.components[0]
    assert isinstance(rr, tcap.ReturnResult) and (rr.invoke_id, rr.opcode) == (1, 59)
    assert M.decode_ussd_res(rr.parameter or b"").text() == "Your balance is 12.50 EUR"
    assert n.app_events() == [SessionClosed(started.session, "completed")]
    assert len(n.gw.table) == 0 and len(n.net) == 0


def test_hlr_relayed_pull_carries_the_imsi() -> None:
    n = Net()
    relay = M.encode_dialogue_external(M.MapOpen(AddressString.imsi("655011420096316"),
                                                 AddressString.e164("27829106146")))
    n.dial("*140*0761241377#", (relay,))
    (started,) = n.app_events()
    assert isinstance(started, SessionStarted) and started.imsi == "655011420096316"


def test_user_abort_and_map_error_during_a_session() -> None:
    n = Net()
    n.dial("*123#")
    (started,) = n.app_events()
    n.gw.reply(started.session, "Menu", 0.0)
    n.pump()
    cont = n.net_last(ContinueIndication)
    n.net.u_abort(cont.dialogue)  # type: ignore[attr-defined]
    n.pump()
    assert n.app_events() == [SessionClosed(started.session, "user-aborted", "u-abort")]
    n.dial("*124#")
    (s2,) = n.app_events()
    n.gw.reply(s2.session, "Menu", 0.0)  # type: ignore[attr-defined]
    n.pump()
    cont = n.net_last(ContinueIndication)
    inv = cont.components[0]  # type: ignore[attr-defined]
    n.net.end(cont.dialogue, (tcap.ReturnError(inv.invoke_id, M.MapErrorCode.USSD_BUSY),))  # type: ignore[attr-defined]
    n.pump()
    assert n.app_events() == [SessionClosed(s2.session, "map-error", "ussd_busy")]  # type: ignore[attr-defined]


def test_unserved_operation_and_mistyped_argument_are_rejected() -> None:
    n = Net()
    n.net.begin(GW, M.AC_NETWORK_UNSTRUCTURED_SS_V2, (tcap.Invoke(1, 19, b"\x30\x00"),), now=0.0)
    n.pump()
    end = n.net_last(EndIndication)
    assert end.components == (tcap.Reject(1, ProblemKind.INVOKE, InvokeProblem.UNRECOGNIZED_OPERATION),)  # type: ignore[attr-defined]
    n.net.begin(GW, M.AC_NETWORK_UNSTRUCTURED_SS_V2, (tcap.Invoke(3, 59, b"\x30\x03\x04\x01\x0f"),), now=0.0)
    n.pump()
    end = n.net_last(EndIndication)
    assert end.components == (tcap.Reject(3, ProblemKind.INVOKE, InvokeProblem.MISTYPED_PARAMETER),)  # type: ignore[attr-defined]
    assert not n.app_events()


def _answer_sri(n: Net, imsi: str = "262011234567890", vlr: str = "491720000009") -> None:
    begin = n.net_last(BeginIndication)
    assert isinstance(begin, BeginIndication)
    inv = begin.components[0]
    assert isinstance(inv, tcap.Invoke) and inv.opcode == 45
    arg = M.decode_sri_sm_arg(inv.parameter or b"")
    assert arg.msisdn == AddressString.e164("491720000001") and arg.sm_rp_pri
    assert arg.service_centre_address == AddressString.e164("491700000001")
    res = M.RoutingInfoForSmRes(imsi, AddressString.e164(vlr))
    n.net.end(begin.dialogue, (tcap.ReturnResult(inv.invoke_id, 45, M.encode_sri_sm_res(res)),))
    n.pump()


def _push(n: Net, text: str, mode: Mode = Mode.NOTIFY) -> int:
    """Route, answer the SRI-for-SM, then deliver (the push service commits in between: write-ahead)."""
    pid = n.gw.route("491720000001", hlr=HLR, now=0.0)
    n.pump()
    _answer_sri(n)
    routed = n.gw.events[-1]
    assert routed == PushRouted(pid, "262011234567890", "491720000009")
    assert not n.gw.table.outgoing  # nothing goes to the VLR until the service says so
    n.gw.deliver(pid, routed.imsi, routed.vlr, text, mode=mode, now=0.0)
    n.pump()
    return pid


def test_push_notify_routed_and_acknowledged() -> None:
    n = Net()
    pid = _push(n, "Your code is 1234")
    begin = n.net_last(BeginIndication)
    assert isinstance(begin, BeginIndication) and begin.ac == M.AC_NETWORK_UNSTRUCTURED_SS_V2
    open_info = M.find_map_dialogue(begin.user_information)
    assert open_info == M.MapOpen(AddressString.imsi("262011234567890"), AddressString.e164("491700000001"))
    assert open_info.destination_reference.encode()[0] == 0x96  # type: ignore[union-attr]
    inv = begin.components[0]
    assert isinstance(inv, tcap.Invoke) and inv.opcode == 61
    assert M.decode_ussd_arg(inv.parameter or b"").text() == "Your code is 1234"
    n.net.end(begin.dialogue, (tcap.ReturnResult(inv.invoke_id, None, None),))
    n.pump()
    assert n.app_events() == [PushRouted(pid, "262011234567890", "491720000009"), PushDelivered(pid, None)]
    assert len(n.gw.table) == 0


def test_push_request_answered() -> None:
    n = Net()
    pid = _push(n, "Accept? 1=Yes", Mode.REQUEST)
    begin = n.net_last(BeginIndication)
    inv = begin.components[0]  # type: ignore[attr-defined]
    assert inv.opcode == 60
    n.net.continue_(begin.dialogue, (tcap.ReturnResult(inv.invoke_id, 60, M.encode_ussd_res(M.ussd_res("1"))),), 0.0)  # type: ignore[attr-defined]
    n.pump()
    assert n.app_events()[-1] == PushDelivered(pid, "1")
    assert len(n.gw.table) == 0 and len(n.net) == 0  # the gateway closed the dialogue the VLR kept open


def test_push_failures() -> None:
    n = Net()
    pid = n.gw.route("491720000001", hlr=HLR, now=0.0)
    n.pump()
    begin = n.net_last(BeginIndication)
    inv = begin.components[0]  # type: ignore[attr-defined]
    n.net.end(begin.dialogue, (tcap.ReturnError(inv.invoke_id, 6, M.encode_error(6, 1)),))  # type: ignore[attr-defined]
    n.pump()
    assert n.app_events() == [PushFailed(pid, "routing", "absent_subscriber_sm", 6)]
    pid2 = _push(n, "x")
    begin = n.net_last(BeginIndication)
    inv = begin.components[0]  # type: ignore[attr-defined]
    n.net.end(begin.dialogue, (tcap.ReturnError(inv.invoke_id, 72),))  # type: ignore[attr-defined]
    n.pump()
    assert n.app_events()[-1] == PushFailed(pid2, "delivery", "ussd_busy", 72)


def test_hlr_without_v3_gets_v2() -> None:
    n = Net(net_acs=[M.AC_NETWORK_UNSTRUCTURED_SS_V2, M.AC_SHORT_MSG_GATEWAY_V2])
    pid = n.gw.route("491720000001", hlr=HLR, now=0.0)
    n.pump()
    begin = n.net_last(BeginIndication)
    assert isinstance(begin, BeginIndication) and begin.ac == M.AC_SHORT_MSG_GATEWAY_V2
    _answer_sri(n)
    assert isinstance(n.app_events()[0], PushRouted)
    assert not any(isinstance(e, AbortIndication) for e in n.net_events)
    del pid
