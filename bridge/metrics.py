"""Prometheus metrics, one registry per application."""

from __future__ import annotations

import platform
from datetime import UTC, datetime

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)

from bridge import __version__
from bridge.store.records import Backlog

# The classic text format (what every Prometheus scrapes); counters without ``_created`` series.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
disable_created_metrics()


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        Info("bridge_build", "The running bridge", registry=r).info(
            {"version": __version__, "python": platform.python_version()}
        )
        self.received = Counter(
            "bridge_messages_received", "Inbound messages accepted", ["channel"], registry=r
        )
        self.duplicates = Counter(
            "bridge_messages_duplicate", "Platform retries recognised and ignored", ["channel"], registry=r
        )
        self.relayed = Counter(
            "bridge_messages_relayed", "Messages relayed to the bot", ["channel"], registry=r
        )
        self.replied = Counter("bridge_replies", "Bot replies received", ["channel"], registry=r)
        self.delivered = Counter("bridge_parts_delivered", "Reply parts delivered", ["channel"], registry=r)
        self.failed = Counter(
            "bridge_failures", "Failures by channel and stage", ["channel", "stage"], registry=r
        )
        self.bot_latency = Histogram(
            "bridge_bot_latency_seconds",
            "Time the bot took to answer",
            ["channel"],
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120),
            registry=r,
        )
        self.ack_time = Histogram(
            "bridge_webhook_ack_seconds",
            "Time from webhook request to acknowledgement",
            ["channel"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
            registry=r,
        )
        http = "HTTP requests by route template, method and status"
        self.requests = Counter("bridge_http_requests", http, ["route", "method", "status"], registry=r)
        self.request_time = Histogram(
            "bridge_http_request_seconds", "Time to answer an HTTP request", ["route"], registry=r
        )  # the default buckets: 5 ms to 10 s
        self._bot_budget(r)
        self._voice(r)
        self.queue_depth = Gauge("bridge_queue_depth", "Messages and reply parts waiting", registry=r)
        self.dead_letters = Gauge(
            "bridge_dead_letters", "Messages and reply parts that could not be handled", registry=r
        )
        self.oldest_pending = Gauge(
            "bridge_oldest_pending_age_seconds",
            "How long the oldest waiting message or reply part has waited (0: none waits)",
            registry=r,
        )

    def _bot_budget(self, r: CollectorRegistry) -> None:
        """A bot team's request budget (OCS) and its use."""
        self.bot_requests = Counter(
            "bridge_bot_requests", "Requests to the bot's API by kind", ["bot", "kind"], registry=r
        )
        self.bot_budget_limit = Gauge(
            "bridge_bot_budget_limit", "Requests the bot's team may make per window", ["bot"], registry=r
        )
        self.bot_budget_used = Gauge(
            "bridge_bot_budget_used", "Requests counted in the team's window", ["bot"], registry=r
        )
        self.bot_budget_waits = Counter(
            "bridge_bot_budget_waits",
            "Requests that waited for the budget (messages) or were put off (history reads)",
            ["bot", "kind"],
            registry=r,
        )
        self.bot_rate_limited = Counter(
            "bridge_bot_rate_limited", "429 answers: the team's requests paused", ["bot"], registry=r
        )

    def _voice(self, r: CollectorRegistry) -> None:
        """Voice notes heard (speech to text) and answers spoken (text to speech)."""
        self.voice_notes = Counter(
            "bridge_voice_notes_transcribed", "Voice notes transcribed", ["channel"], registry=r
        )
        self.voice_seconds = Counter(
            "bridge_voice_seconds",
            "Seconds of audio transcribed (what speech-to-text bills)",
            ["channel"],
            registry=r,
        )
        self.voice_failures = Counter(
            "bridge_voice_failures",
            "Voice notes not heard, or answers not spoken, by stage (fetch, audio, too_long, stt, tts)",
            ["channel", "stage"],
            registry=r,
        )
        self.voice_replies = Counter(
            "bridge_voice_replies", "Answers sent as voice notes", ["channel"], registry=r
        )

    def render(self, backlog: Backlog | None) -> bytes:
        """The exposition, with the store's gauges as of now (left as they were if it is unreadable)."""
        if backlog is not None:
            self.queue_depth.set(backlog.depth)
            self.dead_letters.set(backlog.dead)
            since = backlog.oldest_pending
            self.oldest_pending.set(max(0.0, (datetime.now(UTC) - since).total_seconds()) if since else 0)
        return generate_latest(self.registry)
