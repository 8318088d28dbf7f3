"""Containment: a defect hit by one received message or one event is answered as the spec says for an undecodable
message, releases what it started, is reported once, and leaves every other dialogue and the association working.

Each test injects a fault (an exception a layer does not expect) into the layer below one boundary, then checks the
answer on the wire, the table, the report, and that the next normal message is served.
"""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import pytest
from prometheus_client import generate_latest

from gateway.codecs import m3ua, sccp, tcap, ussd_string
from gateway.codecs import map as M
from gateway.codecs.errors import InvokeProblem, PAbortCause, ProblemKind
from gateway.ops import logs
from gateway.ops.faults import FaultReporter
from gateway.ops.metrics import StackMetrics
from gateway.stack import map_ussd, node, tcap_table
from gateway.stack.containment import CountingObserver, fault
from gateway.stack.m3ua_asp import AspState, AssociationConfig, DataReceived, M3uaAssociation, Role
from gateway.stack.map_ussd import SessionClosed, SessionStarted
from gateway.stack.tcap_table import AbortIndication
from gateway.transport import tcp
from gateway.transport.host import StackHost, UssdHost
from tests.support.aio import wait_for
from tests.support.network import GW, MSC, Gateway, gateway_node, network_node

OTID = b"\x01\x02\x03\x04"
ASSOC = M3uaAssociation(AssociationConfig(name="a"))


def ussd_param(text: str = "*123#", tail: bytes = b"") -> bytes:
    dcs, octets = ussd_string.encode(text)
    body = bytes((0x04, 1, dcs, 0x04, len(octets))) + octets + tail
    return bytes((0x30, len(body))) + body


def begin(param: bytes, otid: bytes = OTID) -> bytes:
    aarq = tcap.Aarq(M.AC_NETWORK_UNSTRUCTURED_SS_V2, ())
    return tcap.encode(tcap.Begin(otid, aarq, (tcap.Invoke(1, M.OP_PROCESS_USSR, param),)))


def deliver(gw: Gateway, data: bytes, now: float = 0.0) -> list[tuple[Any, bytes]]:
    """Hand ``data`` (TCAP octets from the MSC) to the node, run the TC-user, return what the table sent."""
    udt = sccp.encode(sccp.Udt(1, True, GW, MSC, data))
    gw.node.on_m3ua_event(ASSOC, DataReceived(m3ua.ProtocolData(2, 1, 3, 2, 0, 0, udt), 1), now)
    while gw.node.table.events:
        gw.on_table_event(gw.node.table.events.popleft(), now)
    out = list(gw.node.table.outgoing)
    gw.node.table.outgoing.clear()
    return out


def observed(gw: Gateway) -> CountingObserver:
    obs = CountingObserver()
    gw.node.faults = obs
    gw.ussd.faults = obs
    return obs


def served_normally(gw: Gateway) -> None:
    """A well-formed *123# still opens a session and gets the menu."""
    ((_, cont),) = deliver(gw, begin(ussd_param()), 1.0)
    msg = tcap.decode(cont)
    assert isinstance(msg, tcap.Continue) and isinstance(msg.components[0], tcap.Invoke)


def test_the_reported_ussd_arg_with_a_lone_0x80_is_rejected_not_raised() -> None:
    """The issue's message: a USSD-Arg whose SEQUENCE ends in a lone 0x80 (msisdn tag, no length)."""
    gw = gateway_node()
    obs = observed(gw)
    ((peer, data),) = deliver(gw, begin(ussd_param(tail=b"\x80")))
    end = tcap.decode(data)
    assert peer == MSC and isinstance(end, tcap.End) and end.dtid == OTID
    (reject,) = end.components
    assert reject == tcap.Reject(1, ProblemKind.INVOKE, InvokeProblem.MISTYPED_PARAMETER)  # TS 29.002 §15.6
    assert len(gw.node.table) == 0 and not gw.ussd.sessions
    assert obs.count <= 1  # a decoder defect (counted) or, once fixed, a MapError (no fault): the answer is the same
    served_normally(gw)


