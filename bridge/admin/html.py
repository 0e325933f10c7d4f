"""The operator's page as HTML strings: every value escaped, no script, one small style sheet."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from html import escape

from bridge.store.admin import ConversationSummary, Counts, DeadLetterText, Entry

STYLE = """
body{font:15px/1.4 system-ui,sans-serif;margin:1.5rem auto;max-width:70rem;padding:0 1rem;color:#222}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem}
th,td{border-bottom:1px solid #ddd;padding:.3rem .5rem;text-align:left;vertical-align:top}
.person{background:#f3f7ff}.bot{background:#f6fff3}.notice{background:#ffd;padding:.5rem}
.text{white-space:pre-wrap;max-width:40rem}form.inline{display:inline}nav a{margin-right:1rem}
"""
NOTICES = {
    "retried": "The dead letter was queued again.",
    "missing": "There is no such dead letter any more.",
    "expired": "Not retried: retention (RETAIN_DAYS) removed that dead letter's text.",
    "erased": "The person's data was erased.",
    "erased-session-kept": "The person's data was erased, but the bot's session could not be ended.",
}


def e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S") if at is not None else "-"


def page(title: str, body: str, *, csrf: str | None = None) -> str:
    logout = ""
    if csrf is not None:
        logout = form("/admin/logout", "Log out", csrf)
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{e(title)} · bridge</title><style>{STYLE}</style></head><body>"
        f"<nav><a href='/admin'>Overview</a>{logout}</nav><h1>{e(title)}</h1>{body}</body></html>"
    )


def form(action: str, label: str, csrf: str, *, extra: str = "") -> str:
    return (
        f"<form class='inline' method='post' action='{e(action)}'>"
        f"<input type='hidden' name='csrf' value='{e(csrf)}'>{extra}"
        f"<button type='submit'>{e(label)}</button></form>"
    )


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, row_class: Sequence[str] = ()) -> str:
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = ""
    for index, cells in enumerate(rows):
        css = f" class='{e(row_class[index])}'" if index < len(row_class) else ""
        body += f"<tr{css}>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def login(message: str = "") -> str:
    note = f"<p class='notice'>{e(message)}</p>" if message else ""
    body = (
        f"{note}<form method='post' action='/admin/login'>"
        "<label>Admin key <input type='password' name='key' autocomplete='current-password' required>"
        "</label> <button type='submit'>Log in</button></form>"
    )
    return page("Log in", body)


def overview(
    counts: list[Counts],
    letters: list[DeadLetterText],
    conversations: list[ConversationSummary],
    csrf: str,
    notice: str | None,
) -> str:
    parts = [f"<p class='notice'>{e(NOTICES[notice])}</p>"] if notice in NOTICES else []
    parts.append("<h2>Last hour and day</h2>")
    parts.append(
        table(
            [
                "channel",
                "received (hour)",
                "received (day)",
                "delivered (hour)",
                "delivered (day)",
                "dead (day)",
            ],
            [[e(c.channel), *(e(n) for n in _numbers(c))] for c in counts],
        )
    )
    parts.append(f"<h2>Dead letters ({len(letters)})</h2>")
    parts.append(
        "<p>None.</p>"
        if not letters
        else table(
            ["id", "at (UTC)", "channel", "person", "text", "reason", ""],
            [
                [
                    e(d.ref),
                    e(when(d.at)),
                    e(d.channel),
                    _person_link(d.conversation_id, d.person_key),
                    f"<div class='text'>{e(d.text)}</div>",
                    e(d.reason),
                    form(f"/admin/dead-letters/{d.ref}/retry", "Retry", csrf),
                ]
                for d in letters
            ],
        )
    )
    by_channel: dict[str, list[ConversationSummary]] = {}
    for conversation in conversations:
        by_channel.setdefault(conversation.channel, []).append(conversation)
    for channel, items in sorted(by_channel.items()):
        parts.append(f"<h2>Conversations on {e(channel)}</h2>")
        parts.append(
            table(
                ["person", "name", "last activity (UTC)", "state", "messages", "dead", "bot session"],
                [
                    [
                        _person_link(c.id, c.person_key),
                        e(c.person_name),
                        e(when(c.last_activity_at)),
                        e(c.state),
                        e(c.messages),
                        e(c.dead),
                        e(c.session_id or "-"),
                    ]
                    for c in items
                ],
            )
        )
    if not conversations:
        parts.append("<p>No conversations yet.</p>")
    return page("Overview", "".join(parts), csrf=csrf)


def _numbers(c: Counts) -> list[int]:
    return [c.received_hour, c.received_day, c.delivered_hour, c.delivered_day, c.dead_day]


def _person_link(conversation_id: int, person_key: str) -> str:
    return f"<a href='/admin/conversations/{conversation_id}'>{e(person_key)}</a>"


def transcript(conversation: ConversationSummary, entries: list[Entry], csrf: str) -> str:
    c = conversation
    facts = table(
        ["channel", "person", "name", "state", "last activity (UTC)", "bot session"],
        [[e(c.channel), e(c.person_key), e(c.person_name), e(c.state), e(when(c.last_activity_at)),
          e(c.session_id or "-")]],
    )  # fmt: skip
    lines = table(
        ["at (UTC)", "from", "kind", "text", "status", "detail"],
        [
            [
                e(when(x.at)),
                e(x.sender),
                e(x.kind),
                f"<div class='text'>{e(x.text)}</div>",
                e(x.status),
                e(x.detail),
            ]
            for x in entries
        ],
        row_class=[x.sender for x in entries],
    )
    confirm = "<label><input type='checkbox' name='confirm' value='yes' required> erase for good</label> "
    actions = (
        f"<p><a href='/admin/conversations/{c.id}/export'>Export this person's data (JSON)</a></p>"
        f"<p>{form(f'/admin/conversations/{c.id}/erase', 'Erase this person', csrf, extra=confirm)}</p>"
    )
    return page(f"Conversation {c.id}", facts + "<h2>Transcript</h2>" + lines + actions, csrf=csrf)
