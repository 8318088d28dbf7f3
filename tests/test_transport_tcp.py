"""M3UA over TCP on loopback: real sockets, the association state machine and the framer together."""

from __future__ import annotations

import asyncio
import socket

from gateway.codecs import m3ua
from gateway.codecs.m3ua import ErrorCode
from gateway.stack.m3ua_asp import AspState, AssociationConfig, DataReceived, Event, M3uaAssociation, Role
from gateway.transport.tcp import M3uaTcpProtocol, run_client, serve
from tests.support.aio import wait_for

KEY = m3ua.RoutingKey(local_rk_id=1, dpc=1)




async def test_asp_registers_activates_exchanges_data_and_reconnects() -> None:
    events: list[tuple[str, Event]] = []
    servers: list[M3uaTcpProtocol] = []
    clients: list[M3uaTcpProtocol] = []

    def sink(assoc: M3uaAssociation, event: Event) -> None:
        events.append((assoc.config.name, event))

    sg_cfg = AssociationConfig(name="sg", role=Role.SG, beat_interval=0)
    server = await serve("127.0.0.1", 0, sg_cfg, sink, servers.append)
    port = server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    asp_cfg = AssociationConfig(name="asp", role=Role.ASP, routing_keys=(KEY,), beat_interval=0.2)
    client_task = asyncio.create_task(run_client("127.0.0.1", port, asp_cfg, sink, on_connection=clients.append,
                                                 backoff_initial=0.05, stop=stop))
    try:
        await wait_for(lambda: clients and clients[-1].association.state is AspState.ACTIVE)
        await wait_for(lambda: servers and servers[-1].association.state is AspState.ACTIVE)
        assert clients[-1].send_data(1, 2, 7, b"hello sg")
        assert servers[-1].send_data(2, 1, 3, b"hello asp")
        await wait_for(lambda: sum(isinstance(e, DataReceived) for _, e in events) == 2)
        got = {name: e.data.data for name, e in events if isinstance(e, DataReceived)}
        assert got == {"sg": b"hello sg", "asp": b"hello asp"}
        await asyncio.sleep(0.5)  # heartbeats flow and are answered: still active
        assert clients[-1].association.state is AspState.ACTIVE
        # The peer goes away: the client sees DOWN, reconnects, re-registers and is active again.
        first = clients[-1]
        assert servers[-1].transport is not None
        servers[-1].transport.close()
        await wait_for(lambda: len(clients) >= 2 and clients[-1].association.state is AspState.ACTIVE)
        assert first.association is clients[-1].association
    finally:
        stop.set()
        await asyncio.wait_for(client_task, 5)
        server.close()
        await server.wait_closed()


async def test_bad_length_gets_err_and_the_server_keeps_serving() -> None:
    server = await serve("127.0.0.1", 0, AssociationConfig(role=Role.SG, beat_interval=0), lambda a, e: None)
    port = server.sockets[0].getsockname()[1]
    loop = asyncio.get_running_loop()
    try:
        for header in (bytes.fromhex("0100030100000000"), bytes.fromhex("0100030100000005")):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(header)
            await writer.drain()
            reply = await asyncio.wait_for(reader.read(1024), 5)
            assert m3ua.decode(reply).error_code == ErrorCode.PROTOCOL_ERROR
            assert await asyncio.wait_for(reader.read(1024), 5) == b""  # then closed
            writer.close()
        # Whole messages sent before a bad header in the same segment are handled before the ERR.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(m3ua.encode(m3ua.aspup()) + m3ua.encode(m3ua.beat(b"ping")) + bytes.fromhex("0100030100000006"))
        await writer.drain()
        got = b""
        while chunk := await asyncio.wait_for(reader.read(1024), 5):
            got += chunk
        kinds = []
        while got:
            length = int.from_bytes(got[4:8], "big")
            kinds.append(m3ua.decode(got[:length]))
            got = got[length:]
        seen = [(k.msg_class, k.msg_type) for k in kinds]
        assert seen[0] == (3, 4) and (3, 6) in seen and seen[-1] == (0, 0)  # ASPUP_ACK (NTFY), BEAT_ACK, then ERR
        assert kinds[-1].error_code == ErrorCode.PROTOCOL_ERROR
        writer.close()
        # A well-behaved ASP still gets served.
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setblocking(False)
        await loop.sock_sendall(sock, m3ua.encode(m3ua.aspup()))
        reply = await asyncio.wait_for(loop.sock_recv(sock, 1024), 5)
        assert (reply[2], reply[3]) == (3, 4)  # ASPUP_ACK
        sock.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_override_across_two_tcp_connections() -> None:
    events: list[tuple[str, Event]] = []
    server = await serve("127.0.0.1", 0, AssociationConfig(name="sg", role=Role.SG, routing_contexts=(1,),
                                                           beat_interval=0), lambda a, e: events.append(("sg", e)))
    port = server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    clients: dict[str, list[M3uaTcpProtocol]] = {"a": [], "b": []}
    tasks = []
    try:
        for name in ("a", "b"):
            cfg = AssociationConfig(name=name, role=Role.ASP, routing_contexts=(1,),
                                    traffic_mode=m3ua.TrafficMode.OVERRIDE, beat_interval=0)
            tasks.append(asyncio.create_task(run_client("127.0.0.1", port, cfg, lambda a, e: None,
                                                        on_connection=clients[name].append, stop=stop)))
            await wait_for(lambda name=name: bool(clients[name])  # type: ignore[misc]
                           and clients[name][-1].association.state is AspState.ACTIVE)
        # b took over: a was told over its own socket and is inactive now.
        await wait_for(lambda: clients["a"][-1].association.state is AspState.INACTIVE)
        assert clients["b"][-1].association.state is AspState.ACTIVE
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
        server.close()
        await server.wait_closed()
