"""Typed settings: environment variables for the one-bot case, ``BRIDGE_CONFIG`` TOML for several.

Every error is a ``ConfigError`` whose message is one line naming the setting (never its value).
"""

from __future__ import annotations

import builtins
import os
import re
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from bridge.errors import ConfigError

M = TypeVar("M", bound=BaseModel)

DEFAULT_OCS_URL = "https://www.openchatstudio.com"


def check_url(value: str) -> str:
    """An http(s) base URL, without its trailing slash (a path prefix is kept)."""
    if not re.match(r"^https?://[^/\s]+", value):
        raise ValueError("must be an http(s) URL")
    return value.rstrip("/")


BaseUrl = Annotated[str, AfterValidator(check_url)]


class BotSettings(BaseModel):
    """One bot backend: an OCS chatbot (experiment) or the built-in echo bot."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["ocs", "echo"] = "echo"
    base_url: BaseUrl = DEFAULT_OCS_URL
    api_key: SecretStr | None = None
    experiment_id: str | None = None
    version: int | None = Field(default=None, ge=1)
    read_timeout: float = Field(default=120.0, gt=0)
    connect_timeout: float = Field(default=10.0, gt=0)


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
            raise ConfigError(_describe(exc, self._setting_name(name))) from None

    def _setting_name(self, name: str) -> Any:
        prefix = self.env_prefix
        if prefix is not None:
            return lambda field: f"{prefix}{field.upper()}"
        return lambda field: f"channels.{name}.{field}"


class WorkerSettings(BaseModel):
    """How the delivery workers run."""

    model_config = ConfigDict(extra="forbid")

    concurrency: int = Field(default=16, ge=1, le=1000)
    lease_seconds: float = Field(default=20.0, ge=2)
    poll_interval: float = Field(default=1.0, gt=0)
    max_attempts: int = Field(default=8, ge=1)
    retry_base: float = Field(default=2.0, ge=0)
    retry_max: float = Field(default=300.0, ge=0)
    session_idle_timeout: float | None = Field(default=None, gt=0)  # seconds; unset = never
    typing_interval: float = Field(default=4.0, gt=0)
    shutdown_grace: float = Field(default=10.0, ge=0)


class Settings(BaseModel):
    """Everything the bridge needs to run."""

    model_config = ConfigDict(extra="forbid")

    port: int = Field(default=8080, ge=1, le=65535)
    public_url: str = ""
    database_url: str = "sqlite+aiosqlite:///./bridge.db"
    log_format: Literal["json", "console"] | None = None
    log_level: str = "info"
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

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://localhost:{self.port}").rstrip("/")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


# Environment variables of the top level (name -> Settings field).
_TOP = {
    "PORT": "port",
    "PUBLIC_URL": "public_url",
    "DATABASE_URL": "database_url",
    "LOG_FORMAT": "log_format",
    "LOG_LEVEL": "log_level",
    "BRIDGE_API_KEY": "bridge_api_key",
    "MAX_BODY_BYTES": "max_body_bytes",
    "PROACTIVE_POLL_SECONDS": "proactive_poll_seconds",
    "PROACTIVE_WINDOW_HOURS": "proactive_window_hours",
}
_WORKER_PREFIX = "WORKER_"
_SESSION_IDLE = "SESSION_IDLE_TIMEOUT"
# Channel types enabled by env vars in the one-bot case: (channel name, prefix, enabling variable).
_ENV_CHANNELS = (
    ("telegram", "TELEGRAM_", "TELEGRAM_BOT_TOKEN"),
    ("twilio", "TWILIO_", "TWILIO_ACCOUNT_SID"),
    ("web", "WIDGET_", None),
)
_TEXT_PREFIX = "TEXT_"


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the settings from the environment (and ``BRIDGE_CONFIG``); raise ``ConfigError``."""
    env = dict(os.environ if environ is None else environ)
    data: dict[str, Any] = {}
    for var, field in _TOP.items():
        if env.get(var, "") != "":
            data[field] = env[var]
    worker = {  # only our own WORKER_* names: platforms set others (WORKER_ID, WORKER_CLASS ...)
        field: env[f"{_WORKER_PREFIX}{field.upper()}"]
        for field in WorkerSettings.model_fields
        if env.get(f"{_WORKER_PREFIX}{field.upper()}", "") != ""
    }
    if env.get(_SESSION_IDLE):
        worker["session_idle_timeout"] = env[_SESSION_IDLE]
    data["worker"] = worker

    config_path = env.get("BRIDGE_CONFIG")
    if config_path:
        file_data = _read_toml(Path(config_path), env)
        data["bots"] = file_data.get("bots", {})
        data["channels"] = file_data.get("channels", {})
    else:
        data["bots"] = {"default": _env_bot(env)}
        data["channels"] = _env_channels(env)

    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, _env_name(bool(config_path)))) from None
    for name, channel in settings.channels.items():
        if channel.bot not in settings.bots:
            where = f"channels.{name}.bot" if config_path else "BOT_BACKEND"
            raise ConfigError(f"{where}: no bot named {channel.bot!r} is configured")
    return settings


