"""An operator's mistakes, as the `chatbridge` command meets them: one line naming the setting, exit
code 2, no traceback, no secret. And `bridge check` naming what it would otherwise ignore."""

from __future__ import annotations

import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from fakes.server import free_port
from fakes.telegram import SECRET as TG_SECRET
from fakes.telegram import TOKEN as TG_TOKEN

SECRET = "sup3r-secret-value"
ACCOUNT_SID = "AC" + "0" * 32


def bridge(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {"PATH": "/usr/bin:/bin", "LOG_FORMAT": "json", "PORT": str(free_port())}
    base["DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'bridge.db'}"
    return subprocess.run(
        [sys.executable, "-m", "bridge", *args],
        env=base | env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def toml(tmp_path: Path, text: str) -> str:
    path = tmp_path / "bridge.toml"
    path.write_text(text)
    return str(path)


OCS_BOT = '[bots.support]\nbackend = "ocs"\n'
WEB = '[channels.site]\ntype = "web"\nbot = "support"\n'

# (what the operator did, the command, the environment, the line's start) ------------------------
MISTAKES = [
    ("TOML OCS bot without api_key", ["check"], {"c": OCS_BOT + 'experiment_id = "e"\n' + WEB},
     "bots.support.api_key: required when backend is 'ocs'"),
    ("TOML OCS bot without experiment_id", ["check"], {"c": OCS_BOT + f'api_key = "{SECRET}"\n' + WEB},
     "bots.support.experiment_id: required when backend is 'ocs'"),
    ("LOG_LEVEL=verbose", ["serve"], {"LOG_LEVEL": "verbose"},
     "LOG_LEVEL: must be 'debug', 'info', 'warning', 'error' or 'critical'"),
    ("TWILIO_AUTH_TOKEN alone", ["serve"], {"TWILIO_AUTH_TOKEN": SECRET},
     "TWILIO_ACCOUNT_SID: required when TWILIO_AUTH_TOKEN is set"),
    ("TELEGRAM_WEBHOOK_SECRET alone", ["serve"], {"TELEGRAM_WEBHOOK_SECRET": SECRET},
     "TELEGRAM_BOT_TOKEN: required when TELEGRAM_WEBHOOK_SECRET is set"),
    ("a top-level TOML key", ["serve"], {"c": "port = 9000\n"}, "port: set PORT in the environment"),
    ("a misspelled TOML section", ["serve"], {"c": '[bot.demo]\nbackend = "echo"\n'},
     "bot: unknown section (did you mean bots?)"),
    ("an unknown TOML bot key", ["serve"], {"c": '[bots.demo]\nbackend = "echo"\napikey = "x"\n'},
     "bots.demo.apikey: unknown setting (did you mean api_key?)"),
    ("an unknown TOML channel key", ["serve"],
     {"c": '[bots.demo]\nbackend = "echo"\n[channels.site]\ntype = "web"\nbot = "demo"\nembedkey = "k"\n'},
     "channels.site.embedkey: unknown setting (did you mean embed_key?)"),
    ("an unknown text key", ["serve"],
     {"c": '[bots.d]\nbackend = "echo"\n[channels.s]\ntype = "web"\nbot = "d"\ntexts = { welcom = "hi" }\n'},
     "channels.s.texts.welcom: unknown text (did you mean welcome?)"),
    ("OCS settings beside BRIDGE_CONFIG", ["serve"],
     {"c": '[bots.d]\nbackend = "echo"\n', "OCS_API_KEY": SECRET},
     "OCS_API_KEY: ignored while BRIDGE_CONFIG is set"),
    ("two web channels with one chatbot id", ["serve"],
     {"c": '[bots.d]\nbackend = "echo"\n[channels.a]\ntype = "web"\nbot = "d"\nchatbot_id = "x"\n'
           '[channels.b]\ntype = "web"\nbot = "d"\nchatbot_id = "x"\n'},
     "channels.b.chatbot_id: 'x' is already the chatbot id of channel 'a'"),
    ("set-webhook without PUBLIC_URL", ["telegram", "set-webhook"],
     {"TELEGRAM_BOT_TOKEN": TG_TOKEN, "TELEGRAM_WEBHOOK_SECRET": TG_SECRET}, "PUBLIC_URL: required"),
    ("set-webhook without a token (nor PUBLIC_URL)", ["telegram", "set-webhook"], {},
     "TELEGRAM_BOT_TOKEN: not set, so there is no Telegram channel"),
    ("--channel after the action, naming no channel", ["telegram", "poll", "--channel", "tg"],
     {"TELEGRAM_BOT_TOKEN": TG_TOKEN, "TELEGRAM_WEBHOOK_SECRET": TG_SECRET},
     "--channel: no Telegram channel named 'tg' (there is: telegram)"),
    ("an OCS experiment without the key", ["check"], {"OCS_EXPERIMENT_ID": "e"},
     "OCS_API_KEY: required when OCS_EXPERIMENT_ID is set (without it the echo bot answers)"),
    ("a bad sslmode", ["migrate"], {"DATABASE_URL": f"postgresql://u:{SECRET}@127.0.0.1:1/db?sslmode=always"},
     "DATABASE_URL: sslmode must be one of"),
    ("an SQLite file that cannot be created", ["serve"], {"DATABASE_URL": "sqlite:////proc/no/bridge.db"},
     "DATABASE_URL: cannot create or migrate the SQLite database"),
]  # fmt: skip


def _run(tmp_path: Path, index: int) -> tuple[str, subprocess.CompletedProcess[str]]:
    what, args, env, _line = MISTAKES[index]
    directory = tmp_path / str(index)
    directory.mkdir()
    env = dict(env)
    if "c" in env:
        env["BRIDGE_CONFIG"] = toml(directory, env.pop("c"))
    return what, bridge(directory, *args, **env)


def test_each_mistake_gives_one_line_and_exit_code_2(tmp_path):
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: _run(tmp_path, i), range(len(MISTAKES))))
    for (what, result), (_, _, _, line) in zip(results, MISTAKES, strict=True):
        output = result.stdout + result.stderr
        assert result.returncode == 2, f"{what}: exit {result.returncode}\n{output}"
        said = [text for text in result.stderr.splitlines() if not text.startswith("{")]  # not a log line
        assert len(said) == 1, f"{what}: not one line\n{output}"
        assert said[0].startswith(f"chatbridge: configuration error: {line}"), f"{what}: {result.stderr}"
        assert "Traceback" not in output and SECRET not in output, what


def test_the_port_in_use_is_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = bridge(tmp_path, "serve", PORT=str(port))
    assert result.returncode == 2
    assert result.stderr.strip().endswith(f"PORT: cannot listen on port {port} (address already in use)")
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize("command", [["migrate"], ["dead-letters", "list"]])
def test_an_unreachable_database_is_one_line(tmp_path, command):
    url = f"postgresql://bridge:{SECRET}@127.0.0.1:{free_port()}/bridge"
    result = bridge(tmp_path, *command, DATABASE_URL=url)
    assert result.returncode == 2, result.stdout + result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("chatbridge: database unreachable:")
    assert "Traceback" not in result.stdout and SECRET not in result.stdout + result.stderr


def test_check_names_misspelled_variables_and_a_missing_public_url(tmp_path):
    (tmp_path / "bridge.db").touch()  # an empty database: `serve` would migrate it
    result = bridge(
        tmp_path,
        "check",
        TELEGRAM_GROUP_TRIGER="all",
        OCS_APIKEY=SECRET,
        WORKER_CONCURENCY="4",
        WORKER_ID="3",  # a platform's, not ours
        WIDGET_THEME="dark",
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=SECRET,
        TWILIO_API_BASE_URL="http://127.0.0.1:1",
    )
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "OCS_APIKEY: unknown variable, ignored (did you mean OCS_API_KEY?)" in out
    assert "TELEGRAM_GROUP_TRIGER: unknown variable, ignored (did you mean TELEGRAM_GROUP_TRIGGER?)" in out
    assert "WORKER_CONCURENCY: unknown variable, ignored (did you mean WORKER_CONCURRENCY?)" in out
    assert "WIDGET_THEME: unknown variable, ignored" in out
    assert "WORKER_ID" not in out
    assert "channel 'twilio': PUBLIC_URL is not set" in out
    assert "schema migrated by `chatbridge serve` at start" in out
    assert SECRET not in out + result.stderr


def test_a_dotenv_file_in_the_working_directory_is_read(tmp_path):
    (tmp_path / ".env").write_text("LOG_LEVEL=verbose\n")
    result = bridge(tmp_path, "check")
    assert result.returncode == 2 and "LOG_LEVEL:" in result.stderr
    result = bridge(tmp_path, "check", LOG_LEVEL="warning")  # the environment wins over the file
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_version(tmp_path):
    from bridge import __version__

    result = bridge(tmp_path, "--version")
    assert (result.returncode, result.stdout.strip()) == (0, f"channel-bridge {__version__}")


def test_migrate_says_what_it_did(tmp_path):
    from alembic import command
    from alembic.script import ScriptDirectory

    from bridge.store.db import MIGRATIONS, _alembic_config

    database = tmp_path / "bridge.db"
    head = ScriptDirectory(str(MIGRATIONS)).get_revision("head")
    created = bridge(tmp_path, "migrate")
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == f"created the database schema in {database} at revision {head.revision}"
    again = bridge(tmp_path, "migrate")
    assert (
        again.stdout.strip() == f"the database schema in {database} is up to date (revision {head.revision})"
    )
    command.downgrade(_alembic_config(f"sqlite+aiosqlite:///{database}"), "-1")  # as the last release left it
    upgraded = bridge(tmp_path, "migrate")
    said = f"upgraded the database schema in {database} from revision {head.down_revision} to {head.revision}"
    assert upgraded.stdout.strip() == said


def test_commands_other_than_serve_and_migrate_create_no_database(tmp_path):
    """Run from the wrong directory, they say which file they looked for instead of starting an empty one."""
    here = "sqlite+aiosqlite:///./bridge.db"
    missing = f"no SQLite database at {tmp_path / 'bridge.db'} (`chatbridge serve` or `chatbridge migrate`"
    for command in (
        ["participants", "list"],
        ["dead-letters", "list"],
        ["send", "web", "x", "hi"],
        ["worker"],
    ):
        result = bridge(tmp_path, *command, DATABASE_URL=here)
        assert result.returncode == 2, f"{command}: {result.stdout}{result.stderr}"
        [line] = result.stderr.splitlines()
        assert line.startswith(
            f"chatbridge: configuration error: DATABASE_URL: {missing} creates it); run this"
        )
    checked = bridge(tmp_path, "check", DATABASE_URL=here)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    said = f"ok    database: sqlite, no database at {tmp_path / 'bridge.db'} yet (`chatbridge serve` creates"
    assert said in checked.stdout
    assert list(tmp_path.iterdir()) == []


def test_check_says_plainly_that_services_cannot_be_reached_and_closes_its_clients(tmp_path):
    nowhere = f"http://127.0.0.1:{free_port()}"
    result = bridge(
        tmp_path,
        "check",
        PUBLIC_URL="https://bridge.example.org",
        TELEGRAM_BOT_TOKEN=TG_TOKEN,
        TELEGRAM_WEBHOOK_SECRET=TG_SECRET,
        TELEGRAM_API_BASE_URL=nowhere,
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=SECRET,
        TWILIO_API_BASE_URL=nowhere,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert (
        f"FAIL  channel 'telegram' (telegram): cannot reach Telegram at {nowhere} (ClientConnectorError)"
        in output
    )
    assert (
        f"FAIL  channel 'twilio' (twilio): cannot reach Twilio at {nowhere} (ClientConnectorError)" in output
    )
    assert "Unclosed" not in output and "Traceback" not in output
    assert TG_TOKEN not in output and SECRET not in output


def test_several_mistakes_are_each_named_on_their_own_line(tmp_path):
    result = bridge(
        tmp_path, "serve", PORT="eighty", LOG_LEVEL="verbose", OCS_API_KEY=SECRET, OCS_EXPERIMENT_VERSION="v2"
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.splitlines() == [
        "chatbridge: configuration error: PORT: must be a whole number",
        "chatbridge: configuration error: LOG_LEVEL: must be 'debug', 'info', 'warning', 'error' "
        "or 'critical'",
        "chatbridge: configuration error: OCS_EXPERIMENT_VERSION: must be a whole number",
    ]
    assert SECRET not in result.stdout + result.stderr


def test_a_variable_the_config_file_refers_to_is_not_reported(tmp_path):
    config = toml(tmp_path, '[bots.support]\nbackend = "echo"\napi_key = "${OCS_SUPPORT_KEY}"\n' + WEB)
    result = bridge(tmp_path, "check", BRIDGE_CONFIG=config, OCS_SUPPORT_KEY=SECRET)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OCS_SUPPORT_KEY" not in result.stdout + result.stderr
