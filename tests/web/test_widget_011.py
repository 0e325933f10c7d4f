"""The official widget 0.11.0 (what OCS serves today) in a real headless Chromium, on a host page of
another origin, talking to a real ``bridge serve`` at the default auth level (``session_token``).

The widget is the build of OCS's source in ``../shared/widget-0.11.0`` (the npm registry here stops
at 0.6.0): without it this module is skipped, saying why. The browser may reach only the host page
and the bridge.
"""

from __future__ import annotations

import html
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import Locator, Page, async_playwright, expect

from fakes.ocs import FakeOCS
from fakes.server import serve_locally
from tests.browser import ARGS, CHROMIUM, TIMEOUT_MS, bridge_serve, wait_ready
from tests.harness import eventually
from tests.test_cli import bridge_command

SHARED = Path(__file__).resolve().parents[3] / "shared" / "widget-0.11.0"
DIST = SHARED / "dist" / "open-chat-studio-widget"
ENTRY = "open-chat-studio-widget.esm.js"

if not (DIST / ENTRY).is_file():
    pytest.skip(
        f"widget 0.11.0 is not at {DIST}: a build of OCS's source that ../shared holds beside the project",
        allow_module_level=True,
    )
if not CHROMIUM.exists():
    pytest.skip("needs Debian chromium (scripts/system-deps.sh)", allow_module_level=True)

HOST_USER = "host-user"  # the participant a host page's server starts sessions for


@pytest.fixture
async def host() -> AsyncIterator[str]:
    """The host page's server, another origin than the bridge: ``/?bridge=…&chatbot=…`` and the
    widget's attributes as further parameters; the widget's files under ``/widget/``."""

    async def page(request: web.Request) -> web.Response:
        attributes = dict(request.query)
        attributes["chatbot-id"] = attributes.pop("chatbot")
        attributes["api-base-url"] = attributes.pop("bridge")
        element = " ".join(f'{name}="{html.escape(value)}"' for name, value in attributes.items())
        return web.Response(
            content_type="text/html",
            text=f'<!doctype html><html><head><meta charset="utf-8">'
            f'<script type="module" src="/widget/{ENTRY}"></script></head><body>'
            f'<open-chat-studio-widget visible="true" {element}></open-chat-studio-widget></body></html>',
        )

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_static("/widget/", DIST)
    runner, url = await serve_locally(app)
    try:
        yield url
    finally:
        await runner.cleanup()


@pytest.fixture(autouse=True)
def says_what_it_heard(ocs: FakeOCS) -> None:
    """A bot that answers in a moment, as bots do: the widget's first poll of a new chat (sent as it
    sends the first message) is answered before the answer exists. (An instantly answering bot
    races that poll: under load the poll is read after the answer, and the widget, which shows a
    poll's messages besides its task's answer, shows it twice, with OCS as with the bridge.)"""
    ocs.reply = lambda text, session: f"You said {text}"
    ocs.latency = 0.5


@pytest.fixture
def serve(tmp_path: Path, ocs: FakeOCS, host: str) -> Iterator[Callable[..., str]]:
    """``serve(**settings)``: ``bridge serve`` allowing the host page's origin; its URL."""
    with ExitStack() as stack:
        yield lambda **env: stack.enter_context(
            bridge_serve(tmp_path, ocs, WIDGET_ALLOWED_ORIGINS=host, **env)
        )


class Widget:
    """The widget on the host page, used as a person would."""

    def __init__(self, page: Page, url: str, chatbot_id: str):
        self.page = page
        self.url = url
        self.chatbot_id = chatbot_id
        self.element = page.locator("open-chat-studio-widget")
        self.answers = self.element.locator(".message-bubble-assistant")
        self.questions = self.element.locator(".message-bubble-user")
        self.notices = self.element.locator(".message-bubble-system")
        self.textarea = self.element.locator("textarea.message-textarea")

    async def open(self) -> None:
        await self.page.goto(self.url)
        await expect(self.textarea).to_be_visible(timeout=TIMEOUT_MS)

    async def say(self, text: str) -> None:
        """Type and send ``text``, until the widget takes it: it shows what was said, or refuses a
        file. A widget busy with what came before (under load) may drop the typing or the key
        press; they are done again, never once the widget has taken the text."""
        said = self.questions.get_by_text(text, exact=True)
        refused = self.element.locator(".selected-file-error")
        taken = said.nth(await said.count()).or_(refused.nth(await refused.count()))
        for _ in range(5):
            await expect(self.textarea).to_be_enabled(timeout=TIMEOUT_MS)
            if await taken.count():
                return
            await self.textarea.fill(text)
            await self.textarea.press("Enter")
            try:
                await expect(taken).to_be_visible(timeout=3000)
                return
            except AssertionError:
                continue
        raise AssertionError(f"the widget never took {text!r}")

    def answer(self, text: str) -> Locator:
        return self.answers.filter(has_text=f"You said {text}")

    async def stored(self, what: str) -> Any:
        """What the widget keeps in localStorage: its ``session`` id or its ``token``."""
        return await self.page.evaluate(f"localStorage.getItem('ocs-chat-{what}-{self.chatbot_id}')")


