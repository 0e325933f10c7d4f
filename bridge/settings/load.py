"""``load_settings``: the sources merged, validated, and checked across bots and channels."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from bridge.errors import ConfigError
from bridge.settings.models import BotSettings, ChannelSettings, M, Settings, Texts, WorkerSettings
from bridge.settings.problems import Loc, describe, did_you_mean, raise_all
from bridge.settings.sources import (
    BOT_VARIABLES,
    CONFIG,
    SETTINGS_VARIABLES,
    ConfigFileSource,
    EnvironmentSource,
    OneBotSource,
    bot_variable,
    read_environment,
)

_REQUIRED = {"ocs": ("api_key", "experiment_id"), "opencx": ("api_key",)}  # by backend
_CHAT_REQUIRED = ("client_id", "client_secret", "experiment_id")  # OCS's Chat API transport
_VARIABLES = SETTINGS_VARIABLES | BOT_VARIABLES
_MODELS: dict[str, type[BaseModel]] = {"bots": BotSettings, "worker": WorkerSettings}


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the settings from the environment (and ``BRIDGE_CONFIG``); raise ``ConfigError`` naming
    every bad setting, one line each."""
    env = read_environment() if environ is None else dict(environ)
    from_file = bool(env.get(CONFIG))
    bots_and_channels = ConfigFileSource if from_file else OneBotSource
    values: dict[str, Any] = {}
    problems: list[str] = []  # a file that cannot be used does not hide bad variables
    for source in (EnvironmentSource(Settings, env), bots_and_channels(Settings, env)):
        try:
            values |= source()
        except ConfigError as exc:
            problems += str(exc).splitlines()
    across = [*_ocs_without_key(env), *_across(values, from_file)]
    try:
        settings = Settings(**values)
    except ValidationError as exc:
        lines = [*problems, *describe(exc, _setting_name, _known_at), *across]
        raise ConfigError("\n".join(lines)) from None
    raise_all([*problems, *across])
    return settings


def _ocs_without_key(env: Mapping[str, str]) -> Iterable[str]:
    """An OCS chatbot named without its key is half-configured (the echo bot would answer)."""
    chosen = (CONFIG, "BOT_BACKEND", "OCS_API_KEY", "OCS_CLIENT_ID", "OPENCX_API_KEY")
    if any(env.get(name) for name in chosen):
        return  # a chosen backend: the checks across bots say what it lacks
    for name in ("OCS_EXPERIMENT_ID", "OCS_EXPERIMENT_VERSION"):
        if env.get(name):
            yield f"OCS_API_KEY: required when {name} is set (without it the echo bot answers)"
            return


def _setting_name(loc: Loc) -> str:
    """A variable where the value came from the environment, else the key path in the file."""
    last = loc[-1]
    return last if isinstance(last, str) and last in _VARIABLES else ".".join(map(str, loc))


def _known_at(loc: Loc) -> Iterable[str]:
    """The keys known where an unknown one was found (``bots.NAME``), for "did you mean"."""
    model = _MODELS.get(str(loc[0])) if loc else None
    return list(model.model_fields) if model is not None else ()


def _across(values: dict[str, Any], from_file: bool) -> Iterator[str]:
    """What no single model sees: a bot's backend needs some fields, a channel needs its bot. Only
    the bots and channels valid by themselves are checked (the others have their own lines)."""
    backend = "backend" if from_file else "BOT_BACKEND"
    bots = values.get("bots", {})
    for bot_name, bot in _each_valid(BotSettings, bots):
        chat = bot.backend == "ocs" and bot.transport == "chat"
        for field in _CHAT_REQUIRED if chat else _REQUIRED.get(bot.backend, ()):
            if not getattr(bot, field):
                where = f"bots.{bot_name}.{field}" if from_file else bot_variable(field, bot.backend)
                when = f"transport is 'chat' ({backend} 'ocs')" if chat else f"{backend} is {bot.backend!r}"
                yield f"{where}: required when {when}"
    for channel_name, channel in _each_valid(ChannelSettings, values.get("channels", {})):
        if channel.bot not in bots:
            where = f"channels.{channel_name}.bot" if from_file else "BOT_BACKEND"
            yield f"{where}: no bot named {channel.bot!r} is configured"
        if from_file:  # unknown TEXT_* variables are reported with the other unknown variables
            for key in sorted(set(channel.texts) - set(Texts.__dataclass_fields__)):
                hint = did_you_mean(key, Texts.__dataclass_fields__)
                yield f"channels.{channel_name}.texts.{key}: unknown text{hint}"


def _each_valid(model: type[M], raw: dict[str, Any]) -> Iterator[tuple[str, M]]:
    for name, value in raw.items():
        try:
            yield name, model.model_validate(value)
        except ValidationError:
            continue
