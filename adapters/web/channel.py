"""The web widget channel: people chat from a website through the official OCS widget.

Replies are not pushed anywhere: the widget polls the Chat API (see ``routes.py``), which reads
the stored parts back. ``send`` therefore has nothing to do.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from bridge.channel import Capabilities, Channel, WebhookRequest
from bridge.errors import NotFound
from bridge.model import Conversation, Part

if TYPE_CHECKING:
    from bridge.core import Core
    from bridge.settings import ChannelSettings, Settings


class WebOptions(BaseModel):
    """Options of a web channel (``WIDGET_*`` variables, or ``[channels.NAME]`` in the TOML file)."""

    model_config = ConfigDict(extra="forbid")

    embed_key: SecretStr | None = None  # required X-Embed-Key; unset: none needed
    allowed_origins: list[str] = Field(default_factory=list)  # empty: the bridge's own origin
    chatbot_id: str | None = None  # default: the bot's OCS experiment id, else the channel's name
    require_session_token: bool = False  # also require X-Session-Token from widgets that never send it
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

    async def start(self, core: Core) -> None:
        await super().start(core)
        self.chatbot_id = self.resolved_chatbot_id(core.settings)
        if not self.allowed_origins:
            self.allowed_origins = frozenset({_origin(core.settings.base_url)})
        self.uploads_dir = Path(self.options.uploads_dir or Path(core.settings.data_dir) / "uploads")

    def resolved_chatbot_id(self, settings: Settings) -> str:
        """The id widgets use: set, else the bot's OCS experiment id, else the channel's name."""
        if self.options.chatbot_id is None:
            bot = settings.bots.get(self.bot)
            if bot is not None and bot.backend == "ocs" and bot.experiment_id:
                return bot.experiment_id
        return self.chatbot_id

    async def verify(self, request: WebhookRequest) -> None:
        raise NotFound("the web channel has no webhook; the widget calls /api/chat/")

    async def send(self, conversation: Conversation, part: Part) -> str | None:
        """Nothing to push: the widget polls for the stored part."""
        return None

    def allows_origin(self, origin: str) -> bool:
        return "*" in self.allowed_origins or origin.rstrip("/") in self.allowed_origins


def _origin(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"
