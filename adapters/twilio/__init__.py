"""The Twilio channel (SMS and WhatsApp): signed form webhooks in, REST ``Messages.json`` out."""

from __future__ import annotations

from .channel import TwilioChannel
from .options import TwilioOptions

__all__ = ["TwilioChannel", "TwilioOptions"]
