"""The OCS Chat API transport (``OCS_TRANSPORT=chat``) against the fake Chat API: each person their
own OCS participant, files uploaded with the caption as the message, OAuth tokens and session
tokens renewed as OCS expires them, OCS's own messages and errors."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bridge.bots import BotError, OcsBot, OcsChatBot, SessionGone, build_bot
from bridge.errors import ConfigError
from bridge.model import Conversation, LocalFile, Person, Reply
from bridge.settings import BotSettings, Texts, load_settings
from fakes.ocs import EXPERIMENT, FakeOCS
from tests.harness import eventually, ocs_bot

FAST = {"proactive_poll_seconds": 0.1}


def chat_bot(ocs: FakeOCS, **overrides: Any) -> BotSettings:
    """The settings of a bot on the fake OCS's Chat API."""
    chat = {"transport": "chat", "client_id": ocs.chat.client_id, "client_secret": ocs.chat.client_secret}
    return ocs_bot(ocs, **(chat | overrides))


@contextlib.asynccontextmanager
async def started(settings: BotSettings) -> AsyncIterator[OcsChatBot]:
    bot = OcsChatBot(settings)
    await bot.start()
    try:
        yield bot
    finally:
        await bot.stop()


def conversation(key: str = "ada", name: str = "Ada") -> Conversation:
    return Conversation(1, "telegram", Person(key, key, name, platform="telegram"), None, {})


def local_file(tmp_path: Path, name: str, data: bytes, content_type: str) -> LocalFile:
    path = tmp_path / name
    path.write_bytes(data)
    return LocalFile(path, name, content_type, len(data))


# 1. Each person their own participant -------------------------------------------------------------
async def test_two_people_never_share_a_participant(bridge, fake_ocs: FakeOCS):
    h = await bridge(bot=chat_bot(fake_ocs))
    await h.say("ada", "hello", name="Ada")
    await h.say("bob", "hi", name="Bob")
    assert await h.replies("ada", 1) == ["bot: hello"]
    assert await h.replies("bob", 1) == ["bot: hi"]
    ada, bob = fake_ocs.chat.participants
    assert ada.identifier != bob.identifier
    assert (ada.remote_id, ada.name, bob.remote_id, bob.name) == ("test:ada", "Ada", "test:bob", "Bob")
    owners = {s.id: s.owner for s in fake_ocs.sessions.values()}
    assert sorted(owners.values()) == sorted([ada.identifier, bob.identifier])
    # OCS ignores session_data on an OAuth start: the person's details go as the message's context
    first = fake_ocs.chat.received[0]
    assert first.context["user_id"] in ("ada", "bob") and first.context["channel"] == "test"
    await h.say("ada", "again")
    assert await h.replies("ada", 2) == ["bot: hello", "bot: again"]
    assert len(fake_ocs.chat.participants) == 2  # the same session, the same participant
    assert fake_ocs.chat.received[-1].context == {}  # nothing new to say about the session
    assert fake_ocs.chat.token_requests == 1  # one OAuth token for everyone


async def test_a_file_arrives_as_an_upload_with_the_caption_as_the_message(fake_ocs: FakeOCS, tmp_path):
    photo = local_file(tmp_path, "photo.jpg", b"\xff\xd8\xff\xe0 a photo", "image/jpeg")
    async with started(chat_bot(fake_ocs)) as bot:
        session_id = await bot.open_session(conversation())
        reply = await bot.send(session_id, "what is this?", [photo])
    assert reply.text == "bot: what is this?"
    [received] = fake_ocs.chat.received
    assert received.message == "what is this?"
    [upload] = [fake_ocs.chat.uploads[i] for i in received.attachment_ids]
    assert (upload.name, upload.content_type, upload.data) == (
        "photo.jpg",
        "image/jpeg",
        b"\xff\xd8\xff\xe0 a photo",
    )
    assert upload.session_id == session_id


async def test_a_file_type_ocs_refuses_is_answered_with_what_it_takes(fake_ocs: FakeOCS, tmp_path):
    program = local_file(tmp_path, "setup.exe", b"MZ\x90\x00", "application/x-msdownload")
    async with started(chat_bot(fake_ocs)) as bot:
        session_id = await bot.open_session(conversation())
        reply = await bot.send(session_id, "run this", [program])
    assert reply.text.startswith("File type '.exe' is not supported. Allowed types: .txt, .pdf")
    assert fake_ocs.chat.received == []  # the message is not sent without its file


