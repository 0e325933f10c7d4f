"""``bridge send`` and ``bridge participants list``: proactive work from the command line, against
the database a running bridge uses (its workers deliver what is stored here)."""

from __future__ import annotations

import secrets
import sys

from bridge.channel import Channel
from bridge.errors import ApiError
from bridge.proactive.messages import deliver
from bridge.proactive.route import channel_named, conversation_of, identifier_on
from bridge.store import Store, people


async def send(store: Store, channels: dict[str, Channel], name: str, identifier: str, text: str) -> int:
    """Store ``text`` for the person (as a ``message_text`` trigger does); 1 if that cannot be done."""
    try:
        channel = channel_named(channels, name)
        conversation = await conversation_of(store, channel, identifier_on(name, identifier))
    except ApiError as exc:
        print(f"bridge: {exc.detail}", file=sys.stderr)
        return 1
    if await people.is_blocked(store, conversation.id):
        print(
            "bridge: this person blocked the bot or opted out: nothing can be sent to them", file=sys.stderr
        )
        return 1
    if not text.strip():
        print("bridge: the text is empty", file=sys.stderr)
        return 1
    message = deliver(channel.name, conversation.person, f"cli:{secrets.token_urlsafe(16)}", text)
    accepted = await store.accept(message, unblock=False)
    print(f"queued for {channel.name} ({accepted.public_id}); a running bridge's workers deliver it")
    return 0


async def list_participants(store: Store, channels: dict[str, Channel]) -> int:
    """Every person of the configured channels: id, channel, platform, identifier, name, data, schedules."""
    after, count = 0, 0
    while page := await people.participants(store, channels=list(channels), after=after, limit=500):
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
