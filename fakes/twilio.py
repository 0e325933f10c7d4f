"""A fake Twilio REST API over real HTTP (127.0.0.1, port 0).

``POST {prefix}/2010-04-01/Accounts/{sid}/Messages.json`` records every call (form parameters,
repeated ``MediaUrl`` kept, basic-auth user) and answers 201 with a message resource, or a
scripted error in Twilio's JSON shape ``{"code", "message", "more_info", "status"}``.
``GET {prefix}/2010-04-01/Accounts/{sid}.json`` answers the account. Opted-out numbers get 21610
on every send, like Twilio after STOP. WhatsApp addresses in ``outside_window`` get 63016 for a
free-form message and take only a template (``ContentSid`` of one of ``templates``, whose
variables ``GET {prefix}/v1/Content/{sid}`` answers like Twilio's Content API). A person's media
(``add_media``) is at ``{prefix}/2010-04-01/Accounts/{sid}/Messages/{MM}/Media/{ME}``, which takes
the account's basic auth and redirects, as Twilio does, to a second loopback server (its storage)
that refuses any request carrying credentials::

    async with FakeTwilio(prefix="/tw") as tw:
        tw.fail(63016, to="whatsapp:+15551230001")
        tw.opt_out("+15551230001")
        ...
        assert tw.bodies("+15551230001") == ["bot: hello"]
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import BasicAuth, hdrs, web
from multidict import MultiDict
from twilio.request_validator import RequestValidator

from fakes.server import serve_locally

ACCOUNT_SID = "AC0123456789abcdef0123456789abcdef"
AUTH_TOKEN = "f00dfeed0123456789abcdeff00dfeed"
FORM = "application/x-www-form-urlencoded"

ERRORS: dict[int, tuple[int, str]] = {  # code -> (HTTP status, Twilio's message)
    20003: (401, "Authenticate"),
    20404: (404, "The requested resource was not found"),
    20429: (429, "Too Many Requests"),
    20500: (500, "Internal Server Error"),
    21211: (400, "The 'To' number +15550000000 is not a valid phone number."),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21655: (400, "The ContentSid is Invalid."),
    63016: (
        400,
        "Failed to send freeform message because you are outside the allowed window. "
        "If you are using WhatsApp, please use a Message Template.",
    ),
}


@dataclass
class Sent:
    """One ``Messages.json`` call."""

    params: MultiDict[str]
    user: str  # basic-auth user
    at: float  # time.monotonic()
    status: int = 201
    sid: str = ""

    @property
    def to(self) -> str:
        return self.params.get("To", "")

    @property
    def sender(self) -> str:
        return self.params.get("From", "")

    @property
    def body(self) -> str:
        return self.params.get("Body", "")

    @property
    def media(self) -> list[str]:
        return self.params.getall("MediaUrl", [])

    @property
    def template(self) -> str:
        return self.params.get("ContentSid", "")

    @property
    def variables(self) -> dict[str, str]:
        return dict(json.loads(self.params.get("ContentVariables", "{}")))


@dataclass
class Rule:
    code: int
    when: Callable[[MultiDict[str]], bool]
    times: int | None = 1  # None: always


@dataclass
class FakeTwilio:
    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN
    prefix: str = ""
    friendly_name: str = "Bridge test account"
    url: str = ""
    log: list[Sent] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    opted_out: set[str] = field(default_factory=set)
    outside_window: set[str] = field(default_factory=set)  # WhatsApp people who have not written for 24 h
    templates: dict[str, dict[str, str]] = field(default_factory=dict)  # ContentSid -> its variables
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # ME sid -> (bytes, content type)
    downloads: list[str] = field(default_factory=list)  # ME sids the storage served, in order
    storage_url: str = ""
    _runner: web.AppRunner | None = None
    _storage: web.AppRunner | None = None

    async def __aenter__(self) -> FakeTwilio:
        app = web.Application()
        base = f"{self.prefix.rstrip('/')}/2010-04-01/Accounts/{{sid}}"
        app.router.add_post(base + "/Messages.json", self._create)
        app.router.add_get(base + ".json", self._account)
        app.router.add_get(f"{self.prefix.rstrip('/')}/v1/Content/{{sid}}", self._content)
        app.router.add_get(base + "/Messages/{message}/Media/{media}", self._media)
        storage = web.Application()
        storage.router.add_get("/media/{media}", self._stored)
        self._storage, self.storage_url = await serve_locally(storage)
        self._runner, self.url = await serve_locally(app, self.prefix.rstrip("/"))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for runner in (self._runner, self._storage):
            if runner is not None:
                await runner.cleanup()

    # scripting --------------------------------------------------------------------------------
    def fail(self, code: int, *, to: str | None = None, times: int | None = 1) -> None:
        """The next ``times`` sends (to ``to``, if given) answer Twilio error ``code``."""
        self.rules.append(Rule(code, lambda p: to is None or p.get("To") == to, times))

    def add_media(self, content: bytes, content_type: str) -> str:
        """A file a person sent: its ``MediaUrl`` (the webhook's ``MediaUrl0``)."""
        sid = "ME" + secrets.token_hex(16)
        self.media[sid] = (content, content_type)
        message = "MM" + secrets.token_hex(16)
        return f"{self.url}/2010-04-01/Accounts/{self.account_sid}/Messages/{message}/Media/{sid}"

    def opt_out(self, number: str) -> None:
        self.opted_out.add(number)

    def opt_in(self, number: str) -> None:
        self.opted_out.discard(number)

    # inspection -------------------------------------------------------------------------------
    def sent(self, to: str | None = None) -> list[Sent]:
        """Accepted sends (201), in order."""
        return [s for s in self.log if s.status == 201 and (to is None or s.to == to)]

    def bodies(self, to: str | None = None) -> list[str]:
        return [s.body for s in self.sent(to)]

    def attempts(self, to: str | None = None) -> list[Sent]:
        return [s for s in self.log if to is None or s.to == to]

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; sends: {[(s.status, s.to, s.body[:40]) for s in self.log]}")
            await asyncio.sleep(0.01)

    # HTTP -------------------------------------------------------------------------------------
    def _authorized(self, request: web.Request) -> str | None:
        try:
            auth = BasicAuth.decode(request.headers.get(hdrs.AUTHORIZATION, ""))
        except ValueError:
            return None
        ok = auth.login == self.account_sid == request.match_info["sid"] and auth.password == self.auth_token
        return auth.login if ok else None

    async def _account(self, request: web.Request) -> web.Response:
        if self._authorized(request) is None:
            return _error(20003)
        return web.json_response(
            {"sid": self.account_sid, "friendly_name": self.friendly_name, "status": "active", "type": "Full"}
        )

    async def _create(self, request: web.Request) -> web.Response:
        params = MultiDict((await request.post()).items())
        sent = Sent(MultiDict((k, str(v)) for k, v in params.items()), "", time.monotonic())
        self.log.append(sent)
        user = self._authorized(request)
        if user is None:
            sent.status = 401
            return _error(20003)
        sent.user = user
        code = self._scripted(sent.params)
        if code is None and sent.to in self.opted_out:
            code = 21610
        if code is None and not sent.to:
            code = 21604
        if code is None and sent.template and sent.template not in self.templates:
            code = 21655
        if code is None and not sent.template and sent.to in self.outside_window:
            code = 63016
        if code is not None:
            sent.status = ERRORS.get(code, (400, ""))[0]
            return _error(code)
        sent.sid = "SM" + secrets.token_hex(16)
        return web.json_response(self._resource(sent), status=201)

    async def _content(self, request: web.Request) -> web.Response:
        try:
            auth = BasicAuth.decode(request.headers.get(hdrs.AUTHORIZATION, ""))
        except ValueError:
            return _error(20003)
        if (auth.login, auth.password) != (self.account_sid, self.auth_token):
            return _error(20003)
        sid = request.match_info["sid"]
        if sid not in self.templates:
            return _error(20404)
        return web.json_response(
            {
                "sid": sid,
                "account_sid": self.account_sid,
                "friendly_name": "reminder",
                "language": "en",
                "variables": self.templates[sid],
                "types": {
                    "twilio/text": {"body": "Hello {{1}}, we have a message for you. Reply to see it."}
                },
                "url": f"{self.url}/v1/Content/{sid}",
                "date_created": "2026-01-01T00:00:00Z",
                "date_updated": "2026-01-01T00:00:00Z",
                "links": {},
            }
        )

    async def _media(self, request: web.Request) -> web.Response:
        if self._authorized(request) is None:
            return _error(20003)
        sid = request.match_info["media"]
        if sid not in self.media:
            return _error(20404)
        raise web.HTTPTemporaryRedirect(f"{self.storage_url}/media/{sid}")

    async def _stored(self, request: web.Request) -> web.Response:
        if hdrs.AUTHORIZATION in request.headers:  # the account's credentials must not reach storage
            return web.Response(status=400, text="Only one auth mechanism allowed")
        sid = request.match_info["media"]
        if sid not in self.media:
            return web.Response(status=404)
        self.downloads.append(sid)
        content, content_type = self.media[sid]
        return web.Response(body=content, content_type=content_type)

    def _scripted(self, params: MultiDict[str]) -> int | None:
        for rule in self.rules:
            if rule.when(params):
                if rule.times is not None:
                    rule.times -= 1
                    if rule.times <= 0:
                        self.rules.remove(rule)
                return rule.code
        return None

    def _resource(self, sent: Sent) -> dict[str, Any]:
        now = formatdate(usegmt=True)
        return {
            "sid": sent.sid,
            "account_sid": self.account_sid,
            "to": sent.to,
            "from": sent.sender or None,
            "messaging_service_sid": sent.params.get("MessagingServiceSid"),
            "body": sent.body,
            "status": "queued",
            "num_media": str(len(sent.media)),
            "num_segments": "1",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "date_created": now,
            "date_updated": now,
            "date_sent": None,
            "error_code": None,
            "error_message": None,
            "price": None,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sent.sid}.json",
        }


