"""Every route under generated hostile input: never a 5xx, errors are JSON with ``detail``, a rejected
request stores nothing, and the bridge stays healthy.

Requests carry the valid secrets and signatures, so the input reaches the parsers: bodies (JSON,
forms, multipart, bytes), header values, content encodings (gzip and deflate, garbage, truncated,
mislabelled, chunked framing) and query strings. A fixed seed and a bounded number of examples keep
it fast; ``make fuzz`` runs many more (``FUZZ_EXAMPLES``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multidict import MultiDict

from adapters.twilio.parse import decode
from fakes.telegram import payload as telegram_payload
from fakes.twilio import ACCOUNT_SID, PUBLIC_URL, sign
from fakes.twilio import payload as twilio_payload
from tests.hostile import ORIGIN, Target, every_channel
from tests.rawhttp import exchange

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "1000"))


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    encoding: str = "identity"

    @property
    def target(self) -> str:
        return quote(self.path, safe="/?=&%:@!$'()*+,;~", errors="surrogatepass")

    @property
    def parseable(self) -> bool:
        """Framing aiohttp's parser accepts: a request line of at most 8190 bytes, valid chunks."""
        return len(self.target) < 8170 and self.encoding != "bad-chunked"

    def raw(self) -> bytes:
        body, headers = encode(self.body, self.encoding), dict(self.headers)
        if self.encoding in ("gzip", "deflate", "garbage-gzip", "garbage-deflate", "truncated-gzip"):
            headers["Content-Encoding"] = self.encoding.rsplit("-", 1)[-1]
        elif self.encoding == "plain-as-gzip":
            headers["Content-Encoding"] = "gzip"
        if self.encoding.endswith("chunked"):
            headers["Transfer-Encoding"] = "chunked"
        else:
            headers["Content-Length"] = str(len(body))
        lines = [f"{self.method} {self.target} HTTP/1.1", "Host: bridge.example.org", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        return "\r\n".join([*lines, "", ""]).encode("latin-1") + body


def encode(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.compress(body)
    if encoding == "deflate":
        return zlib.compress(body)
    if encoding.startswith("garbage"):
        return b"\x1f\x8b\x08garbage" + body[:20]
    if encoding == "truncated-gzip":
        return gzip.compress(body)[: max(1, len(body) // 2)]
    if encoding == "chunked":
        return b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (body[:10], body[10:]) if c) + b"0\r\n\r\n"
    if encoding == "bad-chunked":
        return b"zz\r\n" + body
    return body  # identity, plain-as-gzip


# values ---------------------------------------------------------------------------------------------
NASTY = ["", " ", "\x00", "\ud800", "\ud800x\udfff", "a" * 5000, "9" * 5000, "-1", "0", "1e309", "NaN"]
NASTY += ["STOP", "start", "/start", "../../etc/passwd", "%00", "😀" * 300, "\u202e", "<script>", "\r\n"]
texts = st.one_of(st.text(max_size=40), st.sampled_from(NASTY))
numbers = st.one_of(st.integers(), st.integers(min_value=-(2**70), max_value=2**70), st.floats())
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
header_values = st.one_of(
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40),
    st.sampled_from(["100-continue", "bytes=0-0", "bytes=99999999-", "bytes=-0", "bytes=5-1", "bytes=x"]),
    st.sampled_from(['"nope"', "*", "Mon, 01 Jan 1990 00:00:00 GMT", "gzip", "1.2.3.4, ::1", "a" * 3000]),
)
extra_headers = st.dictionaries(
    st.sampled_from(
        [
            *("Expect", "Range", "If-Match", "If-None-Match", "If-Modified-Since", "If-Range"),
            *("Accept-Encoding", "X-Forwarded-For", "Content-Type", "Accept", "Cookie", "X-Session-Token"),
        ]
    ),
    header_values,
    max_size=3,
)
encodings = st.sampled_from(
    ["identity"] * 12
    + ["gzip", "deflate", "garbage-gzip", "garbage-deflate", "truncated-gzip", "plain-as-gzip"]
    + ["chunked", "bad-chunked"]
)
queries = st.one_of(
    st.just(""),
    st.dictionaries(texts, texts, max_size=3).map(lambda q: "?" + urlencode(q, errors="surrogatepass")),
)


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` three times in four: most requests should get past the first check."""
    return st.sampled_from([True, True, True, False]).flatmap(lambda ok: good if ok else bad)


def json_body(value: Any) -> bytes:
    return json.dumps(value).encode("utf-8", "surrogatepass")


bodies = st.one_of(json_values.map(json_body), st.binary(max_size=200))


# routes ---------------------------------------------------------------------------------------------
@st.composite
def telegram(draw: st.DrawFn, target: Target) -> Request:
    update = telegram_payload("text")
    for key in draw(st.lists(st.sampled_from(["text", "chat", "from", "date", "entities", "caption"]))):
        update["message"][key] = draw(json_values)
    if draw(st.booleans()):
        update["update_id"] = draw(numbers)
    body = draw(mostly(st.just(json_body(update)), bodies))
    headers = {"X-Telegram-Bot-Api-Secret-Token": target.secrets["X-Telegram-Bot-Api-Secret-Token"]}
    headers["Content-Type"] = draw(mostly(st.just("application/json"), st.sampled_from(["text/plain", ""])))
    return Request("POST", "/webhooks/telegram", {**headers, **draw(extra_headers)}, body, draw(encodings))


TWILIO_FIELDS = ["Body", "From", "To", "MessageSid", "SmsSid", "NumMedia", "MediaUrl0", "MediaContentType0"]
TWILIO_FIELDS += ["ErrorCode", "MessageStatus", "SmsStatus", "OptOutType", "AccountSid", "Latitude"]


@st.composite
def twilio(draw: st.DrawFn, target: Target) -> Request:
    path = draw(st.sampled_from(["/webhooks/twilio", "/webhooks/twilio/status"])) + draw(queries)
    form = draw(st.sampled_from([twilio_payload("sms"), twilio_payload("status"), MultiDict()]))
    for key, value in draw(st.dictionaries(st.sampled_from(TWILIO_FIELDS), texts | numbers.map(str))).items():
        form[key] = value
    form["AccountSid"] = draw(mostly(st.just(ACCOUNT_SID), texts))
    encoded = urlencode(list(form.items()), errors="surrogatepass").encode()
    body = draw(mostly(st.just(encoded), st.binary(max_size=100)))
    received = decode(encoded, strict=False)  # what Twilio would have signed, as the bridge reads it
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": sign(PUBLIC_URL + Request("POST", path).target, received),
    }
    return Request("POST", path, {**headers, **draw(extra_headers)}, body, draw(encodings))


def widget_headers(target: Target) -> dict[str, str]:
    return {
        "Origin": ORIGIN,
        "X-Embed-Key": target.secrets["X-Embed-Key"],
        "X-Session-Token": target.session_token,
    }


@st.composite
def widget_json(draw: st.DrawFn, target: Target) -> Request:
    sid = draw(mostly(st.just(target.session_id), texts))
    route = draw(st.sampled_from(["/api/chat/start/", f"/api/chat/{sid}/message/"]))
    keys = ["chatbot_id", "participant_remote_id", "participant_name", "session_data", "message"]
    value = draw(st.dictionaries(st.sampled_from([*keys, "attachment_ids", "context"]), json_values))
    if draw(st.booleans()):
        value["chatbot_id"] = "web"
        value["message"] = draw(texts.filter(str.strip))
        value.pop("attachment_ids", None)
    body = draw(mostly(st.just(json_body(value)), bodies))
    headers = {**widget_headers(target), "Content-Type": "application/json"}
    return Request("POST", route, {**headers, **draw(extra_headers)}, body, draw(encodings))


@st.composite
def widget_get(draw: st.DrawFn, target: Target) -> Request:
    sid = draw(mostly(st.just(target.session_id), texts))
    path = draw(
        st.sampled_from(
            [
                f"/api/chat/{sid}/poll/",
                f"/api/chat/{sid}/{draw(texts)}/poll/",
                f"/uploads/{target.upload[0]}/{target.upload[1]}",
                f"/uploads/{draw(texts)}/{draw(texts)}",
                f"/static/vendor/{draw(texts)}",
                "/static/vendor/" + "d" * 5000,
                "/static/vendor/open-chat-studio-widget/open-chat-studio-widget.esm.js",
            ]
        )
    )
    since = draw(
        st.one_of(st.just(""), texts.map(lambda t: "?" + urlencode({"since": t}, errors="surrogatepass")))
    )
    method = draw(st.sampled_from(["GET", "HEAD"]))
    return Request(method, path + since, {**widget_headers(target), **draw(extra_headers)})


@st.composite
def multipart(draw: st.DrawFn, target: Target) -> Request:
    boundary = draw(
        mostly(
            st.just("b0undary"), st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=90)
        )
    )
    eol = draw(mostly(st.just(b"\r\n"), st.just(b"\n")))
    parts = []
    for _ in range(draw(st.integers(0, 3))):
        name = draw(mostly(st.just("files"), st.sampled_from(["other", ""])))
        filename = draw(mostly(st.just("a.txt"), texts | st.sampled_from(["a\r\nb", "a\x00b", '"'])))
        head = [f'Content-Disposition: form-data; name="{name}"; filename="{filename}"']
        more = st.lists(st.sampled_from(["Content-Type: text/plain", "Content-Type: ;;", "X: y"]))
        head += draw(mostly(st.just(["Content-Type: text/plain"]), more))
        content = draw(st.binary(max_size=100))
        lines = [b"--" + boundary.encode(), *(h.encode("utf-8", "surrogatepass") for h in head), b"", content]
        parts.append(eol.join(lines))
    closing = draw(mostly(st.just(b"--" + boundary.encode() + b"--"), st.just(b"")))
    body = eol.join([*parts, closing, b""])
    body = draw(mostly(st.just(body), bodies))
    content_type = draw(
        mostly(
            st.just(f"multipart/form-data; boundary={boundary}"),
            st.sampled_from(
                [
                    f'multipart/form-data; boundary="{boundary}"',
                    "multipart/form-data",
                    f"multipart/mixed; boundary={boundary}",
                    "application/json",
                ]
            ),
        )
    )
    headers = {**widget_headers(target), "Content-Type": content_type}
    path = f"/api/chat/{target.session_id}/upload/"
    return Request("POST", path, {**headers, **draw(extra_headers)}, body, draw(encodings))


@st.composite
def trigger_bot(draw: st.DrawFn, target: Target) -> Request:
    fields = ["identifier", "platform", "experiment", "message_text", "prompt_text", "start_new_session"]
    fields += ["session_data", "participant_data", "page_context"]
    value = draw(st.dictionaries(st.sampled_from(fields), json_values))
    if draw(mostly(st.just(True), st.just(False))):
        value["platform"] = draw(st.sampled_from(["telegram", "twilio", "sms", "whatsapp", "web", "nope"]))
        value["experiment"] = draw(st.sampled_from(["default", "nope"]))
        value["message_text"] = draw(texts)
        value["identifier"] = draw(st.sampled_from(["42", "+15551230001", target.session_id]) | texts)
    body = draw(mostly(st.just(json_body(value)), bodies))
    headers = {"X-api-key": target.secrets["X-api-key"], "Content-Type": "application/json"}
    return Request("POST", "/api/trigger_bot", {**headers, **draw(extra_headers)}, body, draw(encodings))


@st.composite
def participants(draw: st.DrawFn, target: Target) -> Request:
    headers = {"X-api-key": target.secrets["X-api-key"], "Content-Type": "application/json"}
    path = draw(st.sampled_from(["/api/participants", "/api/participants/"]))
    if draw(st.booleans()):
        keys = st.sampled_from(["platform", "identifier", "chatbot", "cursor", "page_size"])
        query = draw(st.dictionaries(keys, texts | numbers.map(str), max_size=4))
        return Request("GET", path + "?" + urlencode(query, errors="surrogatepass"), headers, b"", "identity")
    schedule = st.fixed_dictionaries(
        {}, optional={"id": scalars, "name": scalars, "prompt": scalars, "date": scalars, "delete": scalars}
    )
    data = st.fixed_dictionaries(
        {"experiment": st.sampled_from(["default", "nope"]) | scalars},
        optional={"data": json_values, "schedules": st.lists(schedule | scalars, max_size=3)},
    )
    value = st.fixed_dictionaries(
        {"identifier": st.sampled_from(["42", "+15551230001"]) | scalars},
        optional={
            "name": scalars,
            "platform": st.sampled_from(["telegram", "sms"]) | scalars,
            "data": st.lists(data | scalars, max_size=3) | scalars,
        },
    )
    body = draw(mostly(value.map(json_body), bodies))
    return Request("POST", path, {**headers, **draw(extra_headers)}, body, draw(encodings))


@st.composite
def bot_events(draw: st.DrawFn, target: Target) -> Request:
    """open.cx's webhook events, the secret in the header or the query (or neither, or wrong)."""
    secret = target.secrets["X-Webhook-Secret"]
    where = draw(st.sampled_from(["header", "query", "none"]))
    given = draw(mostly(st.just(secret), header_values if where == "header" else texts))
    path = "/bot-events/" + draw(
        mostly(st.just("default"), texts.map(lambda t: quote(t, safe="", errors="surrogatepass")))
    )
    headers = {"Content-Type": "application/json"}
    if where == "header":
        headers["X-Webhook-Secret"] = given
    elif where == "query":
        path += "?" + urlencode({"secret": given}, errors="surrogatepass")
    event = st.fixed_dictionaries(
        {
            "event": st.sampled_from(
                [
                    "conversation.agent_response",
                    "conversation.handoff_to_human",
                    "conversation.closed",
                    "conversation.ai_response",
                ]
            )
            | scalars
        },
        optional={
            "organization_id": scalars,
            "data": st.fixed_dictionaries(
                {}, optional={"conversation_id": texts | scalars, "reason": scalars, "closed_by": scalars}
            )
            | json_values,
        },
    )
    body = draw(mostly(event.map(json_body), bodies))
    return Request("POST", path, {**headers, **draw(extra_headers)}, body, draw(encodings))


@st.composite
def anything(draw: st.DrawFn, target: Target) -> Request:
    method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]))
    path = draw(
        st.sampled_from(["/", "/healthz", "/readyz", "/metrics", "/webhooks/nope", "/api/trigger_bot"])
        | texts.map(lambda t: "/" + t)
    )
    return Request(method, path + draw(queries), draw(extra_headers), draw(bodies), draw(encodings))


def requests(target: Target) -> st.SearchStrategy[Request]:
    routes = [
        telegram,
        twilio,
        widget_json,
        widget_get,
        multipart,
        trigger_bot,
        participants,
        bot_events,
        anything,
    ]
    return st.one_of(*(route(target) for route in routes))


# the test -------------------------------------------------------------------------------------------
async def answer(target: Target, request: Request) -> None:
    before = await target.stored()
    status, headers, content = await exchange(target.client, request.raw())
    not_ready = request.path.startswith("/readyz") and status == 503  # a fact, not a failure
    assert status < 500 or not_ready, (status, content[:300])
    if not request.parseable:  # aiohttp answers before the bridge runs (see README, "Errors")
        assert status == 400, status
    elif status >= 400:
        assert headers.get("content-type", "").startswith("application/json"), (status, headers, content)
        if request.method != "HEAD":
            assert "detail" in json.loads(content), content
        assert await target.stored() == before, f"a rejected request ({status}) stored something"


async def upload_one(target: Target) -> tuple[str, str]:
    body = b'--b\r\nContent-Disposition: form-data; name="files"; filename="a.txt"\r\n\r\nhello\r\n--b--\r\n'
    response = await target.client.post(
        f"/api/chat/{target.session_id}/upload/",
        data=body,
        headers={**widget_headers(target), "Content-Type": "multipart/form-data; boundary=b"},
    )
    assert response.status == 201, await response.text()
    [uploaded] = (await response.json())["files"]
    return uploaded["id"], uploaded["name"]


def test_every_route_under_hostile_input(tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    stack = contextlib.AsyncExitStack()
    try:
        target = loop.run_until_complete(stack.enter_async_context(every_channel(tmp_path)))
        target.upload = loop.run_until_complete(upload_one(target))

        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(requests(target))
        def check(request: Request) -> None:
            loop.run_until_complete(answer(target, request))

        check()
        response = loop.run_until_complete(target.client.get("/healthz"))
        assert response.status == 200
    finally:
        loop.run_until_complete(stack.aclose())
        loop.close()
