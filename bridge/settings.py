"""Typed settings: environment variables for the one-bot case, ``BRIDGE_CONFIG`` TOML for several.

Every error is a ``ConfigError`` whose message is one line naming the setting (never its value).
"""

from __future__ import annotations

import builtins
import difflib
import os
import re
import sys
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from bridge.channel import Texts
from bridge.errors import ConfigError

M = TypeVar("M", bound=BaseModel)

DEFAULT_OCS_URL = "https://www.openchatstudio.com"
DEFAULT_OPENCX_URL = "https://api.open.cx"
BACKENDS = ("ocs", "opencx", "echo")


def check_url(value: str) -> str:
    """An http(s) base URL, without its trailing slash (a path prefix is kept)."""
    if not re.match(r"^https?://[^/\s]+", value):
        raise ValueError("must be an http(s) URL")
    return value.rstrip("/")


BaseUrl = Annotated[str, AfterValidator(check_url)]


class BotSettings(BaseModel):
    """One bot backend: an OCS chatbot (experiment), open.cx, or the built-in echo bot."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["ocs", "opencx", "echo"] = "echo"
    base_url: BaseUrl = DEFAULT_OCS_URL  # open.cx: DEFAULT_OPENCX_URL
    api_key: SecretStr | None = None
    experiment_id: str | None = None
    version: int | None = Field(default=None, ge=1)
    read_timeout: float = Field(default=120.0, gt=0)
    connect_timeout: float = Field(default=10.0, gt=0)
    # Requests in flight to this bot at once (per process); its HTTP connection pool follows it.
    max_in_flight: int = Field(default=1000, ge=1, le=100_000)
    # open.cx: the shared secret of its webhook events (POST /bot-events/{bot}); unset: events off
    webhook_secret: SecretStr | None = None
    rate_limit: int = Field(default=100, ge=1)  # open.cx: requests a minute (its API allows ~100)
    # OCS: the team's request budget, "COUNT/WINDOW" as OCS writes it (2000/5m, 2000/300s)
    team_rate_limit: str = Field(default="2000/5m", pattern=r"^[1-9]\d*/([1-9]\d*)?[smh]$")

    @model_validator(mode="before")
    @classmethod
    def _backend_url(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("backend") == "opencx" and not data.get("base_url"):
            return {**data, "base_url": DEFAULT_OPENCX_URL}
        return data


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
            raise ConfigError(_describe(exc, self._setting_name(name), model.model_fields)) from None

    def _setting_name(self, name: str) -> Any:
        prefix = self.env_prefix
        if prefix is not None:
            return lambda field: f"{prefix}{field.upper()}"
        return lambda field: f"channels.{name}.{field}"


class WorkerSettings(BaseModel):
    """How the delivery workers run."""

    model_config = ConfigDict(extra="forbid")

    # Conversations one process works on at once. Each waiting one costs a coroutine, not a
    # connection: the bots' ``max_in_flight`` is what bounds the requests to them.
    concurrency: int = Field(default=10_000, ge=1, le=1_000_000)
    lease_seconds: float = Field(default=20.0, ge=2)
    poll_interval: float = Field(default=1.0, gt=0)
    max_attempts: int = Field(default=8, ge=1)
    retry_base: float = Field(default=2.0, ge=0)
    retry_max: float = Field(default=300.0, ge=0)
    session_idle_timeout: float | None = Field(default=None, gt=0)  # seconds; unset = never
    typing_delay: float = Field(default=1.0, ge=0)  # a bot this fast needs no "typing..."
    typing_interval: float = Field(default=4.0, gt=0)
    shutdown_grace: float = Field(default=10.0, ge=0)


class Settings(BaseModel):
    """Everything the bridge needs to run."""

    model_config = ConfigDict(extra="forbid")

    port: int = Field(default=8080, ge=1, le=65535)
    public_url: str = ""
    database_url: str = "sqlite+aiosqlite:///./bridge.db"
    data_dir: str = "./data"  # files the bridge writes (widget uploads)
    demo_page: bool | None = None  # unset: on while PUBLIC_URL is unset
    log_format: Literal["json", "console"] | None = None
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    log_pseudonym_key: SecretStr | None = None  # keys the hash in logged phone numbers and chat ids
    bridge_api_key: SecretStr | None = None
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    bots: dict[str, BotSettings] = Field(default_factory=dict)
    channels: dict[str, ChannelSettings] = Field(default_factory=dict)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    # messages OCS created on its own: how often to look (0: never), in sessions active this recently
    proactive_poll_seconds: float = Field(default=60.0, ge=0)
    proactive_window_hours: float = Field(default=72.0, gt=0)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        """Accept the usual spellings (``postgres://`` from Heroku and friends); need an async driver."""
        for plain in ("postgres://", "postgresql://"):
            if value.startswith(plain):
                value = "postgresql+asyncpg://" + value[len(plain) :]
        if value.startswith("sqlite://"):
            value = "sqlite+aiosqlite://" + value[len("sqlite://") :]
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must be sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER:PASSWORD@HOST/DB")
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        return check_url(value) if value else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _database_ssl(cls, value: str) -> str:
        if value.startswith("postgresql"):
            from bridge.store.db import postgres_ssl

            postgres_ssl(value)  # a ValueError names the bad sslmode
        return value

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


# Environment variables, derived from the models so that a new field is read (and known) at once.
_NESTED = ("bots", "channels", "worker")
TOP = {field.upper(): field for field in Settings.model_fields if field not in _NESTED}
SESSION_IDLE = "SESSION_IDLE_TIMEOUT"
WORKER = {f"WORKER_{field.upper()}": field for field in WorkerSettings.model_fields} | {
    SESSION_IDLE: "session_idle_timeout"
}
# The rest are OCS_{FIELD}; with BOT_BACKEND=opencx, base URL and key are OPENCX_{FIELD}.
_BOT_NAMES = {
    "backend": "BOT_BACKEND",
    "version": "OCS_EXPERIMENT_VERSION",
    "max_in_flight": "BOT_MAX_IN_FLIGHT",
    "webhook_secret": "OPENCX_WEBHOOK_SECRET",
    "rate_limit": "OPENCX_RATE_LIMIT",
    "team_rate_limit": "OCS_RATE_LIMIT",
}
OCS_BOT = {_BOT_NAMES.get(field, f"OCS_{field.upper()}"): field for field in BotSettings.model_fields}
OPENCX_ONLY = {"OPENCX_BASE_URL": "base_url", "OPENCX_API_KEY": "api_key"}
OCS_ONLY = {"OCS_BASE_URL", "OCS_API_KEY", "OCS_EXPERIMENT_ID", "OCS_EXPERIMENT_VERSION", "OCS_RATE_LIMIT"}
OPENCX_BOT = {var: field for var, field in OCS_BOT.items() if var not in OCS_ONLY} | OPENCX_ONLY
BOT = OCS_BOT | OPENCX_BOT  # every bot variable
CONFIG = "BRIDGE_CONFIG"
# Channel types enabled by env vars in the one-bot case: (channel name, prefix, enabling variable).
ENV_CHANNELS = (
    ("telegram", "TELEGRAM_", "TELEGRAM_BOT_TOKEN"),
    ("twilio", "TWILIO_", "TWILIO_ACCOUNT_SID"),
    ("web", "WIDGET_", None),
)
TEXT_PREFIX = "TEXT_"
ENV_FILE = ".env"


def read_environment() -> dict[str, str]:
    """The process environment over a ``.env`` file in the working directory (if there is one)."""
    env: dict[str, str] = {}
    if Path(ENV_FILE).is_file():
        from dotenv import dotenv_values

        env = {k: v for k, v in dotenv_values(ENV_FILE).items() if v is not None}
    return env | dict(os.environ)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the settings from the environment (and ``BRIDGE_CONFIG``); raise ``ConfigError``."""
    env = read_environment() if environ is None else dict(environ)
    data: dict[str, Any] = {field: env[var] for var, field in TOP.items() if env.get(var, "") != ""}
    # only our own WORKER_* names: platforms set others (WORKER_ID, WORKER_CLASS ...)
    data["worker"] = {field: env[var] for var, field in WORKER.items() if env.get(var, "") != ""}

    config_path = env.get(CONFIG)
    if config_path:
        file_data = _read_toml(Path(config_path), env)
        data["bots"] = file_data.get("bots", {})
        data["channels"] = file_data.get("channels", {})
    else:
        data["bots"] = {"default": _env_bot(env)}
        data["channels"] = _env_channels(env)

    opencx = not config_path and data["bots"]["default"].get("backend") == "opencx"
    name = _env_name(bool(config_path), _REVERSE_OPENCX if opencx else _REVERSE_BOT)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, name)) from None
    for bot_name, bot in settings.bots.items():
        required = {"ocs": ("api_key", "experiment_id"), "opencx": ("api_key",)}.get(bot.backend, ())
        for field in required:
            if not getattr(bot, field):
                backend = "backend" if config_path else "BOT_BACKEND"
                raise ConfigError(
                    f"{name(f'bots.{bot_name}.{field}')}: required when {backend} is {bot.backend!r}"
                )
    for channel_name, channel in settings.channels.items():
        if channel.bot not in settings.bots:
            where = f"channels.{channel_name}.bot" if config_path else "BOT_BACKEND"
            raise ConfigError(f"{where}: no bot named {channel.bot!r} is configured")
        unknown = set(channel.texts) - set(Texts.__dataclass_fields__)
        if unknown and config_path:
            key = sorted(unknown)[0]
            where = f"channels.{channel_name}.texts.{key}"
            raise ConfigError(f"{where}: unknown text{did_you_mean(key, Texts.__dataclass_fields__)}")
    return settings


def _env_bot(env: Mapping[str, str]) -> dict[str, Any]:
    default = "ocs" if env.get("OCS_API_KEY") else "opencx" if env.get("OPENCX_API_KEY") else "echo"
    backend = env.get("BOT_BACKEND") or default
    if backend not in BACKENDS:
        raise ConfigError("BOT_BACKEND: must be 'ocs', 'opencx' or 'echo'")
    variables = OPENCX_BOT if backend == "opencx" else OCS_BOT
    return {field: env[var] for var, field in variables.items() if env.get(var)} | {"backend": backend}


def _env_channels(env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    texts = {k[len(TEXT_PREFIX) :].lower(): v for k, v in env.items() if k.startswith(TEXT_PREFIX)}
    channels: dict[str, dict[str, Any]] = {}
    for name, prefix, enabler in ENV_CHANNELS:
        if enabler is not None and not env.get(enabler):
            continue
        options = {k[len(prefix) :].lower(): v for k, v in env.items() if k.startswith(prefix) and v != ""}
        channels[name] = {"type": name, "bot": "default", "texts": texts, "env_prefix": prefix, **options}
    return channels


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` (did you mean X?)`` for the closest known name, or nothing."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.75)
    return f" (did you mean {close[0]}?)" if close else ""


ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


_SECTIONS = ("bots", "channels")


def _read_toml(path: Path, env: Mapping[str, str]) -> dict[str, Any]:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"BRIDGE_CONFIG: file {str(path)!r} not found") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"BRIDGE_CONFIG: cannot read {str(path)!r}: {exc}") from None
    for key, value in raw.items():
        if key.upper() in TOP or key.upper() in WORKER:
            raise ConfigError(
                f"{key}: set {key.upper()} in the environment; BRIDGE_CONFIG holds bots and channels"
            )
        if key not in _SECTIONS:
            raise ConfigError(f"{key}: unknown section{did_you_mean(key, _SECTIONS)} (known: bots, channels)")
        if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
            raise ConfigError(f"{key}: must be tables like [{key}.NAME]")
    return _expand(raw, env, "")


def _expand(value: Any, env: Mapping[str, str], where: str) -> Any:
    """Replace ``${VAR}`` references with environment values, so secrets stay out of the file."""
    if isinstance(value, dict):
        return {k: _expand(v, env, f"{where}.{k}" if where else k) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, env, where) for v in value]
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            var = match.group(1)
            if var not in env:
                raise ConfigError(f"{where}: refers to environment variable {var}, which is not set")
            return env[var]

        return ENV_REF.sub(sub, value)
    return value


_REVERSE_TOP = {field: var for var, field in TOP.items()}
_REVERSE_WORKER = {field: var for var, field in WORKER.items()}
_REVERSE_BOT = {field: var for var, field in OCS_BOT.items()}
_REVERSE_OPENCX = {field: var for var, field in OPENCX_BOT.items()}


def _env_name(from_file: bool, bot_names: Mapping[str, str] = _REVERSE_BOT) -> Any:
    def name(loc: str) -> str:
        parts = loc.split(".")
        if parts[0] == "worker" and len(parts) > 1:
            return _REVERSE_WORKER.get(parts[1], loc)
        if parts[0] in _REVERSE_TOP:
            return _REVERSE_TOP[parts[0]]
        if from_file:
            return loc
        if parts[0] == "bots" and len(parts) > 2:
            return bot_names.get(parts[2], loc)
        return loc

    return name


def _describe(exc: ValidationError, name: Any, known: Iterable[str] = ()) -> str:
    """One line: the first error, naming the setting, never echoing its value."""
    error = exc.errors(include_input=False, include_url=False)[0]
    loc = ".".join(str(p) for p in error["loc"]) or "settings"
    message = str(error["msg"])
    if error["type"] == "missing":
        message = "required"
    elif error["type"] == "extra_forbidden":
        field = str(error["loc"][-1])
        fields = known or _fields_at(error["loc"])
        message = f"unknown setting{did_you_mean(field, fields)}"
    return f"{name(loc)}: {message}"


def _fields_at(loc: tuple[int | str, ...]) -> list[str]:
    """The fields of the model an unknown key was found in (for "did you mean")."""
    models: dict[str, type[BaseModel]] = {"bots": BotSettings, "worker": WorkerSettings}
    return list(models[str(loc[0])].model_fields) if len(loc) > 1 and str(loc[0]) in models else []


def exit_on_config_error(exc: ConfigError) -> None:
    """Print the one-line error and stop."""
    print(f"bridge: configuration error: {exc}", file=sys.stderr)
    raise SystemExit(2)
