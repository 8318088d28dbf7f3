"""Runs inside a User-Mode Linux guest (kernel SCTP): an ASP and an SG of ours over a real SCTP association.

Checks: association up (ASPUP/ASPAC), DATA both ways with PPID 3 on the stream chosen by SLS and management on
stream 0, heartbeats, and peer loss followed by reconnection. Prints a JSON report; exit status 0 when all pass.
"""

from __future__ import annotations

import asyncio
import json
import sys

from gateway.codecs import m3ua
from gateway.stack.m3ua_asp import AspState, AssociationConfig, DataReceived, Event, M3uaAssociation, Role
from gateway.transport import sctp


async def wait_for(predicate, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            return False
        await asyncio.sleep(0.01)
    return True


async def main() -> dict[str, object]:
    report: dict[str, object] = {}
    data: dict[str, list[bytes]] = {"sg": [], "asp": []}
    servers: list[sctp.M3uaSctpConnection] = []
    clients: list[sctp.M3uaSctpConnection] = []

    def sink(assoc: M3uaAssociation, event: Event) -> None:
        if isinstance(event, DataReceived):
            data[assoc.config.name].append(event.data.data)

    listener = await sctp.serve("127.0.0.1", 2905, AssociationConfig(name="sg", role=Role.SG, beat_interval=0),
                                sink, servers.append, extra_addresses=("127.0.0.2",))  # fmt: skip
    stop = asyncio.Event()
    cfg = AssociationConfig(name="asp", role=Role.ASP, routing_keys=(m3ua.RoutingKey(1, 1),), beat_interval=0.2)
    task = asyncio.create_task(sctp.run_client("127.0.0.1", 2905, cfg, sink, on_connection=clients.append,
                                               backoff_initial=0.05, stop=stop,
                                               local_addresses=("127.0.0.3", "127.0.0.4")))  # fmt: skip
    report["active"] = await wait_for(lambda: bool(clients) and clients[-1].association.state is AspState.ACTIVE
                                      and bool(servers) and servers[-1].association.state is AspState.ACTIVE)
    # Multi-homing: each side sees both of the other's addresses.
    report["multihomed_client_sees"] = sorted(sctp.addresses_of(clients[-1].sock)) == ["127.0.0.1", "127.0.0.2"]
    report["multihomed_server_sees"] = sorted(sctp.addresses_of(servers[-1].sock)) == ["127.0.0.3", "127.0.0.4"]
    report["streams_negotiated"] = clients[-1].streams == sctp.STREAMS == servers[-1].streams
    report["mgmt_on_stream_0"] = all(sid == 0 and ppid == 3 for sid, ppid in servers[-1].received_streams)
    clients[-1].send_data(1, 2, 5, b"asp->sg")
    servers[-1].send_data(2, 1, 9, b"sg->asp")
    report["data_both_ways"] = await wait_for(lambda: data["sg"] == [b"asp->sg"] and data["asp"] == [b"sg->asp"])
    report["data_stream_by_sls"] = servers[-1].received_streams[-1] == (1 + 5, 3)
    report["asp_got_stream"] = clients[-1].received_streams[-1] == (1 + 9, 3)
    await asyncio.sleep(0.7)  # heartbeats go out and are answered
    report["beats_answered"] = clients[-1].association.state is AspState.ACTIVE
    servers[-1].close()  # the peer goes away
    report["reconnected"] = await wait_for(lambda: len(clients) >= 2
                                           and clients[-1].association.state is AspState.ACTIVE)
    clients[-1].send_data(1, 2, 1, b"again")
    report["data_after_reconnect"] = await wait_for(lambda: data["sg"][-1:] == [b"again"])
    stop.set()
    await asyncio.wait_for(task, 5)
    listener.close()
    return report


if __name__ == "__main__":
    result = asyncio.run(main())
    print(json.dumps(result))
    sys.exit(0 if all(result.values()) else 1)
