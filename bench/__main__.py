"""Measure the bridge on this machine: webhook acknowledgement and end-to-end throughput.

Runs the real HTTP app on loopback with the real SQLite store and a throwaway PostgreSQL server
(when its binaries are installed), the echo bot and a recording channel, one client and then many,
and prints one line per run. ``answer_p50_ms`` is the time from posting a webhook to the answer's
send: what the bridge adds to the bot's own time. Numbers are noisy on a shared machine: compare
ratios measured in the same run. With one client, each message waits for its answer before the
next is posted (latency); with many, they are posted as fast as the bridge takes them (throughput).

    python -m bench [--messages 1000] [--conversations 50] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

from bridge import logs
from bridge.model import Conversation, Part
from bridge.settings import BotSettings, ChannelSettings, Settings, WorkerSettings
from bridge.split import split_text, utf16_length
from bridge.store.db import migrate
from bridge.web import create_app
from tests.fakes.channel import SECRET, RecordingChannel
from tests.pg import find_postgres_bin, start_postgres


class TimedChannel(RecordingChannel):
    """Records when each answer went out."""

    def __init__(self) -> None:
        super().__init__("bench")
        self.sent_at: dict[str, float] = {}

    async def send(self, conversation: Conversation, part: Part) -> str | None:
        self.sent_at[part.text] = time.perf_counter()
        return await super().send(conversation, part)


async def relay(database_url: str, messages: int, conversations: int, concurrency: int) -> dict[str, float]:
    channel = TimedChannel()
    settings = Settings(
        database_url=database_url,
        bots={"default": BotSettings(backend="echo")},
        channels={"bench": ChannelSettings(type="test")},
        worker=WorkerSettings(poll_interval=0.05),
        log_level="warning",
    )
    server = TestServer(create_app(settings, {"bench": channel}))
    await server.start_server()
    run = secrets.token_hex(4)  # each run's messages are new to the store
    closed_loop = concurrency == 1
    acks: list[float] = []
    posted: dict[str, float] = {}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(messages):
        queue.put_nowait(n)

    async def client(http: aiohttp.ClientSession) -> None:
        while not queue.empty():
            n = queue.get_nowait()
            body = json.dumps({"id": f"{run}-{n}", "from": f"p{n % conversations}", "text": f"message {n}"})
            started = posted[f"echo: message {n}"] = time.perf_counter()
            async with http.post(
                server.make_url("/webhooks/bench"), data=body, headers={"X-Test-Secret": SECRET}
            ) as response:
                assert response.status == 200
            acks.append(time.perf_counter() - started)
            while closed_loop and f"echo: message {n}" not in channel.sent_at:
                await asyncio.sleep(0.0005)  # one message at a time: the bridge's own latency

    began = time.perf_counter()
    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
    accepted = time.perf_counter() - began
    deadline = time.perf_counter() + 300
    while len(channel.sent) < messages:
        if time.perf_counter() > deadline:
            raise SystemExit(f"only {len(channel.sent)} of {messages} answered in 300 s")
        await asyncio.sleep(0.01)
    done = time.perf_counter() - began
    await server.close()
    acks.sort()
    answers = sorted(channel.sent_at[text] - at for text, at in posted.items())
    return {
        "webhooks_per_s": messages / accepted,
        "ack_p50_ms": statistics.median(acks) * 1000,
        "ack_p99_ms": acks[int(len(acks) * 0.99) - 1] * 1000,
        "answered_per_s": messages / done,
        "answer_p50_ms": statistics.median(answers) * 1000,
    }


def splitter(size: int) -> dict[str, float]:
    text = ("A sentence with a [link](https://example.org/x) and some words. " * 8 + "\n\n") * (size // 540)
    started = time.perf_counter()
    parts = split_text(text, 4096, utf16_length)
    return {"split_ms": (time.perf_counter() - started) * 1000, "parts": len(parts)}


def show(name: str, figures: dict[str, float]) -> None:
    print(f"{name:<34}" + "  ".join(f"{k}={v:,.1f}" for k, v in figures.items()), flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    logs.configure("console", "warning")
    print(f"{args.messages} messages per run over {args.conversations} conversations, echo bot")
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        databases = {"sqlite": f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"}
        if find_postgres_bin() is not None:
            databases["postgresql"] = stack.enter_context(start_postgres("bench"))
        for name, url in databases.items():
            await migrate(url)
            for clients in (1, args.concurrency):
                figures = await relay(url, args.messages, args.conversations, clients)
                show(f"relay {name}, {clients} client(s)", figures)
    show("split 100k chars", splitter(100_000))


if __name__ == "__main__":
    asyncio.run(main())