# 2. Tokens -----------------------------------------------------------------------------------------
async def test_an_expired_oauth_token_is_fetched_again_mid_conversation(bridge, fake_ocs: FakeOCS):
    h = await bridge(bot=chat_bot(fake_ocs))
    await h.say("ada", "one")
    await h.replies("ada", 1)
    fake_ocs.chat.expire_tokens()  # the bridge still holds it as valid: OCS answers 401
    await h.say("bob", "two")
    assert await h.replies("bob", 1) == ["bot: two"]
    await h.say("ada", "three")  # Ada's session goes on with its session token
    assert await h.replies("ada", 2) == ["bot: one", "bot: three"]
    assert fake_ocs.chat.token_requests == 2
    assert len(fake_ocs.chat.participants) == 2


async def test_an_expired_session_token_starts_a_new_session_transparently(bridge, fake_ocs: FakeOCS):
    h = await bridge(bot=chat_bot(fake_ocs))
    await h.say("ada", "one")
    await h.replies("ada", 1)
    [first] = fake_ocs.chat.chats
    fake_ocs.chat.age(first, days=8)
    await h.say("ada", "two")
    assert await h.replies("ada", 2) == ["bot: one", "bot: two"]
    [second] = [s for s in fake_ocs.chat.chats if s != first]
    assert fake_ocs.messages(first) == ["one"] and fake_ocs.messages(second) == ["two"]


async def test_a_session_token_ocs_refuses_starts_a_new_session(fake_ocs: FakeOCS):
    async with started(chat_bot(fake_ocs)) as bot:
        session_id = await bot.open_session(conversation())
        fake_ocs.chat.chats[session_id].token = "rotated"
        with pytest.raises(SessionGone, match="session_token_invalid"):
            await bot.send(session_id, "hello")
        with pytest.raises(SessionGone):  # forgotten: not tried again
            await bot.send(session_id, "hello")


async def test_a_session_ocs_ended_is_closed_and_the_next_message_opens_another(bridge, fake_ocs: FakeOCS):
    h = await bridge(bot=chat_bot(fake_ocs), **FAST)
    await h.say("ada", "one")
    await h.replies("ada", 1)
    [first] = fake_ocs.chat.chats
    fake_ocs.end(first, goodbye="Goodbye!")
    assert await h.replies("ada", 2) == ["bot: one", "Goodbye!"]
    await h.say("ada", "two")
    assert await h.replies("ada", 3) == ["bot: one", "Goodbye!", "bot: two"]
    assert len(fake_ocs.chat.chats) == 2 and fake_ocs.messages(first) == ["one"]


# 3. OCS's own messages, and its errors --------------------------------------------------------------
async def test_ocs_own_message_is_delivered_once(bridge, fake_ocs: FakeOCS):
    h = await bridge(bot=chat_bot(fake_ocs), **FAST)
    await h.say("ada", "hello")
    await h.replies("ada", 1)
    [session_id] = fake_ocs.chat.chats
    fake_ocs.says(session_id, "Are you still there?")
    assert await h.replies("ada", 2) == ["bot: hello", "Are you still there?"]
    polls = len([c for c in fake_ocs.calls if c.path.endswith(f"{session_id}/poll/")])
    await eventually(
        lambda: len([c for c in fake_ocs.calls if c.path.endswith(f"{session_id}/poll/")]) >= polls + 3,
        what="more session polls",
    )
    await h.say("ada", "yes")
    assert await h.replies("ada", 3) == ["bot: hello", "Are you still there?", "bot: yes"]
    await eventually(
        lambda: len([c for c in fake_ocs.calls if c.path.endswith(f"{session_id}/poll/")]) >= polls + 6,
        what="more session polls",
    )
    assert h.channel.texts_to("ada") == ["bot: hello", "Are you still there?", "bot: yes"]


async def test_the_bots_files_come_with_its_answer(fake_ocs: FakeOCS):
    fake_ocs.reply = lambda text, session: (f"bot: {text}", [("report.pdf", b"%PDF-1.4")])
    async with started(chat_bot(fake_ocs)) as bot:
        reply = await bot.send(await bot.open_session(conversation()), "the report?")
    assert reply.text == "bot: the report?"
    [attachment] = reply.attachments
    assert attachment.name == "report.pdf" and attachment.url.startswith(fake_ocs.url)


async def test_a_task_error_ocs_shows_the_person_is_their_answer(fake_ocs: FakeOCS):
    fake_ocs.chat.fail_task(400, "Your message is too long for this bot.")
    async with started(chat_bot(fake_ocs)) as bot:
        session_id = await bot.open_session(conversation())
        assert await bot.send(session_id, "a" * 50) == Reply(text="Your message is too long for this bot.")


async def test_a_task_that_failed_in_ocs_is_an_apology_and_a_dead_letter(bridge, fake_ocs: FakeOCS):
    h = await bridge(bot=chat_bot(fake_ocs))
    fake_ocs.chat.fail_task(500)
    await h.say("ada", "hello")
    assert await h.replies("ada", 1) == [Texts().apology]
    [letter] = await h.core.store.dead_letters()
    assert "OCS could not answer (500)" in letter.reason


