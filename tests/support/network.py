"""Build a gateway node and a simulated network node, for end-to-end tests over real sockets."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.codecs import map as M
from gateway.codecs import sccp
from gateway.codecs.sccp import SccpAddress
from gateway.ops.metrics import StackMetrics
from gateway.sim.network import NetworkSim, Subscriber
from gateway.stack.map_ussd import (
    Mode,
    PushDelivered,
    PushFailed,
    PushRouted,
    SessionClosed,
    SessionStarted,
    UserAnswered,
    UssdEvent,
    UssdService,
)
from gateway.stack.node import SignallingNode
from gateway.stack.observer import NULL
from gateway.stack.sccp_layer import SccpConfig, SccpLayer
from gateway.stack.tcap_table import DialogueTable, TableEvent
from gateway.transport.host import UssdHost

GW_PC, NET_PC = 1, 2
GW = SccpAddress.gt_e164("491700000001", sccp.SSN_GSMSCF)
MSC = SccpAddress.gt_e164("491720000099", sccp.SSN_MSC)
HLR = SccpAddress.gt_e164("491770000000", sccp.SSN_HLR)
ACS = [M.AC_NETWORK_UNSTRUCTURED_SS_V2, M.AC_SHORT_MSG_GATEWAY_V3, M.AC_SHORT_MSG_GATEWAY_V2]
MENU = "1. Balance\n2. Exit"


@dataclass
class Gateway:
    node: SignallingNode
    ussd: UssdService
    app_events: list[UssdEvent] = field(default_factory=list)
    outbox: dict[int, tuple[str, Mode]] = field(default_factory=dict)  # pushes routed and waiting for delivery

    def push(self, host: UssdHost, msisdn: str, text: str, mode: Mode = Mode.NOTIFY) -> int:
        """A push in the two steps a push service takes: route now, deliver once routed."""
        pid = host.route(msisdn, hlr=HLR)
        self.outbox[pid] = (text, mode)
        return pid

    def host(self) -> UssdHost:
        """The gateway in the asyncio shell (in a running loop), serving :func:`demo_app` through its host."""
        host = UssdHost(self.node, self.ussd)

        def app(ev: UssdEvent) -> None:
            self.app_events.append(ev)
            if isinstance(ev, SessionStarted):
                if ev.text == "*123#":
                    host.reply(ev.session, MENU)
                else:
                    host.finish(ev.session, "Unknown service code")
            elif isinstance(ev, UserAnswered):
                host.finish(ev.session, "Balance: 12.50 EUR" if ev.text == "1" else "Bye")
            elif isinstance(ev, PushRouted) and ev.push in self.outbox:
                text, mode = self.outbox.pop(ev.push)
                host.deliver(ev.push, ev.imsi, ev.vlr, text, mode=mode)

        for kind in (SessionStarted, UserAnswered, SessionClosed, PushRouted, PushDelivered, PushFailed):
            host.on(kind, app)
        return host

    def on_table_event(self, event: TableEvent, now: float) -> None:
        """Sans-I/O: the table event through the MAP layer and :func:`demo_app`, at once."""
        self.ussd.handle(event, now)
        while self.ussd.events:
            ev = self.ussd.events.popleft()
            self.app_events.append(ev)
            demo_app(self.ussd, ev, now)


def demo_app(ussd: UssdService, ev: UssdEvent, now: float) -> None:
    """The bank flow of ussd-server-explainer.txt, in miniature."""
    if isinstance(ev, SessionStarted):
        if ev.text == "*123#":
            ussd.reply(ev.session, MENU, now)
        else:
            ussd.finish(ev.session, "Unknown service code", now)
    elif isinstance(ev, UserAnswered):
        ussd.finish(ev.session, "Balance: 12.50 EUR" if ev.text == "1" else "Bye", now)


def gateway_node(metrics: StackMetrics | None = None) -> Gateway:
    table = DialogueTable(supported_acs=ACS, idle_timeout=30.0, invoke_timeout=20.0, tid_prefix=0xA, tid_prefix_bits=4)
    node = SignallingNode(GW, SccpLayer(SccpConfig(GW_PC, frozenset({sccp.SSN_GSMSCF}), default_dpc=NET_PC)), table,
                          observer=metrics or NULL)
    return Gateway(node, UssdService(table, GW))


def network_node() -> NetworkSim:
    table = DialogueTable(supported_acs=ACS, idle_timeout=30.0, invoke_timeout=20.0)
    node = SignallingNode(MSC, SccpLayer(SccpConfig(NET_PC, frozenset({6, 7, 8}), default_dpc=GW_PC)), table)
    sim = NetworkSim(node, GW)
    sim.add(Subscriber("491720000001", "262011234567890"))
    sim.add(Subscriber("491720000002", "262011234567891", vlr_behaviour=72))  # ussd-Busy
    sim.add(Subscriber("491720000003", "262011234567892", hlr_error=6))  # absentSubscriberSM
    return sim
