"""``ussd-gateway dial``: one handset through the simulator, reporting like a handset's USSD API.

Each network message is printed as the USSD callback of ../shared/background/handset-ussd-api.txt reports it:
status 0 "reply needed" (unstructuredSS-Request: a menu awaiting an answer), 1 "session ended" (the final text),
4 "network error" (abort, MAP error, timeout), with the DCS of the text. Answers come from ``--input`` (comma
separated) and then from the keyboard; an empty line or end of input cancels, like a handset's Cancel key.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import TextIO

from gateway.codecs import dcs as dcs_codec
from gateway.sim.network import HandsetSession
from gateway.sim.run import SimSettings, connected

REPLY_NEEDED, SESSION_ENDED, NETWORK_ERROR = 0, 1, 4
_STATUS_NAMES = {REPLY_NEEDED: "reply needed", SESSION_ENDED: "session ended", NETWORK_ERROR: "network error"}


def describe_dcs(value: int) -> str:
    parsed = dcs_codec.parse(value)
    text = f"{value} (0x{value:02X}, {parsed.charset.name.replace('_', '-')}"
    return text + (f", {parsed.language})" if parsed.language else ")")


def report(out: TextIO, status: int, text: str, dcs: int | None, error: str | None, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"status": status, "meaning": _STATUS_NAMES[status], "text": text, "dcs": dcs,
                          "error": error}, ensure_ascii=False), file=out, flush=True)  # fmt: skip
        return
    head = f"[{status}] {_STATUS_NAMES[status]}"
    if dcs is not None:
        head += f"  dcs={describe_dcs(dcs)}"
    if error:
        head += f"  error={error}"
    print(head, file=out)
    if text:
        print(text, file=out)
    print(file=out, flush=True)


async def dial(host: str, port: int, code: str, *, msisdn: str, answers: list[str],
               read_line: Callable[[], Awaitable[str | None]] | None, out: TextIO,
               settings: SimSettings | None = None, as_json: bool = False, timeout: float = 300.0,
               connect_timeout: float = 10.0) -> int:  # fmt: skip
    """Dial ``code``; returns 0 when the session ended normally, 1 on a network error."""
    loop = asyncio.get_running_loop()
    async with connected(host, port, settings, timeout=connect_timeout) as (sim, stack):
        done = asyncio.Event()
        menus: asyncio.Queue[HandsetSession] = asyncio.Queue()

        def on_done(_: HandsetSession) -> None:
            done.set()

        stack.on(HandsetSession, on_done)
        session = sim.dial(msisdn, code, list(answers), now=stack.now())
        session.on_menu = menus.put_nowait
        shown = 0

        def show_scripted() -> None:
            nonlocal shown
            while shown < len(session.menus) - (1 if session.waiting is not None else 0):
                report(out, REPLY_NEEDED, session.menus[shown], session.dcs[shown], None, as_json)
                if not as_json:
                    print(f"> {_scripted_answer(answers, shown)}", file=out, flush=True)
                shown += 1

        stack.schedule()
        end = loop.time() + timeout
        while not session.done:
            waiter = asyncio.ensure_future(menus.get())
            finisher = asyncio.ensure_future(done.wait())
            await asyncio.wait([waiter, finisher], timeout=max(0.0, end - loop.time()),
                               return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
            finisher.cancel()
            if not waiter.done():
                waiter.cancel()
                if not session.done:  # the overall timeout
                    report(out, NETWORK_ERROR, "", None, "no answer from the network", as_json)
                    return 1
                break
            show_scripted()
            report(out, REPLY_NEEDED, session.menus[shown], session.dcs[shown], None, as_json)
            shown += 1
            line = await read_line() if read_line is not None else None
            answer = line.strip() if line is not None else ""
            sim.answer(session, answer or None, stack.now())
            stack.schedule()
        show_scripted()
        if session.final is not None:
            report(out, SESSION_ENDED, session.final, session.dcs[-1] if session.dcs else None, None, as_json)
            return 0
        report(out, NETWORK_ERROR, "", None, session.error or "aborted", as_json)
        return 1


def _scripted_answer(answers: list[str], index: int) -> str:
    return answers[index] if index < len(answers) else ""
