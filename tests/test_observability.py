"""What an operator watches: /metrics series and content type, request ids, rejected webhooks in
the log, quiet probes, and pseudonyms that tell people apart."""

from __future__ import annotations

import re

from structlog.testing import capture_logs

from bridge.logs import mask
from fakes.channel import SECRET
from tests.harness import eventually


async def test_metrics_expose_process_http_backlog_and_build_series(bridge):
    h = await bridge()
    h.ocs.fail_next(500)  # a dead letter
    await h.say("+15550000001", "hello")
    await h.replies("+15550000001", 1)
    await h.client.get("/api/nothing-here")

    response = await h.client.get("/metrics")
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = await response.text()
    for series in (
        "process_resident_memory_bytes",
        "python_info{",
        'bridge_build_info{python="',
        'bridge_http_requests_total{method="POST",route="/webhooks/{channel}",status="200"} 1.0',
        'bridge_http_requests_total{method="GET",route="unmatched",status="404"} 1.0',
        'bridge_http_request_seconds_bucket{le="0.005",route="/webhooks/{channel}"}',
        "bridge_dead_letters 1.0",
        "bridge_oldest_pending_age_seconds 0.0",
        "bridge_queue_depth 0.0",
    ):
        assert series in text, series
    assert "_created" not in text


async def test_the_oldest_pending_age_grows_while_work_waits(bridge):
    h = await bridge()
    h.ocs.latency = 1.5
    await h.say("+15550000002", "slow")

    async def grown() -> str | None:
        text = await (await h.client.get("/metrics")).text()
        age = float(re.search(r"^bridge_oldest_pending_age_seconds (\S+)$", text, re.M)[1])  # type: ignore[index]
        return text if age >= 0.5 else None

    text = await eventually(grown, 2.5, "the oldest pending age to reach 0.5 s")
    assert re.search(r"^bridge_queue_depth [1-9]", text, re.M)


async def test_request_ids_are_taken_from_the_caller_or_made(bridge):
    h = await bridge()
    given = await h.client.get("/healthz", headers={"X-Request-ID": "lb-1234.abc"})
    assert given.headers["X-Request-ID"] == "lb-1234.abc"
    made = await h.client.get("/healthz", headers={"X-Request-ID": "bad id with spaces\u00e9"})
    assert re.fullmatch(r"[0-9a-f]{16}", made.headers["X-Request-ID"])
    error = await h.client.post("/webhooks/nope", data=b"{}")
    assert error.status == 404 and error.headers["X-Request-ID"]


async def test_rejected_webhooks_say_which_channel_why_and_from_where_and_probes_are_quiet(bridge):
    h = await bridge()
    with capture_logs() as events:
        response = await h.client.post("/webhooks/test", data=b"{}", headers={"X-Test-Secret": "wrong"})
        assert response.status == 403
        await h.client.get("/healthz")
        await h.client.get("/metrics")
    [rejected] = [e for e in events if e["event"] == "webhook rejected"]
    assert rejected["channel"] == "test" and rejected["reason"] == "bad secret"
    assert rejected["client"] == "127.0.0.1" and rejected["log_level"] == "warning"
    assert "wrong" not in str(events) and SECRET not in str(events)
    requests = [e for e in events if e["event"] == "request"]
    assert {e["route"]: e["log_level"] for e in requests} == {
        "/webhooks/{channel}": "info",
        "/healthz": "debug",
        "/metrics": "debug",
    }


def test_pseudonyms_follow_one_person_and_tell_people_apart():
    one, other = mask("+15551230001"), mask("+15559990001")
    assert one == mask("+15551230001") and one != other
    assert one.startswith("…0001#") and "1555123" not in one
