"""Real voice notes for the tests: ``espeak-ng`` speaks a phrase (WAV), PyAV encodes it as a
Telegram/WhatsApp voice note (OGG/Opus) and as an MMS one (AMR-NB), and measures what it made."""

from __future__ import annotations

import io
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import av

# The phrases the tests speak: lengths far enough apart for the fake to tell them by length.
PHRASES = {
    "time": "what time is it",
    "hours": "when are you open on saturday mornings and on sunday afternoons",
    "long": "please tell me everything about the opening hours of the shop in the city centre, "
    "the one near the station, and whether I can park my car there on a weekday",
}


@dataclass(frozen=True)
class Note:
    phrase: str
    wav: bytes
    ogg: bytes  # OGG/Opus, as Telegram and WhatsApp send voice notes
    amr: bytes  # AMR-NB, as MMS sends them
    seconds: float


def speak(phrase: str, folder: Path) -> Note:
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng not found: run `bash scripts/system-deps.sh` (or make test)")
    path = folder / f"{abs(hash(phrase))}.wav"
    subprocess.run(["espeak-ng", "-w", str(path), phrase], check=True, capture_output=True, timeout=60)
    wav = path.read_bytes()
    ogg = encode(wav, "ogg", "libopus", 48_000)
    return Note(phrase, wav, ogg, encode(wav, "amr", "libopencore_amrnb", 8_000), length(ogg))


def encode(data: bytes, container_format: str, codec: str, rate: int) -> bytes:
    """``data``'s audio re-encoded, mono at ``rate``."""
    output = io.BytesIO()
    with av.open(io.BytesIO(data)) as source, av.open(output, mode="w", format=container_format) as target:
        stream = target.add_stream(codec, rate=rate, layout="mono")
        if codec == "libopencore_amrnb":
            stream.bit_rate = 12_200
        resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
        for frame in [*source.decode(audio=0), None]:
            for mono in resampler.resample(frame):
                target.mux(stream.encode(mono))
        target.mux(stream.encode(None))
    return output.getvalue()


def length(data: bytes) -> float:
    """Seconds of audio, counted from the decoded samples."""
    with av.open(io.BytesIO(data)) as container:
        return sum(frame.samples / frame.sample_rate for frame in container.decode(audio=0))


def codec_of(data: bytes) -> tuple[str, str]:
    """(container, codec) of a file, as PyAV reads it."""
    with av.open(io.BytesIO(data)) as container:
        return container.format.name, container.streams.audio[0].codec_context.name
