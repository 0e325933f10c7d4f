"""The Telegram tests' bridge: the real app with its Telegram channel on the fake Bot API and fake OCS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fakes.ocs import FakeOCS
from fakes.telegram import FakeTelegram
from tests.harness import Harness, platform_bridge


@pytest.fixture
def bridge_env() -> dict[str, str]:
    """The bridge's settings beyond the fakes' (a module overrides it)."""
    return {}


@pytest.fixture
async def bridge(
    tmp_path: Path, tg: FakeTelegram, ocs: FakeOCS, bridge_env: dict[str, str]
) -> AsyncIterator[Harness]:
    async with platform_bridge(tmp_path / "bridge.db", ocs=ocs, tg=tg, **bridge_env) as running:
        yield running
