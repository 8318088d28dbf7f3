"""Run the network simulator as an M3UA ASP over TCP: connect to a gateway (or an STP), dial service codes with
scripted answers, report what each handset saw. Used by ``ussd-gateway sim``, the tests and the load benchmark."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from gateway.codecs import m3ua, sccp
from gateway.codecs import map as map_codec
from gateway.codecs.sccp import SccpAddress
from gateway.sim.network import HandsetSession, NetworkSim, Subscriber
from gateway.stack.m3ua_asp import AspState, AssociationConfig, Role
from gateway.stack.node import SignallingNode
from gateway.stack.sccp_layer import SccpConfig, SccpLayer
from gateway.stack.tcap_table import DialogueTable
from gateway.transport import sctp, tcp
from gateway.transport.host import StackHost


@dataclass(frozen=True, slots=True)
class SimSettings:
    point_code: int = 2
    gateway_point_code: int = 1
    msc_gt: str = "491720000099"
    gateway_gt: str = "491700000001"
    routing_context: int | None = 1
    register: bool = False  # register a routing key (REG_REQ before ASPUP), as osmo-stp's dynamic ASPs need
    transport: str = "tcp"  # "tcp" or "sctp" (kernel SCTP)
    subscribers: tuple[Subscriber, ...] = (Subscriber("491720000001", "262011234567890"),)
    # Every other MSISDN exists too, behaving like this one (its msisdn and imsi are ignored): NetworkSim's catch-all
    any_subscriber: Subscriber | None = None


def build(settings: SimSettings) -> NetworkSim:
    acs = [map_codec.AC_NETWORK_UNSTRUCTURED_SS_V2, map_codec.AC_SHORT_MSG_GATEWAY_V3,
           map_codec.AC_SHORT_MSG_GATEWAY_V2]  # fmt: skip
    table = DialogueTable(supported_acs=acs, capacity=1_000_000, idle_timeout=60.0, invoke_timeout=30.0)
    msc = SccpAddress.gt_e164(settings.msc_gt, sccp.SSN_MSC)
    layer = SccpLayer(SccpConfig(settings.point_code, frozenset({sccp.SSN_HLR, sccp.SSN_VLR, sccp.SSN_MSC}),
                                 default_dpc=settings.gateway_point_code))  # fmt: skip
    sim = NetworkSim(SignallingNode(msc, layer, table), SccpAddress.gt_e164(settings.gateway_gt, sccp.SSN_GSMSCF))
    for sub in settings.subscribers:
        sim.add(sub)
    sim.any_subscriber = settings.any_subscriber
    return sim


@asynccontextmanager
async def connected(host: str, port: int, settings: SimSettings | None = None, timeout: float = 60.0,
                    also: Sequence[tuple[str, int]] = ()
                    ) -> AsyncIterator[tuple[NetworkSim, StackHost[NetworkSim]]]:  # fmt: skip
    """The simulator as an ASP of the gateway or STP at ``host:port`` (and of the STPs in ``also``: one association
    each, as an MSC attached to an STP pair), once every association is ASP-ACTIVE; disconnects on exit."""
    settings = settings or SimSettings()
    sim = build(settings)
    stack = StackHost(sim.node, sim)
    peers = [(host, port), *also]
    conns: dict[int, list[tcp.M3uaTcpProtocol | sctp.M3uaSctpConnection]] = {i: [] for i in range(len(peers))}

    keys = (m3ua.RoutingKey(1, settings.point_code),) if settings.register else ()
    rcs = (settings.routing_context,) if settings.routing_context is not None and not settings.register else ()
    stop = asyncio.Event()
    transport: Any = sctp if settings.transport == "sctp" else tcp
    tasks = []
    for i, (peer_host, peer_port) in enumerate(peers):
        cfg = AssociationConfig(name=f"sim{i}" if i else "sim", role=Role.ASP, routing_contexts=rcs,
                                routing_keys=keys, beat_interval=5.0)  # fmt: skip

        def on_connection(proto: tcp.M3uaTcpProtocol | sctp.M3uaSctpConnection, i: int = i) -> None:
            conns[i].append(proto)
            stack.add(proto)

        tasks.append(asyncio.create_task(transport.run_client(peer_host, peer_port, cfg, stack.sink,
                                                              on_connection=on_connection, backoff_initial=0.1,
                                                              backoff_max=1.0, stop=stop)))  # fmt: skip
    loop = asyncio.get_running_loop()
    try:
        deadline = loop.time() + timeout
        while not all(c and c[-1].association.state is AspState.ACTIVE for c in conns.values()):
            if loop.time() > deadline:
                raise TimeoutError(f"no ASP-ACTIVE association to {host}:{port}")
            for task in tasks:
                if task.done():
                    task.result()  # a transport that cannot even start (no SCTP in this kernel)
            await asyncio.sleep(0.01)
        yield sim, stack
    finally:
        stack.close()
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 5)


async def dial_many(host: str, port: int, calls: Sequence[tuple[str, str, Sequence[str | None]]], *,
                    settings: SimSettings | None = None, concurrency: int = 100, timeout: float = 60.0,
                    also: Sequence[tuple[str, int]] = ()) -> tuple[list[HandsetSession], float]:  # fmt: skip
    """Connect, dial every (msisdn, code, answers) with at most ``concurrency`` sessions in flight, disconnect.
    Returns the sessions (in call order) and the seconds the dialling took."""
    async with connected(host, port, settings, timeout, also) as (sim, stack):
        free = asyncio.Semaphore(concurrency)
        done = asyncio.Event()
        remaining = len(calls)

        def finished(_: HandsetSession) -> None:
            nonlocal remaining
            remaining -= 1
            free.release()
            if remaining == 0:
                done.set()

        stack.on(HandsetSession, finished)
        sessions = []
        start = time.perf_counter()
        for msisdn, code, answers in calls:
            await free.acquire()
            sessions.append(sim.dial(msisdn, code, answers, now=stack.now()))
            stack.schedule()
        if calls:
            await asyncio.wait_for(done.wait(), timeout)
        return sessions, time.perf_counter() - start
