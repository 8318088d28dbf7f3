"""Interop with osmo-stp 2.x (M3UA over TCP): our ASPs register dynamically, exchange DATA through the STP, and
survive the STP being restarted (reconnect, re-register, traffic resumes)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.codecs import m3ua
from gateway.stack.m3ua_asp import AspState, AssociationConfig, DataReceived, Event, M3uaAssociation, Role
from gateway.transport.tcp import M3uaTcpProtocol, run_client
from tests.support.aio import wait_for
from tests.support.osmo_stp import OsmoStp, free_port, pc

pytestmark = pytest.mark.interop

GW_PC = pc(0, 0, 1)
NET_PC = pc(0, 0, 2)


@pytest.fixture
def stp() -> Iterator[OsmoStp]:
    server = OsmoStp(free_port()).start()
    try:
        yield server
    finally:
        server.stop()




async def test_two_asps_exchange_data_and_survive_restart(stp: OsmoStp) -> None:
    received: dict[str, list[bytes]] = {"gw": [], "net": []}
    conns: dict[str, list[M3uaTcpProtocol]] = {"gw": [], "net": []}

    def sink(assoc: M3uaAssociation, event: Event) -> None:
        if isinstance(event, DataReceived):
            received[assoc.config.name].append(event.data.data)

    stops = {"gw": asyncio.Event(), "net": asyncio.Event()}
    tasks: dict[str, asyncio.Task[None]] = {}

    def start(name: str, own_pc: int, rk_id: int) -> None:
        stops[name] = asyncio.Event()
        cfg = AssociationConfig(name=name, role=Role.ASP, routing_keys=(m3ua.RoutingKey(rk_id, own_pc),),
                                traffic_mode=m3ua.TrafficMode.OVERRIDE, beat_interval=1.0, ack_timeout=1.0)
        tasks[name] = asyncio.create_task(run_client("127.0.0.1", stp.port, cfg, sink,
                                                     on_connection=conns[name].append, backoff_initial=0.1,
                                                     backoff_max=0.5, stop=stops[name]))  # fmt: skip

    start("gw", GW_PC, 1)
    start("net", NET_PC, 2)

    def active(name: str) -> bool:
        return bool(conns[name]) and conns[name][-1].association.state is AspState.ACTIVE

    try:
        await wait_for(lambda: active("gw") and active("net"))
        assert conns["gw"][-1].send_data(GW_PC, NET_PC, 1, b"gw->net via osmo-stp")
        assert conns["net"][-1].send_data(NET_PC, GW_PC, 2, b"net->gw via osmo-stp")
        await wait_for(lambda: received["net"] and received["gw"])
        assert received == {"net": [b"gw->net via osmo-stp"], "gw": [b"net->gw via osmo-stp"]}
        # osmo-stp restarts: both reconnect, register again and traffic resumes.
        await asyncio.get_running_loop().run_in_executor(None, stp.restart)
        await wait_for(lambda: len(conns["gw"]) >= 2 and len(conns["net"]) >= 2 and active("gw") and active("net"))
        assert conns["gw"][-1].send_data(GW_PC, NET_PC, 3, b"after restart")
        await wait_for(lambda: len(received["net"]) == 2)
        assert received["net"][-1] == b"after restart"
        # The network side goes away: osmo-stp tells the gateway its point code is unavailable (DUNA), and
        # available again (DAVA) when it comes back.
        gw = conns["gw"][-1].association
        stops["net"].set()
        await tasks["net"]
        await wait_for(lambda: NET_PC in gw.unavailable)
        start("net", NET_PC, 2)
        await wait_for(lambda: active("net") and NET_PC not in gw.unavailable)
    finally:
        for event in stops.values():
            event.set()
        await asyncio.wait_for(asyncio.gather(*tasks.values()), 10)


async def test_ussd_dialogues_both_ways_through_osmo_stp(stp: OsmoStp, tmp_path: Path) -> None:
    """The gateway and the simulator each come up as ASPs of their own AS through osmo-stp (which routes by DPC
    only) and run pull and push dialogues; after an osmo-stp restart, traffic resumes. Everything the two ASPs
    send and receive is captured, and tshark finds it clean."""
    from gateway.ops.pcap import PcapWriter
    from gateway.stack.map_ussd import Mode, PushDelivered
    from gateway.transport.host import StackHost
    from tests.support import tshark
    from tests.support.network import GW_PC, MENU, NET_PC, gateway_node, network_node

    capture = PcapWriter(tmp_path / "via-osmo-stp.pcap")
    addresses = {"gw": ("127.0.0.11", 40001), "sim": ("127.0.0.12", 40002)}
    stp_addr = ("127.0.0.1", stp.port)

    gw = gateway_node()
    sim = network_node()
    gw_host = gw.host()
    runners: dict[str, Any] = {"gw": gw_host, "sim": StackHost(sim.node, sim)}
    conns: dict[str, list[M3uaTcpProtocol]] = {"gw": [], "sim": []}
    stop = asyncio.Event()
    tasks = []
    for name, own_pc, rk in (("gw", GW_PC, 1), ("sim", NET_PC, 2)):
        runner = runners[name]

        def on_conn(proto: M3uaTcpProtocol, name: str = name, runner: Any = runner) -> None:
            conns[name].append(proto)
            runner.add(proto)
            me = addresses[name]

            def tap(data: bytes, sent: bool, me: tuple[str, int] = me) -> None:
                src, dst = (me, stp_addr) if sent else (stp_addr, me)
                capture.write_m3ua(data, src=src, dst=dst, ts=1_700_000_000 + asyncio.get_running_loop().time())

            proto.tap = tap

        cfg = AssociationConfig(name=name, role=Role.ASP, routing_keys=(m3ua.RoutingKey(rk, own_pc),),
                                traffic_mode=m3ua.TrafficMode.OVERRIDE, beat_interval=1.0, ack_timeout=1.0)
        tasks.append(asyncio.create_task(run_client("127.0.0.1", stp.port, cfg, runner.sink, on_connection=on_conn,
                                                    backoff_initial=0.1, backoff_max=0.5, stop=stop)))  # fmt: skip

    def up() -> bool:
        return all(conns[n] and conns[n][-1].association.state is AspState.ACTIVE for n in conns)

    loop = asyncio.get_running_loop()
    try:
        for round_ in range(2):
            await wait_for(up)
            session = sim.dial("491720000001", "*123#", ["1"], now=loop.time())
            runners["sim"].schedule()
            await wait_for(lambda session=session: session.done)  # type: ignore[misc]
            assert (session.menus, session.final) == ([MENU], "Balance: 12.50 EUR"), round_
            push = gw.push(gw_host, "491720000001", f"push {round_}", Mode.NOTIFY)
            await wait_for(lambda push=push: PushDelivered(push, None) in gw.app_events)  # type: ignore[misc]
            if round_ == 0:
                await loop.run_in_executor(None, stp.restart)
                await wait_for(lambda: len(conns["gw"]) >= 2 and len(conns["sim"]) >= 2)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
        capture.close()
    pcap = tmp_path / "via-osmo-stp.pcap"
    assert tshark.problems(pcap) == []
    rows = tshark.fields(pcap, ["gsm_old.localValue", "m3ua.message_class"])
    opcodes = {v for row in rows for v in row["gsm_old.localValue"]}
    assert {"59", "60", "61", "45"} <= opcodes
    classes = {v for row in rows for v in row["m3ua.message_class"]}
    assert {"1", "3", "4", "9"} <= classes  # DATA, ASPSM, ASPTM and RKM went through osmo-stp


async def test_failover_between_two_stps() -> None:
    """The gateway and the simulator are ASPs of two STPs at once (the usual pair); when one STP dies, dialogues
    carry on over the other, and the dead one is used again once it is back."""
    from gateway.transport.host import StackHost
    from tests.support.network import GW_PC, MENU, NET_PC, gateway_node, network_node

    stps = [OsmoStp(free_port()).start(), OsmoStp(free_port()).start()]
    gw = gateway_node()
    sim = network_node()
    gw_host = gw.host()
    runners: dict[str, Any] = {"gw": gw_host, "sim": StackHost(sim.node, sim)}
    conns: dict[tuple[str, int], list[M3uaTcpProtocol]] = {}
    stop = asyncio.Event()
    tasks = []
    for index, stp in enumerate(stps):
        for name, own_pc, rk in (("gw", GW_PC, 1), ("sim", NET_PC, 2)):
            key = (name, index)
            conns[key] = []

            def on_conn(proto: M3uaTcpProtocol, key: tuple[str, int] = key, name: str = name) -> None:
                conns[key].append(proto)
                runners[name].add(proto)

            cfg = AssociationConfig(name=f"{name}-stp{index}", role=Role.ASP,
                                    routing_keys=(m3ua.RoutingKey(rk, own_pc),), beat_interval=1.0, ack_timeout=1.0)
            tasks.append(asyncio.create_task(run_client("127.0.0.1", stp.port, cfg, runners[name].sink,
                                                        on_connection=on_conn, backoff_initial=0.1,
                                                        backoff_max=0.3, stop=stop)))  # fmt: skip

    def active(key: tuple[str, int]) -> bool:
        return bool(conns[key]) and conns[key][-1].association.state is AspState.ACTIVE

    loop = asyncio.get_running_loop()

    async def session_ok() -> None:
        sessions = [sim.dial("491720000001", "*123#", ["1"], now=loop.time()) for _ in range(8)]
        runners["sim"].schedule()
        await wait_for(lambda: all(s.done for s in sessions))
        assert all((s.menus, s.final) == ([MENU], "Balance: 12.50 EUR") for s in sessions), sessions

    try:
        await wait_for(lambda: all(active(k) for k in conns))
        await session_ok()
        stps[0].stop()
        await wait_for(lambda: not active(("gw", 0)) and not active(("sim", 0)))
        await session_ok()  # all through the second STP
        assert gw.node.undeliverable == 0 and sim.node.undeliverable == 0
        stps[0].start()
        await wait_for(lambda: all(active(k) for k in conns))
        await session_ok()
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
        for stp in stps:
            stp.stop()
