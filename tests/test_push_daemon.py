"""Push through the running daemon on its embedded default: a token made with the CLI, POST /v1/pushes, the
simulator's handset (`ussd-gateway phone`) on the daemon's M3UA port; the push read back through the API."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import json
import subprocess
import sys
from pathlib import Path

import aiohttp
from aiohttp import web

from gateway.config.load import load
from gateway.sim.phone import phone
from tests.support.daemon import default_config, running
from tests.support.http import serving

MSISDN = "491720000055"
SECRET = "s3cret-for-callbacks"


def make_token(config: Path) -> str:
    done = subprocess.run([sys.executable, "-m", "gateway.cli", "token", "create", "shop", "--scope", "push:write",
                           "--scope", "push:read", "-c", str(config)], capture_output=True, text=True, check=True,
                          timeout=60)  # fmt: skip
    return done.stdout.strip().splitlines()[-1]


async def test_push_api_to_handset_and_back(tmp_path: Path) -> None:
    path = default_config(tmp_path)
    path.write_text(path.read_text().replace("[push]", f'[push]\ncallback_secret = "{SECRET}"'))
    cfg = load(path)
    token = make_token(path)
    out = io.StringIO()
    callbacks: list[dict[str, object]] = []

    async def receiver(request: web.Request) -> web.Response:  # an application's callback endpoint
        body = await request.read()
        timestamp = request.headers["X-USSD-Timestamp"]
        expected = "sha256=" + hmac.new(SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(request.headers["X-USSD-Signature"], expected)  # computed here, independently
        callbacks.append({"delivery": request.headers["X-USSD-Delivery"], **json.loads(body)})
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/cb", receiver)
    async with serving(app) as cb_base, running(cfg) as info, aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {token}"}) as http:  # fmt: skip
        base = f"http://{info['push_api']}"
        handset = asyncio.create_task(phone("127.0.0.1", cfg.listen_port, msisdn=MSISDN, imsi="262010000000055",
                                            answers=["1"], read_line=None, out=out, as_json=True, count=3))  # fmt: skip
        await asyncio.sleep(0.3)  # the handset's association comes up
        body = {"msisdn": MSISDN, "text": "Your code is 4711", "callback_url": f"{cb_base}/cb"}
        async with http.post(f"{base}/v1/pushes", json=body, headers={"Idempotency-Key": "k1"}) as resp:
            assert resp.status == 202, await resp.text()
            flash = await resp.json()
            assert resp.headers["Location"] == f"/v1/pushes/{flash['id']}"
        # request mode on the demo route: the answer "1" goes on as a session with the demo menu's app
        async with http.post(f"{base}/v1/pushes", json={"msisdn": MSISDN, "text": "Check your balance? 1=yes",
                                                         "mode": "request", "route": "demo"}) as resp:  # fmt: skip
            assert resp.status == 202, await resp.text()
            ask = await resp.json()
        assert await asyncio.wait_for(handset, 15) == 0
        for push_id, state in ((flash["id"], "acknowledged"), (ask["id"], "answered")):
            for _ in range(100):
                async with http.get(f"{base}/v1/pushes/{push_id}") as resp:
                    got = await resp.json()
                if got["state"] == state:
                    break
                await asyncio.sleep(0.05)
            assert got["state"] == state, got
            assert [h["state"] for h in got["history"]][:3] == ["queued", "routing", "sent"]
        assert got["answer"] == "1"
        async with http.post(f"{base}/v1/pushes", json=body, headers={"Idempotency-Key": "k1"}) as resp:
            assert resp.status == 202 and resp.headers["Idempotent-Replayed"] == "true"
            assert (await resp.json())["id"] == flash["id"]  # the same push, never a second one
        for _ in range(100):  # the callback of the final state, signed
            if callbacks:
                break
            await asyncio.sleep(0.05)
    assert [(c["id"], c["state"]) for c in callbacks] == [(flash["id"], "acknowledged")]
    assert str(callbacks[0]["delivery"]).startswith("d_")
    shown = [(x["status"], x["text"]) for x in map(json.loads, out.getvalue().splitlines())]
    assert shown == [(1, "Your code is 4711"), (0, "Check your balance? 1=yes"), (1, "Your balance is 42.00 EUR")]
    cdrs = [json.loads(line) for line in (tmp_path / "cdr.jsonl").read_text().splitlines()]
    assert [(c["route"], c["menu_path"], c["outcome"]) for c in cdrs] == [("demo", ["1"], "completed")]
