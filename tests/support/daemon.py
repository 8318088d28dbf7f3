"""Run the real daemon (gateway.daemon.serve) inside a test's event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from gateway.config.load import GatewayConfig
from gateway.daemon import serve


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
