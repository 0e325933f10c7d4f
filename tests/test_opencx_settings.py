"""open.cx settings: the backend chosen by its key, its own variable names, mixed with OCS in TOML."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.bots import OcsBot, OpenCxBot, build_bot
from bridge.errors import ConfigError
from bridge.settings import load_settings

SECRET = "cx-s3cret-value"


def test_an_opencx_key_selects_open_cx_at_its_default_url():
    settings = load_settings({"OPENCX_API_KEY": SECRET, "OPENCX_WEBHOOK_SECRET": "hook"})
    bot = settings.bots["default"]
    assert (bot.backend, bot.base_url, bot.rate_limit) == ("opencx", "https://api.open.cx", 100)
    assert bot.api_key is not None and bot.api_key.get_secret_value() == SECRET
    assert bot.webhook_secret is not None and SECRET not in repr(settings)
    assert isinstance(build_bot(bot), OpenCxBot)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BOT_BACKEND": "opencx"}, "OPENCX_API_KEY: required when BOT_BACKEND is 'opencx'"),
        (
            {"OPENCX_API_KEY": SECRET, "OPENCX_BASE_URL": "api.open.cx"},
            "OPENCX_BASE_URL: must be an http(s) URL",
        ),
        ({"OPENCX_API_KEY": SECRET, "OPENCX_RATE_LIMIT": "0"}, "OPENCX_RATE_LIMIT:"),
        ({"BOT_BACKEND": "cx"}, "BOT_BACKEND: must be 'ocs', 'opencx' or 'echo'"),
    ],
)
def test_bad_opencx_settings_are_named(env, message):
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    assert str(info.value).startswith(message) and SECRET not in str(info.value)


def test_one_file_routes_channels_to_ocs_and_open_cx(tmp_path: Path):
    config = tmp_path / "bridge.toml"
    config.write_text(
        """
[bots.sales]
backend = "ocs"
api_key = "${OCS_KEY}"
experiment_id = "e1"

[bots.support]
backend = "opencx"
api_key = "${CX_KEY}"
webhook_secret = "${CX_HOOK}"

[channels.site]
type = "web"
bot = "sales"

[channels.help]
type = "web"
bot = "support"
chatbot_id = "help"
"""
    )
    env = {"BRIDGE_CONFIG": str(config), "OCS_KEY": "k", "CX_KEY": SECRET, "CX_HOOK": "h"}
    settings = load_settings(env)
    assert isinstance(build_bot(settings.bots["sales"]), OcsBot)
    assert isinstance(build_bot(settings.bots["support"]), OpenCxBot)
    assert settings.bots["support"].base_url == "https://api.open.cx"
    assert {c.bot for c in settings.channels.values()} == {"sales", "support"}
