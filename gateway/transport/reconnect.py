"""Keep a client connection up: connect, run until it closes, reconnect with exponential backoff and full jitter
(so that several gateways do not reconnect in step after an STP restart). Shared by M3UA over TCP and over SCTP."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar


class Connection(Protocol):
    closed: asyncio.Future[None]

    def close(self) -> None: ...


C = TypeVar("C", bound=Connection)


async def keep_connected(connect: Callable[[], Awaitable[C | None]], *, stop: asyncio.Event,
                         on_connection: Callable[[C], None] | None = None, backoff_initial: float = 0.5,
                         backoff_max: float = 30.0) -> None:  # fmt: skip
    """Run until ``stop`` is set. ``connect`` returns a live connection, or None when the attempt failed."""
    delay = backoff_initial
    while not stop.is_set():
        conn = await connect()
        if conn is not None:
            delay = backoff_initial
            if on_connection is not None:
                on_connection(conn)
            stopper: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
            waiting: list[asyncio.Future[Any]] = [conn.closed, stopper]
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if stop.is_set():
                conn.close()
                await conn.closed
                return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=random.uniform(0, delay))
        delay = min(delay * 2, backoff_max)
