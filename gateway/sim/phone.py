"""``ussd-gateway phone MSISDN``: one handset waiting for network-initiated USSD, reporting like a handset's API.

The simulator plays the HLR (it answers the gateway's SRI-for-SM with the handset's IMSI and the MSC/VLR number)
and the MSC/VLR with this one handset attached. Each push is printed as the USSD callback of
../shared/background/handset-ussd-api.txt reports it: status 1 with the text for unstructuredSS-Notify (a flash
text: shown and acknowledged, nothing to answer), status 0 "reply needed" for unstructuredSS-Request, whose answer
is read from ``--input`` first and then from the keyboard (an empty line or the end of input is the Cancel key).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TextIO

from gateway.sim.dial import REPLY_NEEDED, SESSION_ENDED, report
from gateway.sim.network import NetworkUssd, Subscriber
from gateway.sim.run import SimSettings, connected


async def phone(host: str, port: int, *, msisdn: str, imsi: str, answers: list[str],
                read_line: Callable[[], Awaitable[str | None]] | None, out: TextIO,
                settings: SimSettings | None = None, as_json: bool = False, count: int | None = None,
                connect_timeout: float = 10.0) -> int:  # fmt: skip
    """Wait for pushes to ``msisdn`` (``count`` of them, or until cancelled); returns 0."""
    settings = replace(settings or SimSettings(), subscribers=(Subscriber(msisdn, imsi, vlr_behaviour="handset"),))
    async with connected(host, port, settings, timeout=connect_timeout) as (sim, stack):
        shown: asyncio.Queue[NetworkUssd] = asyncio.Queue()
        stack.on(NetworkUssd, shown.put_nowait)
        if not as_json:
            print(f"handset {msisdn} (IMSI {imsi}) attached; waiting for network-initiated USSD", file=out, flush=True)
        seen = 0
        while count is None or seen < count:
            ussd = await shown.get()
            seen += 1
            if not ussd.request:
                report(out, SESSION_ENDED, ussd.text, ussd.dcs, None, as_json)
                continue
            report(out, REPLY_NEEDED, ussd.text, ussd.dcs, None, as_json)
            if answers:
                answer: str | None = answers.pop(0)
                if not as_json:
                    print(f"> {answer}", file=out, flush=True)
            else:
                line = await read_line() if read_line is not None else None
                answer = line.strip() if line is not None else ""
            sim.answer_network(ussd, answer or None, stack.now())
            stack.schedule()
        await asyncio.sleep(0.05)  # the last answer leaves before the association closes
        return 0
