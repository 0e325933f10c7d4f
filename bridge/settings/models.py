"""The settings models. A field's validation alias is the environment variable that sets it (the
README's names); code and the ``BRIDGE_CONFIG`` file use the field names."""

from __future__ import annotations

import builtins
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bridge.errors import ConfigError
from bridge.settings.database import database_url
from bridge.settings.problems import Loc, describe

M = TypeVar("M", bound=BaseModel)

DEFAULT_OCS_URL = "https://www.openchatstudio.com"
DEFAULT_OPENCX_URL = "https://api.open.cx"
DEFAULT_SPEECH_URL = "https://api.openai.com/v1"


def check_url(value: str) -> str:
    """An http(s) base URL, without its trailing slash (a path prefix is kept)."""
    if not re.match(r"^https?://[^/\s]+", value):
        raise ValueError("must be an http(s) URL")
    return value.rstrip("/")


BaseUrl = Annotated[str, AfterValidator(check_url)]


@dataclass
class Texts:
    """Short answers the bridge itself gives; configurable per channel (``TEXT_*``, ``texts``)."""

    unsupported: str = "Sorry, I can only read text messages. Please write your message as text."
    reset: str = "Your conversation has been reset. You can start a new one now."
    welcome: str = "Hello! Send me a message and I will answer."
    help: str = ""
    apology: str = "Sorry, something went wrong and I could not answer that. Please try again later."
    handoff: str = "A person from our team will answer you here shortly."
    progress: str = ""  # the widget shows it while the bot thinks (a line at a time, in turn)
    too_large: str = "Sorry, that file is too large for me: I can take files of up to {limit}."
    file_lost: str = "Sorry, I could not get the file you sent. Please send it again."
    voice_echo: str = ""  # before the answer to a voice note: what was understood (``{text}``)
    voice_failed: str = "Sorry, I could not make out that voice message. Please try again or write it."
    voice_too_long: str = "Sorry, I can only listen to voice messages up to {limit} seconds long."

    @classmethod
    def from_settings(cls, values: Mapping[str, Any]) -> Texts:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in values.items() if k in known and v is not None})


class VoiceSettings(BaseModel):
    """Voice notes heard through an OpenAI-compatible speech-to-text endpoint, and answers in voice
    through a text-to-speech one (a bot's settings: ``STT_*``, ``TTS_*``, ``VOICE_*``)."""

    # speech to text: on with a key, or with a base URL of its own (a self-hosted server)
    stt_base_url: BaseUrl = Field(default=DEFAULT_SPEECH_URL, validation_alias="STT_BASE_URL")
    stt_api_key: SecretStr | None = Field(default=None, validation_alias="STT_API_KEY")
    stt_model: str = Field(default="whisper-1", min_length=1, validation_alias="STT_MODEL")
    stt_language: str | None = Field(default=None, validation_alias="STT_LANGUAGE")  # unset: detect
    voice_max_seconds: float = Field(default=300.0, gt=0, validation_alias="VOICE_MAX_SECONDS")
    # answers in voice: when the person spoke (reciprocal), or to every message (always)
    voice_replies: Literal["off", "reciprocal", "always"] = Field(
        default="off", validation_alias="VOICE_REPLIES"
    )
    tts_base_url: BaseUrl | None = Field(default=None, validation_alias="TTS_BASE_URL")  # unset: STT's
    tts_api_key: SecretStr | None = Field(default=None, validation_alias="TTS_API_KEY")  # unset: STT's
    tts_model: str = Field(default="tts-1", min_length=1, validation_alias="TTS_MODEL")
    tts_voice: str = Field(default="alloy", min_length=1, validation_alias="TTS_VOICE")
    # longer answers (or any with a link) are sent as text too, after the voice note
    voice_reply_max_chars: int = Field(default=600, ge=1, validation_alias="VOICE_REPLY_MAX_CHARS")

    @property
    def hears(self) -> bool:
        """Voice notes are transcribed (otherwise they get ``TEXT_UNSUPPORTED``, as before)."""
        return self.stt_api_key is not None or "stt_base_url" in self.model_fields_set

    @property
    def speech_url(self) -> str:
        return self.tts_base_url or self.stt_base_url

    @property
    def speech_key(self) -> SecretStr | None:
        return self.tts_api_key or self.stt_api_key


