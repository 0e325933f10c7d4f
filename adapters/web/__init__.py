"""The web widget channel: the OCS Chat API served by the bridge for the official widget."""

from __future__ import annotations

from bridge.channel import Channel
from bridge.errors import ConfigError
from bridge.settings import Settings

from .channel import WebChannel, WebOptions
from .routes import install

__all__ = ["WebChannel", "WebOptions", "check_chatbot_ids", "install"]


def check_chatbot_ids(channels: dict[str, Channel], settings: Settings) -> None:
    """Two web channels answering to one chatbot id would take each other's widgets."""
    seen: dict[str, str] = {}
    for name, channel in channels.items():
        if isinstance(channel, WebChannel):
            chatbot_id = channel.resolved_chatbot_id(settings.bots.get(channel.bot))
            if chatbot_id in seen:
                raise ConfigError(
                    f"channels.{name}.chatbot_id: {chatbot_id!r} is already the chatbot id of "
                    f"channel {seen[chatbot_id]!r}"
                )
            seen[chatbot_id] = name
