"""Each bad setting stops start-up with one line naming it, never printing a secret."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bridge.errors import ConfigError
from bridge.settings import load_settings

SECRET = "sup3r-secret-value"


def error(env: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    message = str(info.value)
    assert "\n" not in message and SECRET not in message
    return message


def test_defaults_give_the_echo_bot_sqlite_and_the_web_channel():
    settings = load_settings({})
    assert settings.bots["default"].backend == "echo"
    assert settings.database_url == "sqlite+aiosqlite:///./bridge.db"
    assert list(settings.channels) == ["web"]
    assert settings.base_url == "http://localhost:8080"


def test_ocs_settings_select_the_ocs_bot():
    env = {"OCS_API_KEY": SECRET, "OCS_EXPERIMENT_ID": "e1", "OCS_EXPERIMENT_VERSION": "3", "PORT": "9000"}
    settings = load_settings(env)
    bot = settings.bots["default"]
    assert (bot.backend, bot.experiment_id, bot.version) == ("ocs", "e1", 3)
    assert SECRET not in repr(settings)
    assert settings.base_url == "http://localhost:9000"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"PORT": "eighty"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"PUBLIC_URL": "example.org"}, "PUBLIC_URL"),
        ({"BOT_BACKEND": "gpt"}, "BOT_BACKEND"),
        ({"OCS_API_KEY": SECRET}, "OCS_EXPERIMENT_ID"),
        ({"BOT_BACKEND": "ocs", "OCS_EXPERIMENT_ID": "e"}, "OCS_API_KEY"),
        (
            {"OCS_API_KEY": SECRET, "OCS_EXPERIMENT_ID": "e", "OCS_EXPERIMENT_VERSION": "v2"},
            "OCS_EXPERIMENT_VERSION",
        ),
        ({"OCS_API_KEY": SECRET, "OCS_EXPERIMENT_ID": "e", "OCS_BASE_URL": "ftp://x"}, "OCS_BASE_URL"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"WORKER_CONCURRENCY": "0"}, "WORKER_CONCURRENCY"),
        ({"BRIDGE_CONFIG": "/nonexistent/bridge.toml"}, "BRIDGE_CONFIG"),
    ],
)
def test_bad_setting_is_named(env, named):
    assert error(env).startswith(f"{named}:")


def test_toml_with_several_bots_and_channels(tmp_path):
    config = tmp_path / "bridge.toml"
    config.write_text(
        """
[bots.support]
backend = "ocs"
api_key = "${SUPPORT_KEY}"
experiment_id = "exp-support"
version = 2

[bots.demo]
backend = "echo"

[channels.site]
type = "web"
bot = "demo"

