"""The ceiling: a minimal relay with no durability, to measure the bridge against.

It acknowledges a Telegram webhook at once, then (in the background, one message at a time per
chat) opens an OCS session for a new chat, relays the text to ``incoming_message`` and posts the
answer with ``sendMessage``. No database, no retries, no limits: what the machine can do at best.

    python -m bench.ceiling PORT OCS_URL OCS_KEY EXPERIMENT TELEGRAM_URL TOKEN SECRET
"""

from __future__ import annotations

import asyncio
import hmac
import sys
from collections import defaultdict

import aiohttp
from aiohttp import web


def relay_app(ocs: str, key: str, experiment: str, telegram: str, token: str, secret: str) -> web.Application:
    sessions: dict[int, str] = {}
    locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
    tasks: set[asyncio.Task[None]] = set()
    app = web.Application()

    async def answer(http: aiohttp.ClientSession, chat: int, text: str) -> None:
        async with locks[chat]:
            if chat not in sessions:
                async with http.post(f"{ocs}/api/sessions/", json={"experiment": experiment}) as r:
                    sessions[chat] = (await r.json())["id"]
            body = {"message": text, "session": sessions[chat]}
            async with http.post(f"{ocs}/channels/api/{experiment}/incoming_message", json=body) as r:
                reply = (await r.json())["response"]
            async with http.post(f"{telegram}/bot{token}/sendMessage", json={"chat_id": chat, "text": reply}):
                pass

    async def webhook(request: web.Request) -> web.Response:
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            return web.json_response({"detail": "forbidden"}, status=403)
        message = (await request.json())["message"]
        task = asyncio.create_task(answer(request.app[HTTP], message["chat"]["id"], message["text"]))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return web.json_response({"ok": True})

    async def client(app: web.Application):  # type: ignore[no-untyped-def]
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector, headers={"X-api-key": key}) as http:
            app[HTTP] = http
            yield

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app.cleanup_ctx.append(client)
    app.router.add_post("/webhooks/telegram", webhook)
    app.router.add_get("/healthz", healthz)
    return app


HTTP: web.AppKey[aiohttp.ClientSession] = web.AppKey("http", aiohttp.ClientSession)

if __name__ == "__main__":
    port, *config = sys.argv[1:]
    web.run_app(relay_app(*config), host="127.0.0.1", port=int(port), access_log=None, print=None)
