"""A fake Telegram Bot API over real HTTP (127.0.0.1, port 0): ``/bot{token}/{method}``.

Every call is recorded with its parameters (JSON, form or multipart bodies alike). Answers can be
scripted per method: 429 with ``retry_after``, 403 blocked, 400 bad markup, 400 unfetchable URL.
``getUpdates`` serves queued updates for long polling. ``getFile`` knows the files a test adds
(``add_file``), served at ``/file/bot{token}/{path}`` as the Bot API does (20 MB at most)::

    async with FakeTelegram(prefix="/tg") as tg:
        channel = TelegramChannel("telegram", settings(api_base_url=tg.url))
        tg.fail("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
        tg.block(chat_id=42)
        ...
        assert [c.params["text"] for c in tg.calls("sendMessage")] == ["hello"]
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from fakes.server import serve_locally

TOKEN = "123456789:AAH-fake_token_for_tests_only_0123456789"
BOT_ID = 123456789
BOT_USERNAME = "bridge_test_bot"

BLOCKED = "Forbidden: bot was blocked by the user"
BAD_MARKUP = 'Bad Request: can\'t parse entities: unsupported start tag "x" at byte offset 0'
UNFETCHABLE = "Bad Request: wrong file identifier/HTTP URL specified"
CHAT_NOT_FOUND = "Bad Request: chat not found"
TOO_BIG = "Bad Request: file is too big"
INVALID_FILE = "Bad Request: invalid file_id"
MAX_FILE = 20 * 1000 * 1000  # getFile refuses larger files
_SENDS = {"sendMessage", "sendPhoto", "sendDocument", "sendVoice", "sendChatAction"}


@dataclass
class Call:
    method: str
    token: str
    params: dict[str, Any]  # form values stay strings; JSON bodies keep their types
    at: float  # time.monotonic() when received
    status: int = 200  # what the fake answered

    @property
    def chat_id(self) -> str:
        return str(self.params.get("chat_id", ""))


@dataclass
class Rule:
    """A scripted answer: for ``method`` calls matching ``when``, ``times`` times (None: always)."""

    method: str
    status: int
    description: str
    parameters: dict[str, Any] = field(default_factory=dict)
    when: Callable[[dict[str, Any]], bool] = lambda params: True
    times: int | None = 1


class FakeTelegram:
    def __init__(self, token: str = TOKEN, username: str = BOT_USERNAME, prefix: str = ""):
        self.token = token
        self.username = username
        self.prefix = prefix.rstrip("/")
        self.url = ""
        self.log: list[Call] = []
        self.rules: list[Rule] = []
        self.updates: list[dict[str, Any]] = []
        self.webhook: dict[str, Any] = {}
        self._new_update = asyncio.Event()
        self._ids = itertools.count(1000)
        self._runner: web.AppRunner | None = None
        self.files: dict[str, tuple[str, bytes]] = {}  # file_id -> (file_path, bytes)
        self.downloads: list[str] = []  # file paths fetched, in order

    # lifecycle --------------------------------------------------------------------------------
    async def __aenter__(self) -> FakeTelegram:
        app = web.Application()
        app.router.add_route("*", self.prefix + "/bot{token}/{method}", self._handle)
        app.router.add_get(self.prefix + "/file/bot{token}/{path:.+}", self._download)
        self._runner, self.url = await serve_locally(app, self.prefix)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._new_update.set()
        if self._runner is not None:
            await self._runner.cleanup()

    # scripting --------------------------------------------------------------------------------
    def fail(
        self,
        method: str,
        status: int,
        description: str,
        *,
        retry_after: int | None = None,
        migrate_to_chat_id: int | None = None,
        when: Callable[[dict[str, Any]], bool] | None = None,
        times: int | None = 1,
    ) -> Rule:
        parameters: dict[str, Any] = {}
        if retry_after is not None:
            parameters["retry_after"] = retry_after
        if migrate_to_chat_id is not None:
            parameters["migrate_to_chat_id"] = migrate_to_chat_id
        rule = Rule(method, status, description, parameters, when or (lambda params: True), times)
        self.rules.append(rule)
        return rule

    def block(self, chat_id: int | str) -> None:
        """The person blocked the bot: every send to that chat answers 403."""
        for method in _SENDS:
            self.fail(method, 403, BLOCKED, when=_to_chat(chat_id), times=None)

    def unfetchable(self, url: str) -> None:
        """Telegram cannot download ``url`` (as a photo or a document)."""
        for method, key in (("sendPhoto", "photo"), ("sendDocument", "document")):
            self.fail(method, 400, UNFETCHABLE, when=lambda p, k=key: p.get(k) == url, times=None)  # type: ignore[misc]

    def reject_html(self, times: int | None = 1) -> None:
        """Telegram refuses the formatting of the next message(s) sent with ``parse_mode``."""
        self.fail("sendMessage", 400, BAD_MARKUP, when=lambda p: bool(p.get("parse_mode")), times=times)

    def add_file(self, file_id: str, content: bytes, path: str = "") -> None:
        """A file a person sent: ``getFile`` finds it by ``file_id``, then it can be downloaded."""
        self.files[file_id] = (path or f"documents/file_{len(self.files)}", content)

    def push_update(self, update: dict[str, Any]) -> None:
        """Queue an update for ``getUpdates``."""
        self.updates.append(update)
        self._new_update.set()

    # inspection -------------------------------------------------------------------------------
    def calls(self, method: str | None = None, chat_id: int | str | None = None) -> list[Call]:
        return [
            c
            for c in self.log
            if (method is None or c.method == method) and (chat_id is None or c.chat_id == str(chat_id))
        ]

    def texts(self, chat_id: int | str | None = None) -> list[str]:
        """Texts of successful ``sendMessage`` calls, in order."""
        return [c.params["text"] for c in self.calls("sendMessage", chat_id) if c.status == 200]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                calls = [(c.method, c.status, str(c.params)[:80]) for c in self.log]
                raise AssertionError(f"timed out; calls: {calls}")
            await asyncio.sleep(0.01)

    # HTTP -------------------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await _params(request)
        call = Call(method, request.match_info["token"], params, time.monotonic())
        self.log.append(call)
        if call.token != self.token:
            call.status = 401
            return _error(401, "Unauthorized")
        rule = next((r for r in self.rules if r.method == method and r.when(params)), None)
        if rule is not None:
            if rule.times is not None:
                rule.times -= 1
                if rule.times <= 0:
                    self.rules.remove(rule)
            call.status = rule.status
            return _error(rule.status, rule.description, rule.parameters)
        if method == "getUpdates":
            return _ok(await self._get_updates(params))
        if method == "getFile":
            return self._get_file(str(params.get("file_id", "")))
        return _ok(self._result(method, params))

    def _result(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getMe":
            return {"id": BOT_ID, "is_bot": True, "first_name": "Bridge", "username": self.username}
        if method == "setWebhook":
            self.webhook = params
            return True
        if method == "deleteWebhook":
            self.webhook = {}
            return True
        if method == "getWebhookInfo":
            return {
                "url": self.webhook.get("url", ""),
                "has_custom_certificate": False,
                "pending_update_count": 0,
            }
        if method in {"sendMessage", "sendPhoto", "sendDocument", "sendVoice"}:
            chat_id = int(params["chat_id"])
            message: dict[str, Any] = {
                "message_id": next(self._ids),
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group", "title": "group"},
                "from": {"id": BOT_ID, "is_bot": True, "first_name": "Bridge", "username": self.username},
            }
            if method == "sendMessage":
                message["text"] = params["text"]
            elif method == "sendPhoto":
                message["photo"] = [{"file_id": "p1", "file_unique_id": "u1", "width": 1, "height": 1}]
            elif method == "sendVoice":
                message["voice"] = {"file_id": "v1", "file_unique_id": "u3", "duration": 1}
            else:
                message["document"] = {"file_id": "d1", "file_unique_id": "u2"}
            return message
        return True  # sendChatAction, setMyCommands, ...

    def _get_file(self, file_id: str) -> web.Response:
        if file_id not in self.files:
            return _error(400, INVALID_FILE)
        path, content = self.files[file_id]
        if len(content) > MAX_FILE:
            return _error(400, TOO_BIG)
        return _ok(
            {
                "file_id": file_id,
                "file_unique_id": f"u{file_id}",
                "file_size": len(content),
                "file_path": path,
            }
        )

    async def _download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        path = request.match_info["path"]
        found = next((content for p, content in self.files.values() if p == path), None)
        if found is None:
            return _error(404, "Not Found")
        self.downloads.append(path)
        return web.Response(body=found, content_type="application/octet-stream")

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        self.updates = [u for u in self.updates if u["update_id"] >= offset]  # confirmed ones go
        if not self.updates:
            self._new_update.clear()
            timeout = float(params.get("timeout") or 0)
            try:
                await asyncio.wait_for(self._new_update.wait(), timeout)
            except TimeoutError:
                return []
        return list(self.updates)


def _to_chat(chat_id: int | str) -> Callable[[dict[str, Any]], bool]:
    return lambda params: str(params.get("chat_id")) == str(chat_id)


async def _params(request: web.Request) -> dict[str, Any]:
    if request.content_type == "application/json":
        body = await request.json()
        return dict(body) if isinstance(body, dict) else {}
    if request.content_type in {"application/x-www-form-urlencoded", "multipart/form-data"}:
        form = await request.post()
        return {k: _form_value(v) for k, v in form.items()}
    return dict(request.query)


def _form_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return value.decode(errors="replace")
    return f"<file {value.filename}>"  # an uploaded file (the bridge sends files by URL)


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _error(status: int, description: str, parameters: dict[str, Any] | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=status)


# recorded updates ------------------------------------------------------------------------------
SECRET = "s3cret-Token_for-tests"
PAYLOADS = Path(__file__).resolve().parents[1] / "tests" / "payloads" / "telegram"  # recorded
_update_ids = itertools.count(700_000_000)


def payload(name: str, **changes: Any) -> dict[str, Any]:
    """A recorded update with a fresh ``update_id``; ``changes`` replace fields of its message."""
    data: dict[str, Any] = json.loads((PAYLOADS / f"{name}.json").read_text())
    data["update_id"] = next(_update_ids)
    if changes:
        data["message"].update(changes)
        if "text" in changes and "entities" not in changes:
            data["message"].pop("entities", None)
    return data


def text_update(text: str, chat_id: int = 42) -> dict[str, Any]:
    update = payload("text", text=text)
    update["message"]["chat"]["id"] = update["message"]["from"]["id"] = chat_id
    return update
