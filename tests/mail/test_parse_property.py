"""A property test of the inbound parser (issue 18): random mail structure, each message
parsed in bounded time, through the sandbox the SMTP listener and the webhook use. Every
one gives an InboundEmail or a 4xx AppError: never the deadline, never another exception.

The messages: multiparts nested a few deep with random boundaries (some with spaces and
quotes, some never closed), parts with and without a Content-Type, odd or unknown
charsets and transfer encodings, forwarded messages, long lines, long and encoded
headers (Message-IDs too), and line ends of CRLF, LF, bare CR or a mix.
"""

from __future__ import annotations

import base64
import os
import quopri

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supportdesk.core.errors import AppError, ValidationFailed
from supportdesk.mail.inbound.parse import InboundEmail, parse_mime_unread
from supportdesk.mail.inbound.sandbox import ParseSandbox

# Generating the messages is most of the cost (about 12 ms each, the parse 3 ms): 250 keep
# the suite quick; PROPERTY_EXAMPLES=5000 make test PYTEST_ARGS=tests/mail/test_parse_property.py
# for a deeper run.
EXAMPLES = int(os.environ.get("PROPERTY_EXAMPLES", "250"))
# Well under the default deadline (3 s): each of these parses in milliseconds, so one that
# nears it is a slowdown to find, not a message to keep unread.
SANDBOX = ParseSandbox(2)

words = st.sampled_from(
    ["On", "wrote:", "Am", "schrieb", ">", "--", "=?utf-8?q?", "?=", "<", "@", "é", "\t",
     "Best regards", "From:", "<ol><li>", "<!--", "<a", "x" * 300, "\u202e", "\x00"]
)  # fmt: skip
texts = st.one_of(
    st.text(max_size=200),
    st.lists(st.one_of(words, st.text(max_size=8)), max_size=60).map(" ".join),
    st.builds(lambda word, n: word * n, words, st.integers(1, 400)),
)
charsets = st.sampled_from(
    ["utf-8", "us-ascii", "iso-8859-1", "windows-1252", "utf-16", "shift_jis", "gb2312",
     "koi8-r", "utf-7", "x-unknown", "", "utf\x008", "8859-1'"]
)  # fmt: skip
encodings = st.sampled_from(["", "7bit", "8bit", "base64", "quoted-printable", "x-uuencode", "?"])
boundaries = st.one_of(
    st.text(alphabet="abcXYZ0123456789'()+_,-./:=? ", min_size=1, max_size=70),
    st.sampled_from(["b", "=_part", '"q"', "a b", "-", "--"]),
)


def _encode(text: str, charset: str, encoding: str) -> bytes:
    try:
        data = text.encode(charset or "utf-8", "replace")
    except (LookupError, ValueError):
        data = text.encode("utf-8", "surrogatepass")
    if encoding == "base64":
        return base64.encodebytes(data)
    if encoding == "quoted-printable":
        return quopri.encodestring(data)
    return data


@st.composite
def headers(draw, *, top: bool) -> list[bytes]:
    found = []
    if top:
        name = draw(st.text(max_size=20)).encode("utf-8", "replace")
        sender = draw(st.sampled_from([b" <eve@example.org>"] * 6 + [b"", b" <>", b" @"]))
        found.append(b"From: " + name + sender)
        found.append(b"To: support@example.com")
    for name in draw(
        st.lists(
            st.sampled_from(
                ["Subject", "Message-ID", "In-Reply-To", "References", "Cc", "Reply-To",
                 "Auto-Submitted", "X-Long", "Content-ID", "Precedence", "List-Id"]
            ),
            max_size=5,
        )
    ):  # fmt: skip
        value = draw(texts)
        if draw(st.booleans()):  # an encoded-word
            value = f"=?utf-8?b?{base64.b64encode(value.encode('utf-8', 'replace')).decode()}?="
        folded = "\r\n ".join(value[i : i + 70] for i in range(0, len(value), 70))
        found.append(f"{name}: {folded}".encode("utf-8", "surrogatepass"))
    return found


@st.composite
def parts(draw, depth: int = 0) -> bytes:
    lines = draw(headers(top=depth == 0))
    kind = draw(
        st.sampled_from(["text/plain", "text/html", "application/pdf", "image/png", "x/y", None])
        if depth >= 3
        else st.sampled_from(
            ["multipart/mixed", "multipart/alternative", "multipart/report", "message/rfc822",
             "text/plain", "text/html", "application/octet-stream", None]
        )
    )  # fmt: skip
    charset, encoding = draw(charsets), draw(encodings)
    if kind is not None:
        params = f'; charset="{charset}"' if draw(st.booleans()) else ""
        if kind.startswith("multipart/"):
            boundary = draw(boundaries)
            params = f'; boundary="{boundary}"' if draw(st.booleans()) else f"; boundary={boundary}"
        lines.append(f"Content-Type: {kind}{params}".encode("utf-8", "surrogatepass"))
    if encoding:
        lines.append(f"Content-Transfer-Encoding: {encoding}".encode())
    if draw(st.booleans()):
        lines.append(f'Content-Disposition: attachment; filename="{draw(texts)[:40]}"'.encode())
    head = b"\r\n".join(lines) + b"\r\n\r\n"
    if kind is not None and kind.startswith("multipart/"):
        delimiter = b"--" + boundary.encode()
        children = draw(st.lists(parts(depth + 1), max_size=4))
        body = draw(texts).encode() + b"\r\n"  # the preamble
        body += b"".join(delimiter + b"\r\n" + child + b"\r\n" for child in children)
        body += delimiter + b"--\r\n" if draw(st.booleans()) else b""
        return head + body
    if kind == "message/rfc822":
        return head + draw(parts(depth + 1))
    text = draw(texts)
    if kind == "text/html" and draw(st.booleans()):
        text = draw(st.sampled_from(["<ol><li>", "<blockquote>", "<p>", "<a\n"])) * 300 + text
    return head + _encode(text, charset, encoding)


@st.composite
def messages(draw) -> bytes:
    raw = draw(parts())
    line_end = draw(st.sampled_from([b"\r\n", b"\n", b"\r", None]))
    if line_end is not None:
        return raw.replace(b"\r\n", line_end)
    return b"".join(  # a mix: each line end drawn on its own
        line + draw(st.sampled_from([b"\r\n", b"\n", b"\r"])) for line in raw.split(b"\r\n")
    )


def _parsed_or_refused(raw: bytes) -> InboundEmail | AppError:
    try:
        return SANDBOX.run("mime", raw)
    except AppError as refused:
        return refused


@given(raw=messages())
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)
def test_every_message_is_read_in_time_or_refused_with_a_4xx(raw: bytes):
    parsed = _parsed_or_refused(raw)  # ParseTimedOut or ParseCrashed fail the test
    if isinstance(parsed, AppError):
        assert 400 <= parsed.status < 500, parsed
    else:
        assert isinstance(parsed, InboundEmail)
        assert "\x00" not in parsed.text + parsed.display_text + parsed.subject
    try:  # what is stored when the deadline passes: read by hand, never failing otherwise
        unread = parse_mime_unread(raw)
    except ValidationFailed:
        pass
    else:
        assert unread.files[0].data == raw
