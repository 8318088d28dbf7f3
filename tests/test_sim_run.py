"""The simulator as a runnable ASP: many scripted sessions against a gateway over TCP, and the `sim` command."""

from __future__ import annotations

import asyncio
import json
import sys

from gateway.sim.run import dial_many
from gateway.stack.m3ua_asp import AssociationConfig, Role
from gateway.transport import tcp
from tests.support.network import MENU, gateway_node


async def start_gateway() -> tuple[asyncio.Server, int]:
    gw = gateway_node()
    host = gw.host()
    server = await tcp.serve("127.0.0.1", 0, AssociationConfig(name="gw", role=Role.SG, routing_contexts=(1,),
                                                               beat_interval=0), host.sink, host.add)
    return server, server.sockets[0].getsockname()[1]


async def test_many_sessions_in_flight() -> None:
    server, port = await start_gateway()
    try:
        calls = [("491720000001", "*123#", ["1" if i % 2 else "2"]) for i in range(300)]
        sessions, seconds = await dial_many("127.0.0.1", port, calls, concurrency=50)
        assert all(s.status == "ended" and s.menus == [MENU] for s in sessions)
        finals = {s.final for s in sessions}
        assert finals == {"Balance: 12.50 EUR", "Bye"}
        assert seconds > 0
    finally:
        server.close()
        await server.wait_closed()


async def test_sim_command_prints_what_the_handset_saw() -> None:
    server, port = await start_gateway()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway.cli", "sim", "*123#", "--connect", f"127.0.0.1:{port}", "--input", "1",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        result = json.loads(out)
        assert result == {"status": "ended", "menus": [MENU], "final": "Balance: 12.50 EUR", "error": None,
                          "dcs": [15, 15]}
    finally:
        server.close()
        await server.wait_closed()
