"""`conversations list/show` and `people export/erase`, run as real processes against the database
of a running bridge."""

from __future__ import annotations

import json

from fakes.ocs import FakeOCS
from fakes.telegram import SECRET, FakeTelegram, text_update
from tests.harness import platform_bridge
from tests.test_cli import bridge_command


async def test_conversations_and_people_from_the_command_line(tmp_path):
    async with (
        FakeOCS() as ocs,
        FakeTelegram() as tg,
        platform_bridge(tmp_path / "b.db", ocs=ocs, tg=tg, **ocs.env()) as bridge,
    ):
        await bridge.deliver_update(text_update("first question", chat_id=42))
        await bridge.deliver_update(text_update("another person", chat_id=43) | {"update_id": 77})
        await tg.wait_for(lambda: tg.texts(42) == ["bot: first question"] and len(tg.texts(43)) == 1)
        [asker] = [s for s in ocs.sessions.values() if ocs.messages(s.id) == ["first question"]]
        env = {
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'b.db'}",
            "TELEGRAM_BOT_TOKEN": tg.token,
            "TELEGRAM_WEBHOOK_SECRET": SECRET,
            "TELEGRAM_API_BASE_URL": tg.url,
            **ocs.env(),
        }

        listed = await bridge_command("conversations", "list", env=env)
        assert listed.returncode == 0, listed.stderr
        header, *rows = listed.stdout.splitlines()
        assert header.split("\t")[:3] == ["id", "channel", "person"]
        assert sorted(tuple(r.split("\t")[:3]) for r in rows) == [
            ("1", "telegram", "42"),
            ("2", "telegram", "43"),
        ]

        shown = await bridge_command("conversations", "show", "1", env=env)
        assert shown.returncode == 0, shown.stderr
        assert "first question" in shown.stdout and "bot: first question  [sent: delivered " in shown.stdout
        missing = await bridge_command("conversations", "show", "99", env=env)
        assert missing.returncode == 1 and "no conversation 99" in missing.stderr

        exported = await bridge_command("people", "export", "telegram", "42", env=env)
        assert exported.returncode == 0, exported.stderr
        data = json.loads(exported.stdout)
        assert data["person_key"] == "42" and [m["text"] for m in data["messages"]] == ["first question"]

        nobody = await bridge_command("people", "erase", "telegram", "4444", env=env)
        assert nobody.returncode == 1 and "nobody with id '4444'" in nobody.stderr
        erased = await bridge_command("people", "erase", "1", env=env)
        assert erased.returncode == 0, erased.stderr
        assert "bot session ended" in erased.stdout and asker.ended
        listed = await bridge_command("conversations", "list", env=env)
        assert [r.split("\t")[2] for r in listed.stdout.splitlines()[1:]] == ["43"]
        gone = await bridge_command("people", "export", "1", env=env)
        assert gone.returncode == 1 and "no conversation 1" in gone.stderr
