"""The environment as an operator wrote it: names the bridge does not know under its own prefixes
("did you mean"), channels configured by halves, and variables ``BRIDGE_CONFIG`` makes the bridge
ignore. The known names come from the settings models (and the adapters' option models), so a
new field is known as soon as it exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel

from bridge.channel import Texts
from bridge.errors import ConfigError
from bridge.settings import BOT, CONFIG, ENV_CHANNELS, ENV_REF, TEXT_PREFIX, TOP, WORKER, did_you_mean

# Prefixes the bridge owns: an unknown name under one of them is most likely a typo.
PREFIXES = ("TELEGRAM_", "TWILIO_", "OCS_", "OPENCX_", "WIDGET_", "WORKER_", "BRIDGE_", "TEXT_", "PROACTIVE_")
# Platforms set names of their own under these (WORKER_ID, WORKER_CLASS ...): only names close to
# one of ours are reported.
LOOSE = ("WORKER_",)

OptionModels = Mapping[str, type[BaseModel]]  # channel type -> its options model


def channel_variables(models: OptionModels) -> dict[str, set[str]]:
    """The variables of each env-configured channel type, by its prefix."""
    return {
        prefix: {f"{prefix}{field.upper()}" for field in models[kind].model_fields}
        for kind, prefix, _enabler in ENV_CHANNELS
        if kind in models
    }


def known_variables(models: OptionModels) -> set[str]:
    names = set(TOP) | set(WORKER) | set(BOT) | {CONFIG}
    names |= {f"{TEXT_PREFIX}{field.upper()}" for field in Texts.__dataclass_fields__}
    for variables in channel_variables(models).values():
        names |= variables
    return names


def unknown_variables(env: Mapping[str, str], models: OptionModels) -> list[str]:
    """One line per variable under our prefixes that nothing reads (never its value)."""
    known = known_variables(models)
    lines = []
    for name in sorted(env):
        if name in known or not name.startswith(PREFIXES):
            continue
        hint = did_you_mean(name, known)
        if name.startswith(LOOSE) and not hint:
            continue
        lines.append(f"{name}: unknown variable, ignored{hint}")
    return lines


def check_environment(env: Mapping[str, str], models: OptionModels) -> None:
    """Raise ``ConfigError`` for a channel configured by halves, or for bot and channel variables
    that ``BRIDGE_CONFIG`` makes the bridge ignore (unless the file refers to them)."""
    channels = channel_variables(models)
    set_ = {name for name, value in env.items() if value != ""}
    if env.get(CONFIG):
        ignored = set(BOT) | {f"{TEXT_PREFIX}{f.upper()}" for f in Texts.__dataclass_fields__}
        for variables in channels.values():
            ignored |= variables
        leftovers = sorted((set_ & ignored) - _referenced(Path(env[CONFIG])))
        if leftovers:
            raise ConfigError(
                f"{leftovers[0]}: ignored while BRIDGE_CONFIG is set (configure bots and channels in "
                f"the file, which may refer to it as ${{{leftovers[0]}}})"
            )
        return
    for _kind, prefix, enabler in ENV_CHANNELS:
        if enabler is None or enabler in set_:
            continue
        given = sorted(set_ & channels.get(prefix, set()))
        if given:
            raise ConfigError(f"{enabler}: required when {given[0]} is set (or unset {prefix}*)")


def _referenced(path: Path) -> set[str]:
    try:
        return set(ENV_REF.findall(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError):
        return set()  # load_settings has said what is wrong with the file
