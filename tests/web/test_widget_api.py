"""The web channel's Chat API through the real HTTP app, real SQLite and the real workers: conversations
and routes. Origins, keys, tokens, rate limits and uploads are in test_widget_security.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from fakes.ocs import FakeOCS
from fakes.ocs_records import FakeSession
from tests.harness import eventually
from tests.widget import MakeClient, answer, poll, send, start


async def test_a_message_gets_the_bots_answer(make_client: MakeClient) -> None:
    client = await make_client()
    started = await start(client)
    assert len(started["session_id"]) >= 32 and started["session_token"]
    task = await send(client, started["session_id"], "hello")
    body = await answer(client, started["session_id"], task)
    assert body["status"] == "complete"
    assert body["message"]["role"] == "assistant"
    assert body["message"]["content"] == "echo: hello"
    assert body["message"]["created_at"].endswith("Z")


async def test_attachments_and_links_reach_the_widget(make_client: MakeClient, fake_ocs: FakeOCS) -> None:
    def reply(text: str, session: FakeSession) -> tuple[str, list[tuple[str, Path | bytes]]]:
        return f"See [the guide](https://example.org/guide) about {text}", [("report.pdf", b"%PDF-1.4")]

    fake_ocs.reply = reply
    client = await make_client(**fake_ocs.env())
    started = await start(client, chatbot_id=fake_ocs.experiment_id)  # default chatbot id: the experiment
    body = await answer(client, started["session_id"], await send(client, started["session_id"], "taxes"))
    message = body["message"]
    assert message["content"].startswith("See [the guide](https://example.org/guide) about taxes")
    [attachment] = message["attachments"]
    assert attachment["name"] == "report.pdf" and attachment["content_url"].startswith(fake_ocs.url)
    assert f"[report.pdf]({attachment['content_url']})" in message["content"]  # widget 0.6 shows names only


async def test_history_poll_shows_proactive_messages_and_never_an_answer_twice(
    make_client: MakeClient,
) -> None:
    client = await make_client(BRIDGE_API_KEY="k3y")
    sid = (await start(client))["session_id"]
    first = await answer(client, sid, await send(client, sid, "one"))
    trigger = {"identifier": sid, "platform": "web", "experiment": "default", "message_text": "A reminder"}
    response = await client.post("/api/trigger_bot", json=trigger, headers={"X-api-key": "k3y"})
    assert response.status == 200
    # the task poll already showed "echo: one": the 30-second poll adds only the reminder
    since = first["message"]["created_at"]
    # the worker delivers it to the store: the poll shows it once it is there
    polled = await eventually(lambda: poll(client, sid, since=since), what="the reminder on the poll")
    assert [m["content"] for m in polled["messages"]] == ["A reminder"]
    assert polled["session_status"] == "active" and polled["has_more"] is False
    everything = await (await client.get(f"/api/chat/{sid}/poll/")).json()
    said = [(m["role"], m["content"]) for m in everything["messages"]]
    assert said == [("user", "one"), ("assistant", "echo: one"), ("assistant", "A reminder")]


async def test_an_answer_the_widget_never_fetched_reaches_it_through_history(make_client: MakeClient) -> None:
    client = await make_client()
    sid = (await start(client))["session_id"]
    await send(client, sid, "lost in a page reload")
    # the echo bot answers meanwhile; the question shows with its answer

    async def both() -> dict | None:
        polled = await poll(client, sid)
        return polled if polled and len(polled["messages"]) == 2 else None

    polled = await eventually(both, what="the question and the echo bot's answer on the poll")
    said = [(m["role"], m["content"]) for m in polled["messages"]]
    assert said == [("user", "lost in a page reload"), ("assistant", "echo: lost in a page reload")]


async def test_each_start_is_a_new_conversation_and_bot_session(
    make_client: MakeClient, fake_ocs: FakeOCS
) -> None:
    client = await make_client(**fake_ocs.env())
    first = (await start(client, fake_ocs.experiment_id))["session_id"]
    await answer(client, first, await send(client, first, "hi"))
    second = (await start(client, fake_ocs.experiment_id))["session_id"]  # the widget's "new chat"
    await answer(client, second, await send(client, second, "hi again"))
    assert first != second
    assert sorted(len(s.messages) for s in fake_ocs.sessions.values()) == [2, 2]  # two OCS sessions
    older, newer = sorted(fake_ocs.sessions.values(), key=lambda s: s.created_at)
    assert older.ended and not newer.ended  # "new chat" ended the participant's earlier OCS session


async def test_a_failed_answer_is_an_error_with_the_apology(
    make_client: MakeClient, fake_ocs: FakeOCS
) -> None:
    client = await make_client(**fake_ocs.env())
    sid = (await start(client, fake_ocs.experiment_id))["session_id"]
    fake_ocs.fail_next(500)
    body = await answer(client, sid, await send(client, sid, "boom"))
    assert body["status"] == "error"
    assert "Sorry" in body["error"]


# unknown things and malformed input -----------------------------------------------------------------
async def test_unknown_session_task_and_chatbot(make_client: MakeClient) -> None:
    client = await make_client()
    assert (await client.post("/api/chat/start/", json={"chatbot_id": "nope"})).status == 404
    # An unknown session is 403 on every session route, as in OCS: the widget starts a new chat.
    for unknown in ("x" * 32, "short"):
        for method, path, body in [
            ("POST", f"/api/chat/{unknown}/message/", {"message": "hi"}),
            ("GET", f"/api/chat/{unknown}/poll/", None),
            ("GET", f"/api/chat/{unknown}/sometask/poll/", None),
            ("POST", f"/api/chat/{unknown}/upload/", None),
        ]:
            response = await client.request(method, path, json=body)
            assert response.status == 403, (path, await response.text())
            assert await response.json() == {"detail": "unknown session", "error": "unknown session"}
    assert (await client.get("/api/chat/../poll/")).status == 404
    sid = (await start(client))["session_id"]
    other = (await start(client))["session_id"]
    task = await send(client, other, "not yours")
    assert (await client.get(f"/api/chat/{sid}/{task}/poll/")).status == 404
    assert (await client.get(f"/api/chat/{sid}/nosuchtask/poll/")).status == 404


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"{not json", "application/json", 400),
        (b"[]", "application/json", 400),
        (b'{"message": ""}', "application/json", 400),
        (b'{"message": 5}', "application/json", 400),
        (b"message=hi", "application/x-www-form-urlencoded", 415),
    ],
)
async def test_malformed_messages(
    make_client: MakeClient, body: bytes, content_type: str, status: int
) -> None:
    client = await make_client()
    sid = (await start(client))["session_id"]
    response = await client.post(
        f"/api/chat/{sid}/message/", data=body, headers={"Content-Type": content_type}
    )
    assert response.status == status
    assert "detail" in await response.json()


async def test_bad_since_limit_and_missing_chatbot_id(make_client: MakeClient) -> None:
    client = await make_client()
    sid = (await start(client))["session_id"]
    assert (await client.get(f"/api/chat/{sid}/poll/", params={"since": "yesterday"})).status == 400
    for limit in ("many", "0", "1001", "²", "9" * 5000):  # 400, not OCS's 500 for a non-number
        response = await client.get(f"/api/chat/{sid}/poll/", params={"limit": limit})
        assert response.status == 400 and "limit" in (await response.json())["error"]
    assert (await client.post("/api/chat/start/", json={})).status == 400


@pytest.mark.parametrize(
    "since", ["9999-12-31T23:59:59.999999-23:59", "0001-01-01T00:00:00+05:00", "0001-01-01T00:00:00+00:01"]
)
async def test_since_out_of_range_in_utc_is_400(make_client: MakeClient, since: str) -> None:
    client = await make_client()
    sid = (await start(client))["session_id"]
    response = await client.get(f"/api/chat/{sid}/poll/", params={"since": since})
    assert response.status == 400
    assert "since" in (await response.json())["detail"]
    edge = await client.get(f"/api/chat/{sid}/poll/", params={"since": "9999-12-31T23:59:59.999999+05:00"})
    assert edge.status == 200 and (await edge.json())["messages"] == []


async def test_oversized_message(make_client: MakeClient) -> None:
    client = await make_client(WIDGET_MAX_MESSAGE_CHARS="100")
    sid = (await start(client))["session_id"]
    response = await client.post(f"/api/chat/{sid}/message/", json={"message": "x" * 101})
    assert response.status == 413
    huge = await client.post(f"/api/chat/{sid}/message/", json={"message": "x" * 2_000_000})
    assert huge.status == 413  # over the body limit


# the demo page --------------------------------------------------------------------------------------
async def test_demo_page_embeds_the_widget(make_client: MakeClient) -> None:
    client = await make_client(WIDGET_EMBED_KEY="public-key", DEMO_PAGE="on")
    response = await client.get("/")
    assert response.status == 200
    page = await response.text()
    assert '<open-chat-studio-widget id="chat" chatbot-id="web"' in page
    assert "public-key" in page
    assert "cdn.jsdelivr.net/npm/open-chat-studio-widget@0.6.0" in page


async def test_a_deployed_bridge_serves_no_demo_page_unless_asked(make_client: MakeClient) -> None:
    deployed = await make_client()  # PUBLIC_URL is set: DEMO_PAGE defaults to off
    response = await deployed.get("/")
    assert response.status == 404 and (await response.json())["detail"]
    trying = await make_client(PUBLIC_URL="", DEMO_PAGE="")  # trying it out: on
    assert (await trying.get("/")).status == 200
    off = await make_client(PUBLIC_URL="", DEMO_PAGE="off")
    assert (await off.get("/")).status == 404