[channels.helpdesk]
type = "web"
bot = "support"
"""
    )
    settings = load_settings({"BRIDGE_CONFIG": str(config), "SUPPORT_KEY": SECRET})
    assert settings.bots["support"].api_key.get_secret_value() == SECRET
    assert settings.channels["helpdesk"].bot == "support"

    assert error({"BRIDGE_CONFIG": str(config)}).startswith("bots.support.api_key:")
    config.write_text('[channels.site]\ntype = "web"\nbot = "missing"\n')
    assert error({"BRIDGE_CONFIG": str(config)}).startswith("channels.site.bot:")
    config.write_text("[bots.x\n")
    assert error({"BRIDGE_CONFIG": str(config)}).startswith("BRIDGE_CONFIG:")


def test_the_command_prints_one_line_and_exits_non_zero(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "OCS_API_KEY": SECRET, "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "bridge", "check"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "chatbridge: configuration error: OCS_EXPERIMENT_ID: required when BOT_BACKEND is 'ocs'"
    ]
    assert SECRET not in result.stdout + result.stderr


def test_database_url_spellings():
    assert (
        load_settings({"DATABASE_URL": "postgres://u:p@db/x"}).database_url == "postgresql+asyncpg://u:p@db/x"
    )
    assert load_settings({"DATABASE_URL": "sqlite:///./b.db"}).database_url == "sqlite+aiosqlite:///./b.db"
    assert error({"DATABASE_URL": "mysql://x"}).startswith("DATABASE_URL:")


def test_unrelated_variables_sharing_a_prefix_do_not_stop_start_up():
    settings = load_settings({"WORKER_ID": "3", "WIDGET_THEME": "dark", "WORKER_CONCURRENCY": "4"})
    assert settings.worker.concurrency == 4


def test_every_variable_the_bridge_reads_is_in_the_readme_and_the_examples_are_valid():
    import re
    from pathlib import Path

    from adapters import build_channels, option_models
    from bridge.variables import known_variables, unknown_variables

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    known = known_variables(option_models())
    assert sorted(name for name in known if f"`{name}`" not in readme) == []

    example_env = dict(re.findall(r"^# ?([A-Z][A-Z0-9_]*)=(.*)$", (root / ".env.example").read_text(), re.M))
    assert set(example_env) <= known and unknown_variables(example_env, option_models()) == []

    refs = {"OCS_SUPPORT_KEY": SECRET, "SUPPORT_TELEGRAM_SECRET": "s3cret"}
    refs |= {"SUPPORT_TELEGRAM_TOKEN": "123:abc", "TWILIO_ACCOUNT_SID": "AC" + "0" * 32}
    settings = load_settings(
        {"BRIDGE_CONFIG": str(root / "bridge.example.toml"), "TWILIO_AUTH_TOKEN": "t"} | refs
    )
    assert sorted(build_channels(settings)) == ["playground", "site", "support-sms", "support-telegram"]


def test_known_variables_follow_the_models():
    from adapters import option_models
    from bridge.variables import known_variables

    known = known_variables(option_models())
    assert {"PORT", "DATA_DIR", "OCS_READ_TIMEOUT", "WORKER_SHUTDOWN_GRACE", "TEXT_APOLOGY"} <= known
    assert {"TELEGRAM_RATE_PER_CHAT", "TWILIO_REQUEST_TIMEOUT", "WIDGET_ATTACHMENT_LINKS"} <= known


def errors(env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    assert SECRET not in str(info.value)
    return str(info.value).splitlines()


def test_every_bad_variable_is_named_in_plain_words_one_line_each():
    env = {"PORT": "eighty", "DEMO_PAGE": "maybe", "LOG_LEVEL": "verbose", "WORKER_CONCURRENCY": "0"}
    env |= {"OCS_API_KEY": SECRET, "OCS_EXPERIMENT_ID": "e", "OCS_EXPERIMENT_VERSION": "v2"}
    assert errors(env) == [
        "PORT: must be a whole number",
        "DEMO_PAGE: must be on or off (true/false, yes/no, 1/0)",
        "LOG_LEVEL: must be 'debug', 'info', 'warning', 'error' or 'critical'",
        "OCS_EXPERIMENT_VERSION: must be a whole number",
        "WORKER_CONCURRENCY: must be greater than or equal to 1",
    ]


def test_every_problem_of_the_config_file_is_named_by_its_key_path(tmp_path):
    config = tmp_path / "bridge.toml"
    config.write_text(
        '[bots.a]\nbackend = "ocs"\napikey = "k"\nversion = 0\n[bots.b]\nbackend = "ocs"\n'
        '[channels.s]\ntype = "web"\nbot = "c"\ntexts = { welcom = "hi" }\n'
    )
    assert errors({"BRIDGE_CONFIG": str(config), "PORT": "eighty"}) == [
        "PORT: must be a whole number",
        "bots.a.version: must be greater than or equal to 1",
        "bots.a.apikey: unknown setting (did you mean api_key?)",
        "bots.b.api_key: required when backend is 'ocs'",
        "bots.b.experiment_id: required when backend is 'ocs'",
        "channels.s.bot: no bot named 'c' is configured",
        "channels.s.texts.welcom: unknown text (did you mean welcome?)",
    ]
    config.write_text('[bots.a]\napi_key = "${KEY_A}"\nOCS_EXPERIMENT_ID = "${ID_A}"\n[channel.x]\n')
    assert errors({"BRIDGE_CONFIG": str(config), "WORKER_CONCURRENCY": "0"}) == [
        "channel: unknown section (did you mean channels?) (known: bots, channels)",
        "bots.a.OCS_EXPERIMENT_ID: unknown setting (in the file it is experiment_id)",
        "bots.a.api_key: refers to environment variable KEY_A, which is not set",
        "bots.a.OCS_EXPERIMENT_ID: refers to environment variable ID_A, which is not set",
        "WORKER_CONCURRENCY: must be greater than or equal to 1",
    ]


def test_every_bad_channel_option_is_named():
    from adapters import build_channels

    env = {"TWILIO_ACCOUNT_SID": "nope", "TWILIO_AUTH_TOKEN": SECRET, "TWILIO_FROM_NUMBER": "5551234"}
    with pytest.raises(ConfigError) as info:
        build_channels(load_settings(env))
    assert str(info.value).splitlines() == [
        "TWILIO_ACCOUNT_SID: not a Twilio Account SID (expected AC followed by 32 hex digits)",
        "TWILIO_FROM_NUMBER: must be an E.164 number like +15551234567 (or whatsapp:+15551234567)",
    ]


def test_a_variable_the_config_file_refers_to_is_known(tmp_path):
    from adapters import option_models
    from bridge.variables import check_environment, unknown_variables

    config = tmp_path / "bridge.toml"
    config.write_text(
        '[bots.support]\nbackend = "ocs"\napi_key = "${OCS_SUPPORT_KEY}"\nexperiment_id = "e"\n'
    )
    env = {"BRIDGE_CONFIG": str(config), "OCS_SUPPORT_KEY": SECRET, "OCS_SUPORT_KEY": "a typo"}
    assert unknown_variables(env, option_models()) == [
        "OCS_SUPORT_KEY: unknown variable, ignored (did you mean OCS_SUPPORT_KEY?)"
    ]
    check_environment(env, option_models())
    assert load_settings(env).bots["support"].api_key.get_secret_value() == SECRET

    with pytest.raises(ConfigError) as info:  # bot and channel variables the file ignores: every one
        check_environment(env | {"OCS_API_KEY": SECRET, "TELEGRAM_BOT_TOKEN": "1:a"}, option_models())
    assert [line.split(":")[0] for line in str(info.value).splitlines()] == [
        "OCS_API_KEY",
        "TELEGRAM_BOT_TOKEN",
    ]


def test_the_settings_import_nothing_of_the_runtime():
    ours = "m for m in sys.modules if m.startswith(('bridge', 'adapters'))"
    code = f"import sys, bridge.settings; print(*({ours}))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    loaded = result.stdout.split()
    runtime = [
        m
        for m in loaded
        if m not in ("bridge", "bridge.errors") and m.split(".")[:2] != ["bridge", "settings"]
    ]
    assert "bridge.settings" in loaded and runtime == []
