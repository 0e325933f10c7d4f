"""The echo bot: answers ``echo: <text>``. The default with no OCS settings."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from bridge.bots.base import Bot
from bridge.model import Conversation, LocalFile, Reply


class EchoBot(Bot):
    async def open_session(self, conversation: Conversation) -> str:
        return f"echo-{secrets.token_hex(8)}"

    async def send(self, session_id: str, text: str, files: Sequence[LocalFile] = ()) -> Reply:
        return Reply(text=f"echo: {text}")

    async def end_session(self, session_id: str) -> None:
        return None

    async def check(self) -> str:
        return "echo bot (built in)"