class BotSettings(VoiceSettings):
    """One bot backend: an OCS chatbot (experiment), open.cx, or the built-in echo bot, and how it
    hears voice notes (``VoiceSettings``).

    Where a field has two variables, the first is OCS's and the second open.cx's."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    backend: Literal["ocs", "opencx", "echo"] = Field(default="echo", validation_alias="BOT_BACKEND")
    base_url: BaseUrl = Field(  # open.cx: DEFAULT_OPENCX_URL
        default=DEFAULT_OCS_URL, validation_alias=AliasChoices("OCS_BASE_URL", "OPENCX_BASE_URL")
    )
    api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("OCS_API_KEY", "OPENCX_API_KEY")
    )
    experiment_id: str | None = Field(default=None, validation_alias="OCS_EXPERIMENT_ID")
    # OCS: ``incoming`` (the API channel's incoming_message) or ``chat`` (the Chat API, OAuth client)
    transport: Literal["incoming", "chat"] = Field(default="incoming", validation_alias="OCS_TRANSPORT")
    client_id: str | None = Field(default=None, validation_alias="OCS_CLIENT_ID")
    client_secret: SecretStr | None = Field(default=None, validation_alias="OCS_CLIENT_SECRET")
    version: int | None = Field(default=None, ge=1, validation_alias="OCS_EXPERIMENT_VERSION")
    read_timeout: float = Field(default=120.0, gt=0, validation_alias="OCS_READ_TIMEOUT")
    connect_timeout: float = Field(default=10.0, gt=0, validation_alias="OCS_CONNECT_TIMEOUT")
    # Requests in flight to this bot at once (per process); its HTTP connection pool follows it.
    max_in_flight: int = Field(default=1000, ge=1, le=100_000, validation_alias="BOT_MAX_IN_FLIGHT")
    # open.cx: the shared secret of its webhook events (POST /bot-events/{bot}); unset: events off
    webhook_secret: SecretStr | None = Field(default=None, validation_alias="OPENCX_WEBHOOK_SECRET")
    # open.cx: requests a minute (its API allows ~100)
    rate_limit: int = Field(default=100, ge=1, validation_alias="OPENCX_RATE_LIMIT")
    # OCS: the team's request budget, "COUNT/WINDOW" as OCS writes it (2000/5m, 2000/300s)
    team_rate_limit: str = Field(
        default="2000/5m", pattern=r"^[1-9]\d*/([1-9]\d*)?[smh]$", validation_alias="OCS_RATE_LIMIT"
    )

    @model_validator(mode="after")
    def _backend_url(self) -> BotSettings:
        if self.backend == "opencx" and "base_url" not in self.model_fields_set:
            self.base_url = DEFAULT_OPENCX_URL
        return self


class ChannelSettings(BaseModel):
    """One channel. Options specific to its ``type`` stay in ``model_extra`` for the adapter."""

    model_config = ConfigDict(extra="allow")

    type: str
    bot: str = "default"
    texts: dict[str, str] = Field(default_factory=dict)
    env_prefix: str | None = Field(default=None, exclude=True)  # set for channels from env vars

    def options(self, model: builtins.type[M], name: str) -> M:
        """Validate the type-specific options with the adapter's own model."""
        options = dict(self.model_extra or {})
        if self.env_prefix is not None:  # other PREFIX_* variables of the environment are not ours
            options = {k: v for k, v in options.items() if k in model.model_fields}
        try:
            return model.model_validate(options)
        except ValidationError as exc:
            known = list(model.model_fields)
            lines = describe(exc, self._setting_name(name), lambda _: known)
            raise ConfigError("\n".join(lines)) from None

    def _setting_name(self, name: str) -> Callable[[Loc], str]:
        prefix = self.env_prefix
        if prefix is not None:
            return lambda loc: f"{prefix}{str(loc[0]).upper()}"
        return lambda loc: ".".join(("channels", name, *map(str, loc)))


def _worker_variable(field: str) -> str:
    return f"WORKER_{field.upper()}"


