"""The OCS Chat API transport end to end: Telegram, WhatsApp and the widget on it, 300 people at
once on a slow bot, and a bridge killed while it polls for answers."""

from __future__ import annotations

import asyncio

import aiohttp

from fakes.ocs import FakeOCS
from fakes.telegram import FakeTelegram, text_update
from fakes.telegram import payload as telegram_update
from fakes.twilio import FakeTwilio, whatsapp
from fakes.twilio import payload as twilio_form
from tests.harness import eventually, platform_bridge
from tests.proc import BridgeProcess, killable_env, post_update, settled
from tests.test_ocs_chat import chat_bot
from tests.widget import MakeClient, answer, send, start

UNLIMITED = {"OCS_RATE_LIMIT": "1000000/1s"}  # the fake enforces no limit unless a test asks


def chat_env(ocs: FakeOCS) -> dict[str, str]:
    return ocs.chat.env() | UNLIMITED


async def test_telegram_round_trip(tmp_path, ocs: FakeOCS, tg: FakeTelegram):
    async with platform_bridge(tmp_path / "bridge.db", ocs=ocs, tg=tg, **chat_env(ocs)) as h:
        await h.deliver_update(text_update("hello", chat_id=42))
        await tg.wait_for(lambda: tg.texts(42) == ["bot: hello"], 10)
        await h.deliver_update(text_update("more", chat_id=42))
        await tg.wait_for(lambda: tg.texts(42) == ["bot: hello", "bot: more"], 10)
    [participant] = ocs.chat.participants
    assert participant.remote_id == "telegram:42"
    [session_id] = ocs.chat.chats
    assert ocs.messages(session_id) == ["hello", "more"]


async def test_whatsapp_round_trip(tmp_path, ocs: FakeOCS, tw: FakeTwilio):
    env = chat_env(ocs) | {"BRIDGE_API_KEY": "k"}
    async with platform_bridge(tmp_path / "bridge.db", ocs=ocs, tw=tw, **env) as h:
        await h.deliver_form(whatsapp("Hello, bot!"))
        await tw.wait_for(lambda: tw.bodies("whatsapp:+15551230001") == ["bot: Hello, bot!"], 10)
    [participant] = ocs.chat.participants
    assert participant.remote_id.endswith("+15551230001")


JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 200
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def uploaded(ocs: FakeOCS) -> list[tuple[str, str, bytes, str]]:
    """What OCS took: each message's text with its uploaded files (name, type, bytes)."""
    return [
        (u.name, u.content_type, u.data, r.message)
        for r in ocs.chat.received
        for u in (ocs.chat.uploads[i] for i in r.attachment_ids)
    ]


async def test_a_telegram_photo_reaches_ocs_as_a_file_with_its_caption(
    tmp_path, ocs: FakeOCS, tg: FakeTelegram
):
    tg.add_file("AgACAgIAAxkBAAIBZ2c_big", JPEG, "photos/file_7.jpg")
    async with platform_bridge(tmp_path / "bridge.db", ocs=ocs, tg=tg, **chat_env(ocs)) as h:
        await h.deliver_update(telegram_update("photo_caption"))
        await tg.wait_for(lambda: len(tg.texts(42)) == 1, 10)
    [(name, content_type, data, message)] = uploaded(ocs)  # the largest size, once
    assert (content_type, data, message) == ("image/jpeg", JPEG, "What is in this picture?")
    assert name.endswith(".jpg")
    assert tg.texts(42) == ["bot: What is in this picture?"]


async def test_a_whatsapp_image_reaches_ocs_as_a_file_with_its_caption(
    tmp_path, ocs: FakeOCS, tw: FakeTwilio
):
    url = tw.add_media(PNG, "image/png")
    form = twilio_form("whatsapp_image", MediaUrl0=url, MediaContentType0="image/png", Body="my rash")
    async with platform_bridge(tmp_path / "bridge.db", ocs=ocs, tw=tw, **chat_env(ocs)) as h:
        await h.deliver_form(form)
        await tw.wait_for(lambda: len(tw.sent("whatsapp:+15551230001")) == 1, 10)
    [(_, content_type, data, message)] = uploaded(ocs)
    assert (content_type, data, message) == ("image/png", PNG, "my rash")


async def test_widget_round_trip(make_client: MakeClient, fake_ocs: FakeOCS):
    client = await make_client(**chat_env(fake_ocs))
    started = await start(client, chatbot_id=fake_ocs.experiment_id)
    body = await answer(client, started["session_id"], await send(client, started["session_id"], "hi there"))
    assert body["status"] == "complete" and body["message"]["content"] == "bot: hi there"
    [participant] = fake_ocs.chat.participants
    assert participant.remote_id.startswith("web:")


async def test_three_hundred_people_at_once_on_a_two_second_bot(bridge, fake_ocs: FakeOCS):
    """Every person answered once and in order, each their own participant; no worker slot is held
    while the bridge waits between polls (the in-flight bound is 20 here)."""
    fake_ocs.latency = 2.0
    h = await bridge(bot=chat_bot(fake_ocs, max_in_flight=20, team_rate_limit="1000000/1s"))
    people = [f"p{n}" for n in range(300)]
    await asyncio.gather(*(h.say(p, f"{p} one", id=f"{p}-1") for p in people))
    await asyncio.gather(*(h.say(p, f"{p} two", id=f"{p}-2") for p in people))
    await eventually(lambda: len(h.channel.sent) == 600, 60, "600 answers")
    for p in people:
        assert h.channel.texts_to(p) == [f"bot: {p} one", f"bot: {p} two"]
    assert len({x.identifier for x in fake_ocs.chat.participants}) == 300
    assert sorted(len(fake_ocs.messages(s)) for s in fake_ocs.chat.chats) == [2] * 300


async def test_sigkill_while_polling_for_answers(tmp_path):
    """Killed while OCS works on the answers (the bridge polls their tasks): after a restart each
    turn is answered once, and OCS took each turn once (found in the session, not sent again)."""
    chats = (101, 102, 103)
    async with FakeOCS() as ocs, FakeTelegram() as tg:
        ocs.latency = 3.0
        env = killable_env(tmp_path, ocs, tg, **chat_env(ocs))
        first = await BridgeProcess(["serve"], env, tmp_path / "bridge.log").start()
        try:
            async with aiohttp.ClientSession() as http:
                for n, chat in enumerate(chats):
                    await post_update(
                        http, first.url, text_update("m0", chat_id=chat) | {"update_id": 7000 + n}
                    )
            await eventually(lambda: len(ocs.chat.received) == len(chats), 20, "the turns with OCS")
            first.kill()  # mid-poll: OCS is still answering
        finally:
            first.kill()
        assert tg.texts() == []
        second = await BridgeProcess(["serve"], env, tmp_path / "bridge.log").start()
        try:
            for chat in chats:
                await eventually(lambda chat=chat: len(tg.texts(chat)) >= 1, 30, f"the answer in {chat}")
            await eventually(lambda: settled(env["DATABASE_URL"]), 10, "nothing left to send")
            for chat in chats:
                assert tg.texts(chat) == ["bot: m0"], second.output()
            assert sorted(ocs.messages(s) for s in ocs.chat.chats) == [["m0"]] * len(chats)
            assert len(ocs.chat.received) == len(chats)
        finally:
            second.stop()
