"""OCS answers are markdown; Telegram renders a small HTML subset. Convert one to the other.

The output only uses tags Telegram accepts (``b i s code pre a blockquote``), always well nested,
with ``< > &`` escaped, and never has more visible characters than the markdown it came from
(markers are dropped, ``- `` becomes ``• ``), so a part that fits 4096 UTF-16 units still fits.
If Telegram rejects it anyway the channel sends the markdown as plain text.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

_FENCE = re.compile(r"^\s*(```|~~~)\s*([\w+#.-]*)\s*$")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_QUOTE = re.compile(r"^\s{0,3}>\s?(.*)$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+(.*)$")
_RULE = re.compile(r"^\s{0,3}([-*_])(\s*\1){2,}\s*$")
_TABLE = re.compile(r"^\s*\|.*\|\s*$")
_SAFE_URL = re.compile(r"^(https?://|tg://|mailto:)\S+$", re.IGNORECASE)


def escape(text: str) -> str:
    return html.escape(text, quote=False)


def to_html(markdown: str) -> str:
    """Telegram HTML for a markdown text (headings bold, lists with bullets, code blocks...)."""
    out: list[str] = []
    lines = markdown.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        if fence:
            end = next(
                (j for j in range(i + 1, len(lines)) if lines[j].strip() == fence.group(1)), len(lines)
            )
            out.append(_pre("\n".join(lines[i + 1 : end]), fence.group(2)))
            i = end + 1
            continue
        if _QUOTE.match(line):
            j = _run(lines, i, lambda s: bool(_QUOTE.match(s)))
            quoted = [_inline(_QUOTE.match(s).group(1)) for s in lines[i:j]]  # type: ignore[union-attr]
            out.append("<blockquote>" + "\n".join(quoted) + "</blockquote>")
            i = j
            continue
        if _TABLE.match(line):
            j = _run(lines, i, lambda s: bool(_TABLE.match(s)))
            out.append(_pre("\n".join(lines[i:j]), ""))
            i = j
            continue
        out.append(_line(line))
        i += 1
    return "\n".join(out)


def _run(lines: list[str], start: int, test: Callable[[str], bool]) -> int:
    end = start
    while end < len(lines) and test(lines[end]):
        end += 1
    return end


def _pre(code: str, language: str) -> str:
    if language:
        return f'<pre><code class="language-{escape(language)}">{escape(code)}</code></pre>'
    return f"<pre>{escape(code)}</pre>"


def _line(line: str) -> str:
    if _RULE.match(line):
        return "———"
    heading = _HEADING.match(line)
    if heading:
        return f"<b>{_inline(heading.group(1))}</b>" if heading.group(1) else ""
    bullet = _BULLET.match(line)
    if bullet:
        return f"{bullet.group(1)}• {_inline(bullet.group(2))}"
    return _inline(line)


# inline -----------------------------------------------------------------------------------------

_Render = Callable[[re.Match[str], bool], str]


def _code(m: re.Match[str], links: bool) -> str:
    return f"<code>{escape(m.group(1))}</code>"


def _link(m: re.Match[str], links: bool) -> str:
    label, url = m.group(1), m.group(2)
    inner = _inline(label, links=False) if label else escape(url)
    if not links or not _SAFE_URL.match(url):
        return inner
    return f'<a href="{html.escape(url, quote=True)}">{inner}</a>'


def _autolink(m: re.Match[str], links: bool) -> str:
    url = m.group(1)
    return f'<a href="{html.escape(url, quote=True)}">{escape(url)}</a>' if links else escape(url)


def _wrap(tag: str) -> _Render:
    def render(m: re.Match[str], links: bool) -> str:
        return f"<{tag}>{_inline(m.group(1), links=links)}</{tag}>"

    return render


# Earliest match wins; on a tie, the first pattern in this list.
_INLINE: list[tuple[re.Pattern[str], _Render]] = [
    (re.compile(r"`([^`\n]+)`"), _code),
    (re.compile(r"!\[([^\]\n]*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"\n]*\")?\s*\)"), _link),
    (re.compile(r"\[([^\]\n]+)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"\n]*\")?\s*\)"), _link),
    (re.compile(r"<((?:https?://|mailto:)[^>\s]+)>"), _autolink),
    (re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*"), _wrap("b")),
    (re.compile(r"(?<!\w)__(?=\S)(.+?)(?<=\S)__(?!\w)"), _wrap("b")),
    (re.compile(r"~~(?=\S)(.+?)(?<=\S)~~"), _wrap("s")),
    (re.compile(r"(?<![*\w])\*(?=[^\s*])([^*\n]+?)(?<=\S)\*(?![*\w])"), _wrap("i")),
    (re.compile(r"(?<![_\w])_(?=[^\s_])([^_\n]+?)(?<=\S)_(?![_\w])"), _wrap("i")),
]


def _inline(text: str, *, links: bool = True) -> str:
    out: list[str] = []
    pos = 0
    # The next match of each pattern at or after ``pos`` (searched again only once passed).
    found: list[re.Match[str] | None] = [pattern.search(text) for pattern, _ in _INLINE]
    while True:
        for k, (pattern, _) in enumerate(_INLINE):
            m = found[k]
            if m is not None and m.start() < pos:
                found[k] = pattern.search(text, pos)
        candidates = [(m.start(), k) for k, m in enumerate(found) if m is not None]
        if not candidates:
            break
        _, k = min(candidates)
        m = found[k]
        assert m is not None
        out.append(escape(text[pos : m.start()]))
        out.append(_INLINE[k][1](m, links))
        pos = m.end()
    out.append(escape(text[pos:]))
    return "".join(out)
