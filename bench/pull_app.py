"""The minimal application server of the pull benchmark (Africa's Talking convention), run in its own process:
``python -m bench.pull_app PORT``. Prints "ready" once listening."""

from __future__ import annotations

import sys

from aiohttp import web


async def handle(request: web.Request) -> web.Response:
    form = await request.post()
    if form.get("text", "") == "":
        return web.Response(text="CON Menu\n1. Balance\n2. Exit")
    return web.Response(text="END Balance 10.00 EUR")


def main() -> None:
    app = web.Application()
    app.router.add_post("/app", handle)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=lambda *_: print("ready",
                                                                                                      flush=True))


if __name__ == "__main__":
    main()
