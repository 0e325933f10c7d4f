"""A fake OpenAI-compatible speech server over real HTTP (127.0.0.1, port 0), under ``/v1``:

- ``POST /v1/audio/transcriptions``: Bearer auth, multipart ``file`` + ``model`` (+ ``language``).
  It **decodes** the file with PyAV and refuses (400) a format OpenAI does not take (by the file
  name's extension, as OpenAI reads it, and by what the bytes really are), anything that is not
  audio, silence, and audio of a length no test registered; otherwise it answers ``{"text"}`` with
  the phrase registered for that length. Scripted 429 (with ``Retry-After``) and 500 answers.
- ``POST /v1/audio/speech``: Bearer auth, JSON ``{"model", "voice", "input", "response_format"}``;
  answers real OGG/Opus (a tone, a little longer for a longer input).

    async with FakeSpeech() as speech:
        speech.register(2.1, "what time is it")   # a note of 2.1 s (± 0.3 s) says this
        speech.fail(429, retry_after=1)
        ...
        assert [c.status for c in speech.transcriptions] == [429, 200]
"""

from __future__ import annotations

import array
import io
import math
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import av
import av.error
from aiohttp import web

from fakes.server import serve_locally

API_KEY = "sk-fake-speech-key-0123456789"
EXTENSIONS = {"flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm"}
# What the bytes must really be (the demuxer FFmpeg picks), for the extensions OpenAI takes.
CONTAINERS = {"flac", "mp3", "ogg", "wav", "matroska,webm", "mov,mp4,m4a,3gp,3g2,mj2"}
TOLERANCE = 0.3  # seconds between a registered length and the audio received
SILENCE = 200  # peak sample (of 32767) below which a file holds no speech


@dataclass
class Transcription:
    """One call to ``/audio/transcriptions``, as the fake answered it."""

    status: int
    filename: str = ""
    model: str = ""
    language: str | None = None
    seconds: float | None = None  # as decoded
    text: str = ""
    at: float = field(default_factory=time.monotonic)  # when it came


@dataclass
class Speech:
    """One call to ``/audio/speech``."""

    status: int
    params: dict[str, Any] = field(default_factory=dict)


class FakeSpeech:
    def __init__(self, api_key: str = API_KEY):
        self.api_key = api_key
        self.url = ""
        self.phrases: list[tuple[float, str]] = []
        self.failures: list[tuple[int, float | None]] = []  # the next calls' answers, first first
        self.transcriptions: list[Transcription] = []
        self.speeches: list[Speech] = []
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> FakeSpeech:
        app = web.Application(client_max_size=30 * 1024 * 1024)
        app.router.add_post("/v1/audio/transcriptions", self._transcribe)
        app.router.add_post("/v1/audio/speech", self._speak)
        self._runner, self.url = await serve_locally(app, "/v1")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # scripting ----------------------------------------------------------------------------------
    def register(self, seconds: float, phrase: str) -> None:
        """Audio about ``seconds`` long says ``phrase``."""
        self.phrases.append((seconds, phrase))

    def fail(self, status: int, *, retry_after: float | None = None, times: int = 1) -> None:
        """The next ``times`` transcriptions answer ``status`` (429 with ``Retry-After``, 500 ...)."""
        self.failures += [(status, retry_after)] * times

    @property
    def heard(self) -> list[str]:
        """What the successful transcriptions answered, in order."""
        return [call.text for call in self.transcriptions if call.status == 200]

    # HTTP ---------------------------------------------------------------------------------------
    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.api_key}"

    async def _transcribe(self, request: web.Request) -> web.Response:
        call = Transcription(status=401)
        self.transcriptions.append(call)
        if not self._authorized(request):
            return _error(401, "Incorrect API key provided")
        form = await request.post()
        upload, call.model = form.get("file"), str(form.get("model", ""))
        call.language = str(form["language"]) if "language" in form else None
        if not isinstance(upload, web.FileField) or not call.model:
            return _refuse(call, 400, "file and model are required")
        call.filename = upload.filename
        if self.failures:
            status, retry_after = self.failures.pop(0)
            headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
            return _refuse(call, status, f"scripted {status}", headers)
        if upload.filename.rsplit(".", 1)[-1].lower() not in EXTENSIONS:
            return _refuse(call, 400, f"Invalid file format. Supported formats: {sorted(EXTENSIONS)}")
        try:
            call.seconds, peak = _decode(upload.file.read())
        except ValueError as exc:
            return _refuse(call, 400, f"Invalid file format: {exc}")
        if peak < SILENCE:
            return _refuse(call, 400, "the audio is silent")
        phrase = next((p for s, p in self.phrases if abs(s - call.seconds) <= TOLERANCE), None)
        if phrase is None:
            return _refuse(call, 400, f"no phrase registered for audio of {call.seconds:.2f} s")
        call.status, call.text = 200, phrase
        return web.json_response({"text": phrase})

    async def _speak(self, request: web.Request) -> web.Response:
        call = Speech(status=401)
        self.speeches.append(call)
        if not self._authorized(request):
            return _error(401, "Incorrect API key provided")
        call.params = await request.json()
        text = str(call.params.get("input") or "")
        if not text or call.params.get("response_format") != "opus" or not call.params.get("voice"):
            call.status = 400
            return _error(400, "input, voice and response_format 'opus' are expected")
        call.status = 200
        seconds = min(5.0, 0.5 + len(text) / 40)
        return web.Response(body=tone(seconds), content_type="audio/ogg")


def _decode(data: bytes) -> tuple[float, int]:
    """The length and loudest sample of a file's first audio stream, decoded; ValueError if it is
    not audio in a container OpenAI takes."""
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if container.format.name not in CONTAINERS or not container.streams.audio:
                raise ValueError(f"{container.format.name} is not taken")
            resampler = av.AudioResampler(format="s16", layout="mono", rate=16_000)
            samples, peak = 0, 0
            for frame in container.decode(container.streams.audio[0]):
                for mono in resampler.resample(frame):
                    values = array.array("h", bytes(mono.planes[0])[: mono.samples * 2])
                    samples += mono.samples
                    peak = max(peak, max(map(abs, values), default=0))
    except av.error.FFmpegError as exc:
        raise ValueError(type(exc).__name__) from None
    if not samples:
        raise ValueError("no audio")
    return samples / 16_000, peak


def tone(seconds: float, rate: int = 48_000) -> bytes:
    """A 440 Hz tone as OGG/Opus."""
    count = int(seconds * rate)
    samples = array.array("h", (int(8000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(count)))
    output = io.BytesIO()
    with av.open(output, mode="w", format="ogg") as container:
        stream = container.add_stream("libopus", rate=rate, layout="mono")
        for start in range(0, count, 960):
            chunk = samples[start : start + 960]
            frame = av.AudioFrame(format="s16", layout="mono", samples=len(chunk))
            frame.planes[0].update(chunk.tobytes())
            frame.sample_rate, frame.pts = rate, start
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return output.getvalue()


def _refuse(
    call: Transcription, status: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    call.status = status
    return _error(status, message, headers)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    body = {"error": {"message": message, "type": "invalid_request_error"}}
    return web.json_response(body, status=status, headers=headers)
