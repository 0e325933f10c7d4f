"""People's files in the worker (bridge/media): fetched once to disk with their type sniffed, given
to a bot that accepts files, linked otherwise, removed with an erase or after MEDIA_KEEP_HOURS."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web

from bridge.bots import BotError, EchoBot
from bridge.channel import SendError
from bridge.media.download import Downloader, FileTooLarge
from bridge.media.relay import Refused, outgoing
from bridge.media.store import media_store, person_digest
from bridge.model import Conversation, Media, Person
from bridge.settings import Settings
from bridge.store.records import MEDIA_KEY, StoredMessage
from fakes.channel import RecordingChannel
from fakes.server import serve_locally

PDF = b"%PDF-1.7\n" + b"0" * 5000
PERSON = Person("ann", "ann", platform="test")


class FileChannel(RecordingChannel):
    """The test channel, whose people's files are bytes in memory (or failures)."""

    def __init__(self, files: dict[str, bytes | SendError]):
        super().__init__(texts={"unsupported": "Text only."})
        self.files = files
        self.fetched: list[str] = []

    async def fetch(self, media: Media, limit: int) -> AsyncIterator[bytes]:
        self.fetched.append(media.ref)
        found = self.files[media.ref]
        if isinstance(found, SendError):
            raise found
        for start in range(0, len(found), 1000):
            yield found[start : start + 1000]


class FilesBot(EchoBot):
    accepts_files = True


def message(text: str, *media: Media, id: int = 7) -> StoredMessage:
    now = datetime.now(UTC)
    context = {MEDIA_KEY: [dataclasses.asdict(m) for m in media]}
    return StoredMessage(
        id, "pub", 1, "test", "text", text, "", "pending", 0, now, None, now, context=context
    )


def settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(data_dir=str(tmp_path / "data"), public_url="https://bridge.example.org", **values)


CONVERSATION = Conversation(1, "test", PERSON, None, {})


async def test_a_bot_that_accepts_files_gets_them_sniffed_with_the_caption(tmp_path: Path) -> None:
    channel = FileChannel({"a": PDF, "b": b"plain words\n"})
    sent = message("my papers", Media("document", "a", "scan.bin", "image/png"), Media("file", "b"))
    out = await outgoing(settings(tmp_path), channel, FilesBot(), CONVERSATION, sent)
    assert out.text == "my papers"
    assert [(f.name, f.content_type, f.size) for f in out.files] == [
        ("scan.bin", "application/pdf", len(PDF)),  # the bytes' type, not the claimed one
        ("file.txt", "text/plain", 12),
    ]
    assert out.files[0].path.read_bytes() == PDF


async def test_a_file_is_fetched_once_for_every_attempt_and_named_by_an_unguessable_token(
    tmp_path: Path,
) -> None:
    channel = FileChannel({"a": PDF})
    sent = message("", Media("document", "a", "x.pdf"), id=12345)
    first = await outgoing(settings(tmp_path), channel, EchoBot(), CONVERSATION, sent)
    again = await outgoing(settings(tmp_path), channel, EchoBot(), CONVERSATION, sent)
    assert first == again and channel.fetched == ["a"]
    [link] = first.text.splitlines()
    token = link.split("/media/")[1].split("/")[0]
    assert len(token) == 32 and "12345" not in token
    other = await outgoing(
        settings(tmp_path), channel, EchoBot(), CONVERSATION, message("", *sent.media, id=12346)
    )
    assert token not in other.text


async def test_failures_answer_the_person_or_retry(tmp_path: Path) -> None:
    too_large = FileChannel({"a": FileTooLarge(5_000_000)})
    with pytest.raises(Refused) as refused:
        await outgoing(
            settings(tmp_path), too_large, EchoBot(), CONVERSATION, message("", Media("file", "a"))
        )
    assert "5 MB" in refused.value.answer and refused.value.reason == "the file is larger than 5 MB"
    flaky = FileChannel({"a": SendError("Twilio: 503", retry_after=3)})
    with pytest.raises(BotError) as failed:
        await outgoing(settings(tmp_path), flaky, EchoBot(), CONVERSATION, message("hi", Media("file", "a")))
    assert failed.value.retryable and failed.value.retry_after == 3
    nothing = FileChannel({})
    with pytest.raises(Refused) as unsupported:
        await outgoing(
            settings(tmp_path, media_as_links=False),
            nothing,
            EchoBot(),
            CONVERSATION,
            message("", Media("photo", "a")),
        )
    assert (unsupported.value.answer, unsupported.value.reason) == ("Text only.", None)
    assert nothing.fetched == []


async def test_files_go_with_an_erase_and_after_the_keeping_time(tmp_path: Path) -> None:
    channel = FileChannel({"a": PDF, "b": PDF})
    config = settings(tmp_path)
    other = dataclasses.replace(CONVERSATION, person=Person("bob", "bob"))
    await outgoing(config, channel, FilesBot(), CONVERSATION, message("", Media("file", "a"), id=1))
    [kept] = (await outgoing(config, channel, FilesBot(), other, message("", Media("file", "b"), id=2))).files
    store = media_store(config.data_dir)
    assert store.remove(person=person_digest("test", "ann")) == 1
    assert kept.path.exists()
    assert store.remove(before=datetime.now(UTC) - timedelta(hours=1)) == 0
    assert store.remove(before=datetime.now(UTC) + timedelta(seconds=1)) == 1
    assert not kept.path.exists()


async def test_credentials_stay_on_their_host_through_redirects() -> None:
    seen: list[tuple[str, str | None]] = []

    async def first(request: web.Request) -> web.Response:
        seen.append(("first", request.headers.get("Authorization")))
        raise web.HTTPFound(f"{storage_url}/file")

    async def stored(request: web.Request) -> web.Response:
        seen.append(("storage", request.headers.get("Authorization")))
        return web.Response(body=b"x" * 3000)

    storage = web.Application()
    storage.router.add_get("/file", stored)
    origin = web.Application()
    origin.router.add_get("/media", first)
    storage_runner, storage_url = await serve_locally(storage)
    origin_runner, origin_url = await serve_locally(origin)
    downloads = Downloader("Test", 5)
    try:
        body = b"".join(
            [c async for c in downloads.stream(f"{origin_url}/media", 5000, {"Authorization": "Basic s"})]
        )
        assert body == b"x" * 3000
        assert seen == [("first", "Basic s"), ("storage", None)]
        with pytest.raises(FileTooLarge):
            [c async for c in downloads.stream(f"{storage_url}/file", 2000)]
    finally:
        await downloads.close()
        await origin_runner.cleanup()
        await storage_runner.cleanup()
