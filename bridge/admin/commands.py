"""``chatbridge dead-letters list/retry``, ``conversations list/show`` and ``people export/erase``:
the operator's page's data from the command line, against the database a running bridge uses."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from bridge import logs
from bridge.admin.people import erase_person
from bridge.bots import build_bot
from bridge.channel import Channel
from bridge.errors import ApiError
from bridge.proactive.route import channel_named, identifier_on
from bridge.settings import Settings
from bridge.store import Store
from bridge.store import admin as records
from bridge.store.letters import REMOVED, Revived

WithStore = Callable[[Callable[[Store], Awaitable[int]], Settings], int]
Run = Callable[[Settings, dict[str, Channel], argparse.Namespace], int]


def add_parsers(sub: argparse._SubParsersAction, with_store: WithStore) -> None:  # type: ignore[type-arg]
    """Register the commands; ``with_store`` runs an action against the settings' database."""

    def run(
        action: Callable[[Store, Settings, dict[str, Channel], argparse.Namespace], Awaitable[int]],
    ) -> Run:
        return lambda settings, channels, args: with_store(
            lambda store: action(store, settings, channels, args), settings
        )

    dead = sub.add_parser("dead-letters", help="messages that could not be answered or delivered")
    dead_actions = dead.add_subparsers(required=True, metavar="ACTION")
    dead_actions.add_parser("list", help="list dead letters").set_defaults(run=run(_dead_list))
    retry = dead_actions.add_parser("retry", help="queue dead letters again")
    target = retry.add_mutually_exclusive_group(required=True)
    target.add_argument("id", nargs="?", help="a dead letter id from `list` (in-N or out-N)")
    target.add_argument("--all", action="store_true", help="every dead letter")
    retry.set_defaults(run=run(_dead_retry))

    conversations = sub.add_parser("conversations", help="conversations and their transcripts")
    actions = conversations.add_subparsers(required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="the most recently active conversations")
    listing.add_argument("--channel", help="only this channel's")
    listing.set_defaults(run=run(_list))
    show = actions.add_parser("show", help="one conversation's transcript")
    show.add_argument("id", type=int, help="a conversation id from `list`")
    show.set_defaults(run=run(_show))

    people = sub.add_parser("people", help="one person's data, exported or erased")
    people_actions = people.add_subparsers(required=True, metavar="ACTION")
    for name, action, what in (("export", _export, "print as JSON"), ("erase", _erase, "delete for good")):
        parser = people_actions.add_parser(name, help=f"{what} everything kept about one person")
        parser.add_argument("who", nargs="+", metavar="ID", help="a conversation id, or CHANNEL PERSON-ID")
        parser.set_defaults(run=run(action))


async def _dead_list(
    store: Store, settings: Settings, channels: dict[str, Channel], args: argparse.Namespace
) -> int:
    letters = await store.dead_letters()
    if not letters:
        print("no dead letters")
    for letter in letters:
        when = letter.at.strftime("%Y-%m-%d %H:%M:%S") if letter.at else "-"
        reason = f"{letter.reason}; text {REMOVED}" if letter.expired else letter.reason
        print(f"{letter.ref}\t{when}\t{letter.channel}\t{logs.mask(letter.person_key)}\t{reason}")
    return 0


async def _dead_retry(
    store: Store, settings: Settings, channels: dict[str, Channel], args: argparse.Namespace
) -> int:
    """Queue one dead letter, or all; one whose text retention removed is refused (``--all``:
    skipped and counted), as there is nothing left to send."""
    refs = [d.ref for d in await store.dead_letters()] if args.all else [args.id]
    failed = skipped = 0
    for ref in refs:
        revived = await store.revive(ref)
        if revived is Revived.QUEUED:
            print(f"{ref} queued again")
        elif revived is Revived.EXPIRED and args.all:
            skipped += 1
        else:
            why = (
                "no such dead letter"
                if revived is Revived.MISSING
                else "not retried, retention removed its text"
            )
            print(f"{ref}: {why}", file=sys.stderr)
            failed += 1
    if skipped:
        print(f"{skipped} dead letter(s) skipped: retention (RETAIN_DAYS) removed their text")
    if not refs:
        print("no dead letters")
    return 1 if failed else 0


async def _list(
    store: Store, settings: Settings, channels: dict[str, Channel], args: argparse.Namespace
) -> int:
    found = await records.conversations(store, args.channel)
    if not found:
        print("no conversations")
        return 0
    print("id\tchannel\tperson\tname\tlast activity\tstate\tmessages\tdead")
    for c in found:
        at = c.last_activity_at.strftime("%Y-%m-%d %H:%M:%S")
        fields = (c.id, c.channel, c.person_key, c.person_name or "-", at, c.state, c.messages, c.dead)
        print("\t".join(str(f) for f in fields))
    return 0


async def _show(
    store: Store, settings: Settings, channels: dict[str, Channel], args: argparse.Namespace
) -> int:
    found = await records.conversation(store, args.id)
    if found is None:
        print(f"chatbridge: no conversation {args.id}", file=sys.stderr)
        return 1
    print(f"conversation {found.id}: {found.channel} {found.person_key} ({found.state})")
    for entry in await records.transcript(store, args.id):
        at = entry.at.strftime("%Y-%m-%d %H:%M:%S")
        detail = f"  [{entry.status}{': ' + entry.detail if entry.detail else ''}]"
        print(f"{at}  {entry.sender:>6}  {entry.text}{detail}")
    return 0


async def _resolve(store: Store, channels: dict[str, Channel], who: list[str]) -> int | None:
    if len(who) == 1 and who[0].isdigit():
        return int(who[0])
    if len(who) != 2:
        print("chatbridge: give a conversation id, or a channel and the person's id", file=sys.stderr)
        return None
    try:
        channel = channel_named(channels, who[0])
        name, key = channel.name, channel.person(identifier_on(who[0], who[1])).key
    except ApiError:  # a channel no longer configured: its name and the id as stored
        name, key = who
    found = await records.find(store, name, key)
    if found is None:
        print(f"chatbridge: nobody with id {who[1]!r} on {name!r}", file=sys.stderr)
    return found


async def _export(
    store: Store, settings: Settings, channels: dict[str, Channel], args: argparse.Namespace
) -> int:
    conversation_id = await _resolve(store, channels, args.who)
    if conversation_id is None:
        return 1
    data = await records.export(store, conversation_id)
    if data is None:
        print(f"chatbridge: no conversation {conversation_id}", file=sys.stderr)
        return 1
    print(json.dumps(data, indent=2, ensure_ascii=False))
    return 0


async def _erase(
    store: Store, settings: Settings, channels: dict[str, Channel], args: argparse.Namespace
) -> int:
    conversation_id = await _resolve(store, channels, args.who)
    if conversation_id is None:
        return 1
    bots = {name: build_bot(bot) for name, bot in settings.bots.items()}
    for bot in bots.values():
        await bot.start()
    try:
        erased = await erase_person(store, bots, channels, Path(settings.data_dir), conversation_id)
    finally:
        for bot in bots.values():
            await bot.stop()
    if erased is None:
        print(f"chatbridge: no conversation {conversation_id}", file=sys.stderr)
        return 1
    session = (
        "bot session ended" if erased.session_ended else "the bot's session could NOT be ended (see the log)"
    )
    print(
        f"erased conversation {conversation_id} ({erased.channel}): {erased.files} file(s) deleted, {session}"
    )
    return 0