def _error(code: int) -> web.Response:
    status, message = ERRORS.get(code, (400, f"Error {code}"))
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return web.json_response(body, status=status)


# signed webhooks ---------------------------------------------------------------------------------
PAYLOADS = Path(__file__).resolve().parents[1] / "tests" / "payloads" / "twilio"  # recorded
_sids = itertools.count(1)


def sign(url: str, form: MultiDict[str], token: str = AUTH_TOKEN) -> str:
    """``X-Twilio-Signature`` the way Twilio computes it."""
    return str(RequestValidator(token).compute_signature(url, form))


def payload(name: str, **changes: str) -> MultiDict[str]:
    """A recorded-shape webhook with a fresh MessageSid; ``changes`` replace (or add) fields."""
    from urllib.parse import parse_qsl

    form = MultiDict(parse_qsl((PAYLOADS / f"{name}.form").read_text(), keep_blank_values=True))
    if name != "status":
        sid = f"SM{next(_sids):032x}"
        for key in ("MessageSid", "SmsMessageSid", "SmsSid"):
            if key in form:
                form[key] = sid
    for key, value in changes.items():
        form[key] = value
    return form


def sms(body: str, sender: str = "+15551230001", to: str = "+15557654321", **changes: str) -> MultiDict[str]:
    return payload("sms", Body=body, From=sender, To=to, **changes)


def whatsapp(body: str, sender: str = "whatsapp:+15551230001", **changes: str) -> MultiDict[str]:
    return payload("whatsapp", Body=body, From=sender, **changes)


def status(sid: str, state: str, error_code: str | None = None) -> MultiDict[str]:
    form = payload("status", MessageSid=sid, SmsSid=sid, MessageStatus=state, SmsStatus=state)
    if error_code is not None:
        form["ErrorCode"] = error_code
    return form


# a bridge's webhooks --------------------------------------------------------------------------------
PUBLIC_URL = "https://bridge.example.org"  # what the bridges in the tests sign their webhooks for
Unsigned = object()  # ``Harness.post_form(signature=Unsigned)``: no signature header