@asynccontextmanager
async def widget_on(
    host: str, bridge: str, ocs: FakeOCS, tmp_path: Path, **attributes: str
) -> AsyncIterator[tuple[Widget, list[str]]]:
    """The widget on a host page that may reach only the host and the bridge, and the step under
    way (set it before each step): a failure names it, with a screenshot."""
    await wait_ready(bridge, tmp_path / "bridge.log")
    url = f"{host}/?{urlencode({'bridge': bridge, 'chatbot': ocs.experiment_id, **attributes})}"
    step = ["open the host page"]
    screenshot = tmp_path / "widget.png"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = await browser.new_page()
        await page.route(
            "**/*",
            lambda route: (
                route.continue_() if route.request.url.startswith((host, bridge)) else route.abort()
            ),
        )
        try:
            widget = Widget(page, url, ocs.experiment_id)
            await widget.open()
            yield widget, step
        except Exception as exc:
            await page.screenshot(path=str(screenshot))
            raise AssertionError(f"step {step[0]!r} failed: {exc}\nscreenshot: {screenshot}") from exc
        finally:
            await browser.close()


async def test_chat_reload_uploads_a_tampered_token_and_new_chat(
    serve: Callable[..., str], host: str, ocs: FakeOCS, tmp_path: Path
) -> None:
    bridge = serve(WIDGET_UPLOADS_ENABLED="true")
    async with widget_on(host, bridge, ocs, tmp_path, **{"allow-attachments": "true"}) as (widget, step):
        step[0] = "send a message and see the answer"
        await widget.say("hello bridge")
        await expect(widget.answer("hello bridge")).to_be_visible(timeout=TIMEOUT_MS)
        await expect(widget.answers).to_have_count(1)
        first = await widget.stored("session")
        assert first and await widget.stored("token")

        step[0] = "reload and see the history"
        await widget.open()
        await expect(widget.questions.filter(has_text="hello bridge")).to_be_visible()
        await expect(widget.answer("hello bridge")).to_be_visible()
        await widget.say("still there")
        await expect(widget.answer("still there")).to_be_visible(timeout=TIMEOUT_MS)
        assert await widget.stored("session") == first

        step[0] = "attach a file"
        await widget.element.locator("input#ocs-file-input").set_input_files(
            [{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello file"}]
        )
        await widget.say("read this")
        await expect(widget.answer("read this")).to_be_visible(timeout=TIMEOUT_MS)
        [session] = ocs.sessions.values()
        assert any("[notes.txt](" in m.content for m in session.messages), session.messages

        step[0] = "a tampered token: the widget's notice, then a new session that works"
        await widget.page.evaluate(f"localStorage.setItem('ocs-chat-token-{ocs.experiment_id}', 'tampered')")
        await widget.open()
        await widget.say("after tampering")
        await expect(widget.notices.filter(has_text="Your chat session expired")).to_be_visible(
            timeout=TIMEOUT_MS
        )
        await widget.say("once more")
        await expect(widget.answer("once more")).to_be_visible(timeout=TIMEOUT_MS)
        second = await widget.stored("session")
        assert second and second != first

        step[0] = "start a new chat"
        await widget.element.locator("button[title='Start new chat']").click()
        await widget.element.locator("button.confirmation-button-confirm").click()
        await expect(widget.answers).to_have_count(0)
        await widget.say("new topic")
        await expect(widget.answer("new topic")).to_be_visible(timeout=TIMEOUT_MS)
        await expect(widget.answers).to_have_count(1)
        assert await widget.stored("session") not in (first, second)


async def test_refused_uploads_leave_the_chat_alive(
    serve: Callable[..., str], host: str, ocs: FakeOCS, tmp_path: Path
) -> None:
    bridge = serve()  # uploads off
    async with widget_on(host, bridge, ocs, tmp_path, **{"allow-attachments": "true"}) as (widget, step):
        step[0] = "send a message"
        await widget.say("hello")
        await expect(widget.answer("hello")).to_be_visible(timeout=TIMEOUT_MS)
        session = await widget.stored("session")

        step[0] = "attach a file the bridge refuses"
        await widget.element.locator("input#ocs-file-input").set_input_files(
            [{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello file"}]
        )
        await widget.say("with a file")
        refusal = widget.element.locator(".selected-file-error")
        await expect(refusal).to_have_text("file uploads are not enabled for this chat", timeout=TIMEOUT_MS)

        step[0] = "the chat goes on without the file"
        await widget.element.locator(".selected-file-remove-button").click()
        await expect(refusal).to_have_count(0)
        await widget.say("without the file")
        await expect(widget.answer("without the file")).to_be_visible(timeout=TIMEOUT_MS)
        await expect(widget.notices.filter(has_text="expired")).to_have_count(0)
        assert await widget.stored("session") == session


async def test_a_chat_the_operator_erased_starts_anew(
    serve: Callable[..., str], host: str, ocs: FakeOCS, tmp_path: Path
) -> None:
    bridge = serve()
    async with widget_on(host, bridge, ocs, tmp_path) as (widget, step):
        step[0] = "send a message"
        await widget.say("remember me")
        await expect(widget.answer("remember me")).to_be_visible(timeout=TIMEOUT_MS)
        first = await widget.stored("session")

        step[0] = "the operator erases the person"
        env = {**ocs.env(), "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/b.db"}  # bridge serve's
        env["DATA_DIR"] = str(tmp_path / "data")  # its ./data
        erased = await bridge_command("people", "erase", "web", first, env=env)
        assert erased.returncode == 0, erased.stderr

        step[0] = "the next message: the widget's notice, then a new chat that works"
        await widget.say("still there?")
        await expect(widget.notices.filter(has_text="Your chat session expired")).to_be_visible(
            timeout=TIMEOUT_MS
        )
        await widget.say("hello again")
        await expect(widget.answer("hello again")).to_be_visible(timeout=TIMEOUT_MS)
        assert await widget.stored("session") not in (None, first)


async def start_for_the_page(http: aiohttp.ClientSession, bridge: str, ocs: FakeOCS) -> tuple[str, str]:
    """What a host page's server does: start a session through the bridge's Chat API."""
    body = {"chatbot_id": ocs.experiment_id, "participant_remote_id": HOST_USER}
    async with http.post(f"{bridge}/api/chat/start/", json=body) as response:
        assert response.status == 201, await response.text()
        started = await response.json()
    return started["session_id"], started["session_token"]


async def test_a_session_the_host_page_started_shows_its_messages_until_it_ends(
    serve: Callable[..., str], host: str, ocs: FakeOCS, tmp_path: Path
) -> None:
    bridge = serve()
    await wait_ready(bridge, tmp_path / "bridge.log")
    async with aiohttp.ClientSession() as http:
        sid, token = await start_for_the_page(http, bridge, ocs)
        headers = {"X-Session-Token": token}
        async with http.post(
            f"{bridge}/api/chat/{sid}/message/", json={"message": "ask"}, headers=headers
        ) as sent:
            task = (await sent.json())["task_id"]

        async def complete() -> bool:  # the page's server waits for the answer as the widget would
            async with http.get(f"{bridge}/api/chat/{sid}/{task}/poll/", headers=headers) as polled:
                return bool((await polled.json())["status"] == "complete")

        await eventually(complete, 10, "the answer")

        bound = {"session-id": sid, "session-token": token}
        async with widget_on(host, bridge, ocs, tmp_path, **bound) as (widget, step):
            step[0] = "see the conversation the page's server had"
            await expect(widget.questions.filter(has_text="ask")).to_be_visible(timeout=TIMEOUT_MS)
            await expect(widget.answer("ask")).to_be_visible()
            await widget.say("and more")
            await expect(widget.answer("and more")).to_be_visible(timeout=TIMEOUT_MS)

            step[0] = "the session ends: the composer is disabled"
            await start_for_the_page(http, bridge, ocs)  # the same person's next chat ends this one
            await widget.open()
            await expect(widget.notices.filter(has_text="This chat has ended.")).to_be_visible(
                timeout=TIMEOUT_MS
            )
            await expect(widget.textarea).to_be_disabled()
            await expect(widget.answer("and more")).to_be_visible()
