"""The web widget channel: people chat from a website through the official OCS widget.

The widget calls the Chat API (``routes.py``): the channel parses those calls into the core's
messages and events, as other channels parse webhooks. Replies are not pushed anywhere: what the
channel "sends" is what the widget's polls read back (parts the worker marked as sent).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from bridge.channel import Capabilities, Channel, ChannelContext, WebhookRequest, command_kind
from bridge.errors import BadRequest, NotFound, TooLarge
from bridge.model import Conversation, InboundMessage, Media, Opened, Part, Person, Received
from bridge.typedefs import CHAT_HOST

from . import uploads

if TYPE_CHECKING:
    from bridge.settings import BotSettings, ChannelSettings

TOKEN_DIGEST = "session_token_sha256"  # conversation state: the session token's digest
TOKEN_REQUIRED = "session_token_required"  # conversation state: the session always needs it
REMOTE_ID = "participant_remote_id"  # conversation state: the host page's id for the person
STARTED = "session_started_at"  # conversation state: when the session (and its token) began

# OCS's widget auth levels: what a session must prove on every call (see security.token_required).
AuthLevel = Literal["session_token", "embed_key", "none"]


class WebOptions(BaseModel):
    """Options of a web channel (``WIDGET_*`` variables, or ``[channels.NAME]`` in the TOML file)."""

    model_config = ConfigDict(extra="forbid")

    embed_key: SecretStr | None = None  # required X-Embed-Key; unset: none needed
    allowed_origins: list[str] = Field(default_factory=list)  # empty: the bridge's own origin
    chatbot_id: str | None = None  # default: the bot's OCS experiment id, else the channel's name
    auth: AuthLevel = "session_token"  # OCS's widget auth level
    session_token_days: int = Field(default=7, ge=1)  # a token's lifetime from the session's start
    uploads_enabled: bool = False
    uploads_dir: str | None = None  # default: DATA_DIR/uploads
    max_upload_bytes: int = Field(default=10_000_000, ge=1)
    max_message_chars: int = Field(default=4000, ge=1)
    session_rate: int = Field(default=20, ge=1)  # messages a minute in one session
    ip_rate: int = Field(default=60, ge=1)  # sessions, messages and uploads a minute from one address
    trust_forwarded_for: bool = False  # behind a reverse proxy: the client address is X-Forwarded-For
    attachment_links: bool = True  # also put [name](url) links in the text (widget 0.6 shows names only)

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [v for v in (part.strip() for part in value.split(",")) if v]
        return value

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise ValueError("each origin must look like https://example.org")
        return [origin.rstrip("/") for origin in value]


class WebChannel(Channel):
    """A website widget. Options are validated at construction; defaults resolved at start."""

    kind = "web"
    # One reply is one widget message; attachments travel on the part (the widget lists them).
    capabilities = Capabilities(max_text=1_000_000, media_by_url=True, reach_new=False)
    uploads_dir: Path  # set at start (DATA_DIR/uploads unless set)

    def __init__(self, name: str, settings: ChannelSettings):
        super().__init__(name, settings)
        self.options: WebOptions = settings.options(WebOptions, name)
        self.chatbot_id: str = self.options.chatbot_id or name
        self.allowed_origins: frozenset[str] = frozenset(self.options.allowed_origins)

    async def start(self, context: ChannelContext) -> None:
        await super().start(context)
        self.chatbot_id = self.resolved_chatbot_id(context.bot)
        if not self.allowed_origins:
            self.allowed_origins = frozenset({_origin(context.base_url)})
        self.uploads_dir = Path(self.options.uploads_dir or context.data_dir / "uploads")

    async def fetch(self, media: Media, limit: int) -> AsyncIterator[bytes]:
        """An upload the person attached (``Media.ref`` is its id), from disk."""
        async for chunk in uploads.read(self.uploads_dir, media.ref, limit):
            yield chunk

    def remove_files(
        self, data_dir: Path, *, person_key: str | None = None, before: datetime | None = None
    ) -> int:
        root = Path(self.options.uploads_dir or data_dir / "uploads")
        return uploads.remove(root, session_id=person_key, before=before)

    def resolved_chatbot_id(self, bot: BotSettings | None) -> str:
        """The id widgets use: set, else the bot's OCS experiment id, else the channel's name."""
        if self.options.chatbot_id is None and bot is not None and bot.backend == "ocs" and bot.experiment_id:
            return bot.experiment_id
        return self.chatbot_id

    # inbound: the Chat API's calls (routes.py verifies origin, key and token first) -------------
    async def verify(self, request: WebhookRequest) -> None:
        raise NotFound("the web channel has no webhook; the widget calls /api/chat/")

    def parse(self, request: WebhookRequest) -> Received:
        raise NotFound("the web channel has no webhook; the widget calls /api/chat/")

    def opened(
        self, session_id: str, body: dict[str, Any], digest: str, token_required: bool, now: datetime
    ) -> Opened:
        """``chat/start/``: the person (the session is their conversation) and what to keep of them."""
        session_data = body.get("session_data")
        page_url = session_data.get("page_url") if isinstance(session_data, dict) else None
        state = {
            REMOTE_ID: _text(body.get("participant_remote_id")),
            "page_url": _text(page_url, 2000),
            TOKEN_DIGEST: digest,
            TOKEN_REQUIRED: token_required,
            STARTED: now.isoformat(),
        }
        name = _text(body.get("participant_name"))
        return Opened(Person(key=session_id, address=session_id, name=name, platform="web"), state)

    def message(self, conversation: Conversation, body: dict[str, Any], platform_id: str) -> InboundMessage:
        """``chat/{session}/message/``: the person's message."""
        text = body.get("message")
        if not isinstance(text, str) or not text.strip():
            raise BadRequest("'message' must be a non-empty string")
        if len(text) > self.options.max_message_chars:
            raise TooLarge(f"a message may be at most {self.options.max_message_chars} characters")
        text = text.strip()
        context = body.get("context")
        return InboundMessage(
            channel=self.name,
            platform_id=platform_id,
            person=conversation.person,
            kind=command_kind(text),
            text=text,
            context={"page_context": context} if isinstance(context, dict) else {},
        )

    # outbound -----------------------------------------------------------------------------------
    async def send(self, conversation: Conversation, part: Part) -> str | None:
        """Nothing to push: the part, once marked sent, is what the widget's next poll reads."""
        return None

    def allows_origin(self, origin: str) -> bool:
        return "*" in self.allowed_origins or origin.rstrip("/") in self.allowed_origins


def web_channels(app: web.Application) -> list[WebChannel]:
    host = app.get(CHAT_HOST)
    if host is None:
        return []
    return [c for c in host.channels.values() if isinstance(c, WebChannel)]


def _text(value: object, limit: int = 255) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _origin(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"
