"""Start a fake third-party server on 127.0.0.1, port 0."""

from __future__ import annotations

import socket

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
