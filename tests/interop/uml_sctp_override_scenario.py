"""Runs inside a User-Mode Linux guest (kernel SCTP): the override traffic mode across two SCTP associations.

Our SG serves routing context 1 over SCTP; ASP "a" activates in override mode, then ASP "b" does: the SG's shared
AS registry makes a inactive and tells it over a's own association (NTFY Other / Alternate ASP Active naming b's
ASP Identifier, RFC 4666 §3.8.2, §4.3.4.3), while b stays active. A third ASP asking for loadshare on the same AS
is refused (ERR Unsupported Traffic Mode Type, §3.8.1). Prints a JSON report; exit status 0 when all pass.
"""

from __future__ import annotations

import asyncio
import json
import sys

from gateway.codecs import m3ua
from gateway.stack.m3ua_asp import (
    AspState,
    AssociationConfig,
    ErrorReceived,
    Event,
    M3uaAssociation,
    Notified,
    Role,
)
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
    events: dict[str, list[Event]] = {"a": [], "b": [], "c": []}
    servers: list[sctp.M3uaSctpConnection] = []
    clients: dict[str, list[sctp.M3uaSctpConnection]] = {"a": [], "b": [], "c": []}

    def sink(assoc: M3uaAssociation, event: Event) -> None:
        events.setdefault(assoc.config.name, []).append(event)

    sg = AssociationConfig(name="sg", role=Role.SG, routing_contexts=(1,), beat_interval=0)
    listener = await sctp.serve("127.0.0.1", 2905, sg, sink, servers.append)
    stop = asyncio.Event()
    tasks = []

    def active(name: str) -> bool:
        return bool(clients[name]) and clients[name][-1].association.state is AspState.ACTIVE

    for name, asp_id in (("a", 1), ("b", 2)):
        cfg = AssociationConfig(name=name, role=Role.ASP, routing_contexts=(1,), asp_identifier=asp_id,
                                traffic_mode=m3ua.TrafficMode.OVERRIDE, beat_interval=0)  # fmt: skip
        tasks.append(asyncio.create_task(sctp.run_client("127.0.0.1", 2905, cfg, sink,
                                                         on_connection=clients[name].append,
                                                         backoff_initial=0.05, stop=stop)))  # fmt: skip
        report[f"{name}_active"] = await wait_for(lambda name=name: active(name))  # type: ignore[misc]
    # b took over: a heard it over its own association, without any other traffic to carry it.
    report["a_made_inactive"] = await wait_for(lambda: clients["a"][-1].association.state is AspState.INACTIVE)
    alternate = Notified(m3ua.StatusType.OTHER, m3ua.OtherInfo.ALTERNATE_ASP_ACTIVE)
    report["a_got_ntfy_alternate_asp_active"] = alternate in events["a"]
    report["b_still_active"] = active("b")
    report["sg_side"] = len(servers) == 2 and [s.association.state for s in servers] == [AspState.INACTIVE,
                                                                                         AspState.ACTIVE]  # fmt: skip
    # The AS runs override now: an ASP asking for loadshare on it is refused.
    cfg = AssociationConfig(name="c", role=Role.ASP, routing_contexts=(1,), asp_identifier=3,
                            traffic_mode=m3ua.TrafficMode.LOADSHARE, beat_interval=0)  # fmt: skip
    tasks.append(asyncio.create_task(sctp.run_client("127.0.0.1", 2905, cfg, sink, on_connection=clients["c"].append,
                                                     backoff_initial=0.05, stop=stop)))  # fmt: skip
    report["loadshare_refused"] = await wait_for(lambda: any(
        isinstance(e, ErrorReceived) and e.code == m3ua.ErrorCode.UNSUPPORTED_TRAFFIC_MODE_TYPE for e in events["c"]))
    report["c_not_active"] = bool(clients["c"]) and clients["c"][-1].association.state is not AspState.ACTIVE
    report["b_active_after_c"] = active("b")
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    listener.close()
    return report


if __name__ == "__main__":
    result = asyncio.run(main())
    print(json.dumps(result))
    sys.exit(0 if all(result.values()) else 1)
