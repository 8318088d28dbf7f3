"""The gateway side of a push test: the node, its host and the push service on a store, listening as SG on a free
loopback port (M3UA/TCP, routing context 1), without the HTTP parts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from gateway.ops.metrics import StackMetrics
from gateway.push.service import PushService, PushSettings
from gateway.push.store import PushStore
from gateway.stack.m3ua_asp import AspState, AssociationConfig, Role
from gateway.stack.map_ussd import PushDelivered, PushFailed, PushRouted
from gateway.transport import tcp
from gateway.transport.host import UssdHost
from tests.support.network import gateway_node


@dataclass
class PushGateway:
    host: UssdHost
    service: PushService
    port: int

    def ready(self) -> bool:
        return any(a.state is AspState.ACTIVE for a in self.host.node.associations)


@asynccontextmanager
async def push_gateway(store: PushStore, settings: PushSettings,
                       metrics: StackMetrics | None = None) -> AsyncIterator[PushGateway]:  # fmt: skip
    gw = gateway_node()
    host = UssdHost(gw.node, gw.ussd)
    server = await tcp.serve("127.0.0.1", 0, AssociationConfig(name="gw", role=Role.SG, routing_contexts=(1,),
                                                                beat_interval=0), host.sink, host.add)  # fmt: skip
    holder: list[PushGateway] = []
    service = PushService(store, host, settings, ready=lambda: bool(holder) and holder[0].ready(), metrics=metrics)
    for kind in (PushRouted, PushDelivered, PushFailed):
        host.on(kind, service.on_event)
    holder.append(PushGateway(host, service, server.sockets[0].getsockname()[1]))
    await service.start()
    try:
        yield holder[0]
    finally:
        await service.stop()
        host.close()
        server.close()
        await asyncio.wait_for(server.wait_closed(), 5)