def test_map_layer_fault_on_begin_gets_reject_and_frees_the_dialogue(monkeypatch: pytest.MonkeyPatch) -> None:
    gw = gateway_node()
    obs = observed(gw)
    monkeypatch.setattr(map_ussd.M, "decode_ussd_arg", _raise(IndexError("injected")))
    ((_, data),) = deliver(gw, begin(ussd_param()))
    end = tcap.decode(data)
    assert isinstance(end, tcap.End)
    assert end.components == (tcap.Reject(1, ProblemKind.INVOKE, InvokeProblem.MISTYPED_PARAMETER),)
    assert obs.count == 1 and obs.last is not None and obs.last.where == "map"
    assert obs.last.kind.startswith("IndexError at ") and obs.last.octets == ussd_param()
    assert len(gw.node.table) == 0
    monkeypatch.undo()
    served_normally(gw)


def test_map_layer_fault_mid_session_aborts_it_and_tells_the_application(monkeypatch: pytest.MonkeyPatch) -> None:
    gw = gateway_node()
    obs = observed(gw)
    ((_, data),) = deliver(gw, begin(ussd_param()))
    cont = tcap.decode(data)
    assert isinstance(cont, tcap.Continue)
    (session,) = gw.ussd.sessions
    monkeypatch.setattr(map_ussd.M, "decode_ussd_res", _raise(KeyError("injected")))
    answer = tcap.Continue(OTID, cont.otid, None, (tcap.ReturnResult(cont.components[0].invoke_id, M.OP_USSR,
                                                                     M.encode_ussd_res(M.ussd_res("1"))),))  # fmt: skip
    ((_, data),) = deliver(gw, tcap.encode(answer))
    abort = tcap.decode(data)
    assert isinstance(abort, tcap.Abort) and abort.dtid == OTID and abort.p_abort_cause is None  # TC-U-ABORT
    assert SessionClosed(session, "gateway-error", "internal error in the MAP layer") in gw.app_events
    assert obs.count == 1 and len(gw.node.table) == 0 and not gw.ussd.sessions


def test_tcap_fault_on_begin_p_aborts_the_otid_and_frees_what_it_opened(monkeypatch: pytest.MonkeyPatch) -> None:
    """The table fails after it created the dialogue: the dialogue is released, the peer gets a P-Abort."""
    gw = gateway_node()
    obs = observed(gw)
    monkeypatch.setattr(tcap_table, "BeginIndication", _raise(RuntimeError("injected")))
    ((peer, data),) = deliver(gw, begin(ussd_param()))
    abort = tcap.decode(data)
    assert peer == MSC and abort == tcap.Abort(OTID, PAbortCause.BADLY_FORMATTED_TRANSACTION_PORTION)  # Q.774 §3.2.1.2
    assert obs.count == 1 and obs.last is not None and obs.last.where == "tcap"
    assert len(gw.node.table) == 0 and len(gw.node.table.tids) == 0
    monkeypatch.undo()
    served_normally(gw)


def test_tcap_fault_on_continue_releases_the_dialogue_and_closes_the_session(monkeypatch: pytest.MonkeyPatch) -> None:
    gw = gateway_node()
    ((_, data),) = deliver(gw, begin(ussd_param()))
    cont = tcap.decode(data)
    assert isinstance(cont, tcap.Continue)
    obs = observed(gw)
    monkeypatch.setattr(tcap_table.DialogueTable, "_results", _raise(ValueError("injected")))
    answer = tcap.Continue(OTID, cont.otid, None, (tcap.ReturnResult(1, M.OP_USSR, b"\x30\x00"),))
    ((_, data),) = deliver(gw, tcap.encode(answer))
    assert tcap.decode(data) == tcap.Abort(OTID, PAbortCause.BADLY_FORMATTED_TRANSACTION_PORTION)
    assert len(gw.node.table) == 0 and not gw.ussd.sessions
    assert isinstance(gw.app_events[-1], SessionClosed) and gw.app_events[-1].outcome == "gateway-error"
    assert obs.count == 1


def test_sccp_fault_discards_the_message(monkeypatch: pytest.MonkeyPatch) -> None:
    gw = gateway_node()
    obs = observed(gw)
    monkeypatch.setattr(node.SccpLayer, "receive", _raise(struct_error()))
    assert deliver(gw, begin(ussd_param())) == []  # Q.714 §4.3: nothing is answered to what cannot be read
    assert obs.count == 1 and obs.last is not None and obs.last.where == "sccp" and obs.last.octets[:1] == b"\x09"
    monkeypatch.undo()
    served_normally(gw)


def test_many_faults_leak_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    gw = gateway_node()
    obs = observed(gw)
    monkeypatch.setattr(tcap_table, "BeginIndication", _raise(RuntimeError("injected")))
    for i in range(2000):
        deliver(gw, begin(ussd_param(), otid=i.to_bytes(4, "big")))
    assert obs.count == 2000 and len(gw.node.table) == 0 and len(gw.node.table.tids) == 0


