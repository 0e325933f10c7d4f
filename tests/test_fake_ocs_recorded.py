"""The fake OCS answers as the real one did: every recorded request (tests/payloads/ocs/, from OCS
at commit a77c545) is sent to the fake in the recorded order, and its answer compared with the
recorded one: status, content type, the headers recorded, and the body. Ids are the fake's own
(learnt from its answers), times and session tokens are left out, trace numbers compared by which
entries share one; the recorded "Echo bot" is the fake's "Fake bot", answering as it did."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from fakes.ocs import FakeOCS
from fakes.ocs_records import FakeSession
from tests.harness import eventually

RECORDED = Path(__file__).parent / "payloads" / "ocs"
RECORDED_AT = "http://127.0.0.1:18200"
ENTRY = re.compile(
    r"^## (?P<title>.+)\n  (?P<method>[A-Z]+) (?P<path>\S+) ?(?P<body>.*)\n"
    r"  -> (?P<status>\d+) (?P<type>\S*) ?(?P<headers>\{.*\})?\n    (?P<answer>.*)$",
    re.MULTILINE,
)
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
TOKEN = re.compile(r'(?<="session_token":")[^"]+')
TRACE = re.compile(r'(?<="trace_id":)\d+|(?<=/traces/)\d+(?=/)')
CUT = "...(cut)"
TIMING = {"task poll #0"}  # "processing" only because OCS's worker had not answered yet
RATE_HEADERS = ("Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


@dataclass(frozen=True)
class Entry:
    title: str
    method: str
    path: str
    body: str
    status: int
    content_type: str
    headers: dict[str, str]
    answer: str


def entries(name: str, section: str | None = None) -> list[Entry]:
    """The recorded requests and answers of a file (or of its ``=== section ===``)."""
    text = (RECORDED / name).read_text()
    if section is not None:
        text = text.split(f"=== {section} ===\n")[1].split("\n=== ")[0]
    return [
        Entry(
            m["title"],
            m["method"],
            m["path"],
            m["body"].strip(),
            int(m["status"]),
            m["type"],
            ast.literal_eval(m["headers"] or "{}"),
            m["answer"],
        )
        for m in ENTRY.finditer(text)
    ]


def comparable(text: str) -> str:
    """A body without times and session tokens, trace numbers renumbered in order of appearance."""
    text = TIME.sub("TIME", TOKEN.sub("TOKEN", text))
    numbers: dict[str, str] = {}
    return TRACE.sub(lambda m: numbers.setdefault(m.group(), str(len(numbers) + 1)), text)


def apart(found: str, expected: str) -> str:
    """Where two bodies part: the fake's and the recorded text from there."""
    pairs = enumerate(zip(found, expected, strict=False))
    at = next((i for i, pair in pairs if len(set(pair)) == 2), min(len(found), len(expected)))
    return f"at {at}: {found[at : at + 90]!r}, recorded {expected[at : at + 90]!r}"


def shown(content_type: str, text: str) -> str:
    """The fake's body as the recording shows it: compact JSON, or an HTML page's title and error."""
    if content_type == "application/json":
        return json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)
    if content_type == "text/html":
        page = re.search(r"<title>(.*?)</title>.*?<pre>(.*?)</pre>", text, re.DOTALL)
        assert page is not None, text
        title, exc = page.groups()
        return f"[HTML] title={title} exc={exc}"
    return text


