"""The Telegram channel: a bot reached through the Bot API (python-telegram-bot)."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import structlog
import telegram
from telegram import error as tg
from telegram.constants import ChatAction, ParseMode

from bridge.channel import Capabilities, Channel, ChannelContext, Resumable, SendError, WebhookRequest
from bridge.errors import BadRequest, Forbidden, UnsupportedMediaType
from bridge.media.download import Downloader, FileTooLarge
from bridge.model import Attachment, ChatMoved, Conversation, Media, Part, Received
from bridge.secrets import matches
from bridge.split import utf16_length

from . import parse
from .errors import Scrubber, is_bad_markup, is_gone, retry_after
from .format import to_html
from .http import AiohttpRequest
from .limits import Limiter, Rates
from .options import TelegramOptions

if TYPE_CHECKING:
    from telegram import Update

    from bridge.settings import ChannelSettings

log = structlog.get_logger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_FILE = 20_000_000  # getFile's limit: Telegram lets a bot download files up to 20 MB
JSON = "application/json"
VOICE = "audio/ogg"  # a voice note: OGG/Opus, sent with sendVoice
Step = Callable[[int | str], Awaitable[telegram.Message]]
T = TypeVar("T")


def readable(read: Callable[[], T]) -> T:
    """``read()``, with any failure to read a verified update as 400: Telegram sends JSON, but the
    parsers (PTB's ``de_json`` and ours) may raise anything on odd input (an overflowing date, a
    reply chain deep enough for ``RecursionError``), and no input may make the service answer 500."""
    try:
        return read()
    except BadRequest:
        raise
    except Exception as exc:
        log.warning("malformed Telegram update", error=type(exc).__name__)
        raise BadRequest("malformed update") from None


class TelegramChannel(Channel):
    """One Telegram bot. Inbound by webhook (or ``poll``), outbound through the Bot API."""

    kind = "telegram"
    capabilities = Capabilities(max_text=4096, length=utf16_length, media_by_url=True, typing=True)

    def __init__(self, name: str, settings: ChannelSettings):
        super().__init__(name, settings)
        self.options: TelegramOptions = settings.options(TelegramOptions, name)
        token: str = self.options.bot_token.get_secret_value()
        self.scrub = Scrubber(token)
        self.rules = parse.Rules(
            channel=name,
            bot_id=int(token.split(":", 1)[0]),
            username=self.options.bot_username,
            group_trigger=self.options.group_trigger,
            group_conversation=self.options.group_conversation,
            help_enabled=bool(self.texts.help),
        )
        self.limiter = Limiter(
            Rates(self.options.rate_per_chat, self.options.rate_per_group, self.options.rate_per_bot)
        )
        self._api: telegram.Bot | None = None
        self._requests: tuple[AiohttpRequest, ...] = ()
        self.progress = Resumable()
        self.downloads = Downloader("Telegram", self.options.request_timeout)

    @property
    def api(self) -> telegram.Bot:
        """The PTB client, every call routed to ``api_base_url`` (built on first use)."""
        if self._api is None:
            timeout = self.options.request_timeout
            self._requests = (AiohttpRequest(64, timeout), AiohttpRequest(2, timeout))
            base = self.options.api_base_url
            self._api = telegram.Bot(
                self.options.bot_token.get_secret_value(),
                base_url=f"{base}/bot",
                base_file_url=f"{base}/file/bot",
                request=self._requests[0],
                get_updates_request=self._requests[1],
            )
        return self._api

    # lifecycle ----------------------------------------------------------------------------------
    async def start(self, context: ChannelContext) -> None:
        await super().start(context)
        if not self.rules.username:
            try:
                await self.learn_username()
            except SendError as exc:
                log.warning("Telegram getMe failed", channel=self.name, reason=exc.reason)

    async def stop(self) -> None:
        await self.downloads.close()
        if self._api is not None:
            api, self._api = self._api, None
            await api.shutdown()
            for request in self._requests:  # the Bot shuts them only if it was initialized
                await request.shutdown()

    async def learn_username(self) -> telegram.User:
        """``getMe``: the bot's @username, needed to see mentions in groups."""
        try:
            me = await self.api.get_me()
        except tg.TelegramError as exc:
            raise self.scrub.send_error(exc) from None
        self.rules = dataclasses.replace(self.rules, username=(me.username or "").lower())
        return me

    async def check(self) -> str:
        """``getMe``: the bot's name, or a plain reason (never the token)."""
        try:
            me = await self.learn_username()
        except SendError as exc:
            failed = exc.__context__  # the Bot API's error, hidden by ``from None``
            if isinstance(failed, tg.NetworkError) and not isinstance(failed, tg.BadRequest):
                what = failed.message.removeprefix("aiohttp.")  # no answer at all: offline, DNS, timeout
                raise SendError(f"cannot reach Telegram at {self.options.api_base_url} ({what})") from None
            raise
        return f"Telegram bot @{me.username} (id {me.id})"

    # inbound ------------------------------------------------------------------------------------
    async def verify(self, request: WebhookRequest) -> None:
        given = next((v for k, v in request.headers.items() if k.lower() == SECRET_HEADER.lower()), None)
        if not matches(given, self.options.webhook_secret.get_secret_value()):
            raise Forbidden("wrong or missing secret token")
        if request.content_type != JSON:
            raise UnsupportedMediaType(f"expected {JSON}")

    def parse(self, request: WebhookRequest) -> Received:
        return self.parse_update(readable(lambda: parse.decode(request.body)))

    def parse_update(self, update: Update) -> Received:
        """An update from the webhook or from long polling: what to answer, and what changed (the
        bot blocked or restarted, a group that moved)."""
        return readable(lambda: parse.received(update, self.rules))

    # outbound -----------------------------------------------------------------------------------
    async def send(self, conversation: Conversation, part: Part) -> str | None:
        """Send the text (HTML, else plain) then each attachment; a retried part resumes."""
        steps: list[Step] = []
        if part.text.strip():
            steps.append(lambda chat: self._send_text(chat, part.text))
        for attachment in part.attachments:
            steps.append(lambda chat, a=attachment: self._send_file(chat, a))  # type: ignore[misc]
        chat: int | str = conversation.person.address

        async def run(step: Step) -> str:
            nonlocal chat  # a group that became a supergroup moves the rest of the part with it
            chat, message = await self._call(conversation, chat, step)
            return str(message.message_id)

        return await self.progress.run(part.id, [functools.partial(run, step) for step in steps])

    async def fetch(self, media: Media, limit: int) -> AsyncIterator[bytes]:
        """``getFile``, then its file path from the Bot API server. The file URL holds the bot
        token: it is never logged, and no failure reason quotes it."""
        limit = min(limit, MAX_FILE)
        if media.size is not None and media.size > limit:
            raise FileTooLarge(limit)
        try:
            found = await self.api.get_file(media.ref)
        except tg.BadRequest as exc:
            if "too big" in exc.message.lower():
                raise FileTooLarge(limit) from None
            raise SendError(f"Telegram: {self.scrub(exc.message)}", final=True) from None
        except tg.TelegramError as exc:
            raise self.scrub.send_error(exc) from None
        url = found.file_path or ""  # PTB made it the file URL: api_base_url/file/bot<token>/<path>
        if not url.startswith(("http://", "https://")):
            raise SendError("Telegram gave no file path to download", final=True)
        async for chunk in self.downloads.stream(url, limit):
            yield chunk

    async def typing(self, conversation: Conversation) -> None:
        chat = conversation.person.address
        if self.limiter.paused(chat):
            return
        try:
            await self.api.send_chat_action(chat, ChatAction.TYPING)
        except tg.RetryAfter as exc:
            self.limiter.pause(chat, retry_after(exc))
        except tg.TelegramError as exc:  # only a hint: the send itself reports real failures
            log.debug("Telegram typing failed", channel=self.name, reason=self.scrub(exc.message))

    async def _call(
        self, conversation: Conversation, chat: int | str, step: Step
    ) -> tuple[int | str, telegram.Message]:
        """Run one Bot API call within the flood limits; map failures for the core."""
        for _ in range(2):  # the second round only after a group -> supergroup migration
            await self._throttle(str(chat))
            try:
                return chat, await step(chat)
            except tg.ChatMigrated as exc:
                log.info("group moved", channel=self.name)
                await self.context.report([ChatMoved(str(chat), str(exc.new_chat_id))])
                chat = exc.new_chat_id
            except tg.RetryAfter as exc:
                seconds = retry_after(exc)
                self.limiter.pause(str(chat), seconds)
                raise SendError("Telegram flood control (429)", retry_after=seconds) from None
            except tg.TelegramError as exc:
                raise self.scrub.send_error(exc) from None
        raise SendError("Telegram: the group moved more than once")

    async def _throttle(self, chat: str) -> None:
        while (wait := self.limiter.reserve(chat)) > 0:
            if wait > self.options.max_wait:
                raise SendError("Telegram flood limit", retry_after=wait)
            await asyncio.sleep(wait)

    async def _send_text(self, chat: int | str, text: str) -> telegram.Message:
        try:
            return await self.api.send_message(chat, to_html(text), parse_mode=ParseMode.HTML)
        except tg.BadRequest as exc:
            if not is_bad_markup(exc):
                raise
            log.info("Telegram refused the markup; sent as plain text", channel=self.name, reason=exc.message)
            return await self.api.send_message(chat, text)

    def speaks(self, conversation: Conversation) -> bool:
        return True  # sendVoice

    async def _send_file(self, chat: int | str, attachment: Attachment) -> telegram.Message:
        """As a voice note (OGG/Opus), a photo (images) or a document, by URL; if Telegram cannot
        fetch it, as a link."""
        senders: list[Callable[..., Awaitable[telegram.Message]]] = [self.api.send_document]
        if attachment.is_image:
            senders.insert(0, self.api.send_photo)
        elif attachment.content_type == VOICE:
            senders.insert(0, self.api.send_voice)
        for sender in senders:
            try:
                return await sender(chat, attachment.url)
            except tg.BadRequest as exc:
                if is_gone(exc):
                    raise
                log.info("Telegram could not send the file", channel=self.name, reason=exc.message)
        return await self.api.send_message(chat, f"{attachment.name}: {attachment.url}")
