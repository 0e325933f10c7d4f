"""The channel bridge: messaging platforms <-> an Open Chat Studio chatbot."""

__version__ = "0.1.0"
