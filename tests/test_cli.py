"""The `bridge dead-letters` command, run as a real process against the database of a running bridge."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from tests.proc import ROOT


async def bridge_command(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bridge", *args],
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": database_url, "LOG_FORMAT": "json"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_dead_letters_are_listed_and_retried_from_the_command_line(bridge, tmp_path):
    h = await bridge()
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'bridge.db'}"
    h.ocs.fail_next(500)
    await h.say("+15551234567", "hello")
    assert "Sorry" in (await h.replies("+15551234567", 1))[0]

    listed = await bridge_command("dead-letters", "list", database_url=database_url)
    assert listed.returncode == 0, listed.stderr
    [line] = listed.stdout.splitlines()
    ref, _when, channel, person, reason = line.split("\t")
    assert (ref, channel) == ("in-1", "test")
    assert person.startswith("…4567#") and "+1555" not in person  # a pseudonym, not the number
    assert "OCS answered 500" in reason

    missing = await bridge_command("dead-letters", "retry", "in-99", database_url=database_url)
    assert missing.returncode == 1 and "no such dead letter" in missing.stderr

    retried = await bridge_command("dead-letters", "retry", "--all", database_url=database_url)
    assert retried.returncode == 0 and "in-1 queued again" in retried.stdout
    assert (await h.replies("+15551234567", 2))[1] == "bot: hello"  # the running bridge answers it
    listed = await bridge_command("dead-letters", "list", database_url=database_url)
    assert listed.stdout.strip() == "no dead letters"
