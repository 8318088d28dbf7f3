"""`ussd-gateway phone`: the simulator as HLR and MSC/VLR of one handset shows what the gateway pushes, as the
handset API reports it, and answers requests."""

from __future__ import annotations

import asyncio
import io
import json
import time
from pathlib import Path

from gateway.push.model import Mode, State
from gateway.push.service import PushSettings
from gateway.push.store import new_push
from gateway.push.store_sqlite import SqliteStore
from gateway.sim.phone import phone
from tests.support.aio import wait_for
from tests.support.push import push_gateway

MSISDN, IMSI = "491720000042", "262019876543210"


async def test_the_phone_shows_a_flash_text_and_answers_a_request(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "push.db")
    out = io.StringIO()
    try:
        async with push_gateway(store, PushSettings()) as gw:
            handset = asyncio.create_task(phone("127.0.0.1", gw.port, msisdn=MSISDN, imsi=IMSI, answers=["yes"],
                                                read_line=None, out=out, as_json=True, count=2))  # fmt: skip
            await wait_for(gw.ready, 5.0)
            now = time.time()
            flash = await store.create(new_push(msisdn=MSISDN, text="Your code is 1234", mode=Mode.NOTIFY, now=now,
                                                ttl_s=60), None, "a", "t")  # fmt: skip
            gw.service.wake()
            await wait_for(lambda: out.getvalue().count("\n") >= 1, 5.0)
            ask = await store.create(new_push(msisdn=MSISDN, text="Vote: 1=yes 2=no", mode=Mode.REQUEST, now=now,
                                              ttl_s=60, route="poll"), None, "b", "t")  # fmt: skip
            gw.service.wake()
            assert await asyncio.wait_for(handset, 10) == 0
            await wait_for(lambda: not gw.service.flight, 5.0)
            await asyncio.sleep(0.1)
            first, second = (await store.get(flash.push.id)), (await store.get(ask.push.id))
    finally:
        await store.close()
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert lines == [
        {"status": 1, "meaning": "session ended", "text": "Your code is 1234", "dcs": 15, "error": None},
        {"status": 0, "meaning": "reply needed", "text": "Vote: 1=yes 2=no", "dcs": 15, "error": None},
    ]
    assert first.state is State.ACKNOWLEDGED
    assert second.state is State.ANSWERED and second.answer == "yes"


async def test_the_catch_all_subscriber_answers_for_any_msisdn_and_counts_by_msisdn(tmp_path: Path) -> None:
    from gateway.sim.network import Subscriber, derived_imsi
    from gateway.sim.run import SimSettings, connected

    store = await SqliteStore.open(tmp_path / "push.db")
    msisdns = [f"4917300{i:05d}" for i in range(20)]
    try:
        async with push_gateway(store, PushSettings(rate=1000)) as gw:
            settings = SimSettings(subscribers=(Subscriber("491739999999", "262019999999999", vlr_behaviour=27),),
                                   any_subscriber=Subscriber("", "", vlr_behaviour="ack"))  # fmt: skip
            async with connected("127.0.0.1", gw.port, settings) as (sim, _):
                await wait_for(gw.ready, 5.0)
                now = time.time()
                ids = [(await store.create(new_push(msisdn=m, text=f"hi {m}", mode=Mode.NOTIFY, now=now, ttl_s=60),
                                           None, m, "t")).push.id for m in [*msisdns, "491739999999"]]  # fmt: skip
                gw.service.wake()
                await wait_for(lambda: sum(sim.received.values()) == len(ids), 10.0)
                await wait_for(lambda: not gw.service.flight, 5.0)
                await asyncio.sleep(0.1)
                states = [(await store.get(i)).state for i in ids]
    finally:
        await store.close()
    assert states == [State.ACKNOWLEDGED] * 20 + [State.RETRY_WAIT]  # the listed subscriber keeps its behaviour
    assert sim.received == dict.fromkeys([*msisdns, "491739999999"], 1)
    assert sim.subscribers[msisdns[0]].imsi == derived_imsi(msisdns[0]) == "001011730000000"
