"""Where the settings come from: the environment (the README's variables: the models' validation
aliases), and the bots and channels either from the environment (one bot) or from the
``BRIDGE_CONFIG`` TOML file (several), whose ``${VAR}`` references keep secrets out of it.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from bridge.errors import ConfigError
from bridge.settings.models import BotSettings, Settings, WorkerSettings
from bridge.settings.problems import did_you_mean, raise_all

CONFIG = "BRIDGE_CONFIG"
ENV_FILE = ".env"
TEXT_PREFIX = "TEXT_"
# Channel types enabled by env vars in the one-bot case: (channel name, prefix, enabling variable).
ENV_CHANNELS = (
    ("telegram", "TELEGRAM_", "TELEGRAM_BOT_TOKEN"),
    ("twilio", "TWILIO_", "TWILIO_ACCOUNT_SID"),
    ("web", "WIDGET_", None),
)
# The bot variables a backend does not read: both of a pair set the same field.
_NOT_FOR = {
    "opencx": frozenset(
        {
            "OCS_BASE_URL",
            "OCS_API_KEY",
            "OCS_EXPERIMENT_ID",
            "OCS_EXPERIMENT_VERSION",
            "OCS_RATE_LIMIT",
            "OCS_TRANSPORT",
            "OCS_CLIENT_ID",
            "OCS_CLIENT_SECRET",
        }
    ),
    "ocs": frozenset({"OPENCX_BASE_URL", "OPENCX_API_KEY"}),
}
_SECTIONS = ("bots", "channels")
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def variables_of(field: FieldInfo) -> list[str]:
    """The environment variables that set a field (its validation aliases), in order of precedence."""
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [choice for choice in alias.choices if isinstance(choice, str)]
    return [alias] if isinstance(alias, str) else []


def variables(model: type[BaseModel]) -> set[str]:
    """Every variable of the model's own fields."""
    return {var for field in model.model_fields.values() for var in variables_of(field)}


def _not_for(backend: str) -> frozenset[str]:
    """The bot variables this backend does not read (the echo bot reads OCS's)."""
    return _NOT_FOR.get(backend, _NOT_FOR["ocs"])


def bot_variable(field: str, backend: str) -> str:
    """The variable of a bot field for this backend (``api_key``: ``OCS_API_KEY`` or ``OPENCX_API_KEY``)."""
    return next(v for v in variables_of(BotSettings.model_fields[field]) if v not in _not_for(backend))


SETTINGS_VARIABLES = variables(Settings) | variables(WorkerSettings)  # never in the file
BOT_VARIABLES = variables(BotSettings)


def read_environment() -> dict[str, str]:
    """The process environment over a ``.env`` file in the working directory (if there is one)."""
    env: dict[str, str] = {}
    if Path(ENV_FILE).is_file():
        from dotenv import dotenv_values

        env = {k: v for k, v in dotenv_values(ENV_FILE).items() if v is not None}
    return env | dict(os.environ)


class _Source(PydanticBaseSettingsSource):
    """A source over one mapping of variables (the environment, or a test's)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]):
        super().__init__(settings_cls)
        self.environ = environ

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """The first of the field's variables that is set: (value, that variable, not complex)."""
        var = self._variable(field, frozenset())
        return (None, field_name, False) if var is None else (self.environ[var], var, False)

    def values(self, model: type[BaseModel], skip: frozenset[str] = frozenset()) -> dict[str, Any]:
        """The model's fields that are set (not empty), keyed by the variable that sets each."""
        found = {}
        for field in model.model_fields.values():
            var = self._variable(field, skip)
            if var is not None:
                found[var] = self.environ[var]
        return found

    def _variable(self, field: FieldInfo, skip: frozenset[str]) -> str | None:
        return next((v for v in variables_of(field) if v not in skip and self.environ.get(v)), None)


