"""Application servers for the pull scenarios: real aiohttp servers on loopback that record what they receive.

- ``/bank`` (Africa's Talking): the *245# flow of ../shared/background/ussd-server-explainer.txt;
- ``/dental`` (native JSON): the dental-booking flow of ../shared/background/dynamic-ussd-apps.txt, with its
  invalid-input handling, state kept per session id;
- ``/i18n`` (JSON): a UCS2 menu, then a GSM 7-bit text of exactly 182 characters;
- ``/send`` (AT): direct dial ``*777*<to>*<amount>#``;
- ``/slow``, ``/hold``: late and busy applications; ``/garbage``: a reply no dialect can read;
  ``/long``: a 300-character reply; ``/broken``: HTTP 503 (the primary of a route with a working backup);
- ``/notice``: end-of-session notices.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

from tests.support.http import serving

BANK_MENU = "Welcome to MyBank\n1. Balance\n2. Mini statement"
BANK_BALANCE = "Your balance is 1,250.00 EUR"
DENTAL_MAIN = "Welcome, John!\n1. Check Appointments\n2. Book New Appointment\n3. Cancel Appointment\n4. Exit"
DENTAL_INVALID = ("Invalid choice. Please try again:\n1. Check Appointments\n2. Book New Appointment\n"
                  "3. Cancel Appointment\n4. Exit")  # fmt: skip
DENTAL_TYPES = "Select Appointment Type:\n1. Cleaning\n2. Checkup\n3. Filling\n4. Back"
DENTAL_SLOTS = ("Available Checkup Slots:\n1. Koki Dental Clinic (10/05/2025, 9 AM)\n"
                "2. Gerehu Dental Clinic (12/05/2025, 2 PM)\n3. Back")  # fmt: skip
DENTAL_CONFIRM = "Book Checkup at Koki Dental Clinic, 10/05/2025, 9 AM?\n1. Confirm\n2. Cancel"
DENTAL_DONE = "Appointment confirmed! You'll get an SMS reminder."
UCS2_MENU = "Баланс: 100 ₽\n1. Пополнить\n2. Выход"  # Cyrillic and the rouble sign: not in GSM 7-bit
GSM_182 = ("Your data bundle of 2 GB expires on 30/11. Reply 1 to renew for 5.00 EUR, 2 for 5 GB at 9.00 EUR, "
           "3 for unlimited at 15.00 EUR. Offers valid this week only, see terms and conditions.")  # fmt: skip
assert len(GSM_182) == 182, len(GSM_182)


@dataclass
class Apps:
    base: str  # http://127.0.0.1:PORT
    backup: str  # a second server, the backup of the flaky route
    received: dict[str, list[dict[str, object]]] = field(default_factory=dict)  # path -> requests (decoded)
    notices: list[dict[str, str]] = field(default_factory=list)
    dental_state: dict[str, str] = field(default_factory=dict)


async def _form(request: web.Request) -> dict[str, object]:
    return {k: str(v) for k, v in (await request.post()).items()}


def build(apps: Apps) -> web.Application:
    def record(path: str, body: dict[str, object]) -> None:
        apps.received.setdefault(path, []).append(body)

    async def bank(request: web.Request) -> web.Response:
        form = await _form(request)
        record("bank", form)
        text = form["text"]
        if text == "":
            return web.Response(text=f"CON {BANK_MENU}")
        if text == "1":
            return web.Response(text=f"END {BANK_BALANCE}")
        if text == "2":
            return web.Response(text="END 21/11 -12.00 Coffee\n20/11 +500.00 Salary")
        return web.Response(text="END Invalid choice")

    async def send(request: web.Request) -> web.Response:
        form = await _form(request)
        record("send", form)
        to, amount = str(form["text"]).split("*")
        return web.Response(text=f"END Sent {amount} to {to}")

    async def dental(request: web.Request) -> web.Response:
        data = json.loads(await request.read())
        record("dental", data)
        sid, choice = data["sessionId"], data["input"]
        state = apps.dental_state.get(sid, "start")
        nxt, text, end = _dental(state, choice)
        apps.dental_state[sid] = nxt
        return web.json_response({"action": "end" if end else "continue", "text": text})

    async def i18n(request: web.Request) -> web.Response:
        data = json.loads(await request.read())
        record("i18n", data)
        if data["input"] is None:
            return web.json_response({"action": "continue", "text": UCS2_MENU})
        return web.json_response({"action": "end", "text": GSM_182})

    async def slow(request: web.Request) -> web.Response:
        record("slow", json.loads(await request.read()))
        await asyncio.sleep(2.0)
        return web.json_response({"action": "end", "text": "too late"})

    async def hold(request: web.Request) -> web.Response:
        record("hold", json.loads(await request.read()))
        await asyncio.sleep(0.5)
        return web.json_response({"action": "end", "text": "Held and done"})

    async def garbage(request: web.Request) -> web.Response:
        record("garbage", await _form(request))
        return web.Response(text="HELLO THERE")  # neither CON nor END

    async def long(request: web.Request) -> web.Response:
        record("long", json.loads(await request.read()))
        return web.json_response({"action": "end", "text": "x" * 300})

    async def broken(request: web.Request) -> web.Response:
        record("broken", await _form(request))
        return web.Response(status=503, text="maintenance")

    async def notice(request: web.Request) -> web.Response:
        ctype = request.headers.get("Content-Type", "")
        if ctype.startswith("application/json"):
            apps.notices.append({k: str(v) for k, v in json.loads(await request.read()).items()})
        else:
            apps.notices.append({k: str(v) for k, v in (await request.post()).items()})
        return web.Response(text="ok")

    app = web.Application()
    for path, handler in (("bank", bank), ("send", send), ("dental", dental), ("i18n", i18n), ("slow", slow),
                          ("hold", hold), ("garbage", garbage), ("long", long), ("broken", broken),
                          ("notice", notice)):  # fmt: skip
        app.router.add_post(f"/{path}", handler)
    return app


def _dental(state: str, choice: str | None) -> tuple[str, str, bool]:
    """(next state, text, end) of the dental-booking state machine."""
    if state == "start":
        return "main", DENTAL_MAIN, False
    if state == "main":
        if choice == "2":
            return "types", DENTAL_TYPES, False
        if choice == "4":
            return "end", "Goodbye.", True
        return "main", DENTAL_INVALID, False  # the article's step 10: invalid option
    if state == "types":
        return ("slots", DENTAL_SLOTS, False) if choice == "2" else ("main", DENTAL_MAIN, False)
    if state == "slots":
        return ("confirm", DENTAL_CONFIRM, False) if choice == "1" else ("types", DENTAL_TYPES, False)
    if state == "confirm" and choice == "1":
        return "end", DENTAL_DONE, True
    return "end", "Booking cancelled.", True


@asynccontextmanager
async def serve_apps() -> AsyncIterator[Apps]:
    apps = Apps("", "")
    async with serving(build(apps)) as apps.base, serving(build(apps)) as apps.backup:
        yield apps
