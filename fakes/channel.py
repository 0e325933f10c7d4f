"""A small channel for the core's tests: JSON webhook with a shared secret, sends recorded in memory."""

from __future__ import annotations

import hmac
import json

from bridge.channel import Capabilities, Channel, SendError, WebhookRequest, command_kind
from bridge.errors import BadRequest, Forbidden
from bridge.model import Conversation, InboundMessage, Kind, Part, Person, Received
from bridge.settings import ChannelSettings

SECRET = "s3cret"


class RecordingChannel(Channel):
    """Webhook body: ``{"id", "from", "name"?, "text"?, "kind"?}``; header ``X-Test-Secret``."""

    kind = "test"

    def __init__(
        self,
        name: str = "test",
        *,
        max_text: int = 4096,
        typing: bool = False,
        texts: dict[str, str] | None = None,
    ):
        super().__init__(name, ChannelSettings(type="test", texts=texts or {}))
        self.capabilities = Capabilities(max_text=max_text, typing=typing)
        self.sent: list[tuple[str, Part]] = []  # (address, part) in the order they went out
        self.typing_calls: list[str] = []
        self.failures: list[SendError] = []  # raised by the next sends, first first

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
            message = InboundMessage(
                self.name, str(data["id"]), person, kind=kind, text=text, what=data.get("what", "")
            )
            return Received(messages=(message,))
        except (ValueError, KeyError, TypeError):
            raise BadRequest("malformed test message") from None

    async def send(self, conversation: Conversation, part: Part) -> str | None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append((conversation.person.address, part))
        return f"m{len(self.sent)}"

    async def typing(self, conversation: Conversation) -> None:
        self.typing_calls.append(conversation.person.address)

    def texts_to(self, address: str) -> list[str]:
        return [part.text for to, part in self.sent if to == address]
