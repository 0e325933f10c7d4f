"""``GET/POST /api/participants``: people, their data per chatbot, and schedules that fire once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest

from fakes.channel import RecordingChannel
from fakes.ocs import EXPERIMENT
from tests.harness import Harness

KEY = {"X-api-key": "k3y"}
FAST = {"bridge_api_key": "k3y", "worker": {"poll_interval": 0.05}}


def soon(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


async def update(h: Harness, status: int = 200, **body: Any) -> Any:
    body = {"identifier": "ada", "platform": "test"} | body
    response = await h.client.post("/api/participants", json=body, headers=KEY)
    assert response.status == status, await response.text()
    return await response.json() if status != 200 else await response.read()


async def schedule(h: Harness, status: int = 200, **fields: Any) -> Any:
    return await update(h, status, data=[{"experiment": EXPERIMENT, "schedules": [fields]}])


async def listed(h: Harness, path: str = "/api/participants", **params: str) -> Any:
    response = await h.client.get(path, params=params, headers=KEY)
    assert response.status == 200, await response.text()
    return await response.json()


async def schedules_of(h: Harness, identifier: str = "ada") -> list[dict[str, Any]]:
    [person] = (await listed(h, identifier=identifier))["results"]
    return list(person["data"][0]["schedules"])


async def test_lists_people_with_filters_and_cursor_pages(bridge):
    h = await bridge(**FAST)
    for who in ("ada", "bo", "cy"):
        await h.say(who, "hi", name=who.title())
    await h.replies("cy", 1)
    assert (await h.client.get("/api/participants")).status == 401
    everyone = await listed(h)
    assert [p["identifier"] for p in everyone["results"]] == ["ada", "bo", "cy"]
    assert everyone["results"][0] == {
        "id": everyone["results"][0]["id"],
        "identifier": "ada",
        "name": "Ada",
        "platform": "test",
        "remote_id": "",
        "data": [{"chatbot": "default", "chatbot_id": EXPERIMENT, "data": {}, "schedules": []}],
    }
    assert [p["identifier"] for p in (await listed(h, identifier="bo"))["results"]] == ["bo"]
    assert len((await listed(h, platform="test", chatbot=EXPERIMENT))["results"]) == 3
    assert (await listed(h, chatbot="another-bot"))["results"] == []
    first = await listed(h, page_size="2")
    assert [p["identifier"] for p in first["results"]] == ["ada", "bo"]
    url = urlsplit(first["next"])
    second = await listed(h, f"{url.path}?{url.query}")
    assert [p["identifier"] for p in second["results"]] == ["cy"] and second["next"] is None
    bad = await h.client.get("/api/participants/", params={"cursor": "nonsense"}, headers=KEY)
    assert bad.status == 400 and (await bad.json())["detail"] == "Invalid cursor"


async def test_data_is_merged_per_person_and_put_into_the_session_state(bridge):
    h = await bridge(**FAST)
    await h.say("ada", "hi")
    await h.replies("ada", 1)
    [session] = h.ocs.sessions.values()
    assert await update(h, data=[{"experiment": EXPERIMENT, "data": {"grade": "B"}}]) == b""
    await update(h, name="Ada L.", data=[{"experiment": EXPERIMENT, "data": {"age": 14}}])
    [person] = (await listed(h, identifier="ada"))["results"]
    assert person["name"] == "Ada L." and person["data"][0]["data"] == {"grade": "B", "age": 14}
    assert session.state["participant_data"] == {"grade": "B", "age": 14}
    assert session.state["user_id"] == "ada"  # merged into the state, not replacing it
    trigger = {"identifier": "ada", "platform": "test", "experiment": EXPERIMENT, "start_new_session": True}
    response = await h.client.post(
        "/api/trigger_bot", json=trigger | {"message_text": "New term!"}, headers=KEY
    )
    assert response.status == 200
    new = h.ocs.sessions[(await response.json())["session_id"]]
    assert new is not session and new.state["participant_data"] == {"grade": "B", "age": 14}


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"data": None}, "data: This field is required."),
        ({"data": [{"data": {}}]}, "experiment: This field is required."),
        ({"data": [{"experiment": "nope"}]}, "unknown experiment 'nope'"),
        ({"data": [{"experiment": EXPERIMENT, "schedules": [{"prompt": "x"}]}]}, "a new schedule needs"),
        (
            {"data": [{"experiment": EXPERIMENT, "schedules": [{"id": "zz", "prompt": "x"}]}]},
            "no schedule 'zz'",
        ),
        (
            {"data": [{"experiment": EXPERIMENT, "schedules": [{"prompt": "x", "date": "Monday"}]}]},
            "wrong format",
        ),
        ({"data": [{"experiment": EXPERIMENT, "schedules": [{"prompt": "x", "date": 5}]}]}, "wrong format"),
        (
            {
                "data": [
                    {
                        "experiment": EXPERIMENT,
                        "schedules": [{"prompt": "x", "date": "0001-01-01T00:00+05:00"}],
                    }
                ]
            },
            "wrong format",
        ),
    ],
)
async def test_bad_updates_are_refused(bridge, body, detail):
    h = await bridge(**FAST)
    answer = await update(h, 400 if "unknown" not in detail else 404, **body)
    assert detail in answer["detail"]


async def test_a_schedule_fires_once_at_its_date_in_the_persons_session(bridge):
    h = await bridge(**FAST)
    await h.say("ada", "hi")
    await h.replies("ada", 1)
    await schedule(h, name="check-in", prompt="Ask how the homework went", date=soon(1.0))
    [saved] = await schedules_of(h)
    assert saved["name"] == "check-in" and saved["prompt"] == "Ask how the homework went"
    await asyncio.sleep(0.5)
    assert h.channel.texts_to("ada") == ["bot: hi"]  # not before its date
    assert await h.replies("ada", 2) == ["bot: hi", "bot: Ask how the homework went"]
    await h.idle()
    assert len(h.channel.texts_to("ada")) == 2
    [session] = h.ocs.sessions.values()
    assert h.ocs.messages(session.id) == ["hi", "Ask how the homework went"]


async def test_a_date_in_the_past_fires_at_once(bridge):
    h = await bridge(**FAST)
    await schedule(h, prompt="Welcome them", date="2020-01-01T09:00:00Z")
    assert await h.replies("ada", 1, timeout=3) == ["bot: Welcome them"]


async def test_a_schedule_survives_a_restart(bridge):
    first = await bridge(**FAST)
    await schedule(first, prompt="Remind about the exam", date=soon(1.0))
    await first.client.close()
    await asyncio.sleep(1.2)
    second = await bridge(channel=RecordingChannel(), **FAST)
    assert await second.replies("ada", 1) == ["bot: Remind about the exam"]
    await second.idle()
    assert second.channel.texts_to("ada") == ["bot: Remind about the exam"]


async def test_a_schedule_is_moved_by_id_and_cancelled_by_delete(bridge):
    h = await bridge(**FAST)
    await schedule(h, name="later", prompt="Moved reminder", date=soon(3600))
    await schedule(h, name="cancelled", prompt="Never sent", date=soon(1.0))
    later, cancelled = sorted(await schedules_of(h), key=lambda s: s["date"], reverse=True)
    await schedule(h, id=cancelled["id"], delete=True)
    await schedule(h, id=later["id"], date=soon(0.5))
    assert await h.replies("ada", 1) == ["bot: Moved reminder"]
    await asyncio.sleep(1.2)  # past the cancelled one's date
    assert h.channel.texts_to("ada") == ["bot: Moved reminder"]
    [moved] = await schedules_of(h)
    assert moved["id"] == later["id"] and moved["name"] == "later"
