"""Telegram inbound through the real HTTP app, real SQLite, real workers, fake OCS and fake Bot API."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fakes.ocs import EXPERIMENT, FakeOCS
from fakes.telegram import SECRET, TOKEN, FakeTelegram, payload, text_update
from tests.harness import Harness, platform_bridge
from tests.rawhttp import raw_request

GROUP = -1001234567890
OLD_GROUP = -4012345678


@pytest.fixture
def tg_prefix() -> str:
    return "/tg-proxy"  # a path prefix: every call must keep it


@pytest.fixture
def bridge_env() -> dict[str, str]:
    return {"TEXT_WELCOME": "Welcome! Ask me anything.", "TEXT_HELP": "Just write."}


def relayed(ocs: FakeOCS) -> list[str]:
    return [c.json["message"] for c in ocs.calls if c.path.endswith("/incoming_message")]


async def test_text_round_trip(bridge: Harness, tg: FakeTelegram, ocs: FakeOCS) -> None:
    response = await bridge.post_update(text_update("Hello, bot!"))
    assert response.status == 200
    await tg.wait_for(lambda: tg.texts(42) == ["bot: Hello, bot!"])
    [session] = ocs.sessions.values()
    assert ocs.messages(session.id) == ["Hello, bot!"]
    assert session.state.get("name") == "Ada Lovelace" or "Ada Lovelace" in str(session.state)
    [sent] = tg.calls("sendMessage")
    assert sent.params["parse_mode"] == "HTML" and sent.token == TOKEN
    assert tg.calls("sendChatAction", 42) == []  # answered at once: no "typing..." needed
    # the next message continues the same OCS session
    await bridge.deliver_update(text_update("And again"))
    await tg.wait_for(lambda: len(tg.texts(42)) == 2)
    assert ocs.messages(session.id) == ["Hello, bot!", "And again"]


@pytest.mark.parametrize("secret", [None, "", "wrong", "s3cret-Token_for-tests-but-longer"])
async def test_wrong_secret_is_403_and_nothing_is_stored(
    bridge: Harness, tg: FakeTelegram, ocs: FakeOCS, secret: str | None
) -> None:
    response = await bridge.post_update(text_update("sneaky"), secret=secret)
    assert response.status == 403
    assert "detail" in await response.json()
    # a genuine message afterwards is the only one the bot ever sees (workers go in order)
    await bridge.deliver_update(text_update("genuine"))
    await tg.wait_for(lambda: tg.texts(42) == ["bot: genuine"])
    assert relayed(ocs) == ["genuine"]


async def test_malformed_update_is_400(bridge: Harness) -> None:
    response = await bridge.client.post(
        "/webhooks/telegram",
        data=b"{not json",
        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"},
    )
    assert response.status == 400


@pytest.mark.parametrize("secret", [b"\xff", SECRET.encode() + b"\xff", b"\xc3\x28\x80\xfe"])
async def test_secret_that_is_not_utf8_is_403(bridge: Harness, tg: FakeTelegram, secret: bytes) -> None:
    body = json.dumps(text_update("sneaky")).encode()
    headers = [(b"Content-Type", b"application/json"), (b"X-Telegram-Bot-Api-Secret-Token", secret)]
    status, answer = await raw_request(bridge.client, "POST", "/webhooks/telegram", headers, body)
    assert status == 403 and answer["detail"]
    await bridge.deliver_update(text_update("genuine"))
    await tg.wait_for(lambda: tg.texts(42) == ["bot: genuine"])


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_body_that_is_not_json_is_415(bridge: Harness, content_type: str | None) -> None:
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    if content_type is not None:
        headers["Content-Type"] = content_type
    body = json.dumps(text_update("hello")).encode()
    response = await bridge.client.post("/webhooks/telegram", data=body, headers=headers)
    assert response.status == 415
    assert "json" in (await response.json())["detail"].lower()
    unsigned = {**headers, "X-Telegram-Bot-Api-Secret-Token": "wrong"}
    assert (await bridge.client.post("/webhooks/telegram", data=body, headers=unsigned)).status == 403


def _without_chat(update: dict[str, Any]) -> None:
    del update["message"]["chat"]


def _odd_entity(update: dict[str, Any]) -> None:
    update["message"]["text"] = "/start now"
    update["message"]["entities"] = [{"type": "bot_command", "offset": 0, "length": "6"}]


def _far_date(update: dict[str, Any]) -> None:
    update["message"]["date"] = 99999999999999999


def _migrated_without_chat(update: dict[str, Any]) -> None:
    update["message"] = {"message_id": 5, "date": 1732170000, "migrate_to_chat_id": -1001234567890}


@pytest.mark.parametrize("change", [_without_chat, _odd_entity, _far_date, _migrated_without_chat])
async def test_malformed_verified_update_is_400(
    bridge: Harness, tg: FakeTelegram, change: Callable[[dict[str, Any]], None]
) -> None:
    update = text_update("broken")
    change(update)
    response = await bridge.post_update(update)
    assert response.status == 400
    assert (await response.json())["detail"] == "malformed update"
    await bridge.deliver_update(text_update("genuine"))
    await tg.wait_for(lambda: tg.texts(42) == ["bot: genuine"])


async def test_membership_update_without_the_new_member_is_400(bridge: Harness) -> None:
    update = payload("blocked")
    del update["my_chat_member"]["new_chat_member"]
    response = await bridge.post_update(update)
    assert response.status == 400
    assert (await response.json())["detail"] == "malformed update"


@pytest.mark.parametrize("depth", [900, 5000])
async def test_deeply_nested_reply_chain_is_400(bridge: Harness, tg: FakeTelegram, depth: int) -> None:
    # built as text: json.dumps itself cannot nest this deep
    link = '{"message_id": 1, "date": 1, "chat": {"id": 42, "type": "private"}, "reply_to_message": '
    chain = link * depth + '{"message_id": 1, "date": 1, "chat": {"id": 42, "type": "private"}}' + "}" * depth
    body = f'{{"update_id": 1, "message": {chain}}}'.encode()
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
    response = await bridge.client.post("/webhooks/telegram", data=body, headers=headers)
    assert response.status == 400
    assert (await response.json())["detail"] == "malformed update"  # the adapter's own answer
    await bridge.deliver_update(text_update("genuine"))
    await tg.wait_for(lambda: tg.texts(42) == ["bot: genuine"])


async def test_duplicate_update_gets_one_answer(bridge: Harness, tg: FakeTelegram, ocs: FakeOCS) -> None:
    update = text_update("only once")
    await bridge.deliver_update(update)
    await bridge.deliver_update(update)  # Telegram retried: same update_id
    await tg.wait_for(lambda: tg.texts(42) == ["bot: only once"])
    await bridge.deliver_update(update)
    await bridge.idle()
    assert tg.texts(42) == ["bot: only once"]
    assert relayed(ocs) == ["only once"]


async def test_start_opens_a_new_session_and_welcomes(
    bridge: Harness, tg: FakeTelegram, ocs: FakeOCS
) -> None:
    await bridge.deliver_update(text_update("first"))
    await tg.wait_for(lambda: len(tg.texts(42)) == 1)
    [first] = ocs.sessions.values()
    await bridge.deliver_update(payload("start"))
    await tg.wait_for(lambda: tg.texts(42)[-1:] == ["Welcome! Ask me anything."])
    assert first.ended
    [second] = [s for s in ocs.sessions.values() if s is not first]
    assert not second.ended
    await bridge.deliver_update(text_update("after start"))
    await tg.wait_for(lambda: len(tg.texts(42)) == 3)
    assert ocs.messages(second.id) == ["after start"]
    assert relayed(ocs) == ["first", "after start"]  # the commands themselves never reach the bot


async def test_reset_ends_the_session_and_says_so(bridge: Harness, tg: FakeTelegram, ocs: FakeOCS) -> None:
    await bridge.deliver_update(text_update("remember 7"))
    await tg.wait_for(lambda: len(tg.texts(42)) == 1)
    [old] = ocs.sessions.values()
    await bridge.deliver_update(payload("reset"))
    await tg.wait_for(lambda: len(tg.texts(42)) == 2)
    assert "reset" in tg.texts(42)[1].lower()
    assert old.ended and len(ocs.sessions) == 2
    await bridge.deliver_update(payload("help_at_bot"))
    await tg.wait_for(lambda: tg.texts(42)[-1:] == ["Just write."])


@pytest.mark.parametrize("kind", ["sticker", "voice", "location", "contact"])
async def test_non_text_is_answered_without_calling_ocs(
    bridge: Harness, tg: FakeTelegram, ocs: FakeOCS, kind: str
) -> None:
    await bridge.deliver_update(payload(kind))
    await tg.wait_for(lambda: len(tg.texts(42)) == 1)
    assert "text" in tg.texts(42)[0]
    assert relayed(ocs) == []
    assert ocs.sessions == {}


async def test_caption_is_relayed_with_a_link_to_the_photo(
    bridge: Harness, tg: FakeTelegram, ocs: FakeOCS
) -> None:
    tg.add_file("AgACAgIAAxkBAAIBZ2c_big", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "photos/file_7.jpg")
    await bridge.deliver_update(payload("photo_caption"))
    await tg.wait_for(lambda: len(tg.texts(42)) == 1)
    [(caption, link)] = [text.split("\n\n") for text in relayed(ocs)]
    assert caption == "What is in this picture?"
    assert link.startswith(f"[photo.jpg]({bridge.public_url}/media/")


@pytest.mark.parametrize("name", ["edited", "channel_post", "new_members", "unblocked"])
async def test_other_updates_are_acknowledged_and_ignored(
    bridge: Harness, tg: FakeTelegram, ocs: FakeOCS, name: str
) -> None:
    await bridge.deliver_update(payload(name))
    await bridge.deliver_update(text_update("marker"))
    await tg.wait_for(lambda: tg.texts(42) == ["bot: marker"])
    assert relayed(ocs) == ["marker"]


async def test_group_mention_rules(bridge: Harness, tg: FakeTelegram, ocs: FakeOCS) -> None:
    for name in ["group_plain", "group_other_mention", "group_other_bot_command", "group_sticker"]:
        await bridge.deliver_update(payload(name))
    await bridge.deliver_update(payload("group_mention"))
    await tg.wait_for(lambda: tg.texts(GROUP) == ["bot: what is chapter 3 about?"])
    await bridge.deliver_update(payload("group_reply"))
    await tg.wait_for(lambda: len(tg.texts(GROUP)) == 2)
    assert relayed(ocs) == ["what is chapter 3 about?", "and chapter 4?"]
    assert len(ocs.sessions) == 1  # one conversation for the whole group by default


async def test_group_all_messages_and_per_person(tmp_path: Path, tg: FakeTelegram, ocs: FakeOCS) -> None:
    env = {**ocs.env(), "TELEGRAM_GROUP_TRIGGER": "all", "TELEGRAM_GROUP_CONVERSATION": "person"}
    async with platform_bridge(tmp_path / "b.db", tg=tg, **env) as bridge:
        await bridge.deliver_update(payload("group_plain"))  # Ada, not addressing the bot
        await bridge.deliver_update(payload("group_reply"))  # Grace
        await tg.wait_for(lambda: len(tg.texts(GROUP)) == 2)
        assert sorted(relayed(ocs)) == ["Anyone read chapter 3?", "and chapter 4?"]
        assert len(ocs.sessions) == 2  # one per person


async def test_group_migration_keeps_the_conversation(
    bridge: Harness, tg: FakeTelegram, ocs: FakeOCS
) -> None:
    await bridge.deliver_update(payload("old_group_mention"))
    await tg.wait_for(lambda: len(tg.texts(OLD_GROUP)) == 1)
    await bridge.deliver_update(payload("group_migrate_to"))
    await bridge.deliver_update(payload("group_migrate_from"))
    await bridge.deliver_update(payload("group_mention"))
    await tg.wait_for(lambda: len(tg.texts(GROUP)) == 1)
    [session] = ocs.sessions.values()  # still the same OCS session
    assert ocs.messages(session.id) == ["hello", "what is chapter 3 about?"]


async def test_group_migration_moves_each_persons_conversation(
    tmp_path: Path, tg: FakeTelegram, ocs: FakeOCS
) -> None:
    env = {**ocs.env(), "TELEGRAM_GROUP_CONVERSATION": "person"}
    async with platform_bridge(tmp_path / "b.db", tg=tg, **env) as bridge:
        await bridge.deliver_update(payload("old_group_mention"))
        await tg.wait_for(lambda: len(tg.texts(OLD_GROUP)) == 1)
        await bridge.deliver_update(payload("group_migrate_to"))
        await bridge.deliver_update(payload("group_mention"))  # the same person, now in the supergroup
        await tg.wait_for(lambda: len(tg.texts(GROUP)) == 1)
        [session] = ocs.sessions.values()  # their conversation moved with the group
        assert ocs.messages(session.id) == ["hello", "what is chapter 3 about?"]


async def test_blocked_person_is_not_sent_to_again(tmp_path: Path, tg: FakeTelegram, ocs: FakeOCS) -> None:
    async with platform_bridge(tmp_path / "b.db", tg=tg, **ocs.env(), BRIDGE_API_KEY="k") as bridge:
        await bridge.deliver_update(text_update("hi"))
        await tg.wait_for(lambda: len(tg.texts(42)) == 1)
        await bridge.deliver_update(payload("blocked"))  # my_chat_member: kicked
        trigger = {
            "identifier": "42",
            "platform": "telegram",
            "experiment": EXPERIMENT,
            "message_text": "Reminder!",
        }
        response = await bridge.client.post("/api/trigger_bot", json=trigger, headers={"X-api-key": "k"})
        assert response.status == 400
        # a person blocked on Telegram's side only (403 on send) is recorded as blocked too
        tg.block(77)
        await bridge.deliver_update(text_update("one", chat_id=77))
        await tg.wait_for(lambda: len(tg.calls("sendMessage", 77)) == 1)
        await bridge.idle()  # the block is noted
        response = await bridge.client.post(
            "/api/trigger_bot", json={**trigger, "identifier": "77"}, headers={"X-api-key": "k"}
        )
        assert response.status == 400
        await bridge.idle()
        assert tg.texts(42) == ["bot: hi"]
        assert len(tg.calls("sendMessage", 77)) == 1  # the 403 itself; nothing after it
