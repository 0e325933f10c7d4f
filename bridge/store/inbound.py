"""Storing inbound messages: the webhook's one short transaction.

Two statements per message, built once (SQLAlchemy Core, bound parameters): the conversation's
upsert, which also marks it as having work, and the message's insert, in which the unique
``(channel, platform_id)`` index recognises a platform's retry (``ON CONFLICT DO NOTHING``): no
SELECT first. Only a retry reads the stored message back.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Connection, String, bindparam, cast, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB

from bridge.model import Blocked, ChatMoved, DeliveryReport, Event, InboundMessage, Opened, Person, Received
from bridge.store import events
from bridge.store.records import Accepted
from bridge.store.tables import ConversationRow, MessageRow, PartRow, UTCDateTime, utcnow

C = ConversationRow.__table__.c
M = MessageRow.__table__.c
P = PartRow.__table__.c
_NOW = UTCDateTime()
# Parts held until the person writes (a WhatsApp template went out instead): due now, and so is
# the conversation, whose next run waited for them.
_RELEASE_CONVERSATION = (
    update(ConversationRow)
    .where(C.id == bindparam("h_id"), C.next_run_at > bindparam("h_now", type_=_NOW))
    .values(next_run_at=bindparam("h_now", type_=_NOW))
)
_RELEASE_PARTS = (
    update(PartRow)
    .where(
        P.conversation_id == bindparam("h_id"),
        P.status == "pending",
        P.next_attempt_at > bindparam("h_now", type_=_NOW),
    )
    .values(next_attempt_at=bindparam("h_now", type_=_NOW))
)


class Inbound:
    def __init__(self, postgres: bool):
        self.postgres = postgres
        self._insert = postgresql.insert if postgres else sqlite.insert
        self._upserts: dict[tuple[bool, bool, bool, bool], Any] = {}
        self._message = (
            self._insert(MessageRow)
            .values(
                public_id=bindparam("m_public_id"),
                conversation_id=bindparam("m_conversation_id"),
                channel=bindparam("m_channel"),
                platform_id=bindparam("m_platform_id"),
                kind=bindparam("m_kind"),
                text=bindparam("m_text"),
                what=bindparam("m_what"),
                context=bindparam("m_context", type_=M.context.type),
                status="pending",
                attempts=0,
                next_attempt_at=bindparam("m_now", type_=_NOW),
                received_at=bindparam("m_now", type_=_NOW),
            )
            .on_conflict_do_nothing(index_elements=["channel", "platform_id"])
            .returning(M.id)
        )
        self._stored = select(M.id, M.public_id, M.conversation_id).where(
            M.channel == bindparam("m_channel"), M.platform_id == bindparam("m_platform_id")
        )

    def receive(
        self, connection: Connection, *, channel: str, received: Received, unblock: bool, release_held: bool
    ) -> list[Accepted]:
        """A verified request's events, then its messages, in one transaction."""
        now = utcnow()
        for event in received.events:
            self.apply(connection, channel, event, now)
        return [
            self.accept(connection, message=m, unblock=unblock, release_held=release_held, now=now)
            for m in received.messages
        ]

    def apply(self, connection: Connection, channel: str, event: Event, now: datetime) -> None:
        match event:
            case Blocked(person, blocked, remember):
                if remember:  # someone not heard from yet is kept (an SMS STOP as their first message)
                    self.upsert_conversation(connection, channel, person, work=False, now=now)
                events.set_blocked(connection, channel, person.key, blocked)
            case ChatMoved(old, new):
                events.move_chat(connection, channel, old, new)
            case Opened(person, state):
                self.upsert_conversation(connection, channel, person, work=False, state=state, now=now)
            case DeliveryReport(platform_id, status, reason, unreachable, again):
                conversation_id = events.record_delivery(connection, channel, platform_id, status, reason)
                if conversation_id is not None and unreachable:
                    events.block(connection, conversation_id, reason)
                if conversation_id is not None and again is not None:
                    events.send_again(connection, channel, platform_id, again)

    def accept(
        self,
        connection: Connection,
        *,
        message: InboundMessage,
        unblock: bool,
        release_held: bool,
        now: datetime,
    ) -> Accepted:
        """With ``release_held``, parts held until this person writes go out now (also on a retry)."""
        conversation_id = self.upsert_conversation(
            connection, message.channel, message.person, unblock=unblock, state=message.state, now=now
        )
        if release_held:
            held = {"h_id": conversation_id, "h_now": now}
            connection.execute(_RELEASE_CONVERSATION, held)
            connection.execute(_RELEASE_PARTS, held)
        public_id = secrets.token_urlsafe(16)
        inserted = connection.scalar(
            self._message,
            {
                "m_public_id": public_id,
                "m_conversation_id": conversation_id,
                "m_channel": message.channel,
                "m_platform_id": message.platform_id,
                "m_kind": message.kind.value,
                "m_text": message.text,
                "m_what": message.what,
                "m_context": message.context,
                "m_now": now,
            },
        )
        if inserted is not None:
            return Accepted(inserted, public_id, conversation_id, duplicate=False)
        keys = {"m_channel": message.channel, "m_platform_id": message.platform_id}
        existing = connection.execute(self._stored, keys).one()
        return Accepted(existing.id, existing.public_id, existing.conversation_id, duplicate=True)

    def upsert_conversation(
        self,
        connection: Connection,
        channel: str,
        person: Person,
        *,
        work: bool = True,
        unblock: bool = False,
        state: dict[str, Any] | None = None,
        now: Any = None,
    ) -> int:
        """Create or touch the conversation (its id); with ``work``, mark it as having something to
        do; ``state`` is merged into its stored state."""
        statement = self._upsert(work, unblock, bool(person.name), bool(state))
        values = {
            "u_channel": channel,
            "u_key": person.key,
            "u_address": person.address,
            "u_name": person.name,
            "u_platform": person.platform,
            "u_state": state or {},
            "u_now": now or utcnow(),
        }
        if state:
            values["u_patch"] = json.dumps(state)
        return int(connection.execute(statement, values).scalar_one())

    def _upsert(self, work: bool, unblock: bool, name: bool, state: bool) -> Any:
        key = (work, unblock, name, state)
        if key not in self._upserts:
            now = bindparam("u_now", type_=_NOW)
            insert = self._insert(ConversationRow).values(
                channel=bindparam("u_channel"),
                person_key=bindparam("u_key"),
                address=bindparam("u_address"),
                person_name=bindparam("u_name"),
                platform=bindparam("u_platform"),
                state=bindparam("u_state", type_=C.state.type),
                blocked=False,
                inbox_seq=1 if work else 0,
                next_run_at=now if work else None,
                last_activity_at=now,
                created_at=now,
            )
            changes: dict[str, Any] = {"address": insert.excluded.address}
            if name:
                changes["person_name"] = insert.excluded.person_name
            if work:  # not ``statements._WAKE``: a later next_run_at (a backoff) stays; ``wake`` moves it up
                changes["inbox_seq"] = C.inbox_seq + 1
                changes["next_run_at"] = func.coalesce(C.next_run_at, insert.excluded.next_run_at)
            if unblock:
                changes["blocked"] = False
            if state:
                changes["state"] = self.merged(C.state, bindparam("u_patch", type_=String()))
            self._upserts[key] = insert.on_conflict_do_update(
                index_elements=["channel", "person_key"], set_=changes
            ).returning(C.id)
        return self._upserts[key]

    def merged(self, column: Any, patch: Any) -> Any:
        """``column`` (JSON) with ``patch``'s keys set, in SQL."""
        if self.postgres:
            return cast(cast(column, JSONB).op("||")(cast(patch, JSONB)), JSON)
        return func.json_patch(column, patch)
