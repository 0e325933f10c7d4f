"""Split a reply into parts that fit a platform's limit.

Cuts go at the best boundary that keeps a part reasonably full: a paragraph, else a line, else a
sentence, else a word. Never inside a word, a markdown link, a bare URL or a fenced code block
(a code block longer than the limit is cut between its lines, its fence closed and reopened).
Parts keep their order. Each cut looks only at the next stretch of text, so long texts split in
linear time.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_FENCE = re.compile(r"^(```|~~~)[^\n]*\n.*?^\1[ \t]*$", re.DOTALL | re.MULTILINE)
_FENCE_LINE = re.compile(r"^(```|~~~)[^\n]*$", re.MULTILINE)
_LINK = re.compile(r"!?\[[^\]\n]*\]\([^)\s]*(?:\s+\"[^\"]*\")?\)|<https?://[^>\s]+>|https?://\S+")
_LEVELS = (
    re.compile(r"\n[ \t]*\n"),  # paragraph
    re.compile(r"\n"),  # line (the next line keeps its indentation: it may be code)
    re.compile(r"(?<=[.!?…])[\"')\]]*\s+"),  # sentence
    re.compile(r"\s+"),  # word
)
_FULL_ENOUGH = 0.5  # a cut at a better boundary is taken if the part is at least half full
_FENCE_RESERVE = 8  # room kept in a part with code for closing a fence that had to be cut

Span = tuple[int, int]


def utf16_length(text: str) -> int:
    """Length in UTF-16 code units, as Telegram counts (a lone surrogate, cleaned later, is one)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def split_text(text: str, limit: int, length: Callable[[str], int] = len) -> list[str]:
    """Split ``text`` into non-empty parts each at most ``limit`` long (as ``length`` counts)."""
    if limit < 4 * _FENCE_RESERVE:
        raise ValueError("limit too small")
    parts: list[str] = []
    text = text.strip()
    while text:
        if length(text) <= limit:
            parts.append(text)
            break
        head = text[:limit]
        reserve = _FENCE_RESERVE if "```" in head or "~~~" in head else 0
        part, text = _cut(text, limit - reserve, length)
        part, text = _balance_fences(part.rstrip(), text)
        if part:
            parts.append(part)
    return parts


def _cut(text: str, limit: int, length: Callable[[str], int]) -> tuple[str, str]:
    fits = _fits(text, limit, length)
    window = text[: fits + limit + 1]  # spans that start before the cut and fit a part end in here
    protected = _protected_spans(window, limit, length)
    fallback: re.Match[str] | None = None
    for level in _LEVELS:
        cuts = [m for m in level.finditer(window, 1, fits + 1) if not _inside(m.start(), protected)]
        if not cuts:
            continue
        cut = cuts[-1]
        if fallback is None or cut.start() > fallback.start():
            fallback = cut
        if length(text[: cut.start()]) >= limit * _FULL_ENOUGH:
            return text[: cut.start()], text[cut.end() :]
    if fallback is not None:
        return text[: fallback.start()], text[fallback.end() :]
    return text[:fits], text[fits:]  # one word or link longer than a part: nothing better exists


def _protected_spans(window: str, limit: int, length: Callable[[str], int]) -> list[Span]:
    """Code blocks and links not to cut. A code block at the start that cannot fit any part is not
    protected: it is cut between lines (``_balance_fences`` repairs its fences)."""
    fences = [
        (m.start(), m.end()) for m in _FENCE.finditer(window) if m.start() > 0 or length(m.group(0)) <= limit
    ]
    links = [(m.start(), m.end()) for m in _LINK.finditer(window) if not _inside(m.start(), fences)]
    return fences + links


def _balance_fences(part: str, rest: str) -> tuple[str, str]:
    """If the cut left a code block open, close it in this part and reopen it in the next
    (whose code keeps its indentation); otherwise the next part starts at its first word."""
    fences = _FENCE_LINE.findall(part)
    if len(fences) % 2 == 0:
        return part, rest.lstrip()
    opener = [m.group(0) for m in _FENCE_LINE.finditer(part)][-1]
    return f"{part}\n{opener[:3]}", f"{opener}\n{rest}"


def _inside(position: int, spans: list[Span]) -> bool:
    return any(start < position < end for start, end in spans)


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