def test_fault_reporter_counts_every_fault_and_logs_each_kind_once_a_minute() -> None:
    metrics = StackMetrics()
    stream = io.StringIO()
    logs.configure("info", stream)
    clock = [0.0]
    reporter = FaultReporter(metrics, clock=lambda: clock[0])
    try:
        raise IndexError("boom")
    except IndexError as exc:
        one = fault("map", exc, b"\x30\x80")
    try:
        raise KeyError("other")
    except KeyError as exc:
        two = fault("tcap", exc, b"\x62")
    for _ in range(1000):
        reporter.internal_error(one)
    reporter.internal_error(two)
    clock[0] = 61.0
    reporter.internal_error(one)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(x["event"], x["where"]) for x in lines] == [("internal_error", "map"), ("internal_error", "tcap"),
                                                         ("internal_error.repeated", "map")]  # fmt: skip
    assert lines[0]["octets"] == "3080" and "IndexError" in lines[0]["kind"] and "exception" in lines[0]
    assert lines[2]["occurrences"] == 1000
    text = generate_latest(metrics.registry).decode()
    assert 'ussd_internal_errors_total{where="map"} 1001.0' in text
    assert 'ussd_internal_errors_total{where="tcap"} 1.0' in text
    assert 'ussd_internal_errors_total{where="m3ua"} 0.0' in text  # every boundary's series exists from the start


async def test_service_fault_aborts_that_session_only_and_the_runner_goes_on() -> None:
    """The shell's boundary: the TC-user raises on one event; that dialogue is aborted, the next ones are served."""
    gw = gateway_node()
    obs = observed(gw)
    host = UssdHost(gw.node, gw.ussd)
    started: list[SessionStarted] = []
    closed: list[SessionClosed] = []

    def flaky(ev: SessionStarted) -> None:
        started.append(ev)
        if len(started) == 1:
            raise RuntimeError("injected fault in the service")
        host.reply(ev.session, "Menu")

    host.on(SessionStarted, flaky)
    host.on(SessionClosed, closed.append)
    udt = sccp.encode(sccp.Udt(1, True, GW, MSC, begin(ussd_param())))
    host.sink(ASSOC, DataReceived(m3ua.ProtocolData(2, 1, 3, 2, 0, 0, udt), 1))
    await wait_for(lambda: obs.count == 1)
    assert obs.last is not None and obs.last.where == "service"
    assert len(gw.node.table) == 0  # TC-U-ABORT sent (no association here: counted undeliverable)
    assert gw.node.undeliverable == 1 and [c.outcome for c in closed] == ["gateway-error"]
    udt = sccp.encode(sccp.Udt(1, True, GW, MSC, begin(ussd_param(), otid=b"\x00\x00\x00\x07")))
    host.sink(ASSOC, DataReceived(m3ua.ProtocolData(2, 1, 3, 2, 0, 0, udt), 1))
    await wait_for(lambda: len(started) == 2)
    await asyncio.sleep(0)
    assert len(gw.node.table) == 1 and gw.node.undeliverable == 2 and obs.count == 1  # the menu went down


async def test_timer_fault_does_not_stop_the_timers(monkeypatch: pytest.MonkeyPatch) -> None:
    gw = gateway_node()
    obs = observed(gw)
    gw.node.table.idle_timeout = 0.05
    host = gw.host()
    loop = asyncio.get_running_loop()
    real = node.SccpLayer.handle_timer
    failures = [1]

    def first_tick_fails(self: node.SccpLayer, now: float) -> None:
        if failures:
            failures.pop()
            raise ZeroDivisionError("injected")
        real(self, now)

    monkeypatch.setattr(node.SccpLayer, "handle_timer", first_tick_fails)
    gw.node.table.begin(MSC, M.AC_NETWORK_UNSTRUCTURED_SS_V2, (), now=loop.time())
    gw.node.table.timers.schedule(loop.time() + 0.01, (-1, -1))  # an earlier tick, which fails
    host.schedule()
    await wait_for(lambda: obs.count == 1, 2.0)
    assert obs.last is not None and obs.last.where == "timer"
    await wait_for(lambda: len(gw.node.table) == 0, 2.0)  # the idle timer still fired