class EnvironmentSource(_Source):
    """The settings' own variables (``PORT``, ``WORKER_*`` ...): always from the environment."""

    def __call__(self) -> dict[str, Any]:
        return self.values(Settings) | {"worker": self.values(WorkerSettings)}


class OneBotSource(_Source):
    """Without ``BRIDGE_CONFIG``: the bot ``default`` from ``BOT_*``, ``OCS_*`` or ``OPENCX_*``,
    and a channel of each type whose enabling variable is set (``TELEGRAM_*`` -> ``telegram``)."""

    def __call__(self) -> dict[str, Any]:
        return {"bots": {"default": self.bot()}, "channels": dict(self.channels())}

    def bot(self) -> dict[str, Any]:
        env = self.environ
        ocs = env.get("OCS_API_KEY") or env.get("OCS_CLIENT_ID")
        default = "ocs" if ocs else "opencx" if env.get("OPENCX_API_KEY") else "echo"
        backend = env.get("BOT_BACKEND") or default
        return self.values(BotSettings, skip=_not_for(backend)) | {"BOT_BACKEND": backend}

    def channels(self) -> Iterator[tuple[str, dict[str, Any]]]:
        env = self.environ
        texts = {k[len(TEXT_PREFIX) :].lower(): v for k, v in env.items() if k.startswith(TEXT_PREFIX)}
        for name, prefix, enabler in ENV_CHANNELS:
            if enabler is not None and not env.get(enabler):
                continue
            options = {k[len(prefix) :].lower(): v for k, v in env.items() if k.startswith(prefix) and v}
            yield name, {"type": name, "bot": "default", "texts": texts, "env_prefix": prefix, **options}


class ConfigFileSource(_Source):
    """With ``BRIDGE_CONFIG``: its ``[bots.NAME]`` and ``[channels.NAME]`` tables."""

    def __call__(self) -> dict[str, Any]:
        path = Path(self.environ[CONFIG])
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{CONFIG}: file {str(path)!r} not found") from None
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{CONFIG}: cannot read {str(path)!r}: {exc}") from None
        missing: list[str] = []
        values = _expand(raw, self.environ, "", missing)
        raise_all([*_file_problems(raw), *missing])
        return values


def _file_problems(raw: dict[str, Any]) -> Iterator[str]:
    """Keys out of place: settings of the environment, unknown sections, variables' names as keys."""
    for key, value in raw.items():
        if key.upper() in SETTINGS_VARIABLES:
            yield f"{key}: set {key.upper()} in the environment; {CONFIG} holds bots and channels"
        elif key not in _SECTIONS:
            yield f"{key}: unknown section{did_you_mean(key, _SECTIONS)} (known: bots, channels)"
        elif not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
            yield f"{key}: must be tables like [{key}.NAME]"
    bots = raw.get("bots")
    fields = {var: name for name, field in BotSettings.model_fields.items() for var in variables_of(field)}
    for bot_name, bot in bots.items() if isinstance(bots, dict) else ():
        for key in sorted(set(bot) & set(fields)) if isinstance(bot, dict) else ():
            yield f"bots.{bot_name}.{key}: unknown setting (in the file it is {fields[key]})"


def _expand(value: Any, env: Mapping[str, str], where: str, missing: list[str]) -> Any:
    """Replace ``${VAR}`` references with environment values; note each one that is not set."""
    if isinstance(value, dict):
        return {k: _expand(v, env, f"{where}.{k}" if where else k, missing) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, env, where, missing) for v in value]
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            var = match.group(1)
            if var not in env:
                missing.append(f"{where}: refers to environment variable {var}, which is not set")
            return env.get(var, "")

        return ENV_REF.sub(sub, value)
    return value


def config_references(env: Mapping[str, str]) -> set[str]:
    """The variables the ``BRIDGE_CONFIG`` file refers to as ``${VAR}`` (none without one)."""
    if not env.get(CONFIG):
        return set()
    try:
        return set(ENV_REF.findall(Path(env[CONFIG]).read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError):
        return set()  # load_settings has said what is wrong with the file
