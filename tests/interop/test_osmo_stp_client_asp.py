"""The gateway as SG with a standard M3UA client ASP in front of it: osmo-stp connects to the gateway as an ASP
(`role asp`, `transport-role client`, routing context 1, over TCP), while the simulator is a dynamic ASP of the same
osmo-stp; dialling *123# through osmo-stp reaches the demo menu of the daemon's default configuration."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.config.load import load
from gateway.sim.run import SimSettings, dial_many
from tests.support import tshark
from tests.support.daemon import default_config as config
from tests.support.daemon import running
from tests.support.osmo_stp import OsmoStp, free_port

pytestmark = pytest.mark.interop


async def test_osmo_stp_as_client_asp_of_the_gateway(tmp_path: Path) -> None:
    path = config(tmp_path)
    path.write_text(path.read_text() + f'\n[pcap]\npath = "{tmp_path}/gateway.pcap"\n')
    cfg = load(path)
    stp = OsmoStp(free_port())
    stp.config = (
        "log stderr\n logging filter all 1\n logging color 0\n logging level all notice\n"
        f"line vty\n bind 127.0.0.1 {stp.vty_port}\n"
        "cs7 instance 0\n point-code 0.0.3\n xua rkm routing-key-allocation dynamic-permitted\n"
        f" asp gw-asp {cfg.listen_port} 0 m3ua tcp\n  remote-ip 127.0.0.1\n  role asp\n  transport-role client\n"
        " as gw-as m3ua\n  asp gw-asp\n  routing-key 1 0.0.1\n  traffic-mode override\n"
        f" listen m3ua {stp.port} tcp\n  local-ip 127.0.0.1\n  accept-asp-connections dynamic-permitted\n"
        " route-table system\n  update route 0.0.1 7.255.7 linkset gw-as\n"
    )
    async with running(cfg):
        stp.start()
        try:
            calls = [("491720000001", "*123#", ["1"]), ("491720000002", "*5#", [])]
            sessions, _ = await dial_many("127.0.0.1", stp.port, calls, timeout=30,
                                          settings=SimSettings(register=True, routing_context=None))  # fmt: skip
        finally:
            stp.stop()
    menu, unknown = sessions
    assert (menu.menus, menu.final) == (["Demo menu\n1. Balance\n2. Help"], "Your balance is 42.00 EUR")
    assert unknown.final == "Unknown service code. Try *123#"
    pcap = tmp_path / "gateway.pcap"
    assert tshark.problems(pcap) == []
    rows = tshark.fields(pcap, ["m3ua.message_class", "m3ua.message_type", "m3ua.routing_context"])
    kinds = {(c, t) for row in rows for c, t in zip(row["m3ua.message_class"], row["m3ua.message_type"], strict=False)}
    assert {("3", "1"), ("4", "1"), ("1", "1")} <= kinds  # osmo-stp's ASPUP and ASPAC, and DATA, reached us


async def test_daemon_as_asp_of_two_stps_survives_one(tmp_path: Path) -> None:
    """`m3ua.connect` with two STPs (the usual pair): one association each; when one STP dies, sessions carry on
    through the other, /readyz shows which association is up, and the dead one is used again once it is back."""
    import aiohttp

    stps = [OsmoStp(free_port()).start(), OsmoStp(free_port()).start()]
    path = config(tmp_path)
    text = path.read_text()
    listen = text.split('listen = "', 1)[1].split('"', 1)[0]
    connect = ", ".join(f'"127.0.0.1:{stp.port}"' for stp in stps)
    text = text.replace(f'listen = "{listen}"', f"connect = [{connect}]\nregister = true\nbeat_interval = 1.0")
    path.write_text(text.replace('role = "sg"', 'role = "asp"'))
    cfg = load(path)
    assert cfg.metrics_listen is not None
    readyz = "http://{}:{}/readyz".format(*cfg.metrics_listen)
    sim = SimSettings(register=True, routing_context=None)
    peers = [("127.0.0.1", stp.port) for stp in stps]
    calls = [(f"4917200050{i:02d}", "*123#", ["1"]) for i in range(8)]

    async def states(http: aiohttp.ClientSession) -> dict[str, str]:
        async with http.get(readyz) as r:
            return {a["name"]: a["state"] for a in (await r.json())["associations"]}

    async def all_served() -> None:
        sessions, _ = await dial_many(*peers[0], calls, settings=sim, also=peers[1:], timeout=30)
        assert all(s.final == "Your balance is 42.00 EUR" for s in sessions), sessions

    try:
        async with running(cfg), aiohttp.ClientSession() as http:
            seen: dict[str, str] = {}

            async def both_active() -> bool:
                seen.update(await states(http))
                return seen == {"stp1": "active", "stp2": "active"}

            for _ in range(500):
                if await both_active():
                    break
                await asyncio.sleep(0.02)
            assert seen == {"stp1": "active", "stp2": "active"}
            await all_served()
            stps[0].stop()
            for _ in range(500):
                if "stp1" not in await states(http):
                    break
                await asyncio.sleep(0.02)
            assert await states(http) == {"stp2": "active"}
            sessions, _ = await dial_many(*peers[1], calls, settings=sim, timeout=30)  # the MSC side too is on STP 2
            assert all(s.final == "Your balance is 42.00 EUR" for s in sessions)
            stps[0].start()  # back: the gateway reconnects and registers again
            for _ in range(500):
                seen.clear()
                if await both_active():
                    break
                await asyncio.sleep(0.05)
            assert seen == {"stp1": "active", "stp2": "active"}
            await all_served()
    finally:
        for stp in stps:
            stp.stop()
