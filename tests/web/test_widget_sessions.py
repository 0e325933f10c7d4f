"""The Chat API as OCS serves it to widget 0.11 (a77c545): which sessions need their token
(``WIDGET_AUTH``), when tokens expire, OCS's error shape, the whole chat through the history poll,
ended sessions and the progress text. Through the real HTTP app, SQLite and workers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient

import adapters.web.wire
from adapters.web import WebChannel
from adapters.web.channel import STARTED
from bridge.errors import ConfigError
from bridge.settings import load_settings
from bridge.typedefs import CORE
from fakes.ocs import FakeOCS
from fakes.ocs_records import FakeSession
from tests.widget import MakeClient, answer, send, start

WIDGET_011 = {"x-ocs-widget-version": "0.11.0"}


async def start_as(client: TestClient, version: str | None, **headers: str) -> dict[str, Any]:
    """A session started by a widget of ``version`` (None: a client that names none, like a server)."""
    announced = {} if version is None else {"x-ocs-widget-version": version}
    response = await client.post(
        "/api/chat/start/",
        json={"chatbot_id": "web", "participant_remote_id": "p1"},
        headers=announced | headers,
    )
    assert response.status == 201, await response.text()
    return dict(await response.json())


def routes(sid: str, task: str) -> list[tuple[str, str, dict[str, Any]]]:
    """Every Chat API route of a session, as the widget calls it."""
    form = FormData()
    form.add_field("files", b"hello", filename="a.txt", content_type="text/plain")
    return [
        ("POST", f"/api/chat/{sid}/message/", {"json": {"message": "hi"}}),
        ("GET", f"/api/chat/{sid}/{task}/poll/", {}),
        ("GET", f"/api/chat/{sid}/poll/", {}),
        ("POST", f"/api/chat/{sid}/upload/", {"data": form}),
    ]


# tokens ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("token", "code"),
    [(None, "session_token_required"), ("not-the-token", "session_token_invalid")],
)
async def test_every_route_refuses_a_token_session_without_its_token(
    make_client: MakeClient, token: str | None, code: str
) -> None:
    client = await make_client(WIDGET_UPLOADS_ENABLED="true")
    started = await start_as(client, "0.11.0")
    sid, good = started["session_id"], {"X-Session-Token": started["session_token"]}
    task = await send(client, sid, "hi", **good)
    headers = {} if token is None else {"X-Session-Token": token}
    for method, path, kwargs in routes(sid, task):
        response = await client.request(method, path, headers=headers, **kwargs)
        body = await response.json()
        assert (response.status, body.get("code")) == (403, code), (path, body)
        assert body["error"]  # what the widget would show
    assert (await answer(client, sid, task, **good))["message"]["content"] == "echo: hi"


@pytest.mark.parametrize(
    ("level", "version", "needs_token"),
    [
        ("session_token", "0.11.0", True),
        ("session_token", "0.6.0", False),  # 0.6.0 cannot carry a token: served at embed_key
        ("session_token", None, True),  # a server starting a session for a page
        ("embed_key", "0.11.0", True),  # a widget that carries tokens always needs its own
        ("embed_key", "0.6.0", False),
        ("embed_key", None, False),
        ("none", "0.11.0", True),
        ("none", None, False),
    ],
)
async def test_which_sessions_need_their_token(
    make_client: MakeClient, level: str, version: str | None, needs_token: bool
) -> None:
    client = await make_client(WIDGET_AUTH=level)
    started = await start_as(client, version)
    response = await client.get(f"/api/chat/{started['session_id']}/poll/")
    assert response.status == (403 if needs_token else 200)
    with_token = {"X-Session-Token": started["session_token"]}
    assert (await client.get(f"/api/chat/{started['session_id']}/poll/", headers=with_token)).status == 200


async def test_the_embed_key_is_needed_unless_the_level_is_none(make_client: MakeClient) -> None:
    keyed = await make_client(WIDGET_EMBED_KEY="k-1", WIDGET_AUTH="embed_key")
    response = await keyed.post("/api/chat/start/", json={"chatbot_id": "web"}, headers=WIDGET_011)
    assert response.status == 403 and (await response.json())["error"]
    open_to_all = await make_client(WIDGET_EMBED_KEY="k-1", WIDGET_AUTH="none")
    sid = (await start_as(open_to_all, "0.6.0"))["session_id"]
    assert (await open_to_all.get(f"/api/chat/{sid}/poll/")).status == 200


async def test_a_token_expires_days_after_its_session_started(make_client: MakeClient) -> None:
    client = await make_client(WIDGET_SESSION_TOKEN_DAYS="2")
    started = await start_as(client, "0.11.0")
    sid, token = started["session_id"], {"X-Session-Token": started["session_token"]}
    store = client.server.app[CORE].store
    conversation = await store.conversation("web", sid)
    assert conversation is not None

    async def poll_started(ago: timedelta) -> tuple[int, dict[str, Any]]:
        await store.open_conversation(
            "web", conversation.person, {STARTED: (datetime.now(UTC) - ago).isoformat()}
        )
        response = await client.get(f"/api/chat/{sid}/poll/", headers=token)
        return response.status, await response.json()

    assert (await poll_started(timedelta(days=2) - timedelta(minutes=1)))[0] == 200
    status, body = await poll_started(timedelta(days=2, minutes=1))
    assert (status, body["code"]) == (403, "session_expired")


# the history poll -------------------------------------------------------------------------------------
async def test_the_history_pages_through_both_roles_in_order(make_client: MakeClient) -> None:
    client = await make_client()
    sid = (await start(client))["session_id"]
    for text in ("one", "two", "three"):
        await answer(client, sid, await send(client, sid, text))
    first = await (await client.get(f"/api/chat/{sid}/poll/", params={"limit": "4"})).json()
    said = [(m["role"], m["content"]) for m in first["messages"]]
    assert said == [("user", "one"), ("assistant", "echo: one"), ("user", "two"), ("assistant", "echo: two")]
    assert first["has_more"] is True
    after = {"since": first["messages"][-1]["created_at"], "limit": "4"}
    rest = await (await client.get(f"/api/chat/{sid}/poll/", params=after)).json()
    assert [m["content"] for m in rest["messages"]] == ["three", "echo: three"] and rest["has_more"] is False
    bad = await client.get(f"/api/chat/{sid}/poll/", params={"limit": "lots"})
    assert bad.status == 400 and "limit" in (await bad.json())["error"]


# ended sessions -----------------------------------------------------------------------------------------
async def test_new_chat_ends_the_earlier_session(make_client: MakeClient) -> None:
    client = await make_client()
    first = (await start(client))["session_id"]
    await answer(client, first, await send(client, first, "hi"))
    second = (await start(client))["session_id"]  # the same participant's "new chat"
    polled = await (await client.get(f"/api/chat/{first}/poll/")).json()
    assert polled["session_status"] == "ended"
    assert [m["content"] for m in polled["messages"]] == ["hi", "echo: hi"]  # still readable
    refused = await client.post(f"/api/chat/{first}/message/", json={"message": "still there?"})
    assert refused.status == 400 and (await refused.json())["error"] == "Session has ended"
    assert (await (await client.get(f"/api/chat/{second}/poll/")).json())["session_status"] == "active"


async def test_a_session_closed_on_the_bots_side_has_ended(make_client: MakeClient) -> None:
    client = await make_client()
    sid = (await start(client))["session_id"]
    await answer(client, sid, await send(client, sid, "hi"))
    store = client.server.app[CORE].store
    conversation = await store.conversation("web", sid)
    assert conversation is not None and conversation.session_id
    assert (await (await client.get(f"/api/chat/{sid}/poll/")).json())["session_status"] == "active"
    await store.mark_sessions(["web"], handed_off=[], closed=[conversation.session_id])  # the bot's side
    assert (await (await client.get(f"/api/chat/{sid}/poll/")).json())["session_status"] == "ended"
    # a person who writes again (widget 0.6.0 knows no "ended") is answered in a new bot session
    await answer(client, sid, await send(client, sid, "hello again"))
    assert (await (await client.get(f"/api/chat/{sid}/poll/")).json())["session_status"] == "active"


# progress -------------------------------------------------------------------------------------------
@pytest.fixture
def thinking(fake_ocs: FakeOCS) -> asyncio.Event:
    """The fake OCS answers only once the event is set."""
    release = asyncio.Event()

    async def reply(text: str, session: FakeSession) -> str:
        await release.wait()
        return f"done: {text}"

    fake_ocs.reply = reply
    return release


async def test_progress_text_while_the_bot_thinks(
    make_client: MakeClient, fake_ocs: FakeOCS, thinking: asyncio.Event, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(adapters.web.wire, "PROGRESS_EVERY", 0.3)
    client = await make_client(**fake_ocs.env(), TEXT_PROGRESS="Thinking...\nStill on it...")
    sid = (await start(client, fake_ocs.experiment_id))["session_id"]
    task = await send(client, sid, "hard question")
    shown: list[str] = []
    for _ in range(200):
        polled = await (await client.get(f"/api/chat/{sid}/{task}/poll/")).json()
        assert polled["status"] == "processing"
        shown.append(polled["message"]["content"])
        if shown[-1] == "Still on it...":
            break
        await asyncio.sleep(0.02)
    assert shown[0] == "Thinking..." and shown[-1] == "Still on it..."
    thinking.set()
    assert (await answer(client, sid, task))["message"]["content"] == "done: hard question"


async def test_no_progress_text_unless_set(
    make_client: MakeClient, fake_ocs: FakeOCS, thinking: asyncio.Event
) -> None:
    client = await make_client(**fake_ocs.env())
    sid = (await start(client, fake_ocs.experiment_id))["session_id"]
    task = await send(client, sid, "hard question")
    polled = await (await client.get(f"/api/chat/{sid}/{task}/poll/")).json()
    assert polled == {"status": "processing", "message": None}
    thinking.set()
    assert (await answer(client, sid, task))["status"] == "complete"


@pytest.mark.parametrize(("name", "value"), [("WIDGET_AUTH", "tokens"), ("WIDGET_SESSION_TOKEN_DAYS", "0")])
def test_a_bad_auth_setting_stops_start_up_naming_it(name: str, value: str) -> None:
    settings = load_settings({name: value})
    with pytest.raises(ConfigError, match=name):
        WebChannel("web", settings.channels["web"])
