"""Operations against the fake Bot API: the CLI's set-webhook / delete-webhook / check, and poll mode."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from adapters.telegram.commands import poll
from bridge.typedefs import CORE
from fakes.ocs import FakeOCS
from fakes.telegram import SECRET, TOKEN, FakeTelegram, text_update
from tests.harness import platform_bridge

ROOT = Path(__file__).parents[2]
OTHER_SETTINGS = ("TELEGRAM_", "OCS_", "TWILIO_", "BRIDGE_", "WIDGET_", "TEXT_")


@pytest.fixture
def tg_prefix() -> str:
    return "/proxy/telegram"


async def bridge_cli(tg: FakeTelegram, tmp_path: Path, *args: str, **env: str) -> tuple[int, str]:
    environ = {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("TELEGRAM_", "OCS_", "TWILIO_", "BRIDGE_"))
        },
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/cli.db",
        "PUBLIC_URL": "https://bridge.example.org/chat",
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "TELEGRAM_API_BASE_URL": tg.url,
        "LOG_FORMAT": "json",
        **env,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bridge",
        *args,
        env=environ,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 30)
    return process.returncode or 0, output.decode()


async def test_set_webhook_sends_the_secret_and_the_commands(tg: FakeTelegram, tmp_path: Path) -> None:
    code, output = await bridge_cli(tg, tmp_path, "telegram", "set-webhook", TEXT_HELP="Ask me about books.")
    assert code == 0, output
    assert "https://bridge.example.org/chat/webhooks/telegram" in output
    [hook] = tg.calls("setWebhook")
    assert hook.params["url"] == "https://bridge.example.org/chat/webhooks/telegram"
    assert hook.params["secret_token"] == SECRET
    assert json.loads(hook.params["allowed_updates"]) == ["message", "my_chat_member"]
    [commands] = tg.calls("setMyCommands")
    assert [c["command"] for c in json.loads(commands.params["commands"])] == ["start", "reset", "help"]
    assert TOKEN not in output and SECRET not in output


async def test_help_command_is_registered_only_with_a_help_text(tg: FakeTelegram, tmp_path: Path) -> None:
    code, output = await bridge_cli(tg, tmp_path, "telegram", "set-webhook")
    assert code == 0, output
    [commands] = tg.calls("setMyCommands")
    assert [c["command"] for c in json.loads(commands.params["commands"])] == ["start", "reset"]


async def test_delete_webhook(tg: FakeTelegram, tmp_path: Path) -> None:
    code, output = await bridge_cli(tg, tmp_path, "telegram", "delete-webhook")
    assert code == 0, output
    assert len(tg.calls("deleteWebhook")) == 1


async def test_check_calls_get_me_and_never_prints_the_token(tg: FakeTelegram, tmp_path: Path) -> None:
    code, output = await bridge_cli(tg, tmp_path, "check", OCS_GIT="/src/ocs")  # someone else's variable
    assert "Telegram bot @bridge_test_bot" in output, output
    assert "warn  environment: OCS_GIT: unknown variable, ignored" in output
    assert code == 0, output  # a name close to none of ours is told, not counted as a problem
    assert len(tg.calls("getMe")) == 1
    tg.token = "999:wrong"  # the fake now rejects our token with 401
    code, output = await bridge_cli(tg, tmp_path, "check")
    assert code != 0
    assert "FAIL" in output and "bot token" in output
    assert TOKEN not in output and TOKEN.split(":")[1] not in output


async def test_bad_telegram_settings_are_named(tg: FakeTelegram, tmp_path: Path) -> None:
    code, output = await bridge_cli(tg, tmp_path, "check", TELEGRAM_WEBHOOK_SECRET="no spaces allowed")
    assert code == 2
    assert "TELEGRAM_WEBHOOK_SECRET" in output and "no spaces" not in output
    code, output = await bridge_cli(tg, tmp_path, "check", TELEGRAM_WEBHOOK_SECRET="")
    assert code == 2 and "TELEGRAM_WEBHOOK_SECRET: required" in output


async def test_poll_mode_answers_a_message(tg: FakeTelegram, fake_ocs: FakeOCS, tmp_path: Path) -> None:
    async with platform_bridge(
        tmp_path / "b.db", tg=tg, **fake_ocs.env(), TELEGRAM_POLL_TIMEOUT="1"
    ) as bridge:
        stop = asyncio.Event()
        polling = asyncio.create_task(poll(bridge.channel, bridge.client.app[CORE], stop))
        await tg.wait_for(lambda: bool(tg.calls("getUpdates")))
        assert tg.calls()[1].method == "deleteWebhook"  # after getMe at start: no webhook competes
        update = text_update("hello from a laptop")
        tg.push_update(update)
        await tg.wait_for(lambda: tg.texts(42) == ["bot: hello from a laptop"])
        await tg.wait_for(lambda: any(c.params.get("offset") for c in tg.calls("getUpdates")))
        offsets = [c.params.get("offset") for c in tg.calls("getUpdates")]
        assert str(update["update_id"] + 1) in offsets  # confirmed once stored
        tg.push_update(text_update("second"))
        await tg.wait_for(lambda: tg.texts(42) == ["bot: hello from a laptop", "bot: second"])
        stop.set()
        await asyncio.wait_for(polling, 2)
