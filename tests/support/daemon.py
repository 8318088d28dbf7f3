"""Run the real daemon (gateway.daemon.serve) inside a test's event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from gateway.config.load import DEFAULT, GatewayConfig
from gateway.daemon import serve
from tests.support.osmo_stp import free_port


def default_config(tmp_path: Path) -> Path:
    """The embedded default configuration on free loopback ports, its CDRs under ``tmp_path``; returns the file."""
    text = DEFAULT.read_text().replace("127.0.0.1:2905", f"127.0.0.1:{free_port()}")
    text = text.replace("127.0.0.1:8099", f"127.0.0.1:{free_port()}").replace('path = "var/cdr.jsonl"',
                                                                               f'path = "{tmp_path}/cdr.jsonl"')
    text = text.replace("127.0.0.1:9105", f"127.0.0.1:{free_port()}")
    text = text.replace("127.0.0.1:8090", f"127.0.0.1:{free_port()}").replace(
        'store = "sqlite:var/push.db"', f'store = "sqlite:{tmp_path}/push.db"')
    path = tmp_path / "gw.toml"
    path.write_text(text)
    return path


def one_route_config(tmp: Path, m3ua_port: int, route: str, sections: str = "") -> Path:
    """An SG on 127.0.0.1:``m3ua_port`` (routing context 1, point code 1, the network at 2), CDRs under ``tmp``,
    the extra TOML ``sections`` and one ``[[route]]`` with the keys in ``route``; returns the file."""
    path = tmp / "gw.toml"
    path.write_text(f"""
[m3ua]
listen = "127.0.0.1:{m3ua_port}"
routing_context = 1
beat_interval = 0
[sccp]
point_code = 1
network_point_code = 2
global_title = "491700000001"
[cdr]
path = "{tmp}/cdr.jsonl"
{sections}
[[route]]
{route}
""")
    return path


@asynccontextmanager
async def running(cfg: GatewayConfig, timeout: float = 30.0) -> AsyncIterator[dict[str, object]]:
    """The daemon on ``cfg`` until the block ends; yields its "ready" information (e.g. ``m3ua`` HOST:PORT)."""
    stop = asyncio.Event()
    ready: list[dict[str, object]] = []
    task = asyncio.create_task(serve(cfg, stop, ready.append))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while not ready:
            if task.done():
                task.result()
                raise AssertionError("the daemon stopped before it was ready")
            if loop.time() > deadline:
                raise AssertionError("the daemon was not ready in time")
            await asyncio.sleep(0.01)
        yield ready[0]
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
