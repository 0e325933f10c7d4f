"""The official widget in a real headless Chromium, talking to a real ``bridge serve``.

Needs the Debian ``chromium`` package and the widget's npm files (scripts/install-widget.sh; run
here if missing). The browser may reach only the bridge: the public CDN is blocked, so the page
must work offline.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.web.demo import VENDOR_DIR, WIDGET_ENTRY
from fakes.ocs import FakeOCS
from fakes.ocs_records import FakeSession
from tests.browser import ARGS, CHROMIUM, TIMEOUT_MS, bridge_serve, wait_ready

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian chromium (scripts/system-deps.sh)"
)


@pytest.fixture(scope="module")
def widget_files() -> None:
    if not (VENDOR_DIR / WIDGET_ENTRY).is_file():
        subprocess.run([str(ROOT / "scripts" / "install-widget.sh")], check=True, timeout=120)
    assert (VENDOR_DIR / WIDGET_ENTRY).is_file(), "the widget is not installed: run scripts/install-widget.sh"


@pytest.fixture(autouse=True)
def answers_with_a_file(ocs: FakeOCS) -> None:
    def reply(text: str, session: FakeSession) -> tuple[str, list[tuple[str, Path | bytes]]]:
        return f"You said *{text}*. Read [the guide](https://example.org/guide).", [
            ("report.pdf", b"%PDF-1.4")
        ]

    ocs.reply = reply


@pytest.fixture
def bridge_url(tmp_path: Path, ocs: FakeOCS, widget_files: None) -> Iterator[str]:
    """``bridge serve`` with its demo page (PUBLIC_URL set: off unless asked)."""
    with bridge_serve(tmp_path, ocs, DEMO_PAGE="on") as url:
        yield url


async def test_chat_in_a_real_browser(bridge_url: str, ocs: FakeOCS, tmp_path: Path) -> None:
    from playwright.async_api import Page, async_playwright, expect

    bridge = bridge_url
    await wait_ready(bridge, tmp_path / "bridge.log")
    screenshot = tmp_path / "widget.png"
    scripts: list[str] = []

    async def open_chat(page: Page) -> None:
        await page.goto(bridge + "/")
        await page.locator("open-chat-studio-widget button", has_text="Chat").first.click()

    async def say(page: Page, text: str) -> None:
        textarea = page.locator("open-chat-studio-widget textarea.message-textarea")
        await textarea.fill(text)
        await textarea.press("Enter")

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = await browser.new_page()
        page.on("request", lambda r: scripts.append(r.url) if r.url.endswith(".js") else None)
        # Offline: only the bridge may be reached (no CDN fallback, no outside links).
        await page.route(
            "**/*", lambda route: route.continue_() if route.request.url.startswith(bridge) else route.abort()
        )
        widget = page.locator("open-chat-studio-widget")
        answers = widget.locator(".message-bubble-assistant")
        step = "open the demo page and the widget"
        try:
            await open_chat(page)
            step = "send a message and see the answer"
            await say(page, "hello bridge")
            answer = answers.filter(has_text="You said hello bridge")
            await expect(answer).to_be_visible(timeout=TIMEOUT_MS)
            await expect(answer.locator("em")).to_have_text("hello bridge")  # markdown rendered
            guide = answer.locator("a", has_text="the guide")
            await expect(guide).to_have_attribute("href", "https://example.org/guide")
            await expect(answer.locator(".message-attachment-name")).to_have_text("report.pdf")
            file_link = answer.locator("a", has_text="report.pdf")
            await expect(file_link).to_have_attribute("href", f"{ocs.url}/files/1/report.pdf")
            assert any("/static/vendor/open-chat-studio-widget/" in url for url in scripts), scripts
            storage_key = f"ocs-chat-session-{ocs.experiment_id}"  # chatbot id = the OCS experiment
            first_session = await page.evaluate(f"localStorage.getItem('{storage_key}')")
            assert first_session

            step = "reload and see the history"
            await open_chat(page)
            await expect(widget.locator(".message-bubble-user .chat-markdown")).to_have_text(["hello bridge"])
            await expect(answers.filter(has_text="You said hello bridge")).to_be_visible()
            await say(page, "still there")
            await expect(answers.filter(has_text="You said still there")).to_be_visible(timeout=TIMEOUT_MS)
            assert await page.evaluate(f"localStorage.getItem('{storage_key}')") == first_session

            step = "start a new chat"
            await widget.locator("button[title='Start new chat']").click()
            await widget.locator("button.confirmation-button-confirm").click()
            await expect(answers).to_have_count(0)
            await say(page, "new topic")
            await expect(answers.filter(has_text="You said new topic")).to_be_visible(timeout=TIMEOUT_MS)
            await expect(answers).to_have_count(1)
            second_session = await page.evaluate(f"localStorage.getItem('{storage_key}')")
            assert second_session and second_session != first_session
            assert sorted(len(s.messages) for s in ocs.sessions.values()) == [2, 4]  # two OCS sessions
            await page.screenshot(path=str(screenshot))
        except Exception as exc:
            await page.screenshot(path=str(screenshot))
            raise AssertionError(f"step {step!r} failed: {exc}\nscreenshot: {screenshot}") from exc
        finally:
            await browser.close()
