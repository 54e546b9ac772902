"""The hostile emails of issue 18 (findings 2 and 3), each made to size. Timings before the
bounds, measured on the 2-core machine with the parse of that day, are in each docstring."""

from __future__ import annotations

import quopri

QUOTED_PRINTABLE = b"Content-Transfer-Encoding: quoted-printable\r\n"


def headers(name: str, extra: bytes = b"") -> bytes:
    return (
        b"From: Eve <eve@example.org>\r\nTo: support@example.com\r\n"
        + f"Subject: {name}\r\nMessage-ID: <{name}.1@example.org>\r\n".encode()
        + extra
    )


def quoted_printable(text: str) -> bytes:
    """`text` as a quoted-printable body: a line of any length in lines SMTP carries."""
    return quopri.encodestring(text.encode()).replace(b"\n", b"\r\n")


def nested_lists(size: int = 40_000) -> bytes:
    """HTML-only, empty `<ol><li>` inside each other: html2text indents by the depth.
    8 KB took 24 s; 40 KB never finished."""
    html = "<ol><li>" * (size // 8)
    content = b"Content-Type: text/html; charset=utf-8\r\n" + QUOTED_PRINTABLE
    return headers("nested-lists", content) + b"\r\n" + quoted_printable(html)


def encoded_word_ids(size: int = 200_000, then: str = "") -> bytes:
    """In-Reply-To and References of RFC 2047 encoded-words decoding to one `<` and a run
    of `@` (then `then`): the Message-ID search backtracked. 100 KB took 3.6 s, 200 KB
    about 15 s."""
    word = "=?utf-8?q?" + "@" * 60 + "?="
    value = ("=?utf-8?q?=3C?= " + " ".join([word] * (size // 2 // 73)) + " " + then).encode()
    return headers("encoded-ids", b"In-Reply-To: " + value + b"\r\nReferences: " + value) + (
        b"\r\n\r\nPlease see my earlier message.\r\n"
    )


def on_on_line(size: int = 22_000, after: str = "") -> bytes:
    """A text line `On On On …`: the trimmer's `wrote:` pattern is super-linear in a line's
    length. 22 KB took 18 s."""
    text = "hello\n" + "On " * (size // 3) + "\n" + after
    return headers("on-on-line", QUOTED_PRINTABLE) + b"\r\n" + quoted_printable(text)


def quoted_message_id(size: int = 128_000) -> bytes:
    """`Message-ID: <"a\\""a\\"…@x>`: the email package's msg-id parser is quadratic.
    32 KB took 4 s, 128 KB about a minute."""
    return (
        b"From: Eve <eve@example.org>\r\nTo: support@example.com\r\nSubject: quoted-id\r\n"
        + b"Message-ID: <"
        + b'"a\\"' * (size // 4)
        + b"@x>\r\n\r\nbody\r\n"
    )


def blank_lines(count: int = 16_000) -> bytes:
    """A text of one line and then blank lines: the trimmer's signature pattern is
    quadratic in a run of them. 16,000 took 24 s."""
    return headers("blank-lines") + b"\r\nhello\r\n" + b"\r\n" * count


def parts_without_content_type(count: int = 20_000) -> bytes:
    """Parts with no Content-Type, which the count of `content-type:` lines missed:
    20,000 were accepted (1.5 s)."""
    return (
        headers("no-content-type", b"Content-Type: multipart/mixed; boundary=b\r\n")
        + b"\r\n"
        + b"--b\r\n\r\nx\r\n" * count
        + b"--b--\r\n"
    )


def parts_after_bare_crs(count: int = 20_000) -> bytes:
    """Parts whose lines end in a bare CR (a line end to the email package's parser, not
    to the count's `^`): 20,000 were accepted (7 s)."""
    return smtp_lines(
        headers("bare-cr", b"Content-Type: multipart/mixed; boundary=b\r\n")
        + b"\r\n"
        + b"--b\rContent-Type: text/plain\r\rx\r" * count
        + b"--b--\r\n"
    )


def smtp_lines(raw: bytes, longest: int = 500) -> bytes:
    """`raw` with a bare CR made CRLF wherever a line would grow past `longest` bytes (SMTP
    carries lines of up to 1,000): both end a line to the email package's parser, and no
    line that then starts after an LF is a Content-Type (which the old count counted)."""
    out = bytearray()
    line = 0
    for i, byte in enumerate(raw):
        out.append(byte)
        line += 1
        if byte == 0x0A:
            line = 0
        elif (
            byte == 0x0D
            and line > longest
            and raw[i + 1 : i + 2] != b"\n"
            and not raw[i + 1 : i + 14].lower().startswith(b"content-type:")
        ):
            out.append(0x0A)
            line = 0
    return bytes(out)


def nested_multiparts(depth: int, line_end: bytes = b"\r\n") -> bytes:
    """Multiparts inside each other; with bare CRs 1,200 of them passed the part count and
    the parser's recursion raised RecursionError: a 500, or a 451 over SMTP."""
    out = [headers("nested", b"Content-Type: multipart/mixed; boundary=b0\r\n") + b"\r\n"]
    for i in range(1, depth):
        out.append(f"--b{i - 1}\r\nContent-Type: multipart/mixed; boundary=b{i}\r\n\r\n".encode())
    out.append(f"--b{depth - 1}\r\nContent-Type: text/plain\r\n\r\ninnermost\r\n".encode())
    out.extend(f"--b{i}--\r\n".encode() for i in reversed(range(depth)))
    return smtp_lines(b"".join(out).replace(b"\r\n", line_end))


def nested_messages(depth: int, line_end: bytes = b"\r\n") -> bytes:
    """message/rfc822 parts inside each other, no boundary needed: writing the forwarded
    message back out recursed past Python's limit (RecursionError)."""
    raw = (
        headers("nested-messages")
        + b"Content-Type: message/rfc822\r\n\r\n" * depth
        + b"From: a@example.org\r\nSubject: innermost\r\n\r\ninnermost\r\n"
    )
    return smtp_lines(raw.replace(b"\r\n", line_end))
