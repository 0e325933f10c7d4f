"""Shared by the browser tests of the official widget: headless Chromium, and a real ``bridge serve``
relaying to the fake OCS."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp

from fakes.ocs import FakeOCS
from fakes.server import free_port
from tests.harness import eventually

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 15_000


@contextmanager
def bridge_serve(folder: Path, ocs: FakeOCS, **env: str) -> Iterator[str]:
    """``bridge serve`` in a subprocess, relaying to the fake OCS, with ``env`` on top; yields its
    URL. Its log is ``folder/bridge.log``."""
    port = free_port()
    environ = {
        **os.environ,
        "PORT": str(port),
        "PUBLIC_URL": f"http://127.0.0.1:{port}",
        "DATABASE_URL": f"sqlite+aiosqlite:///{folder}/b.db",
        "OCS_BASE_URL": ocs.url,
        "OCS_API_KEY": ocs.api_key,
        "OCS_EXPERIMENT_ID": ocs.experiment_id,
        "LOG_FORMAT": "json",
        **env,
    }
    log = (folder / "bridge.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "bridge", "serve"],
        env=environ,
        cwd=folder,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


async def wait_ready(url: str, log: Path) -> None:
    async with aiohttp.ClientSession() as http:

        async def healthy() -> bool:
            try:
                async with http.get(f"{url}/healthz") as response:
                    return response.status == 200
            except aiohttp.ClientError:
                return False

        try:
            await eventually(healthy, 10, "bridge serve to start")
        except AssertionError:
            raise AssertionError(f"bridge serve did not start:\n{log.read_text()[-3000:]}") from None
