"""``chatbridge send`` and ``chatbridge participants list``: proactive work from the command line, against
the database a running bridge uses (its workers deliver what is stored here)."""

from __future__ import annotations

import secrets
import sys

from bridge.channel import Channel
from bridge.errors import ApiError
from bridge.proactive.messages import deliver
from bridge.proactive.route import channel_named, conversation_of, identifier_on, public_id
from bridge.settings import Settings
from bridge.store import Store, people


async def send(store: Store, channels: dict[str, Channel], name: str, identifier: str, text: str) -> int:
    """Store ``text`` for the person (as a ``message_text`` trigger does); 1 if that cannot be done."""
    try:
        channel = channel_named(channels, name)
        conversation = await conversation_of(store, channel, identifier_on(name, identifier))
    except ApiError as exc:
        print(f"chatbridge: {exc.detail}", file=sys.stderr)
        return 1
    if await people.is_blocked(store, conversation.id):
        print(
            "chatbridge: this person blocked the bot or opted out: nothing can be sent to them",
            file=sys.stderr,
        )
        return 1
    if not text.strip():
        print("chatbridge: the text is empty", file=sys.stderr)
        return 1
    message = deliver(channel.name, conversation.person, f"cli:{secrets.token_urlsafe(16)}", text)
    accepted = await store.accept(message, unblock=False)
    print(f"queued for {channel.name} ({accepted.public_id}); a running bridge's workers deliver it")
    return 0


async def list_participants(
    store: Store,
    settings: Settings,
    channels: dict[str, Channel],
    *,
    platform: str | None = None,
    identifier: str | None = None,
    chatbot: str | None = None,
) -> int:
    """The people of the configured channels, filtered as ``GET /api/participants`` is, one a line
    under a header: id, channel, platform, identifier, name, data keys, schedules."""
    chosen = [c.name for c in channels.values() if chatbot in (None, public_id(settings, c.bot))]
    if not chosen:
        known = ", ".join(sorted({public_id(settings, c.bot) for c in channels.values()}))
        print(f"chatbridge: no chatbot {chatbot!r} serves a channel (chatbots: {known})", file=sys.stderr)
        return 1
    if identifier is not None and platform is not None:
        identifier = identifier_on(platform, identifier)
    after, count = 0, 0
    filters = {"platform": platform, "identifier": identifier}
    while page := await people.participants(store, channels=chosen, after=after, limit=500, **filters):
        if not count:
            print("\t".join(("id", "channel", "platform", "identifier", "name", "data", "schedules")))
        for p in page:
            c = p.conversation
            data = ",".join(sorted(p.data)) or "-"
            person = c.person
            fields = (
                c.id,
                c.channel,
                person.platform,
                person.key,
                person.name or "-",
                data,
                len(p.schedules),
            )
            print("\t".join(str(f) for f in fields))
        after, count = page[-1].conversation.id, count + len(page)
    if not count:
        print("no participants")
    return 0
