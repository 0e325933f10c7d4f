"""Typed settings (pydantic-settings): environment variables for the one-bot case, the
``BRIDGE_CONFIG`` TOML file for several bots and channels.

Every problem is reported at once, one line each naming the setting (never its value), in a
``ConfigError``. Nothing of the runtime is imported here: the runtime imports the settings.
"""

from __future__ import annotations

from bridge.settings.load import load_settings
from bridge.settings.models import (
    BaseUrl,
    BotSettings,
    ChannelSettings,
    Settings,
    Texts,
    WorkerSettings,
    check_url,
)
from bridge.settings.problems import did_you_mean, exit_on_config_error
from bridge.settings.sources import CONFIG, read_environment

__all__ = [
    "CONFIG",
    "BaseUrl",
    "BotSettings",
    "ChannelSettings",
    "Settings",
    "Texts",
    "WorkerSettings",
    "check_url",
    "did_you_mean",
    "exit_on_config_error",
    "load_settings",
    "read_environment",
]
