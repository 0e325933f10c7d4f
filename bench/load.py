"""One benchmark run: a target process (the bridge, or the ceiling relay) under a load of Telegram
webhooks, with the fake OCS and fake Bot API in their own process. Figures per run:

- ``answered/s``: messages / drain time; ``drain``: first webhook posted -> last answer sent
- ``ack p50/p99``: webhook request -> acknowledgement (at most ``CONNECTIONS`` requests at once,
  as Telegram sends them: ``setWebhook(max_connections)`` is at most 100)
- ``answer p50/p99``: webhook posted -> answer received by the fake Bot API
- ``cpu ms/msg``: the target process's CPU time (user + system) over the run, per message
- ``rss MB``: the target's peak resident memory (VmHWM)
- ``ocs req/msg``: requests the fake OCS got (tokens, starts, messages, polls, reads) per answer
- ``check``: every chat got exactly its answers, in order (else what went wrong)
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from telegram import Chat, Message, Update, User

CONNECTIONS = 100
SECRET = "bench-secret"
TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Scenario:
    name: str
    conversations: int
    per_conversation: int
    latency: float  # the bot's answer time, seconds

    @property
    def messages(self) -> int:
        return self.conversations * self.per_conversation


@dataclass
class Result:
    figures: dict[str, float] = field(default_factory=dict)
    check: str = "ok"


def updates(scenario: Scenario, run: int) -> dict[int, list[tuple[bytes, str]]]:
    """Per chat, its webhooks (JSON built with PTB's own classes) and the answers expected."""
    chats: dict[int, list[tuple[bytes, str]]] = {}
    now = datetime.now(UTC)
    for c in range(scenario.conversations):
        chat_id = 10_000_000 + run * 100_000 + c
        user = User(id=chat_id, first_name=f"Person {c}", is_bot=False)
        chat = Chat(id=chat_id, type="private")
        chats[chat_id] = []
        for n in range(scenario.per_conversation):
            update_id = run * 10_000_000 + c * 1000 + n
            text = f"message {n} from {c}"
            message = Message(message_id=n + 1, date=now, chat=chat, from_user=user, text=text)
            body = json.dumps(Update(update_id=update_id, message=message).to_dict()).encode()
            chats[chat_id].append((body, f"bot: {text}"))
    return chats


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def run_load(scenario: Scenario, run: int, url: str, control: str, pid: int, timeout: float) -> Result:
    chats = updates(scenario, run)
    acks: list[float] = []
    posted: dict[tuple[str, str], float] = {}
    gate = asyncio.Semaphore(CONNECTIONS)
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
    failures: list[str] = []

    async def post(http: aiohttp.ClientSession, chat_id: int, body: bytes, answer: str) -> None:
        async with gate:
            started = time.monotonic()
            posted[(str(chat_id), answer)] = started
            async with http.post(f"{url}/webhooks/telegram", data=body, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    failures.append(f"webhook answered {response.status}")
            acks.append(time.monotonic() - started)

    async def conversation(http: aiohttp.ClientSession, chat_id: int) -> None:
        for body, answer in chats[chat_id]:  # a chat's updates come one after another
            await post(http, chat_id, body, answer)

    async with aiohttp.ClientSession(connector=connector) as http:
        await http.post(f"{control}/reset")
        await http.post(f"{control}/latency", json={"seconds": scenario.latency})
        cpu_before = cpu_seconds(pid)
        began = time.monotonic()
        await asyncio.gather(*(conversation(http, chat_id) for chat_id in chats))
        deadline = began + timeout
        sends: list[list[Any]] = []
        while time.monotonic() < deadline:
            await asyncio.sleep(0.25)
            async with http.get(f"{control}/sends") as response:
                report = await response.json()
            sends = report["sends"]
            if len(sends) >= scenario.messages:
                await asyncio.sleep(1.0)  # anything sent twice shows up now
                async with http.get(f"{control}/sends") as response:
                    report = await response.json()
                sends = report["sends"]
                break
        cpu = cpu_seconds(pid) - cpu_before
    got: defaultdict[str, list[str]] = defaultdict(list)
    for chat_id, text, _ in sends:
        got[chat_id].append(text)
    wrong = sum(1 for chat_id, items in chats.items() if got[str(chat_id)] != [a for _, a in items])
    if len(sends) < scenario.messages:
        failures.append(f"answered {len(sends)} of {scenario.messages} in {timeout:.0f} s")
    elif wrong:
        failures.append(f"{wrong} chats got wrong, missing, repeated or reordered answers")
    latencies = sorted(at - posted[(c, t)] for c, t, at in sends if (c, t) in posted)
    last = max((at for _, _, at in sends), default=time.monotonic())
    acks.sort()
    drain = last - began
    answered = len(sends)
    return Result(
        {
            "answered/s": answered / drain if drain > 0 else 0.0,
            "drain s": drain,
            "ack p50 ms": statistics.median(acks) * 1000,
            "ack p99 ms": acks[max(0, int(len(acks) * 0.99) - 1)] * 1000,
            "answer p50 ms": (statistics.median(latencies) if latencies else 0) * 1000,
            "answer p99 ms": (latencies[max(0, int(len(latencies) * 0.99) - 1)] if latencies else 0) * 1000,
            "cpu ms/msg": cpu * 1000 / max(1, answered),
            "rss MB": peak_rss_mb(pid),
            "typing": float(report.get("typing", 0)) if sends else 0.0,
            "bot in flight": float(report.get("max_in_flight", 0)) if sends else 0.0,
            "ocs req/msg": float(report.get("ocs_requests", 0)) / max(1, answered),
        },
        "; ".join(failures) or "ok",
    )


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, *args], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=log.parent
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
