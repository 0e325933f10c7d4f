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
import json
import os
from pathlib import Path
from urllib.parse import quote, urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multidict import MultiDict

from adapters.twilio.parse import decode
from fakes.telegram import payload as telegram_payload
from fakes.twilio import ACCOUNT_SID, PUBLIC_URL, sign
from fakes.twilio import payload as twilio_payload
from tests.fuzz_values import (
    Request,
    bodies,
    encodings,
    extra_headers,
    header_values,
    json_body,
    json_values,
    mostly,
    numbers,
    queries,
    scalars,
    texts,
)
from tests.hostile import ADMIN_KEY, ORIGIN, Target, every_channel
from tests.rawhttp import exchange

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "1000"))


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
def admin(draw: st.DrawFn, target: Target) -> Request:
    """The operator's page: its login form, pages and actions, with a cookie and a CSRF token that
    are mostly made up (the real key now and then)."""
    ref = draw(st.sampled_from(["1", "999999", "in-1", "out-1"]) | texts)
    method, path = draw(
        st.sampled_from(
            [
                ("GET", "/admin"),
                ("POST", "/admin/login"),
                ("POST", "/admin/logout"),
                ("GET", f"/admin/conversations/{ref}"),
                ("GET", f"/admin/conversations/{ref}/export"),
                ("POST", f"/admin/conversations/{ref}/erase"),
                ("POST", f"/admin/dead-letters/{ref}/retry"),
            ]
        )
    )
    form = draw(st.dictionaries(st.sampled_from(["key", "csrf", "confirm"]), texts | st.just(ADMIN_KEY)))
    body = draw(mostly(st.just(urlencode(form, errors="surrogatepass").encode()), bodies))
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if draw(st.booleans()):
        headers["Cookie"] = f"bridge_admin={draw(texts.filter(lambda t: t.isascii() and t.isprintable()))}"
    return Request(method, path, {**headers, **draw(extra_headers)}, body, draw(encodings))


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
        admin,
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
    elif status >= 400 and request.path.startswith("/admin/") | (request.path == "/admin"):
        kind = headers.get("content-type", "")  # the operator's pages, or what aiohttp answers itself
        assert kind.startswith(("text/html", "application/json")), (status, headers)
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
