"""The environment as an operator wrote it: names the bridge does not know under its own prefixes
("did you mean"), channels configured by halves, and variables ``BRIDGE_CONFIG`` makes the bridge
ignore. The known names come from the settings models (and the adapters' option models), so a
new field is known as soon as it exists; a variable the ``BRIDGE_CONFIG`` file refers to is known.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel

from bridge.settings import Texts, did_you_mean
from bridge.settings.problems import raise_all
from bridge.settings.sources import (
    BOT_VARIABLES,
    CONFIG,
    ENV_CHANNELS,
    SETTINGS_VARIABLES,
    TEXT_PREFIX,
    config_references,
)

# Prefixes the bridge owns: an unknown name under one of them is most likely a typo.
PREFIXES = (
    "TELEGRAM_",
    "TWILIO_",
    "OCS_",
    "OPENCX_",
    "WIDGET_",
    "WORKER_",
    "BRIDGE_",
    "TEXT_",
    "PROACTIVE_",
    "STT_",
    "TTS_",
    "VOICE_",
)
# Platforms set names of their own under these (WORKER_ID, WORKER_CLASS ...): only names close to
# one of ours are reported.
LOOSE = ("WORKER_",)
TEXT_VARIABLES = {f"{TEXT_PREFIX}{field.upper()}" for field in Texts.__dataclass_fields__}

OptionModels = Mapping[str, type[BaseModel]]  # channel type -> its options model


def channel_variables(models: OptionModels) -> dict[str, set[str]]:
    """The variables of each env-configured channel type, by its prefix."""
    return {
        prefix: {f"{prefix}{field.upper()}" for field in models[kind].model_fields}
        for kind, prefix, _enabler in ENV_CHANNELS
        if kind in models
    }


def known_variables(models: OptionModels) -> set[str]:
    names = SETTINGS_VARIABLES | BOT_VARIABLES | TEXT_VARIABLES | {CONFIG}
    for variables in channel_variables(models).values():
        names |= variables
    return names


def unknown_names(env: Mapping[str, str], models: OptionModels) -> list[tuple[str, str]]:
    """Each variable under our prefixes that nothing reads, with its "did you mean" hint ("" when it
    is close to none of our names: more likely someone else's than a typo)."""
    known = known_variables(models) | config_references(env)
    found = []
    for name in sorted(env):
        if name in known or not name.startswith(PREFIXES):
            continue
        hint = did_you_mean(name, known)
        if name.startswith(LOOSE) and not hint:
            continue
        found.append((name, hint))
    return found


def unknown_line(name: str, hint: str) -> str:
    return f"{name}: unknown variable, ignored{hint}"


def unknown_variables(env: Mapping[str, str], models: OptionModels) -> list[str]:
    """One line per variable under our prefixes that nothing reads (never its value)."""
    return [unknown_line(name, hint) for name, hint in unknown_names(env, models)]


def check_environment(env: Mapping[str, str], models: OptionModels) -> None:
    """Raise ``ConfigError`` for channels configured by halves, or for bot and channel variables
    that ``BRIDGE_CONFIG`` makes the bridge ignore (unless the file refers to them); every one."""
    channels = channel_variables(models)
    set_ = {name for name, value in env.items() if value != ""}
    if env.get(CONFIG):
        ignored = BOT_VARIABLES | TEXT_VARIABLES
        for variables in channels.values():
            ignored |= variables
        raise_all(
            f"{name}: ignored while {CONFIG} is set (configure bots and channels in the file, which "
            f"may refer to it as ${{{name}}})"
            for name in sorted((set_ & ignored) - config_references(env))
        )
        return
    problems = []
    for _kind, prefix, enabler in ENV_CHANNELS:
        if enabler is None or enabler in set_:
            continue
        given = sorted(set_ & channels.get(prefix, set()))
        if given:
            problems.append(f"{enabler}: required when {given[0]} is set (or unset {prefix}*)")
    raise_all(problems)
