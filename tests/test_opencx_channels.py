"""open.cx from the real channels (Telegram, the widget), ``bridge check``, and the bot's client
against the fake: Bearer auth, the rate budget."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from bridge.bots import BotError, OpenCxBot
from bridge.model import Conversation, Person
from bridge.settings import BotSettings
from fakes import twilio
from fakes.opencx import FakeOpenCx
from fakes.telegram import FakeTelegram, text_update
from tests.harness import eventually, platform_bridge
from tests.widget import MakeClient, answer, poll, send, start

ROOT = Path(__file__).parent.parent


async def test_telegram_round_trip(tmp_path: Path, cx: FakeOpenCx) -> None:
    env = cx.env() | {"PROACTIVE_POLL_SECONDS": "0.2"}
    async with FakeTelegram() as tg, platform_bridge(tmp_path / "b.db", tg=tg, **env) as bridge:
        await bridge.deliver_update(text_update("Hello, support!"))
        await tg.wait_for(lambda: tg.texts(42) == ["ai: Hello, support!"])
        await bridge.deliver_update(text_update("a human please"))
        await tg.wait_for(lambda: len(tg.texts(42)) == 2)
        [session] = cx.sessions.values()
        assert session.contact["name"] == "Ada Lovelace" and "phone_number" not in session.contact
        assert session.custom_data["platform"] == "telegram"
        assert tg.texts(42)[1] == "A person from our team will answer you here shortly."
        cx.agent_says(session.id, "Hello Ada, this is Sam.")
        await tg.wait_for(lambda: tg.texts(42)[2:] == ["Hello Ada, this is Sam."])


async def test_widget_round_trip(make_client: MakeClient, cx: FakeOpenCx) -> None:
    env = cx.env() | {"PROACTIVE_POLL_SECONDS": "0.2"}
    client = await make_client(**env, TEXT_HANDOFF="Un instant, un collègue arrive.")
    chat = await start(client)
    sid = chat["session_id"]
    reply = await answer(client, sid, await send(client, sid, "Bonjour"))
    assert reply["message"]["content"] == "ai: Bonjour"
    reply = await answer(client, sid, await send(client, sid, "human"))
    assert reply["message"]["content"] == "Un instant, un collègue arrive."
    [session] = cx.sessions.values()
    assert session.custom_data["platform"] == "web" and cx.received(session.id) == ["Bonjour", "human"]
    cx.agent_says(session.id, "Bonjour, ici Sam.")
    since = reply["message"]["created_at"]  # the poll returns the whole chat after it
    polled = await eventually(lambda: poll(client, sid, since=since), what="the agent's reply on the poll")
    contents = [m["content"] for m in polled["messages"]]
    assert contents == ["Bonjour, ici Sam."]


async def test_whatsapp_round_trip_with_the_phone_number_and_an_agent(tmp_path: Path, cx: FakeOpenCx) -> None:
    env = cx.env() | {"PROACTIVE_POLL_SECONDS": "0.2"}
    person = "whatsapp:+15551230001"
    async with twilio.FakeTwilio() as tw, platform_bridge(tmp_path / "w.db", tw=tw, **env) as bridge:
        await bridge.deliver_form(twilio.whatsapp("I need a human"))
        await tw.wait_for(lambda: len(tw.bodies(person)) == 1)
        [session] = cx.sessions.values()
        assert session.contact["phone_number"] == "+15551230001"
        assert session.custom_data["platform"] == "whatsapp"
        cx.agent_says(session.id, "Sam here, how can I help?")
        await tw.wait_for(lambda: len(tw.bodies(person)) == 2)
        assert tw.bodies(person) == [
            "A person from our team will answer you here shortly.",
            "Sam here, how can I help?",
        ]


def phone_person(platform: str, address: str) -> Conversation:
    return Conversation(1, "twilio", Person(address, address, "Grace", platform), None, {})


@pytest.mark.parametrize(
    ("platform", "address"), [("sms", "+15551230000"), ("whatsapp", "whatsapp:+15551230000")]
)
async def test_the_contact_has_the_phone_number_on_sms_and_whatsapp(cx: FakeOpenCx, platform, address):
    bot = OpenCxBot(BotSettings(backend="opencx", base_url=cx.url, api_key=cx.api_key))
    await bot.start()
    try:
        session_id = await bot.open_session(phone_person(platform, address))
    finally:
        await bot.stop()
    contact = cx.sessions[session_id].contact
    assert contact == {"name": "Grace", "phone_number": "+15551230000"}


async def test_a_wrong_key_is_401_and_not_retried(cx: FakeOpenCx) -> None:
    bot = OpenCxBot(BotSettings(backend="opencx", base_url=cx.url, api_key="wrong"))
    await bot.start()
    try:
        with pytest.raises(BotError) as info:
            await bot.open_session(phone_person("sms", "+1555"))
        assert (info.value.status, info.value.retryable) == (401, False)
        with pytest.raises(BotError, match=r"key .*401.*wrong"):
            await bot.check()
    finally:
        await bot.stop()


async def test_history_reads_never_take_the_budget_messages_need(cx: FakeOpenCx) -> None:
    settings = BotSettings(backend="opencx", base_url=cx.url, api_key=cx.api_key, rate_limit=6)
    bot = OpenCxBot(settings)
    await bot.start()
    try:
        session_id = await bot.open_session(phone_person("sms", "+1555"))  # 5 left
        await bot.send(session_id, "human")  # handed off; 4 left
        with pytest.raises(BotError) as info:  # the reserve (3) is for messages
            for _ in range(3):
                await bot.history(session_id, None)
        assert info.value.retryable and info.value.retry_after
        for n in range(3):  # messages still go at once
            reply = await asyncio.wait_for(bot.send(session_id, f"m{n}"), 1)
            assert reply.handed_off and reply.text == ""
    finally:
        await bot.stop()
    assert cx.received(session_id) == ["human", "m0", "m1", "m2"]


async def run_check(tmp_path: Path, **env: str) -> tuple[int, str]:
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OCS_", "OPENCX_", "TELEGRAM_"))},
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/check.db",
        **env,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge", "check", env=environ, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), 30)
    return process.returncode or 0, output.decode()


async def test_check_reaches_open_cx_and_says_when_the_key_is_wrong(tmp_path: Path, cx: FakeOpenCx) -> None:
    code, output = await run_check(tmp_path, **cx.env())
    assert code == 0 and "ok    bot 'default': open.cx at" in output, output
    code, output = await run_check(tmp_path, **(cx.env() | {"OPENCX_API_KEY": "not-the-key"}))
    assert code == 1 and "FAIL  bot 'default': open.cx" in output, output
    assert "refused the API key (401): it is wrong" in output and "not-the-key" not in output


async def test_a_long_history_out_of_budget_is_read_in_steps_and_nothing_lost(cx: FakeOpenCx) -> None:
    cx.page_size = 2
    settings = BotSettings(backend="opencx", base_url=cx.url, api_key=cx.api_key, rate_limit=8)
    bot = OpenCxBot(settings)
    await bot.start()
    try:
        session_id = await bot.open_session(phone_person("sms", "+1555"))  # 7 left, 4 kept for messages
        await bot.send(session_id, "human")  # 6 left; the history: the message, the handoff
        for n in range(5):
            cx.agent_says(session_id, f"agent {n}")  # 7 items, 4 pages
        first = await bot.history(session_id, None)  # two pages, then the budget is spent
        assert [m.text for m in first.messages] == ["agent 0", "agent 1"]
        bot.budget.tokens = bot.budget.capacity  # a minute later
        second = await bot.history(session_id, first.cursor)
        assert [m.text for m in second.messages] == ["agent 2", "agent 3", "agent 4"]
    finally:
        await bot.stop()
