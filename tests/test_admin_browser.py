"""The operator's page in a real headless Chromium against a real ``bridge serve``: log in, read a
transcript, retry a dead letter and see it delivered, erase a person and find nothing of them left
in the database or on disk."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import FormData

from fakes.ocs import FakeOCS
from fakes.server import free_port
from tests.browser import ARGS, CHROMIUM
from tests.proc import BridgeProcess

KEY = "admin-key-for-the-browser-test"
TIMEOUT_MS = 15_000

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian chromium (scripts/system-deps.sh)"
)


class Widget:
    """One person chatting through the widget's Chat API (as the widget calls it)."""

    def __init__(self, http: aiohttp.ClientSession, url: str, chatbot_id: str):
        self.http, self.url, self.chatbot_id = http, url, chatbot_id
        self.session_id = ""
        self.headers: dict[str, str] = {}

    async def start(self) -> Widget:
        async with self.http.post(f"{self.url}/api/chat/start/", json={"chatbot_id": self.chatbot_id}) as r:
            assert r.status == 201, await r.text()
            started = await r.json()
        self.session_id = started["session_id"]
        self.headers = {"X-Session-Token": started["session_token"]}  # as widget 0.11 sends it
        return self

    async def upload(self, name: str, content: bytes) -> str:
        form = FormData()
        form.add_field("files", content, filename=name, content_type="text/plain")
        async with self.http.post(
            f"{self.url}/api/chat/{self.session_id}/upload/", data=form, headers=self.headers
        ) as r:
            assert r.status == 201, await r.text()
            return str((await r.json())["files"][0]["id"])

    async def say(self, text: str, attachments: list[str] | None = None) -> dict[str, Any]:
        """Send ``text``; the answer, once the widget's poll has it."""
        body: dict[str, Any] = {"message": text, "attachment_ids": attachments or []}
        async with self.http.post(
            f"{self.url}/api/chat/{self.session_id}/message/", json=body, headers=self.headers
        ) as r:
            assert r.status == 202, await r.text()
            task = (await r.json())["task_id"]
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            async with self.http.get(
                f"{self.url}/api/chat/{self.session_id}/{task}/poll/", headers=self.headers
            ) as r:
                answer = await r.json()
            if answer["status"] != "processing":
                return dict(answer)
            await asyncio.sleep(0.1)
        raise AssertionError(f"no answer to {text!r}")


def everything_stored(database: Path) -> str:
    """Every row of every table, as text."""
    with sqlite3.connect(database) as db:
        tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return "\n".join(repr(row) for table in tables for row in db.execute(f"SELECT * FROM {table}"))


async def test_an_operator_reads_retries_and_erases_in_a_real_browser(tmp_path: Path) -> None:
    from playwright.async_api import async_playwright, expect

    async with FakeOCS() as ocs, aiohttp.ClientSession() as http:
        port = free_port()
        database = tmp_path / "bridge.db"
        bridge = BridgeProcess(
            ["serve"],
            {
                **ocs.env(),
                "PORT": str(port),
                "PUBLIC_URL": f"http://127.0.0.1:{port}",
                "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
                "DATA_DIR": str(tmp_path / "data"),
                "WIDGET_UPLOADS_ENABLED": "true",
                "ADMIN_API_KEY": KEY,
            },
            tmp_path / "bridge.log",
        )
        await bridge.start()
        try:
            ada = await Widget(http, bridge.url, ocs.experiment_id).start()
            file_id = await ada.upload("ada-notes.txt", b"ada's private notes")
            assert (await ada.say("ada-secret-question", [file_id]))["status"] == "complete"
            bob = await Widget(http, bridge.url, ocs.experiment_id).start()
            ocs.fail_next(500)
            await bob.say("bob-needs-a-retry")  # the apology: a dead letter
            uploads = tmp_path / "data" / "uploads"
            assert (uploads / file_id / "ada-notes.txt").is_file()

            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
                page = await browser.new_page()
                screenshot = tmp_path / "admin.png"
                step = "log in"
                try:
                    await page.goto(f"{bridge.url}/admin")
                    await page.fill("input[name=key]", "not-the-key")
                    await page.click("button[type=submit]")
                    await expect(page.locator("p.notice")).to_have_text("That is not the admin key.")
                    await page.fill("input[name=key]", KEY)
                    await page.click("button[type=submit]")
                    await expect(page.locator("h1")).to_have_text("Overview")

                    step = "open a transcript"
                    await page.click(f"a:text-is('{ada.session_id}')")
                    rows = page.locator("tbody tr")
                    await expect(rows.filter(has_text="ada-secret-question").first).to_be_visible()
                    answer = rows.filter(has_text="bot").filter(has_text="ada-secret-question")
                    await expect(answer.filter(has_text="delivered")).to_have_count(1)

                    step = "retry a dead letter and see it delivered"
                    await page.click("text=Overview")
                    letter = page.locator("tr", has_text="bob-needs-a-retry").filter(
                        has_text="OCS answered 500"
                    )
                    await letter.locator("button", has_text="Retry").click()
                    await expect(page.locator("p.notice")).to_have_text("The dead letter was queued again.")
                    await page.click(f"a:text-is('{bob.session_id}')")
                    await reload_until(page, "tr.bot:has-text('bob-needs-a-retry'):has-text('delivered')")

                    step = "erase a person"
                    await page.click("text=Overview")
                    await page.click(f"a:text-is('{ada.session_id}')")
                    await page.check("input[name=confirm]")
                    await page.click("button:text('Erase this person')")
                    await expect(page.locator("p.notice")).to_have_text("The person's data was erased.")
                    await expect(page.locator(f"a:text-is('{ada.session_id}')")).to_have_count(0)
                    await expect(page.locator(f"a:text-is('{bob.session_id}')")).to_have_count(1)
                except Exception as exc:
                    await page.screenshot(path=str(screenshot))
                    raise AssertionError(f"step {step!r} failed: {exc}\nscreenshot: {screenshot}") from exc
                finally:
                    await browser.close()
        finally:
            bridge.stop()
        stored = everything_stored(database)
        assert "ada-secret-question" not in stored and ada.session_id not in stored and file_id not in stored
        assert "bob-needs-a-retry" in stored  # the other person is still there
        assert not (uploads / file_id).exists()
        [ada_session] = [
            s for s in ocs.sessions.values() if "ada-secret-question" in " ".join(ocs.messages(s.id))
        ]
        assert ada_session.ended  # the bot's session was ended too


async def reload_until(page: Any, selector: str, timeout: float = 15) -> None:
    """Reload the (script-free) page until ``selector`` shows."""
    deadline = time.monotonic() + timeout
    while not await page.locator(selector).count():
        assert time.monotonic() < deadline, f"{selector} never showed"
        await asyncio.sleep(0.2)
        await page.reload()
