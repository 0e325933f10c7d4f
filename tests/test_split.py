"""The reply splitter: parts fit, keep their order, and never cut a word, link or code block."""

from __future__ import annotations

import random
import re

import pytest

from bridge.split import split_text, utf16_length

LINK = "[the full report](https://example.org/reports/2026/annual-report-final.pdf)"


def rejoin(parts: list[str]) -> str:
    return re.sub(r"\s+", " ", " ".join(parts))


def test_short_text_is_one_part():
    assert split_text("  hello  ", 4096) == ["hello"]
    assert split_text("", 4096) == []


def test_paragraphs_are_preferred():
    first, second = "a" * 60 + ".", "b " * 30
    assert split_text(f"{first}\n\n{second}", 80) == [first, second.strip()]


def test_sentences_before_words_and_never_inside_a_word():
    text = " ".join(f"Sentence {i} has several words in it." for i in range(30))
    parts = split_text(text, 120)
    assert all(len(p) <= 120 for p in parts)
    assert all(p.endswith(".") for p in parts)
    assert rejoin(parts) == text
    words = set(text.split())
    assert all(set(p.split()) <= words for p in parts)


def test_links_and_urls_are_not_cut():
    text = " ".join(
        ["word"] * 10 + [LINK] + ["word"] * 10 + ["https://example.org/a/very/long/path?q=1"] + ["end"] * 5
    )
    for limit in range(90, 140, 7):
        parts = split_text(text, limit)
        assert any(LINK in p for p in parts)
        assert any("https://example.org/a/very/long/path?q=1" in p for p in parts)
        assert rejoin(parts) == text


def test_a_code_block_is_kept_whole_when_it_fits():
    code = "```python\n" + "\n".join(f"print({i})" for i in range(8)) + "\n```"
    text = "Intro line here. " * 5 + "\n\n" + code + "\n\nAfter the code."
    parts = split_text(text, 120)
    assert any(code in p for p in parts)


def test_a_code_block_too_long_is_cut_between_lines_and_its_fence_reopened():
    code = "```js\n" + "\n".join(f"console.log({i});" for i in range(40)) + "\n```"
    parts = split_text(code, 150)
    assert len(parts) > 1
    for part in parts:
        assert len(part) <= 150
        assert part.startswith("```js\n") and part.endswith("```")
    lines = [line for p in parts for line in p.splitlines() if not line.startswith("```")]
    assert lines == [f"console.log({i});" for i in range(40)]


def test_utf16_counting_for_telegram():
    text = "😀 " * 3000  # each emoji is two UTF-16 units
    parts = split_text(text, 4096, utf16_length)
    assert all(utf16_length(p) <= 4096 for p in parts)
    assert rejoin(parts).strip() == text.strip()
    assert len(parts) == 3


@pytest.mark.parametrize("seed", range(20))
def test_random_text_roundtrips(seed):
    rng = random.Random(seed)
    vocabulary = ["alpha", "beta.", "gamma!", "delta?", "\n", "\n\n", LINK, "épsilon", "ζ"]
    text = " ".join(rng.choice(vocabulary) for _ in range(400))
    limit = rng.randint(100, 400)
    parts = split_text(text, limit)
    assert all(0 < len(p) <= limit for p in parts)
    assert rejoin(parts) == re.sub(r"\s+", " ", text).strip()


def test_no_empty_parts_and_indentation_kept_in_code():
    assert split_text("x" * 40 + " " * 60 + "y" * 5, 40) == ["x" * 40, "y" * 5]
    code = "```py\n" + "\n".join(f"    x = {i}" for i in range(200)) + "\n```"
    parts = split_text(code, 300)
    assert all(p.startswith("```py\n    x = ") and p.endswith("\n```") for p in parts)


def test_a_long_text_of_words():
    parts = split_text("word " * 200_000, 4096)
    assert all(len(p) <= 4096 for p in parts)
    assert rejoin(parts) == ("word " * 200_000).strip()
