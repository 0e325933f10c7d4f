"""Every ``web.AppKey`` of the application, in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from bridge.channel import ChatHost
    from bridge.core import Core

CORE: web.AppKey[Core] = web.AppKey("core")
CHAT_HOST: web.AppKey[ChatHost] = web.AppKey("chat_host")  # the core, as the widget's routes see it
