"""The web widget channel: the OCS Chat API served by the bridge for the official widget."""

from __future__ import annotations

from .channel import WebChannel, WebOptions
from .routes import install

__all__ = ["WebChannel", "WebOptions", "install"]
