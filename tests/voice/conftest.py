"""The voice tests: real voice notes (spoken by espeak-ng, encoded by PyAV) once per run, the fake
speech server, and a bridge whose bot hears voice notes through it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from fakes.channel import RecordingChannel
from fakes.ocs import FakeOCS
from fakes.speech import FakeSpeech
from tests.harness import Harness, ocs_bot
from tests.voice.helpers import PUBLIC_URL, voice_settings
from tests.voice.sounds import PHRASES, Note, speak


@pytest.fixture(scope="session")
def notes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Note]:
    """Each of ``PHRASES`` spoken, by its key."""
    folder = tmp_path_factory.mktemp("voice")
    return {key: speak(phrase, folder) for key, phrase in PHRASES.items()}


@pytest.fixture
async def speech(notes: dict[str, Note]) -> AsyncIterator[FakeSpeech]:
    """The fake speech server, knowing what each note says."""
    async with FakeSpeech() as server:
        for note in notes.values():
            server.register(note.seconds, note.phrase)
        yield server


@pytest.fixture
def voice_bridge(
    bridge: Callable[..., Awaitable[Harness]], fake_ocs: FakeOCS, speech: FakeSpeech, tmp_path: Path
) -> Callable[..., Awaitable[Harness]]:
    """``await voice_bridge(texts={...}, voice=True, worker={...}, **bot_settings)``: the bridge with
    the recording channel, its bot on the fake OCS hearing through the fake speech server."""

    async def start(
        *,
        texts: dict[str, str] | None = None,
        voice: bool = False,
        worker: dict[str, Any] | None = None,
        **bot: Any,
    ) -> Harness:
        channel = RecordingChannel(texts=texts, voice=voice)
        settings = ocs_bot(fake_ocs, **voice_settings(speech, **bot))
        return await bridge(
            channel=channel,
            bot=settings,
            worker=worker or {},
            public_url=PUBLIC_URL,
            data_dir=str(tmp_path / "data"),
        )

    return start
