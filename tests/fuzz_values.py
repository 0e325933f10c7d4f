"""What the fuzz test sends: a raw request, its content encodings, and the values it is built from."""

from __future__ import annotations

import gzip
import json
import zlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from hypothesis import strategies as st


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
