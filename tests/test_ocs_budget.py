"""One request budget per OCS team: messages are paced to it, history reads only take what
messages leave over, OCS's 429 pauses the whole team, and processes share one count."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from itertools import pairwise

import pytest

from bridge.bots.team_budget import TeamBudget, parse_rate
from bridge.errors import ConfigError
from bridge.metrics import Metrics
from bridge.settings import load_settings
from bridge.store import Store
from bridge.store.budget import BudgetRow
from bridge.store.db import create_engine
from fakes.ocs import EXPERIMENT, FakeOCS
from fakes.ocs_records import Call
from tests.harness import eventually, ocs_bot


def api_calls(ocs: FakeOCS) -> list[Call]:
    return [c for c in ocs.calls if not c.path.startswith("/files/")]


def is_message(call: Call) -> bool:
    return call.path.endswith("incoming_message") or (call.method == "POST" and call.path == "/api/sessions/")


def few_refused(calls: list[Call]) -> bool:
    """Hardly any request was refused: the bridge kept to the budget. (Not none: a request the
    bridge counted at the end of its window may reach OCS in the next one, and the ones in flight
    with it are refused together; without the budget, most would be.)"""
    return sum(1 for c in calls if 429 in c.status) <= len(calls) // 20


def retried(calls: list[Call]) -> list[tuple[Call, Call | None]]:
    """Each message or session create OCS refused with 429, and the bridge's next try of that
    request (the same path and JSON body), if any."""
    return [
        (call, next((c for c in calls[i + 1 :] if (c.path, c.json) == (call.path, call.json)), None))
        for i, call in enumerate(calls)
        if 429 in call.status and is_message(call)
    ]


def status_checks_and_reads(calls: list[Call]) -> tuple[set[int], list[Call]]:
    """The session reads on a message's path (the look before relaying into a session: the
    session's next request is that message), and the follower's reads (all others)."""
    by_session: dict[str, list[Call]] = {}
    for call in sorted(calls, key=lambda c: c.at):
        session = (call.json or {}).get("session") if isinstance(call.json, dict) else None
        if call.method == "GET" and call.path.startswith("/api/sessions/"):
            session = call.path.split("/")[3]
        if session:
            by_session.setdefault(session, []).append(call)
    checks: set[int] = set()
    for listed in by_session.values():
        checks |= {id(a) for a, b in pairwise(listed) if a.method == "GET" and is_message(b)}
    reads = [
        c for c in calls if c.method == "GET" and c.path.startswith("/api/sessions/") and id(c) not in checks
    ]
    return checks, reads


async def test_a_burst_of_500_people_against_a_small_team_budget(bridge, ocs: FakeOCS):
    limit, window = 150, 1.0
    ocs.limit_rate(limit, window)
    h = await bridge(bot=ocs_bot(ocs, team_rate_limit=f"{limit}/1s"), proactive_poll_seconds=0.2)
    people = [f"p{i}" for i in range(500)]
    for text in ("one", "two"):
        await asyncio.gather(*(h.say(p, f"{p} {text}") for p in people))
    await eventually(lambda: all(len(h.channel.texts_to(p)) >= 2 for p in people), 180, "every answer")

    for p in people:  # every message answered once, in order
        assert h.channel.texts_to(p) == [f"bot: {p} one", f"bot: {p} two"]
    answered = [c for c in api_calls(ocs) if c.path.endswith("incoming_message") and c.status == [200]]
    sent = Counter(c.json["message"] for c in answered)
    assert set(sent.values()) == {1} and len(sent) == 1000
    calls = api_calls(ocs)
    assert few_refused(calls)
    # no request refused twice in a row: after a 429 the bridge waited as OCS said
    assert [(c.path, c.json) for c, again in retried(calls) if again is None or 429 in again.status] == []
    # No history read while messages waited: from the first window the messages filled to the
    # window of the last message, OCS saw none (reads only take what messages leave over).
    checks, reads = status_checks_and_reads(calls)
    windows = Counter(int(c.at // window) for c in calls if is_message(c) or id(c) in checks)
    full = min(w for w, n in windows.items() if n >= limit)
    last = max(windows)
    assert last > full + 2  # the budget held the messages back over several windows
    assert [w for w in (int(c.at // window) for c in reads) if full < w < last] == []


async def test_a_429_pauses_every_conversation_of_the_team_until_ocs_says(bridge, ocs: FakeOCS):
    ocs.limit_rate(10, 2.0)  # the server allows less than the bridge was told
    h = await bridge(bot=ocs_bot(ocs, team_rate_limit="2000/2s"), proactive_poll_seconds=0)
    people = [f"q{i}" for i in range(30)]
    await asyncio.gather(*(h.say(p, f"{p} hello") for p in people))
    await eventually(lambda: all(h.channel.texts_to(p) for p in people), 60, "every answer")
    assert all(h.channel.texts_to(p) == [f"bot: {p} hello"] for p in people)
    calls = api_calls(ocs)
    refused = retried(calls)
    assert refused  # the bridge learnt the server's limit from its answers
    for call, again in refused:  # each refused request waited for the window OCS named, and went through
        assert again is not None and again.status == [200 if "incoming" in call.path else 201]
        assert int(again.at // 2.0) > int(call.at // 2.0)
    metrics = (await (await h.client.get("/metrics")).text()).splitlines()
    assert any(line.startswith('bridge_bot_rate_limited_total{bot="default"}') for line in metrics)
    assert 'bridge_bot_budget_limit{bot="default"} 2000.0' in metrics


async def test_a_server_whose_window_is_shorter_than_the_bridges_is_followed_not_waited_for(
    bridge, ocs: FakeOCS
):
    """OCS set to 8 a second while the bridge was told 2000 in 5 minutes: the server's limit does not
    compare with the bridge's window (8 in 5 minutes would take 4 minutes here); its ``Remaining: 0``
    and 429s pause the team until its own window ends. (Requests it paused go together when that
    window turns, so some may be refused again: they wait again, and each is answered once.)"""
    ocs.limit_rate(8, 1.0)
    h = await bridge(bot=ocs_bot(ocs, team_rate_limit="2000/5m"), proactive_poll_seconds=0)
    people = [f"s{i}" for i in range(24)]
    started = time.monotonic()
    await asyncio.gather(*(h.say(p, f"{p} hello") for p in people))
    await eventually(lambda: all(h.channel.texts_to(p) for p in people), 60, "every answer")
    assert time.monotonic() - started < 45  # seconds, as the server allows; not minutes
    assert all(h.channel.texts_to(p) == [f"bot: {p} hello"] for p in people)
    sent = Counter(
        c.json["message"] for c in api_calls(ocs) if c.path.endswith("incoming_message") and c.status == [200]
    )
    assert set(sent.values()) == {1} and len(sent) == len(people)


async def test_processes_share_one_count_on_postgresql(fresh_postgres: str):
    stores = [Store(create_engine(fresh_postgres)) for _ in range(2)]
    budgets = [TeamBudget("http://ocs.test", "key", 40, 3600.0) for _ in stores]
    for i, (budget, store) in enumerate(zip(budgets, stores, strict=True)):
        budget.attach(store, Metrics(), f"bot{i}")
    try:
        takes = [budget.take("message") for budget in budgets for _ in range(20)]
        await asyncio.wait_for(asyncio.gather(*takes), 30)
        # both processes spent the one budget: a read finds nothing left over
        for budget in budgets:
            try:
                await budget.take_spare("read")
            except Exception as exc:
                assert "kept for messages" in str(exc)
            else:
                raise AssertionError("a history read took from a spent budget")
        async with stores[0].reading() as session:
            row = await session.get(BudgetRow, budgets[0].key)
        assert row is not None and row.used == 40
    finally:
        for store in stores:
            await store.close()
            await store.engine.dispose()


async def test_an_answer_counted_in_the_last_window_does_not_spend_this_one():
    budget = TeamBudget("http://ocs.test", "another key", 2000, 3600.0)
    await budget.take("message")
    left = budget.rate.ends(budget.rate.index(time.time()), time.time())
    spent = {"X-RateLimit-Limit": "2000", "X-RateLimit-Remaining": "0"}
    await budget.answered(200, b"", spent | {"X-RateLimit-Reset": "1"})  # from the window before
    assert budget.local.used == 1
    await budget.answered(200, b"", spent | {"X-RateLimit-Reset": str(int(left) + 1)})  # this one
    assert budget.local.used == 2000


def test_ocs_rate_limit_is_written_as_ocs_writes_it():
    env = {"OCS_API_KEY": "k", "OCS_EXPERIMENT_ID": EXPERIMENT}
    for given in ({}, {"OCS_RATE_LIMIT": "2000/300s"}):
        assert parse_rate(load_settings(env | given).bots["default"].team_rate_limit) == (2000, 300.0)
    for wrong in ("lots", "2000/0s"):
        with pytest.raises(ConfigError, match="OCS_RATE_LIMIT"):
            load_settings(env | {"OCS_RATE_LIMIT": wrong})
