"""What holds a push in the queue instead of failing it, on the running daemon: no ASP-ACTIVE association (an
outage), and the subscriber being in a USSD session; once that ends, the push goes out."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp

from gateway.config.load import load
from gateway.sim.network import Subscriber
from gateway.sim.run import SimSettings, connected
from tests.support.aio import wait_for
from tests.support.daemon import default_config, running

MSISDN = "491720000021"


async def test_pushes_wait_for_the_network_and_for_the_subscribers_session(tmp_path: Path) -> None:
    path = default_config(tmp_path)
    cfg = load(path)
    token = subprocess.run([sys.executable, "-m", "gateway.cli", "token", "create", "t", "--scope", "push:write",
                            "--scope", "push:read", "-c", str(path)], capture_output=True, text=True, check=True,
                           timeout=60).stdout.strip().splitlines()[-1]  # fmt: skip
    async with running(cfg) as info, aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        api = f"http://{info['push_api']}/v1/pushes"

        async def state(push_id: str) -> str:
            async with http.get(f"{api}/{push_id}") as resp:
                got: dict[str, Any] = await resp.json()
                return str(got["state"])

        async with http.post(api, json={"msisdn": MSISDN, "text": "During the outage"}) as resp:
            early = (await resp.json())["id"]
        await asyncio.sleep(1.0)
        assert await state(early) == "queued"  # no association: held, not failed
        settings = SimSettings(subscribers=(Subscriber(MSISDN, "262010000000021"),))
        async with connected("127.0.0.1", cfg.listen_port, settings) as (sim, host):
            await wait_for(lambda: bool(sim.pushes_received), 10.0)  # the network is back: it goes out
            for _ in range(100):
                if await state(early) == "acknowledged":
                    break
                await asyncio.sleep(0.05)
            assert await state(early) == "acknowledged"
            # The subscriber dials *123# and reads the menu; a push to them waits until the session ends.
            session = sim.dial(MSISDN, "*123#", [None], host.now())  # None: reads the menu, does not answer yet
            host.schedule()
            await wait_for(lambda: bool(session.menus), 5.0)
            async with http.post(api, json={"msisdn": MSISDN, "text": "After your session"}) as resp:
                later = (await resp.json())["id"]
            await asyncio.sleep(1.0)
            assert await state(later) == "queued" and len(sim.pushes_received) == 1
            (handset_dialogue,) = [d for d in sim.node.table.dialogues.values() if d.local]
            sim.node.table.u_abort(handset_dialogue)  # the subscriber cancels: the session ends
            sim.events.clear()
            host.schedule()
            await wait_for(lambda: len(sim.pushes_received) == 2, 10.0)
            assert sim.pushes_received[1][1] == "After your session"
