"""Platform adapters, and the registry the CLI uses to build channels from settings."""

from __future__ import annotations

from pydantic import BaseModel

from bridge.channel import Channel
from bridge.errors import ConfigError
from bridge.settings import Settings


def channel_types() -> dict[str, type[Channel]]:
    from adapters.telegram import TelegramChannel
    from adapters.twilio import TwilioChannel
    from adapters.web import WebChannel

    return {"telegram": TelegramChannel, "twilio": TwilioChannel, "web": WebChannel}


def option_models() -> dict[str, type[BaseModel]]:
    """Each channel type's options model (the names of its ``PREFIX_*`` variables)."""
    from adapters.telegram.options import TelegramOptions
    from adapters.twilio.options import TwilioOptions
    from adapters.web import WebOptions

    return {"telegram": TelegramOptions, "twilio": TwilioOptions, "web": WebOptions}


def build_channels(settings: Settings) -> dict[str, Channel]:
    """One Channel per configured channel; a ``ConfigError`` names a bad one."""
    types = channel_types()
    channels: dict[str, Channel] = {}
    for name, config in settings.channels.items():
        kind = types.get(config.type)
        if kind is None:
            where = f"{config.env_prefix}*" if config.env_prefix else f"channels.{name}.type"
            known = ", ".join(sorted(types))
            raise ConfigError(f"{where}: channel type {config.type!r} is not available (known: {known})")
        channels[name] = kind(name, config)
    from adapters.web import check_chatbot_ids

    check_chatbot_ids(channels, settings)
    return channels


def plugins() -> list:  # type: ignore[type-arg]
    """Routes adapters add to the HTTP app (the widget's Chat API and the demo page)."""
    from adapters.web import install

    return [install]
