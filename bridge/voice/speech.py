"""OpenAI-compatible speech endpoints (OpenAI, Groq, Azure OpenAI, self-hosted Whisper servers):
``POST {base}/audio/transcriptions`` (multipart ``file`` + ``model`` (+ ``language``), answer
``{"text"}``) and ``POST {base}/audio/speech`` (JSON, answer the audio's bytes). 429, 5xx, timeouts
and unreachable servers are worth retrying (``Retry-After`` honoured); other answers are final."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from pydantic import SecretStr

TIMEOUT = aiohttp.ClientTimeout(total=120, connect=10)
MAX_SPEECH_BYTES = 10 * 1024 * 1024  # a spoken answer of a few minutes is well under 1 MB


class SpeechError(Exception):
    """The endpoint did not give a transcript (or speech). ``retryable``: 429, 5xx, timeouts."""

    def __init__(self, reason: str, *, retryable: bool = False, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after


async def transcribe(
    base_url: str,
    key: SecretStr | None,
    audio: bytes,
    filename: str,
    *,
    model: str,
    language: str | None = None,
) -> str:
    """The text the endpoint heard in ``audio`` (a file named with its format's extension)."""
    form = aiohttp.FormData()
    form.add_field("file", audio, filename=filename, content_type="application/octet-stream")
    form.add_field("model", model)
    form.add_field("response_format", "json")
    if language:
        form.add_field("language", language)
    body = await _post(f"{base_url}/audio/transcriptions", key, data=form, what="speech-to-text")
    try:
        text = json.loads(body)["text"]
    except (ValueError, KeyError, TypeError):
        raise SpeechError("speech-to-text answered something other than {'text': ...}") from None
    if not isinstance(text, str):
        raise SpeechError("speech-to-text answered a text that is not a string")
    return text.strip()


async def synthesize(base_url: str, key: SecretStr | None, text: str, *, model: str, voice: str) -> bytes:
    """``text`` spoken, as the endpoint's OGG/Opus bytes."""
    payload = {"model": model, "voice": voice, "input": text, "response_format": "opus"}
    return await _post(f"{base_url}/audio/speech", key, json=payload, what="text-to-speech")


async def _post(url: str, key: SecretStr | None, *, what: str, **body: Any) -> bytes:
    headers = {"Authorization": f"Bearer {key.get_secret_value()}"} if key is not None else {}
    try:
        async with (
            aiohttp.ClientSession(timeout=TIMEOUT) as http,
            http.post(url, headers=headers, allow_redirects=False, **body) as response,
        ):
            if response.status == 200:
                return await _read(response, what)
            detail = _detail(await response.content.read(2000))
            if key is not None:  # some servers quote the key they refused
                detail = detail.replace(key.get_secret_value(), "[key]")
            reason = f"{what} answered {response.status}{detail}"
            if response.status == 429 or response.status >= 500:
                raise SpeechError(reason, retryable=True, retry_after=_retry_after(response))
            raise SpeechError(reason)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise SpeechError(f"cannot reach {what} ({type(exc).__name__})", retryable=True) from None


async def _read(response: aiohttp.ClientResponse, what: str) -> bytes:
    data = await response.content.read(MAX_SPEECH_BYTES + 1)
    if len(data) > MAX_SPEECH_BYTES:
        raise SpeechError(f"{what} answered more than {MAX_SPEECH_BYTES} bytes")
    return data


def _retry_after(response: aiohttp.ClientResponse) -> float | None:
    """``Retry-After`` in seconds (the HTTP-date form is rare here: backoff then)."""
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return None


def _detail(body: bytes) -> str:
    """The error's own message (OpenAI's ``{"error": {"message"}}``), short; never a header."""
    try:
        error = json.loads(body).get("error")
        message = error.get("message") if isinstance(error, dict) else error
    except (ValueError, AttributeError):
        return ""
    return f": {str(message)[:200]}" if message else ""
