"""``Harness.idle()``: tests wait on it for "nothing more arrives", so it must wait for what is on its way."""

from __future__ import annotations

import pytest

from bridge.channel import SendError


async def test_idle_waits_for_an_answer_still_with_the_bot(bridge):
    h = await bridge()
    h.ocs.latency = 0.5
    await h.say("ada", "hi")
    await h.idle()
    assert h.channel.texts_to("ada") == ["bot: hi"]


async def test_settled_also_waits_for_a_retry_to_come(bridge):
    h = await bridge()
    h.channel.failures = [SendError("busy", retry_after=0.3)]
    await h.say("ada", "hi")
    await h.idle(settled=True)
    assert h.channel.texts_to("ada") == ["bot: hi"]


async def test_idle_fails_when_work_never_ends(bridge):
    h = await bridge()
    h.ocs.latency = 5
    await h.say("ada", "hi")
    with pytest.raises(AssertionError, match="idle"):
        await h.idle(timeout=0.3)
