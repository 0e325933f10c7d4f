"""`chatbridge dead-letters`, `send` and `participants list`, run as real processes against
the database of a running bridge."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import timedelta

from sqlalchemy import update

from bridge.store.admin import RetentionCursor
from bridge.store.tables import MessageRow, utcnow
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


async def test_a_dead_letter_whose_text_retention_removed_is_not_retried(bridge, tmp_path):
    """Retried, it would send the bot an empty message: refused by id, skipped (and counted) by --all."""
    h = await bridge(retain_days=2)
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'bridge.db'}"
    h.ocs.fail_next(500, times=2)
    await h.say("ann", "my old question")
    await h.replies("ann", 1)
    ago = utcnow() - timedelta(days=3)
    await h.core.store.writer(lambda c: c.execute(update(MessageRow).values(received_at=ago)))
    await h.core.store.expire_texts(utcnow() - timedelta(days=2), RetentionCursor())
    await h.say("bob", "a fresh question")
    await h.replies("bob", 1)

    listed = await bridge_command("dead-letters", "list", database_url=database_url)
    old, fresh = listed.stdout.splitlines()
    assert old.startswith("in-1\t") and old.endswith("; text (removed by retention)")
    assert fresh.startswith("in-2\t") and "retention" not in fresh
    refused = await bridge_command("dead-letters", "retry", "in-1", database_url=database_url)
    assert refused.returncode == 1 and "in-1: not retried, retention removed its text" in refused.stderr

    retried = await bridge_command("dead-letters", "retry", "--all", database_url=database_url)
    assert retried.returncode == 0, retried.stderr
    assert retried.stdout.splitlines() == [
        "in-2 queued again",
        "1 dead letter(s) skipped: retention (RETAIN_DAYS) removed their text",
    ]
    assert (await h.replies("bob", 2))[1] == "bot: a fresh question"
    await h.idle()
    sent = [c.json["message"] for c in h.ocs.calls if c.path.endswith("/incoming_message")]
    assert sent == ["my old question", "a fresh question", "a fresh question"]  # nothing empty
    assert len(h.channel.texts_to("ann")) == 1  # the apology only
    listed = await bridge_command("dead-letters", "list", database_url=database_url)
    assert [line.split("\t")[0] for line in listed.stdout.splitlines()] == ["in-1"]


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
