"""Telegram outbound through the real app and workers: splitting, formatting, files, typing, limits."""

from __future__ import annotations

import itertools
import logging
import time
from pathlib import Path

import pytest
import structlog

from bridge.split import utf16_length
from fakes.ocs import FakeOCS
from fakes.ocs_records import FakeSession
from fakes.telegram import (
    CHAT_NOT_FOUND,
    TOKEN,
    FakeTelegram,
    text_update,
)
from tests.harness import Harness, platform_bridge
from tests.telegram.test_telegram_format import visible

GROUP = -1001234567890


async def test_long_answer_arrives_in_order_within_4096_utf16_units(
    bridge: Harness, tg: FakeTelegram, fake_ocs: FakeOCS
) -> None:
    words = [f"w{n:04d}👍" for n in range(1430)]  # 10,010 characters, ~11,440 UTF-16 units
    answer = " ".join(words)
    assert len(answer) >= 10_000
    fake_ocs.reply = lambda text, session: answer
    await bridge.deliver_update(text_update("tell me everything"))
    await tg.wait_for(lambda: " ".join(tg.texts(42)).split() == words, timeout=10)
    parts = tg.texts(42)
    assert len(parts) == 3
    assert all(utf16_length(visible(p)) <= 4096 and utf16_length(p) <= 4096 for p in parts)
    assert [c.status for c in tg.calls("sendMessage")] == [200, 200, 200]


async def test_markdown_renders_as_telegram_html(
    bridge: Harness, tg: FakeTelegram, fake_ocs: FakeOCS
) -> None:
    fake_ocs.reply = lambda text, session: "## Result\n**Bold** and `x < y` - see [docs](https://example.org)"
    await bridge.deliver_update(text_update("format"))
    await tg.wait_for(lambda: len(tg.texts(42)) == 1)
    [call] = tg.calls("sendMessage", 42)
    assert call.params["parse_mode"] == "HTML"
    assert call.params["text"] == (
        '<b>Result</b>\n<b>Bold</b> and <code>x &lt; y</code> - see <a href="https://example.org">docs</a>'
    )


async def test_plain_text_when_telegram_rejects_the_formatting(
    bridge: Harness, tg: FakeTelegram, fake_ocs: FakeOCS
) -> None:
    fake_ocs.reply = lambda text, session: "**Bold** answer"
    tg.reject_html()
    await bridge.deliver_update(text_update("format"))
    await tg.wait_for(lambda: tg.texts(42) == ["**Bold** answer"])
    rejected, plain = tg.calls("sendMessage", 42)
    assert (rejected.status, rejected.params["parse_mode"]) == (400, "HTML")
    assert "parse_mode" not in plain.params


async def test_attachments_as_photo_and_document_with_link_fallback(
    bridge: Harness, tg: FakeTelegram, fake_ocs: FakeOCS
) -> None:
    def reply(text: str, session: FakeSession) -> tuple[str, list[tuple[str, Path | bytes]]]:
        return "Here you go", [("chart.png", b"\x89PNG"), ("report.pdf", b"%PDF"), ("big.zip", b"PK")]

    fake_ocs.reply = reply
    tg.fail(
        "sendDocument", 400, "Bad Request: wrong file identifier/HTTP URL specified", when=_ends("big.zip")
    )
    await bridge.deliver_update(text_update("files please"))
    await tg.wait_for(lambda: len(tg.texts(42)) == 2)
    [photo] = tg.calls("sendPhoto", 42)
    documents = tg.calls("sendDocument", 42)
    assert photo.params["photo"] == f"{fake_ocs.url}/files/1/chart.png"
    assert [d.params["document"].rsplit("/", 1)[1] for d in documents] == ["report.pdf", "big.zip"]
    assert [d.status for d in documents] == [200, 400]
    text, link = tg.texts(42)
    assert text == "Here you go"
    assert link.startswith("big.zip: http") and link.endswith("/big.zip")
    order = [c.method for c in tg.log if c.method.startswith("send") and c.method != "sendChatAction"]
    assert order == ["sendMessage", "sendPhoto", "sendDocument", "sendDocument", "sendMessage"]


def _ends(name: str):  # type: ignore[no-untyped-def]
    return lambda params: str(params.get("document", "")).endswith(name)


async def test_typing_starts_after_a_moment_and_is_repeated_while_the_bot_thinks(
    tmp_path: Path, tg: FakeTelegram, fake_ocs: FakeOCS
) -> None:
    """A 14-second answer, "typing..." after 1 s and every 4 s, at a tenth of the time."""
    fake_ocs.latency = 1.4
    async with platform_bridge(
        tmp_path / "b.db", tg=tg, **fake_ocs.env(), WORKER_TYPING_DELAY="0.1", WORKER_TYPING_INTERVAL="0.4"
    ) as bridge:
        await bridge.deliver_update(text_update("think hard"))
        await tg.wait_for(lambda: len(tg.texts(42)) == 1, timeout=5)
    typing = tg.calls("sendChatAction", 42)
    [answer] = tg.calls("sendMessage", 42)
    assert len(typing) >= 3
    assert all(t.params["action"] == "typing" for t in typing)
    assert all(t.at < answer.at for t in typing)  # stops once the answer is sent
    gaps = [b.at - a.at for a, b in itertools.pairwise(typing)]
    assert all(0.3 < gap < 0.8 for gap in gaps), gaps


