"""The Twilio channel: SMS and WhatsApp through one Twilio account (the ``twilio`` package)."""

from __future__ import annotations

import base64
import dataclasses
import functools
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import aiohttp
import structlog
from aiohttp import web
from twilio.base.exceptions import TwilioException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.request_validator import RequestValidator, add_port, remove_port
from twilio.rest import Client

from bridge.channel import Capabilities, Channel, Resumable, SendError, WebhookRequest
from bridge.errors import BadRequest, Forbidden, UnsupportedMediaType
from bridge.logs import mask
from bridge.media.download import Downloader
from bridge.model import Blocked, Conversation, DeliveryReport, Media, Part, Person, Received
from bridge.secrets import matches
from bridge.split import split_text, utf16_length

from . import parse, window
from .errors import OUTSIDE_WINDOW, send_error
from .options import TwilioOptions
from .parse import Form

if TYPE_CHECKING:
    from bridge.settings import ChannelSettings

log = structlog.get_logger(__name__)

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
SIGNATURE_HEADER = "X-Twilio-Signature"
FORM = "application/x-www-form-urlencoded"
MAX_TEXT = 1600
MAX_MEDIA = 10  # MediaUrl parameters per message

Message = tuple[str, list[str]]  # (Body, MediaUrls) of one REST call


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class _HttpClient(AsyncTwilioHttpClient):
    """The library's client, with basic auth sent as a header (aiohttp deprecates ``auth=``)."""

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Any:
        if auth is not None:
            headers = {**(headers or {}), "Authorization": basic_auth(*auth)}
        return await super().request(method, url, params, data, headers, None, timeout, allow_redirects)


