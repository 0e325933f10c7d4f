"""Audio with PyAV (FFmpeg's libraries): how long a note really is, and conversion of what a
speech-to-text endpoint does not take (AMR/3GPP from MMS) to OGG/Opus. CPU work: call these in a
thread (``asyncio.to_thread``)."""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass

import av
import av.error

OPUS_RATE = 48_000
# (container, codec) pairs an OpenAI-compatible endpoint takes as they are, by the file name's
# extension it reads the format from (flac, m4a, mp3, mp4, mpeg, mpga, oga, ogg, wav, webm).
_TAKEN = {
    ("ogg", "opus"): "ogg",
    ("ogg", "vorbis"): "ogg",
    ("mp3", "mp3"): "mp3",
    ("wav", "pcm_s16le"): "wav",
    ("flac", "flac"): "flac",
    ("mp4", "aac"): "m4a",
    ("webm", "opus"): "webm",
}


class AudioError(Exception):
    """The bytes are not audio PyAV can decode (or hold no sound at all)."""


@dataclass(frozen=True, slots=True)
class Sound:
    """What a note is: its container and codec, and its length in seconds (counted from the
    decoded samples, up to the limit it was measured against: ``over`` once past it)."""

    container: str
    codec: str
    seconds: float
    over: bool = False
    video: bool = False  # a video note: its sound is sent alone

    @property
    def extension(self) -> str | None:
        """The file extension an endpoint takes it under, or None when it must be converted."""
        return None if self.video else _TAKEN.get((self.container, self.codec))


def measure(data: bytes, limit: float) -> Sound:
    """Decode the note's first audio stream, counting its length; stop once past ``limit``."""
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                raise AudioError("no audio stream")
            stream = container.streams.audio[0]
            sound = Sound(
                _container(container), stream.codec_context.name, 0.0, video=bool(container.streams.video)
            )
            seconds = 0.0
            for frame in container.decode(stream):
                seconds += frame.samples / (frame.sample_rate or OPUS_RATE)
                if seconds > limit:
                    return dataclasses.replace(sound, seconds=seconds, over=True)
            if seconds <= 0:
                raise AudioError("no sound")
            return dataclasses.replace(sound, seconds=seconds)
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise AudioError(f"undecodable audio ({type(exc).__name__})") from None


def to_ogg_opus(data: bytes) -> bytes:
    """The note's first audio stream as mono OGG/Opus (what Telegram's sendVoice and WhatsApp's
    voice messages are, and what every speech-to-text endpoint takes)."""
    output = io.BytesIO()
    try:
        with av.open(io.BytesIO(data), mode="r") as source:
            if not source.streams.audio:
                raise AudioError("no audio stream")
            with av.open(output, mode="w", format="ogg") as target:
                encoder = target.add_stream("libopus", rate=OPUS_RATE, layout="mono")
                resampler = av.AudioResampler(format="s16", layout="mono", rate=OPUS_RATE)
                for frame in source.decode(source.streams.audio[0]):
                    for mono in resampler.resample(frame):
                        target.mux(encoder.encode(mono))
                for mono in resampler.resample(None):
                    target.mux(encoder.encode(mono))
                target.mux(encoder.encode(None))
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise AudioError(f"cannot convert the audio ({type(exc).__name__})") from None
    return output.getvalue()


def _container(container: av.container.InputContainer) -> str:
    """The demuxer's short name (FFmpeg names MP4/M4A/3GPP alike: ``mov,mp4,m4a,3gp,...``)."""
    name: str = container.format.name
    if name.startswith("mov,"):
        return "3gp" if _brand(container).startswith("3g") else "mp4"
    return "webm" if name == "matroska,webm" else name


def _brand(container: av.container.InputContainer) -> str:
    return str(container.metadata.get("major_brand", "")).lower()
