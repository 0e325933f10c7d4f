"""Who a proactive request is for: the chatbot (``experiment``), the channel on the platform
that routes to it, and the person's conversation there."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bridge.bots import Bot
from bridge.channel import Channel
from bridge.errors import BadRequest, NotFound
from bridge.model import Conversation
from bridge.store import Store

if TYPE_CHECKING:
    from bridge.core import Core
    from bridge.settings import Settings

# Platforms as OCS names them, and the kind of channel that serves them.
PLATFORM_KINDS = {"sms": "twilio", "whatsapp": "twilio"}
WHATSAPP = "whatsapp:"


@dataclass(frozen=True, slots=True)
class Route:
    channel: Channel
    bot: Bot


def chatbot_id(core: Core, bot_name: str) -> str:
    """A bot's public id: its OCS experiment id, else its name (``default`` in the one-bot case)."""
    return public_id(core.settings, bot_name)


def public_id(settings: Settings, bot_name: str) -> str:
    bot = settings.bots.get(bot_name)
    return (bot.experiment_id if bot is not None else None) or bot_name


def bots_of(core: Core, experiment: str) -> set[str]:
    return {name for name in core.settings.bots if chatbot_id(core, name) == experiment}


def route(core: Core, platform: str, experiment: str) -> Route:
    """The one channel on ``platform`` (a platform or a channel's name) that routes to ``experiment``."""
    bots = bots_of(core, experiment)
    if not bots:
        raise NotFound(f"unknown experiment {experiment!r}")
    kind = PLATFORM_KINDS.get(platform, platform)
    on_platform = [c for c in core.channels.values() if platform == c.name or kind == c.kind]
    if not on_platform:
        raise NotFound(f"unknown channel {platform!r}")
    chosen = [c for c in on_platform if c.bot in bots]
    if not chosen:
        raise BadRequest(f"Experiment cannot send messages on the {platform} channel")
    if len(chosen) > 1:
        names = ", ".join(sorted(c.name for c in chosen))
        raise BadRequest(
            f"several {platform} channels route to this experiment: give one as platform ({names})"
        )
    return Route(chosen[0], core.bots[chosen[0].bot])


def channel_named(channels: dict[str, Channel], name: str) -> Channel:
    """A channel by its name, or the only channel of a platform (``telegram``, ``sms``, ``web``...)."""
    if name in channels:
        return channels[name]
    of_kind = [c for c in channels.values() if c.kind == PLATFORM_KINDS.get(name, name)]
    if len(of_kind) != 1:
        raise NotFound(f"unknown channel {name!r}")
    return of_kind[0]


def identifier_on(platform: str, identifier: str) -> str:
    """WhatsApp people are ``whatsapp:+…`` to the bridge, whether or not the caller wrote the prefix."""
    if platform == "whatsapp" and not identifier.startswith(WHATSAPP):
        return WHATSAPP + identifier
    return identifier


async def conversation_of(store: Store, channel: Channel, identifier: str) -> Conversation:
    """The person's conversation; a new one where the bridge may write first (404 elsewhere)."""
    conversation = await store.conversation(channel.name, identifier)
    if conversation is not None:
        return conversation
    if not channel.capabilities.reach_new:
        raise NotFound(f"no conversation with {identifier!r} on {channel.name!r}")
    try:
        return await store.open_conversation(channel.name, channel.person(identifier))
    except ValueError:
        raise BadRequest("identifier: too long") from None
