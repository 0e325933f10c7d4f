"""The operator's page over HTTP (off without a key, login, CSRF, transcript, export, erase),
``METRICS_TOKEN`` and ``RETAIN_DAYS``."""

from __future__ import annotations

import os
import re
import time
from datetime import timedelta

import pytest
from aiohttp import FormData
from sqlalchemy import func, select, update

from adapters.web.uploads import META
from bridge.admin import people
from bridge.errors import ConfigError
from bridge.settings import load_settings
from bridge.store.tables import ConversationRow, MessageRow, PartRow, utcnow
from bridge.typedefs import CORE
from tests.harness import eventually
from tests.widget import start

KEY = "operator-key-0123456789"


async def log_in(h, key: str = KEY) -> str:
    """Log in through the form; the CSRF token of the overview's forms."""
    response = await h.client.post("/admin/login", data={"key": key}, allow_redirects=False)
    assert response.status == 303, await response.text()
    page = await h.client.get("/admin")
    assert page.status == 200
    return re.search(r"name='csrf' value='([0-9a-f]+)'", await page.text()).group(1)


async def test_the_page_is_off_without_a_key(bridge):
    h = await bridge()
    assert (await h.client.get("/admin")).status == 404
    response = await h.client.post("/admin/login", data={"key": ""})
    assert response.status == 404


async def test_without_login_pages_are_401_and_actions_403_and_a_wrong_key_is_refused(bridge):
    h = await bridge(admin_api_key=KEY)
    h.ocs.fail_next(500)
    await h.say("ann", "hello")
    await h.replies("ann", 1)

    page = await h.client.get("/admin")
    assert page.status == 401 and "text/html" in page.headers["Content-Type"]
    assert "name='key'" in await page.text() and "ann" not in await page.text()
    assert (await h.client.get("/admin/conversations/1")).status == 401
    assert (await h.client.get("/admin/conversations/1/export")).status == 401
    assert (await h.client.post("/admin/dead-letters/in-1/retry", data={"csrf": "x"})).status == 403
    assert (await h.client.post("/admin/login", data={"key": KEY + "x"})).status == 403
    h.client.session.cookie_jar.update_cookies({"bridge_admin": "9999999999.nonce.forged"})
    assert (await h.client.get("/admin")).status == 401
    assert len(h.channel.texts_to("ann")) == 1  # nothing was retried


async def test_login_sets_a_strict_http_only_cookie_and_forms_need_the_csrf_token(bridge):
    h = await bridge(admin_api_key=KEY)
    h.ocs.fail_next(500)
    await h.say("bea", "hello")
    await h.replies("bea", 1)
    response = await h.client.post("/admin/login", data={"key": KEY}, allow_redirects=False)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/admin" in cookie
    assert KEY not in cookie
    csrf = await log_in(h)

    refused = await h.client.post("/admin/dead-letters/in-1/retry", data={"csrf": "0" * len(csrf)})
    assert refused.status == 403
    assert (await h.client.post("/admin/dead-letters/in-1/retry")).status == 403
    await h.idle()  # a retry, had one been queued, would have gone out
    assert len(h.channel.texts_to("bea")) == 1  # still the apology only

    retried = await h.client.post("/admin/dead-letters/in-1/retry", data={"csrf": csrf})
    assert retried.status == 200 and "queued again" in await retried.text()
    assert (await h.replies("bea", 2))[1] == "bot: hello"


async def test_overview_transcript_and_export_show_what_happened(bridge):
    h = await bridge(admin_api_key=KEY)
    await h.say("cat", "<b>is it open?</b>", name="Cat")
    await h.replies("cat", 1)
    await log_in(h)

    overview = await (await h.client.get("/admin")).text()
    assert "Conversations on test" in overview and ">cat</a>" in overview
    assert re.search(r"<td>test</td><td>1</td><td>1</td><td>1</td><td>1</td><td>0</td>", overview)
    transcript = await (await h.client.get("/admin/conversations/1")).text()
    assert "&lt;b&gt;is it open?&lt;/b&gt;" in transcript and "<b>is it" not in transcript  # escaped
    assert "bot: &lt;b&gt;is it open?&lt;/b&gt;" in transcript
    assert "delivered 20" in transcript  # the reply's delivery time

    export = await h.client.get("/admin/conversations/1/export")
    assert "attachment" in export.headers["Content-Disposition"]
    data = await export.json()
    assert data["person_key"] == "cat" and data["person_name"] == "Cat"
    assert [m["text"] for m in data["messages"]] == ["<b>is it open?</b>"]
    assert [r["text"] for r in data["replies"]] == ["bot: <b>is it open?</b>"]


async def test_erase_ends_the_bot_session_and_leaves_nothing_of_the_person(bridge):
    h = await bridge(admin_api_key=KEY)
    await h.say("dan", "my secret")
    await h.say("eve", "hi")
    await h.replies("dan", 1)
    await h.replies("eve", 1)
    csrf = await log_in(h)
    [session] = [s for s in h.ocs.sessions.values() if "my secret" in h.ocs.messages(s.id)]

    refused = await h.client.post("/admin/conversations/1/erase", data={"confirm": "yes"})
    assert refused.status == 403
    erased = await h.client.post("/admin/conversations/1/erase", data={"csrf": csrf, "confirm": "yes"})
    assert erased.status == 200 and "was erased" in await erased.text()
    assert session.ended
    async with h.core.store.reading() as db:
        assert await db.scalar(select(func.count()).where(ConversationRow.person_key == "dan")) == 0
        texts = list(await db.scalars(select(MessageRow.text)))
    assert texts == ["hi"]  # the other person's conversation is untouched
    assert (await h.client.get("/admin/conversations/1")).status == 404


