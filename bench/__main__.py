"""Measure the bridge on this machine: webhook acknowledgement and end-to-end throughput.

Runs the real HTTP app on loopback with the real SQLite store (and PostgreSQL when
``BENCH_POSTGRES_URL`` is set), the echo bot and a recording channel, then prints one line per
figure. Numbers are noisy on a shared machine: compare ratios measured in the same run.

    python -m bench [--messages 2000] [--conversations 50] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

from bridge import logs
from bridge.settings import BotSettings, ChannelSettings, Settings, WorkerSettings
from bridge.split import split_text, utf16_length
from bridge.web import create_app
from tests.fakes.channel import SECRET, RecordingChannel


async def relay(database_url: str, messages: int, conversations: int, concurrency: int) -> dict[str, float]:
    channel = RecordingChannel("bench")
    settings = Settings(
        database_url=database_url,
        bots={"default": BotSettings(backend="echo")},
        channels={"bench": ChannelSettings(type="test")},
        worker=WorkerSettings(poll_interval=0.05),
        log_level="warning",
    )
    server = TestServer(create_app(settings, {"bench": channel}))
    await server.start_server()
    acks: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(messages):
        queue.put_nowait(n)

    async def client(http: aiohttp.ClientSession) -> None:
        while not queue.empty():
            n = queue.get_nowait()
            body = json.dumps({"id": f"b{n}", "from": f"p{n % conversations}", "text": f"message {n}"})
            started = time.perf_counter()
            async with http.post(
                server.make_url("/webhooks/bench"), data=body, headers={"X-Test-Secret": SECRET}
            ) as response:
                assert response.status == 200
            acks.append(time.perf_counter() - started)

    began = time.perf_counter()
    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
    accepted = time.perf_counter() - began
    while len(channel.sent) < messages:
        await asyncio.sleep(0.01)
    done = time.perf_counter() - began
    await server.close()
    acks.sort()
    return {
        "webhooks_per_s": messages / accepted,
        "ack_p50_ms": statistics.median(acks) * 1000,
        "ack_p99_ms": acks[int(len(acks) * 0.99) - 1] * 1000,
        "answered_per_s": messages / done,
    }


def splitter(size: int) -> dict[str, float]:
    text = ("A sentence with a [link](https://example.org/x) and some words. " * 8 + "\n\n") * (size // 540)
    started = time.perf_counter()
    parts = split_text(text, 4096, utf16_length)
    return {"split_ms": (time.perf_counter() - started) * 1000, "parts": len(parts)}


def show(name: str, figures: dict[str, float]) -> None:
    print(f"{name:<28}" + "  ".join(f"{k}={v:,.1f}" for k, v in figures.items()), flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    logs.configure("console", "warning")
    print(
        f"{args.messages} messages, {args.conversations} conversations, {args.concurrency} clients, echo bot"
    )
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        show("relay sqlite", await relay(sqlite, args.messages, args.conversations, args.concurrency))
    if os.environ.get("BENCH_POSTGRES_URL"):
        url = os.environ["BENCH_POSTGRES_URL"]
        show("relay postgresql", await relay(url, args.messages, args.conversations, args.concurrency))
    show("split 100k chars", splitter(100_000))


if __name__ == "__main__":
    asyncio.run(main())
