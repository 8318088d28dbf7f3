"""End to end over M3UA/TCP on loopback: the network simulator (ASP) and the gateway (SG) exchange USSD pull and
push dialogues; every M3UA message is captured and judged by tshark."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.ops.metrics import StackMetrics
from gateway.ops.pcap import PcapWriter
from gateway.stack.m3ua_asp import AspState, AssociationConfig, Role
from gateway.stack.map_ussd import Mode, PushDelivered, PushFailed, PushRouted
from gateway.transport import tcp
from gateway.transport.host import StackHost
from tests.support import tshark
from tests.support.aio import wait_for
from tests.support.network import MENU, gateway_node, network_node


@pytest.mark.interop
async def test_pull_and_push_between_simulator_and_gateway(tmp_path: Path) -> None:
    metrics = StackMetrics()
    gw = gateway_node(metrics)
    sim = network_node()
    gw_host = gw.host()
    sim_host = StackHost(sim.node, sim)
    capture = PcapWriter(tmp_path / "e2e.pcap")
    loop = asyncio.get_running_loop()

    def tap_from(src: tuple[str, int], dst: tuple[str, int]):  # type: ignore[no-untyped-def]
        def tap(data: bytes, sent: bool) -> None:
            if sent:
                capture.write_m3ua(data, src=src, dst=dst, ts=1_700_000_000 + loop.time())
        return tap

    def on_gw_conn(proto: tcp.M3uaTcpProtocol) -> None:
        proto.tap = tap_from(("127.0.0.1", 2905), ("127.0.0.2", 40000))
        gw_host.add(proto)

    server = await tcp.serve("127.0.0.1", 0, AssociationConfig(name="gw", role=Role.SG, routing_contexts=(1,),
                                                                beat_interval=0), gw_host.sink, on_gw_conn,
                             metrics=metrics)
    port = server.sockets[0].getsockname()[1]
    sim_conns: list[tcp.M3uaTcpProtocol] = []

    def on_sim_conn(proto: tcp.M3uaTcpProtocol) -> None:
        proto.tap = tap_from(("127.0.0.2", 40000), ("127.0.0.1", 2905))
        sim_conns.append(proto)
        sim_host.add(proto)

    stop = asyncio.Event()
    client = asyncio.create_task(tcp.run_client("127.0.0.1", port, AssociationConfig(
        name="sim", role=Role.ASP, routing_contexts=(1,), beat_interval=0), sim_host.sink,
        on_connection=on_sim_conn, backoff_initial=0.05, stop=stop))
    try:
        await wait_for(lambda: bool(sim_conns) and sim_conns[-1].association.state is AspState.ACTIVE)
        # Pull: the bank menu, then the balance; and an unknown code.
        s1 = sim.dial("491720000001", "*123#", ["1"], now=loop.time())
        s2 = sim.dial("491720000001", "*999#", [], now=loop.time())
        sim_host.schedule()
        await wait_for(lambda: s1.done and s2.done)
        assert (s1.menus, s1.final, s1.error) == ([MENU], "Balance: 12.50 EUR", None)
        assert s1.status == "ended" and s2.final == "Unknown service code"
        # The user cancels at the menu.
        s3 = sim.dial("491720000001", "*123#", [], now=loop.time())
        sim_host.schedule()
        await wait_for(lambda: s3.done)
        assert s3.error == "user-cancelled" and s3.status == "network-error"
        # Push: delivered, VLR busy, HLR says absent.
        ok = gw.push(gw_host, "491720000001", "Your code is 1234", Mode.NOTIFY)
        busy = gw.push(gw_host, "491720000002", "x")
        absent = gw.push(gw_host, "491720000003", "x")
        await wait_for(lambda: sum(isinstance(e, PushDelivered | PushFailed) for e in gw.app_events) == 3)
        outcome = {e.push: e for e in gw.app_events if isinstance(e, PushDelivered | PushFailed)}
        assert outcome[ok] == PushDelivered(ok, None)
        assert outcome[busy] == PushFailed(busy, "delivery", "ussd_busy", 72)
        assert outcome[absent] == PushFailed(absent, "routing", "absent_subscriber_sm", 6)
        assert PushRouted(ok, "262011234567890", "491720000099") in gw.app_events
        assert ("262011234567890", "Your code is 1234", 61) in sim.pushes_received
        assert len(gw.node.table) == 0 and len(sim.node.table) == 0
        assert gw.node.undeliverable == 0
    finally:
        stop.set()
        await asyncio.wait_for(client, 5)
        server.close()
        await server.wait_closed()
        capture.close()
    # Metrics counted the traffic.
    from prometheus_client import generate_latest

    text = generate_latest(metrics.registry).decode()
    assert 'ussd_m3ua_messages_total{association="gw",direction="rx",m3ua_class="Transfer",m3ua_type="DATA"}' in text
    assert 'ussd_tcap_messages_total{direction="rx",tcap_type="begin"} 3.0' in text  # three dials
    assert 'ussd_tcap_aborts_total{cause="abrt",direction="rx",kind="u-abort"} 1.0' in text  # the cancel
    assert "ussd_tcap_dialogues_active 0.0" in text
    for typ in ("ASPUP", "ASPAC"):  # management is counted too, both ways
        assert f'direction="rx",m3ua_class="{"ASPSM" if typ == "ASPUP" else "ASPTM"}",m3ua_type="{typ}"' in text
    assert 'direction="tx",m3ua_class="ASPTM",m3ua_type="ASPAC_ACK"' in text
    # The simulator has gone: the gateway's association is down again, and it had been active.
    assert 'ussd_m3ua_asp_state{association="gw",state="down"} 1.0' in text
    assert 'ussd_m3ua_asp_state{association="gw",state="active"} 0.0' in text
    # Every message of the exchange decodes clean in tshark, with the expected operations.
    pcap = tmp_path / "e2e.pcap"
    assert tshark.problems(pcap) == []
    opcodes = {v for row in tshark.fields(pcap, ["gsm_old.localValue"]) for v in row["gsm_old.localValue"]}
    assert {"59", "60", "61", "45", "72", "6"} <= opcodes
