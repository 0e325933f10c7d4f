"""Split a reply into parts that fit a platform's limit.

Cuts go at the best boundary that keeps a part reasonably full: a paragraph, else a line, else a
sentence, else a word. Never inside a word, a markdown link, a bare URL or a fenced code block
(a code block longer than the limit is cut between its lines, its fence closed and reopened).
Parts keep their order.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_FENCE = re.compile(r"^(```|~~~)[^\n]*\n.*?^\1[ \t]*$", re.DOTALL | re.MULTILINE)
_LINK = re.compile(r"!?\[[^\]\n]*\]\([^)\s]*(?:\s+\"[^\"]*\")?\)|<https?://[^>\s]+>|https?://\S+")
_LEVELS = (
    re.compile(r"\n[ \t]*\n\s*"),  # paragraph
    re.compile(r"\n\s*"),  # line
    re.compile(r"(?<=[.!?…])[\"')\]]*\s+"),  # sentence
    re.compile(r"\s+"),  # word
)
_FULL_ENOUGH = 0.5  # a cut at a better boundary is taken if the part is at least half full
_FENCE_RESERVE = 8  # room for closing a fence that had to be cut


def utf16_length(text: str) -> int:
    """Length in UTF-16 code units, as Telegram counts."""
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int, length: Callable[[str], int] = len) -> list[str]:
    """Split ``text`` into stripped parts each at most ``limit`` long (as ``length`` counts)."""
    if limit < 2 * _FENCE_RESERVE:
        raise ValueError("limit too small")
    text = text.strip()
    parts: list[str] = []
    while text:
        if length(text) <= limit:
            parts.append(text)
            break
        part, text = _cut(text, limit, length)
        parts.append(part)
    return parts


def _cut(text: str, limit: int, length: Callable[[str], int]) -> tuple[str, str]:
    protected = _protected_spans(text)
    fits = _fits(text, limit, length)
    fallback: re.Match[str] | None = None
    for level in _LEVELS:
        cuts = [m for m in level.finditer(text, 1, fits + 1) if not _inside(m.start(), protected)]
        if not cuts:
            continue
        cut = cuts[-1]
        if fallback is None or cut.start() > fallback.start():
            fallback = cut
        if length(text[: cut.start()]) >= limit * _FULL_ENOUGH:
            return text[: cut.start()].rstrip(), text[cut.end() :]
    if fallback is not None:
        return text[: fallback.start()].rstrip(), text[fallback.end() :]
    return _cut_protected(text, limit, length, protected)


def _cut_protected(
    text: str, limit: int, length: Callable[[str], int], protected: list[tuple[int, int, str]]
) -> tuple[str, str]:
    """Nothing but one long word, link or code block fits: cut a code block between lines, else hard."""
    for start, _end, fence in protected:
        if start == 0 and fence:
            room = _fits(text, limit - _FENCE_RESERVE, length)
            newline = text.rfind("\n", 0, room)
            header_end = text.find("\n")
            if newline > header_end:
                opener = text[: header_end + 1]
                return text[:newline] + "\n" + fence, opener + text[newline + 1 :]
    cut = _fits(text, limit, length)
    return text[:cut], text[cut:]


def _protected_spans(text: str) -> list[tuple[int, int, str]]:
    spans = [(m.start(), m.end(), m.group(1)) for m in _FENCE.finditer(text)]
    spans += [(m.start(), m.end(), "") for m in _LINK.finditer(text) if not _inside(m.start(), spans)]
    return sorted(spans)


def _inside(position: int, spans: list[tuple[int, int, str]]) -> bool:
    return any(start < position < end for start, end, _ in spans)


def _fits(text: str, limit: int, length: Callable[[str], int]) -> int:
    """The largest index i such that length(text[:i]) <= limit (binary search: length is monotonic)."""
    low, high = 0, min(len(text), limit)
    while low < high:
        mid = (low + high + 1) // 2
        if length(text[:mid]) <= limit:
            low = mid
        else:
            high = mid - 1
    return low