async def test_metrics_token_needs_the_bearer_token(bridge):
    h = await bridge(metrics_token="scrape-token-123")
    assert (await h.client.get("/metrics")).status == 401
    wrong = await h.client.get("/metrics", headers={"Authorization": "Bearer scrape-token-12"})
    assert wrong.status == 401 and wrong.headers["WWW-Authenticate"].startswith("Bearer")
    right = await h.client.get("/metrics", headers={"Authorization": "Bearer scrape-token-123"})
    assert right.status == 200 and "bridge_messages_received_total" in await right.text()


async def test_retention_empties_old_texts_only_and_keeps_the_counts(bridge, monkeypatch):
    monkeypatch.setattr(people, "RETENTION_IDLE", 0.05)
    h = await bridge(retain_days=2)
    await h.say("fay", "old question")
    await h.replies("fay", 1)
    async with h.core.store.reading() as db:
        old = await db.scalar(select(MessageRow.id))
    ago = utcnow() - timedelta(days=3)
    await h.core.store.writer(
        lambda c: (
            c.execute(update(MessageRow).values(received_at=ago)),
            c.execute(update(PartRow).values(created_at=ago)),
        )
    )
    await h.say("fay", "new question")
    await h.replies("fay", 2)

    async def texts() -> list[tuple[int, str]]:
        async with h.core.store.reading() as db:
            rows = await db.execute(select(MessageRow.id, MessageRow.text).order_by(MessageRow.id))
            return [(id, text) for id, text in rows]

    emptied: list[tuple[int, str]] = []

    async def check() -> bool:
        emptied[:] = await texts()
        return emptied[0] == (old, "")

    await eventually(check, what="the old text emptied")
    assert [t for _, t in emptied] == ["", "new question"]  # the row stays: counts do too
    async with h.core.store.reading() as db:
        parts = list(await db.scalars(select(PartRow.text).order_by(PartRow.id)))
    assert parts == ["", "bot: new question"]


async def test_a_dead_letter_whose_text_retention_removed_is_shown_so_and_its_retry_refused(
    bridge, monkeypatch
):
    monkeypatch.setattr(people, "RETENTION_IDLE", 0.05)
    h = await bridge(retain_days=2, admin_api_key=KEY)
    h.ocs.fail_next(500, times=2)
    await h.say("gus", "my old question")
    await h.replies("gus", 1)
    ago = utcnow() - timedelta(days=3)
    await h.core.store.writer(lambda c: c.execute(update(MessageRow).values(received_at=ago)))
    await h.say("hal", "a fresh question")
    await h.replies("hal", 1)
    csrf = await log_in(h)

    async def removed() -> bool:
        page = await (await h.client.get("/admin")).text()
        return "<div class='text'>(removed by retention)</div>" in page

    await eventually(removed, what="the old dead letter's text removed by retention")
    refused = await h.client.post("/admin/dead-letters/in-1/retry", data={"csrf": csrf})
    assert refused.status == 200
    assert "Not retried: retention (RETAIN_DAYS) removed that dead letter" in await refused.text()
    retried = await h.client.post("/admin/dead-letters/in-2/retry", data={"csrf": csrf})
    assert "queued again" in await retried.text()
    assert (await h.replies("hal", 2))[1] == "bot: a fresh question"
    await h.idle()
    sent = [c.json["message"] for c in h.ocs.calls if c.path.endswith("/incoming_message")]
    assert sent == ["my old question", "a fresh question", "a fresh question"]  # nothing empty
    assert len(h.channel.texts_to("gus")) == 1  # the apology only
    page = await (await h.client.get("/admin")).text()
    assert "Dead letters (1)" in page and "my old question" not in page


async def test_retention_and_erase_delete_the_widgets_uploaded_files(make_client, tmp_path):
    client = await make_client(WIDGET_UPLOADS_ENABLED="true")
    channel = client.app[CORE].channels["web"]
    ada, bob = (await start(client))["session_id"], (await start(client))["session_id"]
    old, new, ada_file = [await upload(client, sid) for sid in (bob, bob, ada)]
    uploads = tmp_path / "uploads"
    ago = time.time() - 3 * 86400
    os.utime(uploads / old / META, (ago, ago))

    assert channel.remove_files(tmp_path, before=utcnow() - timedelta(days=2)) == 1
    assert sorted(p.name for p in uploads.iterdir()) == sorted([new, ada_file])
    assert channel.remove_files(tmp_path, person_key=ada) == 1
    assert [p.name for p in uploads.iterdir()] == [new]


async def upload(client, session_id: str) -> str:
    form = FormData()
    form.add_field("files", b"some notes", filename="notes.txt", content_type="text/plain")
    response = await client.post(f"/api/chat/{session_id}/upload/", data=form)
    assert response.status == 201, await response.text()
    return str((await response.json())["files"][0]["id"])


def test_a_guessable_admin_key_stops_start_up():
    with pytest.raises(ConfigError, match=r"^ADMIN_API_KEY: .*at least 16 characters") as info:
        load_settings({"ADMIN_API_KEY": "password"})
    assert "password" not in str(info.value)
