"""Real ``bridge`` processes for tests: start, wait until healthy, kill."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp

from fakes.server import free_port, wait_healthy

ROOT = Path(__file__).resolve().parents[1]


class BridgeProcess:
    """``python -m bridge ARGS`` with ``env`` added to a clean environment; output in ``log``."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path):
        self.args = args
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LOG_FORMAT": "json", **env}
        self.log_path = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.env['PORT']}"

    async def start(self, *, wait_healthy: bool = True, timeout: float = 30) -> BridgeProcess:
        """Start it and (by default) wait for ``/healthz``, without blocking the event loop
        (the fake servers the bridge talks to run on it)."""
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bridge", *self.args],
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        if wait_healthy:
            await self.wait_healthy(timeout)
        return self

    async def wait_healthy(self, timeout: float) -> None:
        assert self.process is not None
        try:
            await wait_healthy(self.url, self.process, timeout)
        except AssertionError as exc:
            raise AssertionError(f"bridge: {exc}:\n{self.output()}") from None

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not stop in time."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]


def migrate(env: dict[str, str]) -> None:
    """``bridge migrate`` with these settings, as a release step runs it."""
    migrated = subprocess.run(
        [sys.executable, "-m", "bridge", "migrate"],
        env={"PATH": "/usr/bin:/bin", **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert migrated.returncode == 0, migrated.stderr


def relay_env(ocs: Any, tg: Any) -> dict[str, str]:
    """Settings for a bridge process relaying Telegram (fake Bot API) to the fake OCS."""
    from fakes.telegram import SECRET, TOKEN

    return {
        **ocs.env(),
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "TELEGRAM_API_BASE_URL": tg.url,
    }


def killable_env(tmp_path: Path, ocs: Any, tg: Any, **extra: str) -> dict[str, str]:
    """Settings for a bridge process a test kills: its own port and SQLite database, relaying
    Telegram to the fake OCS, with a short lease (a restarted bridge resumes the work soon)."""
    database = f"sqlite+aiosqlite:///{tmp_path / 'bridge.db'}"
    base = {"PORT": str(free_port()), "DATABASE_URL": database, **relay_env(ocs, tg)}
    return base | extra | {"WORKER_LEASE_SECONDS": "3"}


async def post_update(http: aiohttp.ClientSession, url: str, update: dict[str, Any]) -> None:
    """Deliver one Telegram update to a bridge's webhook, as Telegram does."""
    from fakes.telegram import SECRET

    async with http.post(
        f"{url}/webhooks/telegram", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
    ) as response:
        assert response.status == 200, await response.text()


async def settled(database_url: str) -> bool:
    """Seen from outside the processes, in their database: no message or reply part pending, no
    conversation with work to come or leased. Nothing more will be sent."""
    from sqlalchemy import func, select

    from bridge.store.db import create_engine
    from bridge.store.tables import ConversationRow, MessageRow, PartRow

    waiting = (
        (MessageRow, MessageRow.status == "pending"),
        (PartRow, PartRow.status == "pending"),
        (
            ConversationRow,
            ConversationRow.next_run_at.is_not(None) | ConversationRow.lease_owner.is_not(None),
        ),
    )
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            for table, where in waiting:
                if await connection.scalar(select(func.count()).select_from(table).where(where)):
                    return False
    finally:
        await engine.dispose()
    return True