def _env_bot(env: Mapping[str, str]) -> dict[str, Any]:
    backend = env.get("BOT_BACKEND") or ("ocs" if env.get("OCS_API_KEY") else "echo")
    if backend not in ("ocs", "echo"):
        raise ConfigError("BOT_BACKEND: must be 'ocs' or 'echo'")
    bot: dict[str, Any] = {"backend": backend}
    for var, field in (
        ("OCS_BASE_URL", "base_url"),
        ("OCS_API_KEY", "api_key"),
        ("OCS_EXPERIMENT_ID", "experiment_id"),
        ("OCS_EXPERIMENT_VERSION", "version"),
        ("OCS_READ_TIMEOUT", "read_timeout"),
        ("OCS_CONNECT_TIMEOUT", "connect_timeout"),
    ):
        if env.get(var):
            bot[field] = env[var]
    if backend == "ocs":
        for var in ("OCS_API_KEY", "OCS_EXPERIMENT_ID"):
            if not env.get(var):
                raise ConfigError(f"{var}: required when BOT_BACKEND is 'ocs'")
    return bot


def _env_channels(env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    texts = {k[len(_TEXT_PREFIX) :].lower(): v for k, v in env.items() if k.startswith(_TEXT_PREFIX)}
    channels: dict[str, dict[str, Any]] = {}
    for name, prefix, enabler in _ENV_CHANNELS:
        if enabler is not None and not env.get(enabler):
            continue
        options = {k[len(prefix) :].lower(): v for k, v in env.items() if k.startswith(prefix) and v != ""}
        channels[name] = {"type": name, "bot": "default", "texts": texts, "env_prefix": prefix, **options}
    return channels


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _read_toml(path: Path, env: Mapping[str, str]) -> dict[str, Any]:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"BRIDGE_CONFIG: file {str(path)!r} not found") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"BRIDGE_CONFIG: cannot read {str(path)!r}: {exc}") from None
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

        return _ENV_REF.sub(sub, value)
    return value


_REVERSE_TOP = {field: var for var, field in _TOP.items()}
_REVERSE_BOT = {
    "base_url": "OCS_BASE_URL",
    "api_key": "OCS_API_KEY",
    "experiment_id": "OCS_EXPERIMENT_ID",
    "version": "OCS_EXPERIMENT_VERSION",
    "read_timeout": "OCS_READ_TIMEOUT",
    "connect_timeout": "OCS_CONNECT_TIMEOUT",
    "backend": "BOT_BACKEND",
}


def _env_name(from_file: bool) -> Any:
    def name(loc: str) -> str:
        parts = loc.split(".")
        if parts[0] == "worker" and len(parts) > 1:
            return (
                _SESSION_IDLE if parts[1] == "session_idle_timeout" else f"{_WORKER_PREFIX}{parts[1].upper()}"
            )
        if parts[0] in _REVERSE_TOP:
            return _REVERSE_TOP[parts[0]]
        if from_file:
            return loc
        if parts[0] == "bots" and len(parts) > 2:
            return _REVERSE_BOT.get(parts[2], loc)
        return loc

    return name


def _describe(exc: ValidationError, name: Any) -> str:
    """One line: the first error, naming the setting, never echoing its value."""
    error = exc.errors(include_input=False, include_url=False)[0]
    loc = ".".join(str(p) for p in error["loc"]) or "settings"
    message = str(error["msg"])
    if error["type"] == "missing":
        message = "required"
    elif error["type"] == "extra_forbidden":
        message = "unknown setting"
    return f"{name(loc)}: {message}"


def exit_on_config_error(exc: ConfigError) -> None:
    """Print the one-line error and stop."""
    print(f"bridge: configuration error: {exc}", file=sys.stderr)
    raise SystemExit(2)
