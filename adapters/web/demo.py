"""The demo page at ``GET /`` and the widget's files, installed from npm by scripts/install-widget.sh.

npm has 0.6.0: it cannot carry a session token, so its chats are served at ``embed_key`` and the
page works at the default ``WIDGET_AUTH`` (see security.token_required)."""

from __future__ import annotations

import html
from pathlib import Path

from aiohttp import web

from bridge.errors import NotFound
from bridge.files import FileResponse, under
from bridge.typedefs import CHAT_HOST

from .channel import web_channels

STATIC_DIR = Path(__file__).parent / "static"
VENDOR_DIR = STATIC_DIR / "vendor"
WIDGET_VERSION = "0.6.0"  # what scripts/install-widget.sh installs; the CDN fallback pins the same
WIDGET_ENTRY = "open-chat-studio-widget/open-chat-studio-widget.esm.js"
LOCAL_URL = f"/static/vendor/{WIDGET_ENTRY}"
CDN_URL = f"https://cdn.jsdelivr.net/npm/open-chat-studio-widget@{WIDGET_VERSION}/dist/{WIDGET_ENTRY}"


def install_static(app: web.Application) -> None:
    app.router.add_get("/static/vendor/{path:.+}", vendor_file)


async def vendor_file(request: web.Request) -> web.FileResponse:
    return FileResponse(under(VENDOR_DIR, request.match_info["path"]))


async def demo_page(request: web.Request) -> web.Response:
    if not request.app[CHAT_HOST].settings.serves_demo:
        raise NotFound("Not found.")
    channels = web_channels(request.app)
    if not channels:
        raise NotFound("no web channel is configured")
    channel = next((c for c in channels if c.name == "web"), channels[0])
    key = channel.options.embed_key
    values = {
        "chatbot_id": channel.chatbot_id,
        "api_base_url": f"{request.scheme}://{request.host}",
        "embed_key": key.get_secret_value() if key else "",
        "widget_src": LOCAL_URL if (VENDOR_DIR / WIDGET_ENTRY).is_file() else CDN_URL,
        "cdn_src": CDN_URL,
    }
    page = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    for name, value in values.items():
        page = page.replace("{{" + name + "}}", html.escape(value, quote=True))
    return web.Response(text=page, content_type="text/html", headers={"Cache-Control": "no-store"})
