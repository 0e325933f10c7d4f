"""Start a fake third-party server on 127.0.0.1, port 0."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time

import aiohttp
from aiohttp import web


async def serve_locally(app: web.Application, prefix: str = "") -> tuple[web.AppRunner, str]:
    """Run ``app`` on a free loopback port; the runner (to clean up) and the base URL with ``prefix``."""
    runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}{prefix}"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    """Until ``{url}/healthz`` answers 200, without blocking the event loop (fakes run on it);
    AssertionError if the process exits or does not become healthy within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"process exited with {process.returncode}")
            try:
                async with http.get(f"{url}/healthz") as response:
                    if response.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("process did not become healthy")
