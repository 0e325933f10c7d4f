"""The services around the bridge, for the benchmark: the fake OCS and the fake Bot API in one
process of their own (so their CPU is not the bridge's), with a small control API.

    python -m bench.fakes   # prints {"ocs": URL, "telegram": URL, "control": URL} on one line

Control: ``POST /latency {"seconds"}``, ``GET /sends`` (what the bot sent, typing calls, the most
bot requests in flight at once, the requests OCS got), ``POST /reset``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys

from aiohttp import web

from fakes.ocs import FakeOCS
from fakes.server import serve_locally
from fakes.telegram import FakeTelegram


def control_app(ocs: FakeOCS, tg: FakeTelegram) -> web.Application:
    async def latency(request: web.Request) -> web.Response:
        ocs.latency = float((await request.json())["seconds"])
        return web.json_response({"ok": True})

    async def sends(request: web.Request) -> web.Response:
        texts = [(c.chat_id, c.params.get("text", ""), c.at) for c in tg.log if c.method == "sendMessage"]
        typing = sum(1 for c in tg.log if c.method == "sendChatAction")
        report = {"sends": texts, "typing": typing, "max_in_flight": ocs.max_answering}
        return web.json_response(report | {"ocs_requests": len(ocs.calls)})

    async def reset(request: web.Request) -> web.Response:
        tg.log.clear()
        ocs.calls.clear()
        ocs.sessions.clear()
        ocs.chat.clear()
        ocs.max_answering = 0
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/latency", latency)
    app.router.add_get("/sends", sends)
    app.router.add_post("/reset", reset)
    return app


async def main() -> None:
    # A target stopped mid-request (typing calls cut short) is not the fakes' error to report.
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    async with FakeOCS() as ocs, FakeTelegram() as tg:
        runner, control = await serve_locally(control_app(ocs, tg))
        print(json.dumps({"ocs": ocs.url, "telegram": tg.url, "control": control}), flush=True)
        try:
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the bench ends
        finally:
            await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
