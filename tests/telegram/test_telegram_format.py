"""OCS markdown -> Telegram HTML; flood limits; splitting counted in UTF-16 units."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from adapters.telegram.format import to_html
from adapters.telegram.limits import Limiter, Rates
from bridge.split import split_text, utf16_length

TELEGRAM_TAGS = {"b", "i", "s", "u", "code", "pre", "a", "blockquote", "tg-spoiler"}


class _Checker(HTMLParser):
    """Fails like Telegram would: unknown tags, bad nesting, unclosed tags. Collects visible text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        assert tag in TELEGRAM_TAGS, tag
        if tag == "a":
            assert (dict(attrs).get("href") or "").startswith(("http://", "https://", "mailto:", "tg://"))
            assert "a" not in self.stack
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack.pop() == tag, tag

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def visible(html: str) -> str:
    checker = _Checker()
    checker.feed(html)
    checker.close()
    assert not checker.stack
    return "".join(checker.text)


@pytest.mark.parametrize(
    ("markdown", "html"),
    [
        ("**bold** and __bold__", "<b>bold</b> and <b>bold</b>"),
        (
            "*it* and _it_ but snake_case_name and 2*3*4",
            "<i>it</i> and <i>it</i> but snake_case_name and 2*3*4",
        ),
        ("~~gone~~", "<s>gone</s>"),
        ("`a < b && c`", "<code>a &lt; b &amp;&amp; c</code>"),
        (
            "[OCS](https://openchatstudio.com/?a=1&b=2)",
            '<a href="https://openchatstudio.com/?a=1&amp;b=2">OCS</a>',
        ),
        ("![chart](https://x.org/c.png)", '<a href="https://x.org/c.png">chart</a>'),
        ("<https://x.org>", '<a href="https://x.org">https://x.org</a>'),
        ("[relative](/docs) [js](javascript:alert(1))", "relative js)"),
        ("# Title\n## Sub", "<b>Title</b>\n<b>Sub</b>"),
        ("- one\n  * two\n+ three", "• one\n  • two\n• three"),
        ("1. first\n2. second", "1. first\n2. second"),
        ("> quoted **x**\n> more", "<blockquote>quoted <b>x</b>\nmore</blockquote>"),
        (
            "```python\nif a < b:\n    pass\n```",
            '<pre><code class="language-python">if a &lt; b:\n    pass</code></pre>',
        ),
        ("```\nno **bold** here\n```", "<pre>no **bold** here</pre>"),
        ("| a | b |\n|---|---|", "<pre>| a | b |\n|---|---|</pre>"),
        ("---", "———"),
        ("a < b > c & d", "a &lt; b &gt; c &amp; d"),
        ("**[bold link](https://x.org)**", '<b><a href="https://x.org">bold link</a></b>'),
        ("[**x**](https://x.org)", '<a href="https://x.org"><b>x</b></a>'),
        ("**unclosed and *half", "**unclosed and *half"),
    ],
)
def test_markdown_to_html(markdown: str, html: str) -> None:
    assert to_html(markdown) == html
    visible(html)


def test_unclosed_code_fence_runs_to_the_end() -> None:
    assert (
        to_html("text\n```js\nlet a = 1 < 2;")
        == 'text\n<pre><code class="language-js">let a = 1 &lt; 2;</code></pre>'
    )


NASTY = [
    "**a *b** c*",
    "__a **b__ c**",
    "[a [b](https://x.org)](https://y.org)",
    "`code **not bold**` **bold `code`**",
    "~~**~~**",
    "*" * 20 + "_" * 20 + "`" * 5,
    "<b>not html</b> &amp; &",
    "[x](https://x.org/a_(b)_c)",
    "> **quote\n> end**",
    "👋🏽 **\U0001d49c** _ü_",
]


@pytest.mark.parametrize("markdown", NASTY)
def test_output_is_always_valid_telegram_html_and_never_longer(markdown: str) -> None:
    html = to_html(markdown)
    assert utf16_length(visible(html)) <= utf16_length(markdown)


def test_a_full_answer_part_fits_after_conversion() -> None:
    answer = "\n\n".join(
        f"## Step {n}\n- **do** the [thing](https://x.org/{n}) with `code` & <care> 👍\n" + "word " * 40
        for n in range(120)
    )
    parts = split_text(answer, 4096, utf16_length)
    assert len(parts) > 2
    for part in parts:
        assert utf16_length(part) <= 4096
        assert utf16_length(visible(to_html(part))) <= 4096


def test_utf16_counting_splits_emoji_text_below_telegram_limit() -> None:
    text = " ".join(["\U0001d49c👋🏽"] * 2000)  # 7 UTF-16 units per word: 2000 words ~ 15999 units
    assert len(text) < 4096 * 2 < utf16_length(text)
    parts = split_text(text, 4096, utf16_length)
    assert all(utf16_length(p) <= 4096 for p in parts)
    assert " ".join(parts) == text
    assert len(parts) == 4


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_limiter_per_chat_per_group_per_bot() -> None:
    clock = Clock()
    limiter = Limiter(Rates(per_chat=1.0, per_group=20, per_bot=30), clock)
    assert limiter.reserve("42") == 0
    assert limiter.reserve("42") == pytest.approx(1.0)
    assert limiter.reserve("43") == 0  # another chat is not held up
    clock.now += 1.0
    assert limiter.reserve("42") == 0
    # a group: 20 a minute, one a second
    for _ in range(20):
        assert limiter.reserve("-100") == 0
        clock.now += 1.0
    assert limiter.reserve("-100") == pytest.approx(40.0)
    # the bot: 30 a second over all chats
    clock.now += 100
    waits = [limiter.reserve(str(chat)) for chat in range(1000, 1031)]
    assert waits[:30] == [0] * 30 and waits[30] == pytest.approx(1.0)


def test_limiter_pause_after_429() -> None:
    clock = Clock()
    limiter = Limiter(Rates(), clock)
    limiter.pause("42", 7)
    assert limiter.paused("42") and not limiter.paused("43")
    assert limiter.reserve("42") == pytest.approx(7)
    clock.now += 7
    assert limiter.reserve("42") == 0


def test_no_raw_angle_brackets_leak() -> None:
    html = to_html('<script>alert(1)</script> [x](https://e.org/"onmouseover=x)')
    assert "<script" not in html
    assert '"onmouseover' not in html
    assert visible(html).startswith("<script>")
