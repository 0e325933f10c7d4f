"""Telegram updates (recorded shapes) -> inbound messages: kinds, commands, groups."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from telegram import Update

from adapters.telegram import parse
from bridge.errors import BadRequest
from bridge.model import Blocked, ChatMoved, Kind, Person, Received

PAYLOADS = Path(__file__).parents[1] / "payloads" / "telegram"
RULES = parse.Rules(channel="telegram", bot_id=123456789, username="bridge_test_bot")
GROUP = -1001234567890


def payload(name: str) -> dict[str, Any]:
    return json.loads((PAYLOADS / f"{name}.json").read_text())


def parsed(name: str, rules: parse.Rules = RULES) -> list:
    return parse.messages(parse.decode(json.dumps(payload(name)).encode()), rules)


def one(name: str, rules: parse.Rules = RULES):
    messages = parsed(name, rules)
    assert len(messages) == 1, messages
    return messages[0]


@pytest.mark.parametrize("path", sorted(PAYLOADS.glob("*.json")), ids=lambda p: p.stem)
def test_payloads_are_real_update_shapes(path: Path) -> None:
    """PTB reads every field of the recorded payload (it only adds its own defaults)."""
    data = json.loads(path.read_text())
    assert _contains(json.loads(Update.de_json(data, None).to_json()), data)


def _contains(big: Any, small: Any) -> bool:
    if isinstance(small, dict):
        return isinstance(big, dict) and all(k in big and _contains(big[k], v) for k, v in small.items())
    if isinstance(small, list):
        return isinstance(big, list) and len(big) == len(small) and all(map(_contains, big, small))
    return bool(big == small)


def test_private_text() -> None:
    m = one("text")
    assert (m.channel, m.platform_id, m.kind, m.text) == ("telegram", "900000001", Kind.TEXT, "Hello, bot!")
    assert (m.person.key, m.person.address, m.person.name, m.person.platform) == (
        "42",
        "42",
        "Ada Lovelace",
        "telegram",
    )
    assert m.context["username"] == "ada"
    assert m.context["message_id"] == 11


@pytest.mark.parametrize(
    ("name", "kind", "text"),
    [
        ("start", Kind.START, ""),
        ("start_payload", Kind.START, "campaign-7"),
        ("reset", Kind.RESET, ""),
        ("help_at_bot", Kind.HELP, ""),
    ],
)
def test_commands(name: str, kind: Kind, text: str) -> None:
    m = one(name)
    assert (m.kind, m.text) == (kind, text)


def test_help_is_relayed_when_the_channel_has_no_help_text() -> None:
    m = one("help_at_bot", dataclasses.replace(RULES, help_enabled=False))
    assert (m.kind, m.text) == (Kind.TEXT, "/help@bridge_test_bot")


@pytest.mark.parametrize(
    ("name", "what"),
    [
        ("sticker", "sticker"),
        ("location", "location"),
        ("venue", "venue"),
        ("contact", "contact"),
    ],
)
def test_non_text_is_unsupported(name: str, what: str) -> None:
    m = one(name)
    assert (m.kind, m.what, m.text) == (Kind.UNSUPPORTED, what, "")


def test_caption_is_relayed() -> None:
    m = one("photo_caption")
    assert (m.kind, m.text, m.context["attachment"]) == (Kind.TEXT, "What is in this picture?", "photo")


@pytest.mark.parametrize(
    "name",
    [
        "edited",
        "channel_post",
        "blocked",
        "unblocked",
        "new_members",
        "group_migrate_to",
        "group_migrate_from",
    ],
)
def test_acknowledged_and_ignored(name: str) -> None:
    assert parsed(name) == []


def test_group_answers_only_when_addressed() -> None:
    assert parsed("group_plain") == []
    assert parsed("group_other_mention") == []
    assert parsed("group_other_bot_command") == []
    assert parsed("group_from_bot") == []
    assert parsed("group_sticker") == []  # not a reply to the bot
    mention = one("group_mention")
    assert (mention.kind, mention.text) == (Kind.TEXT, "what is chapter 3 about?")
    assert one("group_reply").text == "and chapter 4?"
    assert one("group_text_mention").text == "Bridge: summarise please"
    assert one("group_reset").kind is Kind.RESET


def test_group_mentions_need_the_username() -> None:
    assert parsed("group_mention", dataclasses.replace(RULES, username="")) == []
    assert one("group_reply", dataclasses.replace(RULES, username="")).text == "and chapter 4?"


def test_group_trigger_all() -> None:
    rules = dataclasses.replace(RULES, group_trigger="all")
    assert one("group_plain", rules).text == "Anyone read chapter 3?"
    assert parsed("group_other_bot_command", rules) == []


def test_group_conversation_per_chat_or_per_person() -> None:
    per_chat = one("group_reply")
    assert (per_chat.person.key, per_chat.person.address, per_chat.person.name) == (
        str(GROUP),
        str(GROUP),
        "Book club",
    )
    per_person = one("group_reply", dataclasses.replace(RULES, group_conversation="person"))
    assert (per_person.person.key, per_person.person.address, per_person.person.name) == (
        f"{GROUP}:43",
        str(GROUP),
        "Grace",
    )


def update_of(name: str) -> Update:
    return parse.decode(json.dumps(payload(name)).encode())


def test_migration_and_membership_are_events() -> None:
    """A group that became a supergroup moves its conversations; the bot blocked or restarted."""
    moved = ChatMoved("-4012345678", str(GROUP))
    assert parse.received(update_of("group_migrate_to"), RULES) == Received(events=(moved,))
    assert parse.received(update_of("group_migrate_from"), RULES) == Received(events=(moved,))
    person = Person(key="42", address="42", platform="telegram")
    assert parse.received(update_of("blocked"), RULES) == Received(events=(Blocked(person, blocked=True),))
    assert parse.received(update_of("unblocked"), RULES) == Received(events=(Blocked(person, blocked=False),))


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"message": {}}', b'{"update_id": "x"}', b"\xff"])
def test_malformed_bodies(body: bytes) -> None:
    with pytest.raises(BadRequest):
        parse.decode(body)


def test_broken_message_is_bad_request() -> None:
    with pytest.raises(BadRequest):
        parse.decode(json.dumps({"update_id": 1, "message": {"message_id": 1}}).encode())
