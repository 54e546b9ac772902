"""The Jinja2 environment for pages and emails (templates/), and its one filter of our own."""

from __future__ import annotations

import re
from datetime import UTC

import jinja2
from markupsafe import Markup, escape

from supportdesk.core.config import PROJECT_ROOT
from supportdesk.core.vocabulary import (
    MAX_BODY,
    MAX_EMAIL,
    MAX_NAME,
    MAX_SUBJECT,
    MIN_PASSWORD_LENGTH,
)

TEMPLATES_DIR = PROJECT_ROOT / "templates"

# An http(s) URL in running text: up to the first space, quote or angle bracket.
_URL = re.compile(r"""\bhttps?://[^\s<>"'`]+""", re.IGNORECASE)
_TRAILING = ".,;:!?*'"


def _trim_url(url: str) -> str:
    """Punctuation that ends the sentence is not part of the link: `(see https://x.io/a).`
    links `https://x.io/a`, while `https://x.io/wiki/A_(b)` keeps its own parenthesis.
    One pass from the end, counting once: a URL padded with 100,000 `)` is linear."""
    unbalanced = url.count(")") - url.count("(")
    end = len(url)
    while end:
        last = url[end - 1]
        if last in _TRAILING:
            end -= 1
        elif last == ")" and unbalanced > 0:
            unbalanced -= 1
            end -= 1
        else:
            break
    return url[:end]


def linkify(text: str) -> Markup:
    """Escaped text in which http(s) links are clickable: no HTML of the author's ever
    reaches the page, only the links we make (line breaks are kept by CSS)."""
    parts: list[str] = []
    position = 0
    for match in _URL.finditer(text):
        url = _trim_url(match.group(0))
        if not url.split("://", 1)[1]:
            continue
        parts.append(escape(text[position : match.start()]))
        parts.append(Markup('<a href="{0}" rel="nofollow noopener noreferrer">{0}</a>').format(url))
        position = match.start() + len(url)
    parts.append(escape(text[position:]))
    return Markup("").join(parts)


class _CompiledTemplates(jinja2.BytecodeCache):
    """The templates' compiled code, kept for the process: an environment made after the
    first (the test suite makes one per app, hundreds of them) loads each template's code
    instead of parsing and compiling it again, 15-40 ms a page. Jinja checks the source's
    checksum on each load, so a changed file is compiled anew."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


_COMPILED = _CompiledTemplates()


def make_templates(*, auto_reload: bool = True) -> jinja2.Environment:
    """The templates; `auto_reload` (development) checks each file's mtime at every render,
    three stat calls for an acknowledgement: elsewhere the files do not change while the
    process runs."""
    env = jinja2.Environment(
        auto_reload=auto_reload,
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=jinja2.select_autoescape(("html", "xml")),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        bytecode_cache=_COMPILED,
    )
    env.filters["linkify"] = linkify
    env.filters["filesize"] = filesize
    # The forms' maxlength: the limits their checks enforce, from the one place they are set.
    env.globals["max_length"] = {
        "name": MAX_NAME,
        "email": MAX_EMAIL,
        "subject": MAX_SUBJECT,
        "body": MAX_BODY,
    }
    env.globals["min_password_length"] = MIN_PASSWORD_LENGTH
    # Moments the pages show and take (a ticket's waiting_until) are in UTC, and say so.
    env.globals["utc"] = UTC
    return env


def filesize(size: int) -> str:
    """`812 bytes`, `14 KB`, `2.4 MB`: for people, next to a file's name."""
    if size < 1000:
        return f"{size} bytes"
    if size < 1000 * 1000:
        return f"{size / 1000:.0f} KB"
    return f"{size / 1000 / 1000:.1f} MB"