class TwilioChannel(Channel):
    """One Twilio account: webhooks in (signed forms), REST ``Messages.json`` out."""

    kind = "twilio"
    capabilities = Capabilities(
        max_text=MAX_TEXT, length=utf16_length, media_by_url=True, unblock_on_message=False
    )

    def __init__(self, name: str, settings: ChannelSettings):
        super().__init__(name, settings)
        self.options: TwilioOptions = settings.options(TwilioOptions, name)
        self._token = self.options.auth_token.get_secret_value()
        self._validator = RequestValidator(self._token)
        self._client: Client | None = None
        self.progress = Resumable()
        self.downloads = Downloader("Twilio", self.options.request_timeout)
        sid = self.options.whatsapp_template_sid
        self.template = window.Template(sid, lambda: self.client) if sid else None
        if self.template is not None:  # held WhatsApp messages wait for the person's next message
            self.capabilities = dataclasses.replace(self.capabilities, holds_until_written=True)

    @property
    def client(self) -> Client:
        """The Twilio REST client, every call routed to ``api_base_url`` (built on first use)."""
        if self._client is None:
            http = _HttpClient(timeout=self.options.request_timeout)
            sid = self.options.account_sid
            # ``environment``: never pick up TWILIO_EDGE / TWILIO_REGION behind the settings' back
            self._client = Client(sid, self._token, sid, http_client=http, environment={"-": ""})
            self._client.api.base_url = self.options.api_base_url
            self._client.content.base_url = self.options.api_base_url
        return self._client

    # lifecycle ----------------------------------------------------------------------------------
    async def stop(self) -> None:
        await self.downloads.close()
        if self._client is not None:
            client, self._client = self._client, None
            await client.http_client.close()

    async def check(self) -> str:
        """Fetch the account: its friendly name, or a plain reason (never the token)."""
        started = self._client is not None
        try:
            account = await self.client.api.v2010.accounts(self.options.account_sid).fetch_async()
        except TwilioException as exc:
            raise send_error(exc, self._token) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SendError(
                f"cannot reach Twilio at {self.options.api_base_url} ({type(exc).__name__})"
            ) from None
        finally:
            if not started:
                await self.stop()
        return f"Twilio account {account.friendly_name!r} ({account.status})"

    # inbound ------------------------------------------------------------------------------------
    async def verify(self, request: WebhookRequest) -> None:
        """Form body, valid ``X-Twilio-Signature`` over the public URL and every parameter, our account."""
        if request.content_type != FORM:
            raise UnsupportedMediaType(f"expected {FORM}")
        signature = next((v for k, v in request.headers.items() if k.lower() == SIGNATURE_HEADER.lower()), "")
        if not signature:
            raise Forbidden(f"missing {SIGNATURE_HEADER}")
        form, _ = _form(request)
        if not self._signed(request.url, form, signature):
            raise Forbidden(f"{SIGNATURE_HEADER} does not match")
        if not form.get("AccountSid"):  # signed, so from Twilio (or a replay), but not a webhook
            raise BadRequest("AccountSid: required")
        if not matches(form.get("AccountSid"), self.options.account_sid):
            raise Forbidden("AccountSid is not this channel's account")

    def _signed(self, url: str, form: Form, signature: str) -> bool:
        """Twilio signs the URL sometimes with, sometimes without the default port: accept both."""
        parsed = urlparse(url)
        return any(
            matches(signature, self._validator.compute_signature(candidate, form))
            for candidate in {remove_port(parsed), add_port(parsed)}
        )

    def parse(self, request: WebhookRequest) -> Received:
        """A message (or an opt-out / opt-in: an event, nothing for the bot), or delivery reports."""
        form, readable = _form(request)
        if not readable:
            raise BadRequest("the body is not a valid form (application/x-www-form-urlencoded, UTF-8)")
        if request.status:
            return Received(events=tuple(self._reports(form)))
        messages = parse.messages(form, self.name)  # none for an opt-out or opt-in: an event instead
        change = parse.opt_change(form)
        if change is not None:
            who = parse.person(form)
            log.info(
                "person opted out" if change else "person opted in", channel=self.name, person=mask(who.key)
            )
            return Received(events=(Blocked(who, blocked=change, remember=True),))
        if self.template is not None:
            messages = window.stamp(messages, datetime.now(UTC))
        return Received(messages=tuple(messages))

    def _reports(self, form: Form) -> list[DeliveryReport]:
        reports = parse.statuses(form)
        if self.template is not None and form.get("ErrorCode", "").strip() == str(OUTSIDE_WINDOW):
            return [dataclasses.replace(r, again=window.CLOSED) for r in reports]  # the template first
        return reports

    def ack(self) -> web.Response:
        return web.Response(text=EMPTY_TWIML, content_type="text/xml")

    async def fetch(self, media: Media, limit: int) -> AsyncIterator[bytes]:
        """``MediaUrlN`` with the account's basic auth. Twilio redirects it to a storage host,
        which gets no credentials (``Downloader`` keeps them to the URL's own host)."""
        if not media.ref.startswith(("https://", "http://")):
            raise SendError("Twilio: the media URL is not a URL", final=True)
        auth = basic_auth(self.options.account_sid, self._token)
        async for chunk in self.downloads.stream(media.ref, limit, {"Authorization": auth}):
            yield chunk

    # outbound -----------------------------------------------------------------------------------
    def person(self, identifier: str) -> Person:
        return Person(key=identifier, address=identifier, platform=parse.platform_of(identifier))

    def speaks(self, conversation: Conversation) -> bool:
        """Voice notes go as WhatsApp media, within the 24-hour window as far as the bridge knows
        (it keeps track with a template set); SMS gets text."""
        whatsapp = conversation.person.address.startswith(parse.WHATSAPP)
        return whatsapp and (self.template is None or not window.outside(conversation, datetime.now(UTC)))

    async def send(self, conversation: Conversation, part: Part) -> str | None:
        """One REST call per message of the part (usually one); a retried part resumes."""
        to = conversation.person.address
        whatsapp = to.startswith(parse.WHATSAPP)
        messages = self._messages(part, whatsapp)
        sender = self._sender(conversation, whatsapp)
        if whatsapp and self.template is not None and window.outside(conversation, datetime.now(UTC)):
            raise await self._hold(conversation, sender)
        calls = [functools.partial(self._create, to, body, media, sender) for body, media in messages]
        try:
            return await self.progress.run(part.id, calls)
        except window.OutsideWindow:
            raise await self._hold(conversation, sender) from None

    async def _hold(self, conversation: Conversation, sender: dict[str, str]) -> SendError:
        """Send the template, and the reason the part now waits for the person's next message."""
        assert self.template is not None
        params = {"to": conversation.person.address, **sender}
        sid = await self._request(params | await self.template.params(conversation.person.name))
        return window.held(self.template.sid, sid)

    def _messages(self, part: Part, whatsapp: bool) -> list[Message]:
        """WhatsApp: attachments as media (10 a message). SMS: as named links after the text."""
        urls = [a.url for a in part.attachments]
        if whatsapp:
            batches = [urls[i : i + MAX_MEDIA] for i in range(0, len(urls), MAX_MEDIA)] or [[]]
            messages: list[Message] = [(part.text if i == 0 else "", b) for i, b in enumerate(batches)]
        elif part.attachments:
            links = "\n".join(f"{a.name}: {a.url}" for a in part.attachments)
            joined = f"{part.text.rstrip()}\n\n{links}".strip()
            if utf16_length(joined) <= MAX_TEXT:
                messages = [(joined, [])]
            else:
                more = split_text(links, MAX_TEXT, utf16_length)
                messages = [(part.text, []), *[(chunk, []) for chunk in more]]
        else:
            messages = [(part.text, [])]
        return [(body, media) for body, media in messages if body.strip() or media]

    def _sender(self, conversation: Conversation, whatsapp: bool) -> dict[str, str]:
        """From: the number the person wrote to, else ``from_number``; plus the Messaging Service."""
        params: dict[str, str] = {}
        number = str(conversation.state.get(parse.STATE_TO) or "")
        if not number and self.options.from_number:
            bare = self.options.from_number.removeprefix(parse.WHATSAPP)
            number = f"{parse.WHATSAPP}{bare}" if whatsapp else bare
        if number:
            params["from_"] = number
        if self.options.messaging_service_sid:
            params["messaging_service_sid"] = self.options.messaging_service_sid
        if not params:
            raise SendError(
                "no sender for a person who has not written yet: set TWILIO_FROM_NUMBER "
                "or TWILIO_MESSAGING_SERVICE_SID",
                final=True,
            )
        return params

    async def _create(self, to: str, body: str, media: list[str], sender: dict[str, str]) -> str:
        params: dict[str, Any] = {"to": to, **sender}
        if body:
            params["body"] = body
        if media:
            params["media_url"] = media
        return await self._request(params)

    async def _request(self, params: dict[str, Any]) -> str:
        """One ``Messages.json`` call; its message sid, or the failure as a ``SendError``."""
        if self.options.status_callbacks and self.context.public_url:
            params["status_callback"] = f"{self.context.base_url}/webhooks/{self.name}/status"
        to = mask(params["to"])
        try:
            message = await self.client.messages.create_async(**params)
        except TwilioException as exc:
            error = send_error(exc, self._token)
            log.info("Twilio send failed", channel=self.name, to=to, reason=error.reason)
            if self.template is not None and getattr(exc, "code", None) == OUTSIDE_WINDOW:
                raise window.OutsideWindow(error.reason) from None
            raise error from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SendError(f"cannot reach Twilio ({type(exc).__name__})") from None
        media = len(params.get("media_url", ()))
        log.info("sent through Twilio", channel=self.name, to=to, sid=message.sid, media=media)
        return str(message.sid)


def _form(request: WebhookRequest) -> tuple[Form, bool]:
    """The posted form, decoded once per request, and whether it was valid UTF-8 (an invalid one is
    still decoded, leniently, so that its signature is checked before it is refused)."""
    if "form" not in request.memo:
        try:
            request.memo["form"], request.memo["readable"] = parse.decode(request.body), True
        except BadRequest:
            request.memo["form"], request.memo["readable"] = parse.decode(request.body, strict=False), False
    return request.memo["form"], request.memo["readable"]
