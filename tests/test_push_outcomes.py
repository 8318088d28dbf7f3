"""Every outcome of a push through the running daemon: the push API, the simulator's HLR and MSC/VLR over M3UA/TCP,
a real callback receiver that verifies each signature. Each outcome is checked in the API's view of the push, in
its callback, in the counters, and in the MAP messages of the daemon's own capture, judged by tshark."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway.config.load import load
from gateway.sim.network import Subscriber
from gateway.sim.run import SimSettings, connected
from tests.support import tshark
from tests.support.daemon import default_config, running
from tests.support.http import serving

SECRET = "outcomes-secret"
ACK, BUSY, ABSENT_TWICE, SILENT, ASK = "491720000011", "491720000012", "491720000013", "491720000014", "491720000015"
UNKNOWN = "491729999998"
SUBSCRIBERS = (
    Subscriber(ACK, "262010000000011"),
    Subscriber(BUSY, "262010000000012", vlr_behaviour=72),  # ussd-Busy
    Subscriber(ABSENT_TWICE, "262010000000013", hlr_error=6, hlr_error_times=2),  # absentSubscriberSM, twice
    Subscriber(SILENT, "262010000000014", vlr_behaviour="silent"),  # the MSC never answers: TCAP timeout
    Subscriber(ASK, "262010000000015", answer="2"),
)
FINAL = {"acknowledged", "answered", "failed", "expired", "cancelled", "unconfirmed"}


def make_token(config: Path) -> str:
    done = subprocess.run([sys.executable, "-m", "gateway.cli", "token", "create", "ops", "--scope", "push:write",
                           "--scope", "push:read", "-c", str(config)], capture_output=True, text=True, check=True,
                          timeout=60)  # fmt: skip
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.interop
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_every_push_outcome_through_the_daemon(backend: str, tmp_path: Path,
                                                     request: pytest.FixtureRequest) -> None:  # fmt: skip
    path = default_config(tmp_path)
    text = path.read_text().replace("[push]", f'[push]\ncallback_secret = "{SECRET}"\nretry_base_s = 0.2\n'
                                              "retry_cap_s = 0.4")  # fmt: skip
    if backend == "postgresql":  # the same suite on a real PostgreSQL server (tests/support/postgres.py)
        dsn = request.getfixturevalue("postgres_server").new_database()
        text = text.replace(f'store = "sqlite:{tmp_path}/push.db"', f'store = "{dsn}"')
        assert dsn in text
    text = text.replace("invoke_timeout = 60.0", "invoke_timeout = 1.0") + f'\n[pcap]\npath = "{tmp_path}/gw.pcap"\n'
    path.write_text(text)
    cfg = load(path)
    token = make_token(path)
    called: dict[str, list[dict[str, Any]]] = {}

    async def receiver(request: web.Request) -> web.Response:
        body = await request.read()
        ts = request.headers["X-USSD-Timestamp"]
        mac = "sha256=" + hmac.new(SECRET.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(mac, request.headers.get("X-USSD-Signature", "")):
            return web.Response(status=401)  # a forged callback would not be recorded
        push = json.loads(body)
        called.setdefault(push["id"], []).append(push)
        return web.Response(status=204)

    cb = web.Application()
    cb.router.add_post("/cb", receiver)
    async with serving(cb) as cb_base, running(cfg) as info, aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {token}"}) as http, connected(
            "127.0.0.1", cfg.listen_port, SimSettings(subscribers=SUBSCRIBERS)) as (sim, _):  # fmt: skip
        api = f"http://{info['push_api']}/v1/pushes"

        async def post(msisdn: str, *, key: str | None = None, **extra: Any) -> tuple[int, dict[str, Any], Any]:
            body = {"msisdn": msisdn, "text": f"Hello {msisdn}", "callback_url": f"{cb_base}/cb", **extra}
            async with http.post(api, json=body, headers={"Idempotency-Key": key} if key else {}) as resp:
                return resp.status, await resp.json(), resp.headers

        async def state_of(push_id: str, wanted: set[str], timeout: float = 20.0) -> dict[str, Any]:
            loop = asyncio.get_running_loop()
            end = loop.time() + timeout
            while True:
                async with http.get(f"{api}/{push_id}") as resp:
                    push: dict[str, Any] = await resp.json()
                if push["state"] in wanted or loop.time() > end:
                    return push
                await asyncio.sleep(0.05)

        ids = {}
        for name, msisdn, extra in (("ack", ACK, {}), ("busy", BUSY, {"ttl_s": 3}),
                                    ("absent-then-ok", ABSENT_TWICE, {}), ("timeout", SILENT, {"ttl_s": 4}),
                                    ("unknown", UNKNOWN, {}), ("answered", ASK, {"mode": "request", "route": "demo"}),
                                    ("cancel", BUSY, {"ttl_s": 600})):  # fmt: skip
            status, push, _ = await post(msisdn, key=f"key-{name}", **extra)
            assert status == 202, push
            ids[name] = push["id"]
        # Idempotency: the same key and body gives the same push; the same key with another body is refused.
        status, again, headers = await post(ACK, key="key-ack")
        assert (status, again["id"], headers.get("Idempotent-Replayed")) == (202, ids["ack"], "true")
        status, error, _ = await post(ACK, key="key-ack", text="another text")
        assert status == 422 and error["error"]["field"] == "Idempotency-Key"
        # Cancel: the second push to BUSY waits its turn behind the first (one push per MSISDN), then retries.
        waiting = await state_of(ids["cancel"], {"retry_wait"})
        assert waiting["state"] == "retry_wait", waiting
        async with http.delete(f"{api}/{ids['cancel']}") as resp:
            assert resp.status == 200 and (await resp.json())["state"] == "cancelled"

        final = {name: await state_of(push_id, FINAL) for name, push_id in ids.items()}
        assert (final["ack"]["state"], final["ack"]["attempts"]) == ("acknowledged", 1)
        assert (final["busy"]["state"], final["busy"]["cause"]) == ("expired", "ussd_busy")
        assert final["busy"]["attempts"] >= 2  # retried before it expired
        assert (final["absent-then-ok"]["state"], final["absent-then-ok"]["attempts"]) == ("acknowledged", 3)
        assert [h["state"] for h in final["absent-then-ok"]["history"]].count("retry_wait") == 2
        assert (final["timeout"]["state"], final["timeout"]["cause"]) == ("expired", "timeout")
        assert (final["unknown"]["state"], final["unknown"]["cause"]) == ("failed", "unknown_subscriber")
        assert (final["answered"]["state"], final["answered"]["answer"]) == ("answered", "2")
        assert final["cancel"]["state"] == "cancelled"
        # Every final state was called back, signed, with the push as it ended.
        for name, push_id in ids.items():
            for _ in range(100):
                if push_id in called:
                    break
                await asyncio.sleep(0.05)
            assert push_id in called, name
            assert called[push_id][-1]["state"] == final[name]["state"]
        # The handset saw the acknowledged texts once each, and never the unknown subscriber's.
        shown = [imsi for imsi, _, _ in sim.pushes_received]
        assert shown.count("262010000000011") == 1 and shown.count("262010000000013") == 1
        async with aiohttp.ClientSession() as plain, plain.get(f"http://{info['metrics']}/metrics") as resp:
            metrics = await resp.text()
    for series in ('ussd_push_states_total{cause="",state="acknowledged"} 2.0',
                   'ussd_push_states_total{cause="unknown_subscriber",state="failed"} 1.0',
                   'ussd_push_states_total{cause="absent_subscriber_sm",state="retry_wait"} 2.0',
                   'ussd_push_states_total{cause="",state="answered"} 1.0',
                   'ussd_push_callbacks_total{result="delivered"}'):  # fmt: skip
        assert series in metrics, series
    # The MAP messages, as Wireshark reads the daemon's own capture.
    pcap = tmp_path / "gw.pcap"
    assert tshark.problems(pcap) == []
    values = {v for row in tshark.fields(pcap, ["gsm_old.localValue"]) for v in row["gsm_old.localValue"]}
    assert {"45", "61", "60", "72", "6", "1"} <= values  # SRI-for-SM, notify, request; ussd-Busy, absent, unknown