class Replay:
    """Sends recorded requests to the fake as the recorder did, learning the fake's ids."""

    def __init__(self, ocs: FakeOCS, http: aiohttp.ClientSession) -> None:
        self.ocs, self.http = ocs, http
        self.names = {RECORDED_AT: ocs.url, "Echo bot": "Fake bot"}  # recorded -> the fake's
        self.tokens: dict[str, str] = {}  # the Chat API's session tokens, by the fake's session id

    def ours(self, text: str) -> str:
        for recorded, fake in self.names.items():
            text = text.replace(recorded, fake)
        return text

    def learn(self, recorded: Any, fake: Any) -> None:
        """The fake's ids for the recorded ones, where the two answers hold them."""
        if isinstance(recorded, dict) and isinstance(fake, dict):
            for key in recorded.keys() & fake.keys():
                self.learn(recorded[key], fake[key])
            if "session_token" in fake:
                self.tokens[fake["session_id"]] = fake["session_token"]
        elif isinstance(recorded, list) and isinstance(fake, list):
            for pair in zip(recorded, fake, strict=False):
                self.learn(*pair)
        elif isinstance(recorded, str) and isinstance(fake, str):
            self.names.update(zip(UUID.findall(recorded), UUID.findall(fake), strict=False))

    def credentials(self, title: str, path: str) -> dict[str, str]:
        """The key the recorder used, as its entry's title says."""
        chat = re.match(r"/api/chat/([^/]+)/", path)
        if chat and chat[1] in self.tokens and "without token" not in title:
            return {"X-Session-Token": self.tokens[chat[1]]}
        if "no key" in title or "keyless" in title:
            return {}
        if "bad key" in title:
            return {"X-api-key": "not-a-key"}
        if "bearer" in title:
            return {"Authorization": f"Bearer {self.ocs.api_key}"}
        return {"X-api-key": self.ocs.read_only_key if "read-only" in title else self.ocs.api_key}

    async def differences(self, entry: Entry) -> list[str]:
        """How the fake's answer to ``entry``'s request differs from the recorded one."""
        await eventually(lambda: all(t.done for t in self.ocs.chat.tasks.values()), what="OCS's worker")
        path = self.ours(entry.path)
        body = json.loads(self.ours(entry.body)) if entry.body else None
        headers = self.credentials(entry.title, path)
        async with self.http.request(entry.method, self.ocs.url + path, json=body, headers=headers) as r:
            content_type, text = r.headers.get("Content-Type", "").split(";")[0], await r.text()
            answered = {name: r.headers.get(name, "") for name in entry.headers}
        found = shown(content_type, text)
        if entry.answer.startswith("{") and not entry.answer.endswith(CUT):
            self.learn(json.loads(entry.answer), json.loads(found))
        expected = comparable(self.ours(re.sub(r"^\[HTML \d+B\]", "[HTML]", entry.answer)))
        found = comparable(found)
        same = found.startswith(expected.removesuffix(CUT)) if expected.endswith(CUT) else found == expected
        wrong = [
            f"{what} {got!r}, recorded {want!r}"
            for what, got, want in (
                ("status", r.status, entry.status),
                ("content type", content_type, entry.content_type),
                *((name, answered[name], self.ours(value)) for name, value in entry.headers.items()),
            )
            if got != want
        ]
        wrong += [] if same else [f"body {apart(found, expected.removesuffix(CUT))}"]
        return [f"{entry.title}: {what}" for what in wrong]


def echo(text: str, session: FakeSession) -> str:
    return f"echo: {text}"


@pytest.fixture
async def replay(ocs: FakeOCS) -> AsyncIterator[Replay]:
    ocs.reply = echo
    async with aiohttp.ClientSession() as http:
        yield Replay(ocs, http)


@pytest.mark.parametrize(
    ("name", "section"),
    [("api-sessions-incoming-history.txt", None), ("chat-api-and-more.txt", "Chat API (widget), keyless")],
)
async def test_the_fake_answers_every_recorded_request_as_ocs_did(
    replay: Replay, name: str, section: str | None
):
    recorded = [e for e in entries(name, section) if e.title not in TIMING]
    assert len(recorded) > 10  # the recording was read
    differences = [line for entry in recorded for line in await replay.differences(entry)]
    assert differences == [], "\n".join(differences)


async def test_the_fake_refuses_over_the_team_budget_as_recorded(replay: Replay, ocs: FakeOCS):
    head, _, body = (RECORDED / "rate-limit-429.txt").read_text().partition("\n\n")
    status_line, *lines = head.splitlines()
    headers = dict(line.split(": ", 1) for line in lines)
    recorded = json.loads(body)
    ocs.limit_rate(int(headers["X-RateLimit-Limit"]))
    url = f"{ocs.url}/api/experiments/{ocs.experiment_id}/"
    for _ in range(2 * int(headers["X-RateLimit-Limit"]) + 1):  # a window may end on the way
        async with replay.http.get(url, headers=replay.credentials("", "")) as r:
            answer = await r.json()
            if r.status == 429:
                break
    assert f"{r.status} {r.reason}" == status_line.split(" ", 1)[1]
    assert r.content_type == headers["Content-Type"]
    wait = str(answer["available_in"])
    assert answer == recorded | {"available_in": int(wait)}
    waits = {name: headers[name].replace(str(recorded["available_in"]), wait) for name in RATE_HEADERS}
    assert {name: r.headers.get(name) for name in RATE_HEADERS} == waits
