"""The bridge with every channel (Telegram webhook, Twilio, the widget with uploads, the bridge API) on
fakes, for the tests that attack it: the fuzz test and the log test.

Every secret is a real setting, so requests can carry it and reach the parsers.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

import adapters
from bridge import redact
from bridge.settings import Settings, load_settings
from bridge.store.tables import ConversationRow, MessageRow, PartRow
from bridge.typedefs import CORE
from fakes.telegram import SECRET as TELEGRAM_SECRET
from fakes.telegram import FakeTelegram
from fakes.twilio import FakeTwilio
from tests.harness import build_channels, environment, start_bridge

API_KEY = "bridge-api-key-for-hostile-tests"
EMBED_KEY = "embed-key-for-hostile-tests"
EVENTS_SECRET = "events-secret-for-hostile-tests"
ADMIN_KEY = "admin-key-for-hostile-tests"
ORIGIN = "https://shop.example.org"


@dataclass(repr=False)  # hypothesis prints its strategies' arguments
class Target:
    client: TestClient[Any, Any]
    settings: Settings
    uploads: Path
    tg: FakeTelegram
    tw: FakeTwilio
    session_id: str = ""  # a widget session started by ``every_channel``
    session_token: str = ""
    upload: tuple[str, str] = ("", "")  # (id, name) of a file uploaded in that session

    @property
    def secrets(self) -> dict[str, str]:
        """Header -> the secret value the bridge expects there."""
        return {
            "X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET,
            "X-api-key": API_KEY,
            "X-Embed-Key": EMBED_KEY,
            "X-Session-Token": self.session_token,
            "X-Webhook-Secret": EVENTS_SECRET,
        }

    async def stored(self) -> tuple[int, int, int, int]:
        """Conversations, messages, reply parts and uploaded files: what a rejected request must not add."""
        store = self.client.app[CORE].store
        async with store.reading() as session:
            counts = [
                int(await session.scalar(select(func.count()).select_from(table)) or 0)
                for table in (ConversationRow, MessageRow, PartRow)
            ]
        files = sum(1 for p in self.uploads.rglob("*") if p.is_file()) if self.uploads.exists() else 0
        return counts[0], counts[1], counts[2], files


@contextlib.asynccontextmanager
async def every_channel(tmp_path: Path, *, workers: bool = False) -> AsyncIterator[Target]:
    """The bridge (echo bot) with all channels on fake Telegram and Twilio servers."""
    async with FakeTelegram() as tg, FakeTwilio() as tw:
        uploads = tmp_path / "uploads"
        environ = environment(
            tmp_path / "bridge.db",
            tg=tg,
            tw=tw,
            BRIDGE_API_KEY=API_KEY,
            ADMIN_API_KEY=ADMIN_KEY,  # the operator's page is on
            OPENCX_WEBHOOK_SECRET=EVENTS_SECRET,  # POST /bot-events/default takes events
            WIDGET_EMBED_KEY=EMBED_KEY,
            WIDGET_ALLOWED_ORIGINS=ORIGIN,
            WIDGET_UPLOADS_ENABLED="true",
            WIDGET_UPLOADS_DIR=str(uploads),
            WIDGET_MAX_UPLOAD_BYTES="20000",
            WIDGET_IP_RATE="1000000",  # every request comes from 127.0.0.1
            WIDGET_SESSION_RATE="1000000",
        )
        settings = load_settings(environ)
        channels = build_channels(settings)
        redact.hide_secrets(settings, channels.values())
        running = start_bridge(settings, channels.values(), plugins=adapters.plugins(), workers=workers)
        async with running as bridge:
            client = bridge.client
            target = Target(client, settings, uploads, tg, tw)
            response = await client.post(
                "/api/chat/start/",
                json={"chatbot_id": "web", "participant_remote_id": "fuzz"},
                headers={"X-Embed-Key": EMBED_KEY, "Origin": ORIGIN},
            )
            assert response.status == 201, await response.text()
            started = await response.json()
            target.session_id, target.session_token = started["session_id"], started["session_token"]
            yield target