class WorkerSettings(BaseModel):
    """How the delivery workers run (``WORKER_*``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, alias_generator=_worker_variable)

    # Conversations one process works on at once. Each waiting one costs a coroutine, not a
    # connection: the bots' ``max_in_flight`` is what bounds the requests to them.
    concurrency: int = Field(default=10_000, ge=1, le=1_000_000)
    lease_seconds: float = Field(default=20.0, ge=2)
    poll_interval: float = Field(default=1.0, gt=0)
    max_attempts: int = Field(default=8, ge=1)
    retry_base: float = Field(default=2.0, ge=0)
    retry_max: float = Field(default=300.0, ge=0)
    session_idle_timeout: float | None = Field(  # seconds; unset = never
        default=None,
        gt=0,
        validation_alias=AliasChoices("SESSION_IDLE_TIMEOUT", "WORKER_SESSION_IDLE_TIMEOUT"),
    )
    typing_delay: float = Field(default=1.0, ge=0)  # a bot this fast needs no "typing..."
    typing_interval: float = Field(default=4.0, gt=0)
    shutdown_grace: float = Field(default=10.0, ge=0)


class Settings(BaseSettings):
    """Everything the bridge needs to run.

    ``load_settings`` reads it from the environment (or a test's mapping) and ``BRIDGE_CONFIG``;
    ``Settings(...)`` in code takes its arguments only, never the process environment."""

    model_config = SettingsConfigDict(extra="forbid", populate_by_name=True)

    port: int = Field(default=8080, ge=1, le=65535, validation_alias="PORT")
    host: str | None = Field(default=None, validation_alias="HOST")  # the address to listen on; unset: all
    public_url: str = Field(default="", validation_alias="PUBLIC_URL")
    database_url: str = Field(default="sqlite+aiosqlite:///./bridge.db", validation_alias="DATABASE_URL")
    data_dir: str = Field(default="./data", validation_alias="DATA_DIR")  # files it writes (uploads)
    demo_page: bool | None = Field(default=None, validation_alias="DEMO_PAGE")  # unset: PUBLIC_URL unset
    log_format: Literal["json", "console"] | None = Field(default=None, validation_alias="LOG_FORMAT")
    log_level: Literal["debug", "info", "warning", "error", "critical"] = Field(
        default="info", validation_alias="LOG_LEVEL"
    )
    # keys the hash in logged phone numbers and chat ids
    log_pseudonym_key: SecretStr | None = Field(default=None, validation_alias="LOG_PSEUDONYM_KEY")
    bridge_api_key: SecretStr | None = Field(default=None, validation_alias="BRIDGE_API_KEY")
    admin_api_key: SecretStr | None = Field(default=None, validation_alias="ADMIN_API_KEY")  # /admin on
    metrics_token: SecretStr | None = Field(
        default=None, validation_alias="METRICS_TOKEN"
    )  # Bearer on /metrics
    # message texts, parts and files older than this are deleted (counts stay)
    retain_days: float | None = Field(default=None, gt=0, validation_alias="RETAIN_DAYS")
    max_body_bytes: int = Field(default=1_048_576, ge=1024, validation_alias="MAX_BODY_BYTES")
    # people's files: to a bot that takes text only, as links (else the caption alone), for so long
    media_as_links: bool = Field(default=True, validation_alias="MEDIA_AS_LINKS")
    media_link_hours: float = Field(default=24.0, gt=0, validation_alias="MEDIA_LINK_HOURS")
    media_keep_hours: float = Field(default=72.0, gt=0, validation_alias="MEDIA_KEEP_HOURS")
    bots: dict[str, BotSettings] = Field(default_factory=dict)
    channels: dict[str, ChannelSettings] = Field(default_factory=dict)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    # messages OCS created on its own: how often to look (0: never), in sessions active this recently
    proactive_poll_seconds: float = Field(default=60.0, ge=0, validation_alias="PROACTIVE_POLL_SECONDS")
    proactive_window_hours: float = Field(default=72.0, gt=0, validation_alias="PROACTIVE_WINDOW_HOURS")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)  # the other sources are load_settings's, over the mapping it is given

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return database_url(value)

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        return check_url(value) if value else value

    @field_validator("admin_api_key")
    @classmethod
    def _admin_api_key(cls, value: SecretStr | None) -> SecretStr | None:
        """The login form can be tried from anywhere: the key must not be guessable."""
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters (for example `openssl rand -hex 32`)")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @property
    def serves_demo(self) -> bool:
        return self.demo_page if self.demo_page is not None else not self.public_url

    @property
    def pseudonym_key(self) -> bytes:
        """The key of logged pseudonyms: LOG_PSEUDONYM_KEY, else derived from the database URL, so
        that every process sharing a database writes the same pseudonym for one person."""
        if self.log_pseudonym_key is not None:
            return self.log_pseudonym_key.get_secret_value().encode()
        return self.database_url.encode()

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://localhost:{self.port}").rstrip("/")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
