"""The Twilio tests' bridge: the real app with its Twilio channel on the fake Twilio API and fake OCS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fakes.ocs import FakeOCS
from fakes.twilio import FakeTwilio
from tests.harness import Harness, platform_bridge


@pytest.fixture
def bridge_env() -> dict[str, str]:
    """The bridge's settings beyond the fakes' (a module overrides it)."""
    return {"BRIDGE_API_KEY": "k"}


@pytest.fixture
async def bridge(
    tmp_path: Path, tw: FakeTwilio, ocs: FakeOCS, bridge_env: dict[str, str]
) -> AsyncIterator[Harness]:
    async with platform_bridge(tmp_path / "bridge.db", ocs=ocs, tw=tw, **bridge_env) as running:
        yield running
