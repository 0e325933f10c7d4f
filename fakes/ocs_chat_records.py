"""The fake OCS Chat API's records: its participants, sessions, uploads, tasks and what it took,
and OCS's list of file types a chat takes (``settings.SUPPORTED_FILE_TYPES["chat_attachments"]``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fakes.ocs_records import FakeMessage

# OCS's "collections" types without the images no LLM provider takes (.bmp, .svg)
EXTENSIONS = [
    ".txt",
    ".pdf",
    ".doc",
    ".docx",
    ".xls",
    ".xlsx",
    ".csv",
    ".jpg",
    ".jpeg",
    ".png",
    ".gif",
    ".webp",
    ".mp4",
    ".mov",
    ".avi",
    ".mp3",
    ".wav",
    ".html",
    ".htm",
    ".css",
    ".js",
    ".xml",
    ".md",
    ".ics",
    ".vcf",
    ".rtf",
    ".tsv",
    ".yaml",
    ".yml",
    ".py",
    ".c",
]


@dataclass
class Participant:
    identifier: str
    remote_id: str
    name: str | None


@dataclass
class ChatSession:
    token: str
    created_at: datetime
    participant: Participant
    state: dict[str, Any] = field(default_factory=dict)


@dataclass
class Upload:
    id: int
    session_id: str
    name: str
    content_type: str
    data: bytes


@dataclass
class Received:
    """A ``message/`` OCS took."""

    session_id: str
    message: str
    attachment_ids: list[int]
    context: dict[str, Any]


@dataclass
class Task:
    session_id: str
    done: bool = False
    error: tuple[int, str] | None = None
    message: FakeMessage | None = None
