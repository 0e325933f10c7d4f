"""`chatbridge dead-letters`, `send` and `participants list`, run as real processes against
the database of a running bridge."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from tests.proc import ROOT


async def bridge_command(
    *args: str, database_url: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    settings = env if env is not None else {"DATABASE_URL": database_url}
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bridge", *args],
        env={"PATH": "/usr/bin:/bin", "LOG_FORMAT": "json", **settings},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_dead_letters_are_listed_and_retried_from_the_command_line(bridge, tmp_path):
    h = await bridge()
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'bridge.db'}"
    h.ocs.fail_next(500)
    await h.say("+15551234567", "hello")
    assert "Sorry" in (await h.replies("+15551234567", 1))[0]

    listed = await bridge_command("dead-letters", "list", database_url=database_url)
    assert listed.returncode == 0, listed.stderr
    [line] = listed.stdout.splitlines()
    ref, _when, channel, person, reason = line.split("\t")
    assert (ref, channel) == ("in-1", "test")
    assert person.startswith("…4567#") and "+1555" not in person  # a pseudonym, not the number
    assert "OCS answered 500" in reason

    missing = await bridge_command("dead-letters", "retry", "in-99", database_url=database_url)
    assert missing.returncode == 1 and "no such dead letter" in missing.stderr

    retried = await bridge_command("dead-letters", "retry", "--all", database_url=database_url)
    assert retried.returncode == 0 and "in-1 queued again" in retried.stdout
    assert (await h.replies("+15551234567", 2))[1] == "bot: hello"  # the running bridge answers it
    listed = await bridge_command("dead-letters", "list", database_url=database_url)
    assert listed.stdout.strip() == "no dead letters"


async def test_send_and_participants_list_from_the_command_line(tmp_path):
    from fakes.ocs import FakeOCS
    from fakes.telegram import SECRET, FakeTelegram, text_update
    from tests.harness import platform_bridge

    async with (
        FakeOCS() as ocs,
        FakeTelegram() as tg,
        platform_bridge(tmp_path / "b.db", tg=tg, **ocs.env()) as bridge,
    ):
        await bridge.deliver_update(text_update("hi", chat_id=42))
        await bridge.deliver_update(text_update("hello", chat_id=43) | {"update_id": 2})
        await tg.wait_for(lambda: tg.texts(42) == ["bot: hi"] and tg.texts(43) == ["bot: hello"])
        env = {
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'b.db'}",
            "TELEGRAM_BOT_TOKEN": tg.token,
            "TELEGRAM_WEBHOOK_SECRET": SECRET,
            "TELEGRAM_API_BASE_URL": tg.url,
            **ocs.env(),
        }
        sent = await bridge_command("send", "telegram", "42", "The library closes at 5", env=env)
        assert sent.returncode == 0, sent.stderr
        await tg.wait_for(lambda: tg.texts(42) == ["bot: hi", "The library closes at 5"])
        unknown = await bridge_command("send", "fax", "42", "hi", env=env)
        assert unknown.returncode == 1 and "unknown channel 'fax'" in unknown.stderr

        async def listed(*filters: str) -> list[list[str]]:
            result = await bridge_command("participants", "list", *filters, env=env)
            assert result.returncode == 0, result.stderr
            return [line.split("\t") for line in result.stdout.splitlines()]

        header, *rows = await listed()
        assert header == ["id", "channel", "platform", "identifier", "name", "data", "schedules"]
        assert [row[1:4] for row in rows] == [["telegram", "telegram", "42"], ["telegram", "telegram", "43"]]
        _, *rows = await listed(
            "--identifier", "43", "--platform", "telegram", "--chatbot", ocs.experiment_id
        )
        assert [row[3] for row in rows] == ["43"]
        assert await listed("--platform", "sms") == [["no participants"]]
        other = await bridge_command("participants", "list", "--chatbot", "nope", env=env)
        assert other.returncode == 1 and f"(chatbots: {ocs.experiment_id})" in other.stderr
