"""`ussd-gateway push` against the running daemon on its embedded default: the token from the CLI in
USSD_PUSH_TOKEN, the simulator's handset (`ussd-gateway phone`) on the daemon's M3UA port, the exit statuses."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
from pathlib import Path

import pytest

from gateway.config.load import load
from gateway.sim.phone import phone
from tests.support.daemon import default_config, running
from tests.support.osmo_stp import free_port
from tests.test_push_daemon import make_token

MSISDN = "491720000077"


async def cli(*argv: str, token: str | None) -> tuple[int, list[dict[str, object]], list[dict[str, object]]]:
    """Run ``ussd-gateway push ...`` as its own process; (exit status, stdout's JSON lines, stderr's)."""
    env = {k: v for k, v in os.environ.items() if k != "USSD_PUSH_TOKEN"}
    if token is not None:
        env["USSD_PUSH_TOKEN"] = token
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "gateway.cli", "push", *argv, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, [json.loads(x) for x in out.decode().splitlines()], \
        [json.loads(x) for x in err.decode().splitlines()]  # fmt: skip


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return default_config(tmp_path)


async def test_push_wait_to_the_handset_and_the_exit_statuses(config: Path) -> None:
    cfg = load(config)
    token = make_token(config)
    out = io.StringIO()
    async with running(cfg) as info:
        api = f"http://{info['push_api']}"
        handset = asyncio.create_task(phone("127.0.0.1", cfg.listen_port, msisdn=MSISDN, imsi="262010000000077",
                                            answers=["1"], read_line=None, out=out, as_json=True, count=3))  # fmt: skip
        await asyncio.sleep(0.3)  # the handset's association comes up

        # notify, --wait: the push as created, then as it ended; 0 for acknowledged. The API from -c FILE.
        status, lines, errors = await cli(MSISDN, "Hello", "--wait", "-c", str(config), "--ttl", "60",
                                          "--callback-url", "http://127.0.0.1:9/cb", token=token)  # fmt: skip
        assert (status, errors) == (0, [])
        created, final = lines
        assert created["state"] == "queued" and created["text"] == "Hello"
        assert created["callback_url"] == "http://127.0.0.1:9/cb"
        assert final["id"] == created["id"] and final["state"] == "acknowledged"
        assert [h["state"] for h in final["history"]] == ["queued", "routing", "sent", "acknowledged"]

        # no such subscriber (the simulator's HLR: unknownSubscriber;
        # the simulator is the network while the handset waits): failed, a final state but no success: 1
        status, lines, _ = await cli("491720000999", "Anyone?", "--wait", "--api", api, token=token)
        assert status == 1 and lines[-1]["state"] == "failed"

        # request mode on the demo route, --api: answered ("1"), 0; the answer goes on as a session
        status, lines, _ = await cli(MSISDN, "Balance? 1=yes", "--mode", "request", "--route", "demo", "--wait",
                                     "--api", api, "--idempotency-key", "ask-1", token=token)  # fmt: skip
        assert status == 0 and lines[-1]["state"] == "answered" and lines[-1]["answer"] == "1"
        assert await asyncio.wait_for(handset, 15) == 0
        # the same idempotency key and body: the same push, never a second one
        status, again, _ = await cli(MSISDN, "Balance? 1=yes", "--mode", "request", "--route", "demo",
                                     "--api", api, "--idempotency-key", "ask-1", token=token)  # fmt: skip
        assert status == 0 and again[0]["id"] == lines[0]["id"]

        # without --wait: the queued push, 0
        status, lines, _ = await cli("491720000999", "Fire and forget", "--api", api, "--ttl", "5", token=token)
        assert status == 0 and len(lines) == 1 and lines[0]["state"] == "queued"

        # the API refuses: its JSON error on stderr, 2
        status, lines, errors = await cli("0049", "Hello", "--api", api, token=token)
        assert (status, lines) == (2, [])
        assert errors == [{"error": {"code": "invalid_field", "message": errors[0]["error"]["message"],  # type: ignore[index]
                                     "field": "msisdn"}}]  # fmt: skip
        status, _, errors = await cli(MSISDN, "Hello", "--api", api, token="ussd_not-a-token")
        assert status == 2 and errors[0]["error"]["code"] == "unauthorized"  # type: ignore[index]
    shown = [(x["status"], x["text"]) for x in map(json.loads, out.getvalue().splitlines())]
    assert shown == [(1, "Hello"), (0, "Balance? 1=yes"), (1, "Your balance is 42.00 EUR")]


async def test_push_without_a_token_or_an_api_exits_2(config: Path) -> None:
    status, lines, errors = await cli(MSISDN, "Hello", "-c", str(config), token=None)
    assert (status, lines) == (2, [])
    assert errors[0]["error"]["code"] == "no_token"  # type: ignore[index]
    # nothing listens there: unreachable, 2, and the reason on stderr as JSON
    status, lines, errors = await cli(MSISDN, "Hello", "--api", f"http://127.0.0.1:{free_port()}", token="t")
    assert (status, lines) == (2, [])
    assert errors[0]["error"]["code"] == "unreachable"  # type: ignore[index]
    # a configuration without [push_api]: no API to call
    bare = config.parent / "bare.toml"
    text = config.read_text()
    start = text.index("[push_api]")
    bare.write_text(text[:start] + text[text.index("[http]"):])
    status, _, errors = await cli(MSISDN, "Hello", "-c", str(bare), token="t")
    assert status == 2 and errors[0]["error"]["code"] == "no_push_api"  # type: ignore[index]
    # request mode without a route is refused before any call
    status, _, errors = await cli(MSISDN, "Hello", "--mode", "request", "--api", "http://127.0.0.1:9", token="t")
    assert status == 2 and errors[0]["error"]["field"] == "route"  # type: ignore[index]