async def test_tcp_association_survives_a_fault_in_its_event_sink() -> None:
    """The transport's last resort: whatever the shell's sink raises, the TCP association stays up."""
    gw = gateway_node()
    sim = network_node()
    sim_host = StackHost(sim.node, sim)
    reporter = CountingObserver()
    raised = {"n": 0}
    gw_host = gw.host()
    conns: list[tcp.M3uaTcpProtocol] = []

    def sink(association: M3uaAssociation, event: Any) -> None:
        if isinstance(event, DataReceived) and raised["n"] == 0:
            raised["n"] = 1
            raise RuntimeError("injected fault in the shell")
        gw_host.sink(association, event)

    def on_conn(proto: tcp.M3uaTcpProtocol) -> None:
        proto.faults = reporter
        conns.append(proto)
        gw_host.add(proto)

    server = await tcp.serve("127.0.0.1", 0, AssociationConfig(name="gw", role=Role.SG, routing_contexts=(1,),
                                                                beat_interval=0), sink, on_conn)  # fmt: skip
    port = server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    client = asyncio.create_task(tcp.run_client("127.0.0.1", port, AssociationConfig(
        name="sim", role=Role.ASP, routing_contexts=(1,), beat_interval=0), sim_host.sink,
        on_connection=sim_host.add, stop=stop))  # fmt: skip
    try:
        await wait_for(lambda: bool(conns) and conns[0].association.state is AspState.ACTIVE, 5.0)
        loop = asyncio.get_running_loop()
        first = sim.dial("491720000001", "*123#", ["1"], now=loop.time())
        sim_host.schedule()
        await wait_for(lambda: reporter.count == 1, 5.0)
        assert reporter.last is not None and reporter.last.where == "transport"
        second = sim.dial("491720000001", "*123#", ["1"], now=loop.time())
        sim_host.schedule()
        await wait_for(lambda: second.final is not None, 5.0)
        assert second.final == "Balance: 12.50 EUR" and first.final is None
        assert len(conns) == 1 and not conns[0].closed.done()  # the same association carried on
    finally:
        stop.set()
        await asyncio.wait_for(client, 5)
        server.close()


def _raise(exc: BaseException) -> Any:
    """A stand-in that raises a fresh copy of ``exc`` on every call (as a real defect would)."""

    def boom(*args: object, **kwargs: object) -> Any:
        raise type(exc)(*exc.args)

    return boom


def struct_error() -> Exception:
    import struct

    return struct.error("injected")


def test_abort_indication_for_internal_errors_is_a_gateway_error() -> None:
    """The MAP layer reads a local internal-error abort as the gateway's fault, not the network's."""
    gw = gateway_node()
    deliver(gw, begin(ussd_param()))
    (session,) = gw.ussd.sessions
    d = gw.ussd.sessions[session]
    gw.node.table._release(d, "internal-error")
    gw.ussd.handle(AbortIndication(d, local_reason="internal-error"), 0.0)
    assert gw.ussd.events[-1] == SessionClosed(session, "gateway-error", "internal-error")


def test_m3ua_fault_is_answered_with_err_protocol_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """The M3UA layer's boundary: a defect while handling one message -> ERR Protocol Error (RFC 4666 §3.8.1)."""
    from gateway.stack import m3ua_asp

    obs = CountingObserver()
    a = M3uaAssociation(AssociationConfig(name="sg", role=Role.SG, routing_contexts=(1,), beat_interval=0))
    a.faults = obs
    a.connection_made(0.0)
    monkeypatch.setattr(m3ua_asp, "_aspup", _raise(AttributeError("injected")))
    monkeypatch.setitem(m3ua_asp._HANDLERS, (m3ua.MsgClass.ASPSM, m3ua.Aspsm.ASPUP), m3ua_asp._aspup)
    aspup = m3ua.encode(m3ua.aspup())
    a.receive(aspup, 0.0)
    (err,) = [m3ua.decode(o.data) for o in a.outgoing]
    assert (err.msg_class, err.msg_type) == (m3ua.MsgClass.MGMT, m3ua.Mgmt.ERR)
    assert err.u32(m3ua.Tag.ERROR_CODE) == m3ua.ErrorCode.PROTOCOL_ERROR
    assert obs.count == 1 and obs.last is not None and obs.last.where == "m3ua" and obs.last.octets == aspup
    a.outgoing.clear()
    monkeypatch.undo()
    a.receive(aspup, 0.0)  # the next one is served
    assert a.state is AspState.INACTIVE