async def test_a_turn_that_reached_ocs_is_recovered_not_sent_again(fake_ocs: FakeOCS):
    fake_ocs.latency = 0.5
    async with started(chat_bot(fake_ocs)) as bot:
        session_id = await bot.open_session(conversation())
        sent_at = datetime.now(UTC)
        await bot._chat("POST", session_id, "message/", json={"message": "hello"})  # then the crash
        with pytest.raises(BotError) as still:
            await bot.recover(session_id, "hello", sent_at)
        assert still.value.retryable
        await eventually(lambda: len(fake_ocs.sessions[session_id].messages) == 2, what="the answer")
        assert await bot.recover(session_id, "hello", sent_at) == Reply(text="bot: hello")
        assert await bot.recover(session_id, "never sent", sent_at) is None
    assert fake_ocs.messages(session_id) == ["hello"]


async def test_the_chat_api_rate_limit_per_session_is_waited_out(bridge, fake_ocs: FakeOCS):
    """OCS's ``chat_api`` limit, per session (2 requests in 3 s here): refused messages wait for
    the server's ``Retry-After`` and go again; every answer arrives once, in order."""
    fake_ocs.chat.limit_rate(2, window=3)
    h = await bridge(bot=chat_bot(fake_ocs))
    for n in range(3):
        await h.say("ada", f"m{n}")
    assert await h.replies("ada", 3, timeout=30) == ["bot: m0", "bot: m1", "bot: m2"]
    [session_id] = fake_ocs.chat.chats
    assert fake_ocs.messages(session_id) == ["m0", "m1", "m2"]
    assert 429 in [status for c in fake_ocs.calls for status in c.status]


# 4. bridge check -----------------------------------------------------------------------------------
async def test_check_gets_a_token_and_starts_nothing(fake_ocs: FakeOCS):
    async with started(chat_bot(fake_ocs)) as bot:
        assert "may start chats" in await bot.check()
    assert fake_ocs.chat.chats == {} and fake_ocs.chat.participants == []


@pytest.mark.parametrize(
    ("breakage", "says"),
    [
        ({"client_secret": "wrong"}, "OCS_CLIENT_ID and OCS_CLIENT_SECRET"),
        ({"scopes": {"chatbots:read"}}, "scope 'chat:start'"),
        ({"client_credentials": False}, "grant type is not 'Client credentials'"),
        ({"chatbots": set()}, "not among the OAuth application's chatbots"),
        ({"oauth_mode": False}, "channel in 'oauth' mode"),
    ],
)
async def test_check_says_what_is_missing(fake_ocs: FakeOCS, breakage: dict[str, Any], says: str):
    settings = chat_bot(fake_ocs)
    for name, value in breakage.items():
        setattr(fake_ocs.chat, name, value)
    async with started(settings) as bot:
        with pytest.raises(BotError, match=says):
            await bot.check()


async def test_check_refuses_a_pinned_version_the_chat_api_cannot_use(fake_ocs: FakeOCS):
    async with started(chat_bot(fake_ocs, version=1)) as bot:
        with pytest.raises(BotError, match="OCS_EXPERIMENT_VERSION cannot be used"):
            await bot.check()


async def test_check_names_an_unknown_chatbot(fake_ocs: FakeOCS):
    async with started(chat_bot(fake_ocs, experiment_id="00000000-0000-0000-0000-000000000000")) as bot:
        with pytest.raises(BotError, match="OCS has no chatbot"):
            await bot.check()


# 5. Settings ---------------------------------------------------------------------------------------
def test_the_chat_transport_is_chosen_by_its_settings_and_says_what_it_lacks():
    base = {"OCS_TRANSPORT": "chat", "OCS_EXPERIMENT_ID": EXPERIMENT, "OCS_CLIENT_ID": "client"}
    with pytest.raises(ConfigError) as refused:
        load_settings(base)
    assert str(refused.value).splitlines() == [
        "OCS_CLIENT_SECRET: required when transport is 'chat' (BOT_BACKEND 'ocs')"
    ]
    settings = load_settings(base | {"OCS_CLIENT_SECRET": "s3cret-value"})
    bot = settings.bots["default"]
    assert isinstance(build_bot(bot), OcsChatBot)
    assert "s3cret-value" not in repr(settings)
    incoming = load_settings({"OCS_API_KEY": "k", "OCS_EXPERIMENT_ID": EXPERIMENT}).bots["default"]
    assert incoming.transport == "incoming" and isinstance(build_bot(incoming), OcsBot)