async def test_a_fast_bot_needs_no_typing_and_a_slow_one_gets_it(
    tmp_path: Path, tg: FakeTelegram, fake_ocs: FakeOCS
) -> None:
    async with platform_bridge(tmp_path / "b.db", tg=tg, **fake_ocs.env()) as bridge:  # default settings
        for n in range(5):
            await bridge.deliver_update(text_update(f"quick {n}"))
        await tg.wait_for(lambda: len(tg.texts(42)) == 5, timeout=5)
        assert tg.calls("sendChatAction") == []  # answers in milliseconds: nothing to show
        fake_ocs.latency = 3
        posted = time.monotonic()
        await bridge.deliver_update(text_update("slow", chat_id=43))
        await tg.wait_for(lambda: len(tg.texts(43)) == 1, timeout=8)
    typing = tg.calls("sendChatAction", 43)
    assert 1 <= len(typing) <= 2  # after about a second, then again after about four
    assert typing[0].at - posted > 0.9


async def test_429_is_honoured_and_order_kept(bridge: Harness, tg: FakeTelegram, fake_ocs: FakeOCS) -> None:
    fake_ocs.reply = lambda text, session: ("alpha " * 500).strip() + "\n\n" + ("omega " * 500).strip()
    tg.fail("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
    await bridge.deliver_update(text_update("two parts"))
    await tg.wait_for(lambda: len(tg.texts(42)) == 2, timeout=8)
    calls = tg.calls("sendMessage", 42)
    assert [c.status for c in calls] == [429, 200, 200]
    assert calls[1].params["text"] == calls[0].params["text"]  # the same part again, first
    assert calls[1].at - calls[0].at >= 0.95  # after retry_after
    assert tg.texts(42)[0].startswith("alpha") and tg.texts(42)[1].startswith("omega")


async def test_network_errors_are_retried(bridge: Harness, tg: FakeTelegram) -> None:
    tg.fail("sendMessage", 502, "Bad Gateway", times=2)
    await bridge.deliver_update(text_update("flaky"))
    await tg.wait_for(lambda: tg.texts(42) == ["echo: flaky"] or tg.texts(42) == ["bot: flaky"], timeout=8)
    assert [c.status for c in tg.calls("sendMessage", 42)] == [502, 502, 200]


async def test_chat_not_found_is_final(bridge: Harness, tg: FakeTelegram) -> None:
    tg.fail("sendMessage", 400, CHAT_NOT_FOUND, when=lambda p: p.get("chat_id") == "77", times=None)
    await bridge.deliver_update(text_update("one", chat_id=77))
    await tg.wait_for(lambda: len(tg.calls("sendMessage", 77)) == 1)
    await bridge.idle(settled=True)  # final: no retry to come
    assert len(tg.calls("sendMessage", 77)) == 1


async def test_group_upgraded_while_sending(bridge: Harness, tg: FakeTelegram) -> None:
    from fakes.telegram import payload

    tg.fail(
        "sendMessage",
        400,
        "Bad Request: group chat was upgraded to a supergroup chat",
        migrate_to_chat_id=GROUP,
        when=lambda p: p.get("chat_id") == "-4012345678",
        times=None,
    )
    await bridge.deliver_update(payload("old_group_mention"))
    await tg.wait_for(lambda: len(tg.texts(GROUP)) == 1)
    await bridge.deliver_update(payload("group_mention"))  # the new supergroup continues the conversation
    await tg.wait_for(lambda: len(tg.texts(GROUP)) == 2)


async def test_the_token_is_never_logged(
    bridge: Harness, tg: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tg.block(42)
    with structlog.testing.capture_logs() as events:
        await bridge.deliver_update(text_update("hello"))
        await tg.wait_for(lambda: len(tg.calls("sendMessage", 42)) == 1)
        await bridge.idle()
    assert TOKEN not in caplog.text
    assert TOKEN.split(":")[1] not in repr(events)


async def test_a_retried_part_does_not_repeat_what_was_sent(
    bridge: Harness, tg: FakeTelegram, fake_ocs: FakeOCS
) -> None:
    def reply(text: str, session: FakeSession) -> tuple[str, list[tuple[str, Path | bytes]]]:
        return "The report:", [("report.pdf", b"%PDF")]

    fake_ocs.reply = reply
    tg.fail("sendDocument", 429, "Too Many Requests: retry after 1", retry_after=1)
    await bridge.deliver_update(text_update("report"))
    await tg.wait_for(lambda: [c.status for c in tg.calls("sendDocument")] == [429, 200], timeout=5)
    assert tg.texts(42) == ["The report:"]


async def test_messages_to_one_chat_are_spaced(tmp_path: Path, tg: FakeTelegram, fake_ocs: FakeOCS) -> None:
    fake_ocs.reply = lambda text, session: "\n\n".join([("word " * 500).strip()] * 3)
    env = {**fake_ocs.env(), "TELEGRAM_RATE_PER_CHAT": "4"}  # Telegram's is 1/s; 4/s keeps this quick
    async with platform_bridge(tmp_path / "b.db", tg=tg, **env) as bridge:
        await bridge.deliver_update(text_update("long"))
        await tg.wait_for(lambda: len(tg.texts(42)) == 3, timeout=5)
    sent = tg.calls("sendMessage", 42)
    assert all(b.at - a.at >= 0.24 for a, b in itertools.pairwise(sent))
