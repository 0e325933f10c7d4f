"""A small channel for the core's tests: JSON webhook with a shared secret, sends recorded in memory."""

from __future__ import annotations

import hmac
import json
from collections.abc import AsyncIterator

from bridge.channel import Capabilities, Channel, SendError, WebhookRequest, command_kind
from bridge.errors import BadRequest, Forbidden
from bridge.model import Conversation, InboundMessage, Kind, Media, Part, Person, Received
from bridge.settings import ChannelSettings

SECRET = "s3cret"


class RecordingChannel(Channel):
    """Webhook body: ``{"id", "from", "name"?, "text"?, "kind"?, "media"?}``; header ``X-Test-Secret``.
    ``media``: ``[{"kind", "ref", ...}]`` (``Media``'s fields), fetched from ``files`` (by ref);
    ``voice``: voice notes can be sent to everyone (``speaks``)."""

    kind = "test"

    def __init__(
        self,
        name: str = "test",
        *,
        max_text: int = 4096,
        typing: bool = False,
        texts: dict[str, str] | None = None,
        voice: bool = False,
    ):
        super().__init__(name, ChannelSettings(type="test", texts=texts or {}))
        self.capabilities = Capabilities(max_text=max_text, typing=typing)
        self.sent: list[tuple[str, Part]] = []  # (address, part) in the order they went out
        self.typing_calls: list[str] = []
        self.failures: list[SendError] = []  # raised by the next sends, first first
        self.voice = voice
        self.files: dict[str, bytes] = {}  # what ``fetch`` serves, by ``Media.ref``
        self.fetched: list[str] = []  # the refs fetched, in order

    async def verify(self, request: WebhookRequest) -> None:
        if not hmac.compare_digest(request.headers.get("X-Test-Secret", "").encode(), SECRET.encode()):
            raise Forbidden("bad secret")

    def parse(self, request: WebhookRequest) -> Received:
        try:
            data = json.loads(request.body)
            person = Person(
                key=str(data["from"]), address=str(data["from"]), name=data.get("name", ""), platform="test"
            )
            text = str(data.get("text", ""))
            kind = Kind(data["kind"]) if "kind" in data else command_kind(text)
            media = tuple(Media(**item) for item in data.get("media", ()))
            message = InboundMessage(
                self.name,
                str(data["id"]),
                person,
                kind=kind,
                text=text,
                what=data.get("what", ""),
                media=media,
            )
            return Received(messages=(message,))
        except (ValueError, KeyError, TypeError):
            raise BadRequest("malformed test message") from None

    async def send(self, conversation: Conversation, part: Part) -> str | None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append((conversation.person.address, part))
        return f"m{len(self.sent)}"

    def speaks(self, conversation: Conversation) -> bool:
        return self.voice

    async def fetch(self, media: Media, limit: int) -> AsyncIterator[bytes]:
        self.fetched.append(media.ref)
        data = self.files.get(media.ref)
        if data is None:
            raise SendError(f"no file {media.ref!r}", final=True)
        for start in range(0, min(len(data), limit + 1), 4096):
            yield data[start : start + 4096]

    async def typing(self, conversation: Conversation) -> None:
        self.typing_calls.append(conversation.person.address)

    def texts_to(self, address: str) -> list[str]:
        return [part.text for to, part in self.sent if to == address]
