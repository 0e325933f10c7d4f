"""``POST /api/trigger_bot``: the whole seed request, as OCS's own trigger_bot answers it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bridge.channel import Unreachable
from fakes.ocs import EXPERIMENT
from tests.harness import Harness, eventually

KEY = {"X-api-key": "k3y"}


def body(**changes: Any) -> dict[str, Any]:
    values = {"identifier": "ada", "platform": "test", "experiment": EXPERIMENT, "message_text": "Hello!"}
    return {k: v for k, v in (values | changes).items() if v is not None}


async def trigger(
    h: Harness, status: int = 200, headers: dict[str, str] | None = None, **changes: Any
) -> Any:
    response = await h.client.post(
        "/api/trigger_bot", json=body(**changes), headers={**KEY, **(headers or {})}
    )
    answer = await response.json()
    assert response.status == status, answer
    return answer


async def test_message_text_opens_a_session_and_answers_with_it(bridge):
    h = await bridge(bridge_api_key="k3y")
    answer = await trigger(h)
    [session] = h.ocs.sessions.values()
    assert answer == {
        "session_id": session.id,
        "url": f"{h.ocs.url}/api/sessions/{session.id}/",
        "team": {"name": "Bridge Team", "slug": "bridge-team"},
        "channel": "test",
    }
    assert await h.replies("ada", 1) == ["Hello!"]
    await h.say("ada", "thanks")  # the person's answer goes on in that session
    assert await h.replies("ada", 2) == ["Hello!", "bot: thanks"]
    assert h.ocs.messages(session.id) == ["thanks"]


async def test_prompt_text_is_answered_by_the_bot_in_the_persons_session(bridge):
    h = await bridge(bridge_api_key="k3y")
    await h.say("ada", "hi")
    await h.replies("ada", 1)
    [session] = h.ocs.sessions.values()
    answer = await trigger(h, message_text=None, prompt_text="Ask how the exam went")
    assert answer["session_id"] == session.id
    assert await h.replies("ada", 2) == ["bot: hi", "bot: Ask how the exam went"]
    assert h.ocs.messages(session.id) == ["hi", "Ask how the exam went"]


@pytest.mark.parametrize(
    ("changes", "detail"),
    [
        ({"identifier": None}, "identifier: This field is required."),
        ({"platform": None}, "platform: This field is required."),
        ({"experiment": None}, "experiment: This field is required."),
        ({"prompt_text": "Ask"}, "Provide either 'prompt_text' or 'message_text', not both."),
        ({"message_text": None}, "Either 'prompt_text' or 'message_text' must be provided."),
        ({"message_text": ""}, "message_text: This field may not be blank."),
        ({"identifier": 42}, "identifier: Not a valid string."),
        ({"start_new_session": "yes"}, "start_new_session: Must be a valid boolean."),
        ({"session_data": [1]}, 'session_data: Expected a dictionary of items but got type "list".'),
        ({"participant_data": "x"}, 'participant_data: Expected a dictionary of items but got type "str".'),
        (
            {"session_data": {"page_context": {"url": "/"}}},
            "session_data: The 'page_context' key cannot be set directly in session_data; "
            "use page_context instead.",
        ),
    ],
)
async def test_validation_errors_use_ocs_wording(bridge, changes, detail):
    h = await bridge(bridge_api_key="k3y")
    answer = await trigger(h, 400, **changes)
    assert answer == {"detail": detail}
    await h.idle()
    assert h.channel.sent == [] and h.ocs.sessions == {}


async def test_unknown_experiment_or_channel_is_a_404(bridge):
    h = await bridge(bridge_api_key="k3y")
    assert (await trigger(h, 404, experiment="not-mine"))["detail"] == "unknown experiment 'not-mine'"
    assert (await trigger(h, 404, platform="fax"))["detail"] == "unknown channel 'fax'"


async def test_start_new_session_ends_the_old_one(bridge):
    h = await bridge(bridge_api_key="k3y")
    await h.say("ada", "hi")
    await h.replies("ada", 1)
    [old] = h.ocs.sessions.values()
    answer = await trigger(h, start_new_session=True, message_text=None, prompt_text="Start the new module")
    assert old.ended
    new = h.ocs.sessions[answer["session_id"]]
    assert new is not old and not new.ended
    await h.replies("ada", 2)
    await h.say("ada", "ok")
    await h.replies("ada", 3)
    assert h.ocs.messages(new.id) == ["Start the new module", "ok"]


async def test_session_data_participant_data_and_page_context_are_merged_into_the_state(bridge):
    h = await bridge(bridge_api_key="k3y")
    await h.say("ada", "hi")
    await h.replies("ada", 1)
    [session] = h.ocs.sessions.values()
    session.state["course"] = "math"  # set in OCS meanwhile: a merge keeps it
    await trigger(
        h,
        session_data={"week": 3},
        participant_data={"grade": "B"},
        page_context={"url": "https://school.example/unit-3"},
    )
    await trigger(h, participant_data={"age": 14}, page_context={"product": "p-9"})
    state = session.state
    assert state["user_id"] == "ada" and state["course"] == "math" and state["week"] == 3
    assert state["participant_data"] == {"grade": "B", "age": 14}  # kept with the person, merged
    assert state["page_context"] == {"url": "https://school.example/unit-3", "product": "p-9"}
    patches = [c for c in h.ocs.calls if c.method == "PATCH"]
    assert len(patches) == 2 and all("/update_state/" in c.path for c in patches)


async def test_idempotency_key_makes_a_retried_call_deliver_once(bridge):
    h = await bridge(bridge_api_key="k3y")
    retry = {"Idempotency-Key": "reminder-2026-12-01"}
    first = await trigger(h, headers=retry, start_new_session=True, message_text="Exam tomorrow")
    again = await trigger(h, headers=retry, start_new_session=True, message_text="Exam tomorrow")
    assert again["session_id"] == first["session_id"] and len(h.ocs.sessions) == 1
    await trigger(h, headers={"Idempotency-Key": "another"}, message_text="Good luck")
    assert await h.replies("ada", 2) == ["Exam tomorrow", "Good luck"]
    await h.idle()
    assert h.channel.texts_to("ada") == ["Exam tomorrow", "Good luck"]


async def test_a_person_who_blocked_the_bot_is_a_400(bridge):
    h = await bridge(bridge_api_key="k3y")
    h.channel.failures = [Unreachable("bot was blocked by the user")]
    await h.say("ada", "hi")
    await eventually(lambda: h.channel.failures == [], what="the failed send")
    await h.idle()  # the block is noted
    answer = await trigger(h, 400)
    assert "blocked the bot or opted out" in answer["detail"]


async def test_500_triggers_to_100_people_16_at_a_time_arrive_once_in_order(bridge):
    h = await bridge(bridge_api_key="k3y")
    people, rounds = [f"p{i}" for i in range(100)], 5
    gate = asyncio.Semaphore(16)

    async def one(person: str, n: int) -> None:
        async with gate:  # first come, first served: a person's triggers are sent one after the other
            kind = {"message_text": f"m{n}"} if n % 2 == 0 else {"message_text": None, "prompt_text": f"p{n}"}
            await trigger(h, identifier=person, **kind)

    await asyncio.gather(*(one(person, n) for n in range(rounds) for person in people))
    expected = [f"m{n}" if n % 2 == 0 else f"bot: p{n}" for n in range(rounds)]
    for person in people:
        assert await h.replies(person, rounds, timeout=60) == expected
    await h.idle()
    assert len(h.channel.sent) == len(people) * rounds


ODD_VALUES = [None, 1, 1.5, True, [], {}, [{}], "x" * 300, "\x00", "\ud800"]


async def test_no_value_of_any_field_makes_a_500(bridge):
    h = await bridge(bridge_api_key="k3y")
    base = body(
        prompt_text=None, start_new_session=False, session_data={}, participant_data={}, page_context={}
    )
    for name in base:
        for value in ODD_VALUES:
            response = await h.client.post("/api/trigger_bot", json=base | {name: value}, headers=KEY)
            assert response.status in (200, 400, 404), (name, value, await response.text())
            assert "detail" in await response.json() or response.status == 200
    schedule = {"id": None, "name": "n", "prompt": "p", "date": "2030-01-01T00:00:00Z", "delete": False}
    for name in schedule:
        for value in ODD_VALUES:
            entry = {"experiment": EXPERIMENT, "data": {}, "schedules": [schedule | {name: value}]}
            update = {"identifier": "ada", "platform": "test", "name": "Ada", "data": [entry]}
            response = await h.client.post("/api/participants", json=update, headers=KEY)
            assert response.status in (200, 400, 404), (name, value, await response.text())
    for params in ({"page_size": "0"}, {"cursor": "\x00"}, {"identifier": "\x00"}, {"platform": "é" * 500}):
        response = await h.client.get("/api/participants", params=params, headers=KEY)
        assert response.status in (200, 400), (params, await response.text())
