"""Prometheus metrics, one registry per application."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
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
        self.queue_depth = Gauge("bridge_queue_depth", "Messages and reply parts waiting", registry=r)
