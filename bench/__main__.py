"""Measure the bridge on this machine against the ceiling (a minimal relay with no database).

A real ``bridge serve`` process (SQLite, then a throwaway PostgreSQL with fsync off when its
binaries are installed) relays Telegram webhooks to a fake OCS with a set answer time and sends
the answers to a fake Bot API; the fakes run in a process of their own, and Telegram's flood
limits are lifted (they cap one bot at about 30 messages a second: the bench measures the
bridge). The ceiling relay (``bench/ceiling.py``) runs the same load in the same run; compare
ratios, not absolute figures (see ``bench/load.py`` for what each column means).

    python -m bench [--scenarios fast,burst,crowd] [--targets ceiling,sqlite,sqlite-chat,postgresql]
                    [--scale 1.0] [--timeout 300] [--env NAME=VALUE ...]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench.load import SECRET, Result, Scenario, run_load, start, stop
from bridge.split import split_text, utf16_length
from fakes.ocs import EXPERIMENT
from fakes.pg import find_postgres_bin, start_postgres
from fakes.server import free_port, wait_healthy
from fakes.telegram import TOKEN

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = {
    "fast": Scenario("fast bot, 2000 msgs / 200 convs", 200, 10, 0.0),
    "burst": Scenario("2 s bot, 2000 convs x 1", 2000, 1, 2.0),
    "crowd": Scenario("2 s bot, 10000 convs x 1", 10_000, 1, 2.0),
}
COLUMNS = ("answered/s", "ratio", "drain s", "ack p50 ms", "ack p99 ms", "answer p50 ms", "answer p99 ms")
COLUMNS += ("cpu ms/msg", "rss MB", "typing", "bot in flight", "ocs req/msg")
# A target ending in "-chat" is the bridge on OCS's Chat API (OCS_TRANSPORT=chat), beside the default.
CHAT = {"OCS_TRANSPORT": "chat", "OCS_CLIENT_ID": "bridge-client", "OCS_CLIENT_SECRET": "bridge-secret"}


@contextlib.contextmanager
def fakes() -> Iterator[dict[str, str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.fakes"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT
    )
    assert process.stdout is not None and process.stdin is not None
    try:
        yield json.loads(process.stdout.readline())
    finally:
        process.stdin.close()
        stop(process)


def bridge_env(urls: dict[str, str], port: int, database_url: str, extra: dict[str, str]) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT),
        "PORT": str(port),
        "DATABASE_URL": database_url,
        "OCS_BASE_URL": urls["ocs"],
        "OCS_API_KEY": "test-key",
        "OCS_EXPERIMENT_ID": EXPERIMENT,
        "OCS_RATE_LIMIT": "1000000/1s",  # the fake OCS enforces no team budget: measure the bridge
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "TELEGRAM_API_BASE_URL": urls["telegram"],
        "TELEGRAM_BOT_USERNAME": "bridge_test_bot",
        "TELEGRAM_RATE_PER_CHAT": "100000",
        "TELEGRAM_RATE_PER_GROUP": "100000",
        "TELEGRAM_RATE_PER_BOT": "100000",
        "LOG_LEVEL": "warning",
        "LOG_FORMAT": "json",
        **extra,
    }


async def fresh_postgres(server_url: str, run: int) -> str:
    import asyncpg

    plain = server_url.replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(plain)
    try:
        await connection.execute(f"CREATE DATABASE bench_{run}")
    finally:
        await connection.close()
    return server_url.rsplit("/", 1)[0] + f"/bench_{run}"


async def measure(
    target: str,
    scenario: Scenario,
    run: int,
    urls: dict[str, str],
    workdir: Path,
    postgres: str | None,
    args: argparse.Namespace,
) -> Result:
    port = free_port()
    log = workdir / f"{target}-{run}.log"
    extra = dict(item.split("=", 1) for item in args.env)
    if target == "ceiling":
        command = ["-m", "bench.ceiling", str(port), urls["ocs"], "test-key", EXPERIMENT]
        command += [urls["telegram"], TOKEN, SECRET]
        env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT)}
    else:
        if target.endswith("-chat"):
            extra = CHAT | extra
        if target.startswith("postgresql"):
            assert postgres is not None
            database = await fresh_postgres(postgres, run)
        else:
            database = f"sqlite+aiosqlite:///{workdir / f'bench-{run}.db'}"
        env = bridge_env(urls, port, database, extra)
        subprocess.run(
            [sys.executable, "-m", "bridge", "migrate"],
            env=env,
            cwd=workdir,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        command = ["-m", "bridge", "serve"]
    process = start(command, env, log)
    profiler = None
    try:
        await wait_healthy(f"http://127.0.0.1:{port}", process, 60)
        if args.profile:
            profiler = profile(process.pid, Path(args.profile) / f"{target}-{run}.txt")
        return await run_load(
            scenario, run, f"http://127.0.0.1:{port}", urls["control"], process.pid, args.timeout
        )
    finally:
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(30)
        stop(process)


def profile(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy (``pip install py-spy``) samples the target: collapsed stacks, one a line."""
    out.parent.mkdir(parents=True, exist_ok=True)
    command = ["py-spy", "record", "--pid", str(pid), "--format", "raw", "--rate", "200", "-o", str(out)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def show(label: str, result: Result, ceiling: Result | None) -> None:
    figures = dict(result.figures)
    if ceiling is not None and ceiling.figures.get("answered/s"):
        figures["ratio"] = figures["answered/s"] / ceiling.figures["answered/s"]
    cells = [f"{figures[c]:.2f}" if c in figures else "-" for c in COLUMNS]
    print(f"| {label} | " + " | ".join(cells) + f" | {result.check} |", flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--scenarios", default="fast,burst,crowd")
    parser.add_argument("--targets", default="ceiling,sqlite,sqlite-chat,postgresql,postgresql-chat")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the number of conversations")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for every answer")
    parser.add_argument("--env", action="append", default=[], help="a bridge setting, NAME=VALUE")
    parser.add_argument("--profile", help="a directory: sample each target with py-spy into it")
    args = parser.parse_args()
    targets = args.targets.split(",")
    if find_postgres_bin() is None and any(t.startswith("postgresql") for t in targets):
        print("PostgreSQL binaries not found: skipping the postgresql targets", file=sys.stderr)
        targets = [t for t in targets if not t.startswith("postgresql")]
    print(f"{os.cpu_count()} CPUs; target columns: " + ", ".join(COLUMNS))
    print("| scenario / target | " + " | ".join(COLUMNS) + " | check |")
    print("|---" * (len(COLUMNS) + 2) + "|")
    run = int(time.time()) % 1000
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        urls = stack.enter_context(fakes())
        pg = any(t.startswith("postgresql") for t in targets)
        postgres = stack.enter_context(start_postgres("bench")) if pg else None
        for key in args.scenarios.split(","):
            base = SCENARIOS[key]
            scenario = Scenario(
                base.name, max(1, int(base.conversations * args.scale)), base.per_conversation, base.latency
            )
            ceiling: Result | None = None
            for target in targets:
                run += 1
                result = await measure(target, scenario, run, urls, workdir, postgres, args)
                if target == "ceiling":
                    ceiling = result
                show(f"{key} ({scenario.messages}) {target}", result, ceiling)
    text = ("A sentence with a [link](https://example.org/x) and some words. " * 8 + "\n\n") * 185
    started = time.perf_counter()
    parts = split_text(text, 4096, utf16_length)
    print(f"split 100k chars into {len(parts)} parts: {(time.perf_counter() - started) * 1000:.1f} ms")


if __name__ == "__main__":
    asyncio.run(main())
