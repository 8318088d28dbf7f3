"""Simulator as load generator against the gateway's stack, both in this process over M3UA/TCP on loopback: a
standard session is dial *123#, menu, select, final text (two TCAP round trips, 4 M3UA DATA each way)."""

from __future__ import annotations

import asyncio

from bench.common import Row
from gateway.sim.run import dial_many
from gateway.stack.m3ua_asp import AssociationConfig, Role
from gateway.transport import tcp
from tests.support.network import gateway_node

SESSIONS = 3000


async def _run() -> float:
    gw = gateway_node()
    host = gw.host()
    server = await tcp.serve("127.0.0.1", 0, AssociationConfig(name="gw", role=Role.SG, routing_contexts=(1,),
                                                               beat_interval=0), host.sink, host.add)
    port = server.sockets[0].getsockname()[1]
    try:
        calls = [("491720000001", "*123#", ["1"]) for _ in range(SESSIONS)]
        sessions, seconds = await dial_many("127.0.0.1", port, calls, concurrency=200)
        assert all(s.final == "Balance: 12.50 EUR" for s in sessions)
        return SESSIONS / seconds
    finally:
        server.close()
        await server.wait_closed()


def rows() -> list[Row]:
    rate = max(asyncio.run(_run()) for _ in range(3))
    return [Row(f"simulator + gateway stack in one process, one core: {rate:,.0f} sessions/s (us per session)",
                1e6 / rate, {}, "informative: both sides share one core here", None)]
