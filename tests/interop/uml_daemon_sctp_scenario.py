"""Runs inside a User-Mode Linux guest (kernel SCTP): the daemon (`gateway.daemon.serve`) as SG over SCTP on its
default configuration, the simulator dialling it over SCTP. Writes the CDRs and the daemon's pcap to /mnt (the
host reads them) and prints a JSON report; exit status 0 when every check passes."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from gateway.config.load import DEFAULT, load
from gateway.daemon import serve
from gateway.sim.run import SimSettings, dial_many


async def main() -> dict[str, object]:
    text = DEFAULT.read_text().replace('role = "sg"', 'role = "sg"\ntransport = "sctp"')
    text = text.replace('path = "var/cdr.jsonl"', 'path = "/mnt/cdr.jsonl"') + '\n[pcap]\npath = "/mnt/gateway.pcap"\n'
    # the guest's root is read-only: the push store on /run
    text = text.replace('store = "sqlite:var/push.db"', 'store = "sqlite:/run/push.db"')
    Path("/run/gw.toml").write_text(text)
    cfg = load("/run/gw.toml")
    stop = asyncio.Event()
    ready: list[dict[str, object]] = []
    task = asyncio.create_task(serve(cfg, stop, ready.append))
    report: dict[str, object] = {}
    try:
        while not ready:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        calls = [("491720000001", "*123#", ["1"]), ("491720000002", "*123#", []), ("491720000003", "*5#", [])]
        sessions, _ = await dial_many("127.0.0.1", cfg.listen_port, calls, settings=SimSettings(transport="sctp"),
                                      timeout=20)  # fmt: skip
        report["menu_and_balance"] = (sessions[0].menus, sessions[0].final) == (
            ["Demo menu\n1. Balance\n2. Help"], "Your balance is 42.00 EUR")
        report["user_cancel"] = sessions[1].error == "user-cancelled"
        report["unknown_code"] = sessions[2].final == "Unknown service code. Try *123#"
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    outcomes = sorted(json.loads(line)["outcome"] for line in Path("/mnt/cdr.jsonl").read_text().splitlines())
    report["cdrs"] = outcomes == ["completed", "unknown-code", "user-aborted"]
    report["pcap_written"] = Path("/mnt/gateway.pcap").stat().st_size > 24
    return report


if __name__ == "__main__":
    result = asyncio.run(main())
    print(json.dumps(result))
    sys.exit(0 if all(result.values()) else 1)
