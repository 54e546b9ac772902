"""What a person reads of an inbound email: HTML made into text, and the new text of a
reply with its quoted history trimmed. Both run third-party code that is super-linear on
some inputs, so each input is bounded first (issue 18, measured on 2 cores):

- html2text indents every line of a list or a quote by its nesting depth: 8 KB of nested
  `<ol><li>` gave 1.5 MB of text (23 s with the trimming). Lists and quotes nested deeper
  than MAX_NESTING become plain blocks, and the HTML and the text made of it are capped.
- html.parser (under html2text) searches from each `<` for where its tag or comment ends,
  to the end of the text when it never does: 50 KB of `<a` and a newline took 27 s, 1 MB
  of `<!--` 415 s. Markup that cannot end (a `<` after the last `>`, a `<!--` after the
  last `-->`) is made text first, which is what the parser makes of it in the end.
- mail-parser-reply's patterns are quadratic to cubic in a line's length (one 1,000-character
  `Am … schrieb` line: 0.3 s; a 22 KB `On On …` line: 18 s) and quadratic in a run of blank
  lines (16,000 of them: 30 s). So a line longer than MAX_TRIM_LINE (no real quote header is
  that long) stands aside as a placeholder while the trimmer runs, a run of blank lines is
  shortened, and only the first MAX_TRIM_TEXT characters are trimmed.

What is bounded stays within about half a second (bench numbers are in the commit that
added this); the parse's deadline (sandbox.py) covers whatever else is found.
"""

from __future__ import annotations

import re
import secrets
from typing import NamedTuple

import html2text
from mailparser_reply import EmailReplyParser

REPLY_LANGUAGES = ["en", "de", "fr", "es", "it", "nl", "pt", "sv"]
MAX_HTML = 500_000  # characters of HTML made into text: about half a second of html2text
MAX_HTML_TEXT = 1_000_000  # characters of text kept from it
MAX_NESTING = 10  # lists and quotes inside each other that keep their indentation
MAX_TRIM_TEXT = 32_000  # characters searched for the end of the new text
MAX_TRIM_LINE = 200  # characters of a line the trimmer sees
HTML_CUT = (
    "[The rest of this email's HTML was too long to show as text; the whole email is attached.]"
)

# The opening or closing tag of what html2text indents, found by its name alone (where the
# tag ends does not matter, so an attribute holding a `>` cannot hide one): html.parser's
# own rule for where a tag name ends.
_NESTING_TAG = re.compile(r"<(/?)(ol|ul|blockquote|dl)(?=[\t\n\r\f />]|$)", re.IGNORECASE)
_BLANK_RUN = re.compile(r"\n(?:[^\S\n]*\n){3,}")
_COMMENT_END = re.compile(r"--!?\s*>")
# A `data:` URI's payload (an inline image's base64), up to where its attribute ends.
_DATA_URI = re.compile(r"""data:[^\s"'>]*""", re.IGNORECASE)


class HtmlText(NamedTuple):
    text: str
    cut: bool  # the HTML, or its text, was longer than is made readable: keep the original


def html_to_text(html: str) -> HtmlText:
    """Readable text from HTML: paragraphs and line breaks kept, links as [text](url).
    Inline `data:` images are dropped first (images are not shown, and their base64 would
    count against MAX_HTML)."""
    if not html.strip():
        return HtmlText("", cut=False)
    html = _DATA_URI.sub("data:,", html)
    cut = len(html) > MAX_HTML
    converter = html2text.HTML2Text()
    converter.body_width = 0
    converter.ignore_images = True
    converter.ignore_emphasis = True
    # Characters as written: without it html2text makes `caf&eacute;` "cafe" and `&mdash;`
    # "--" (its ASCII "unifiable" table), and customers' names lose their accents.
    converter.unicode_snob = True
    text = converter.handle(flatten_deep_nesting(unending_markup_as_text(html[:MAX_HTML])))
    if len(text) > MAX_HTML_TEXT:
        text, cut = text[:MAX_HTML_TEXT], True
    text = "\n".join(line.rstrip() for line in text.splitlines()).strip()
    return HtmlText(f"{text}\n\n{HTML_CUT}" if cut else text, cut)


def unending_markup_as_text(html: str) -> str:
    """`html` with each `<` after its last `>`, and each `<!--` after its last `-->`,
    written as `&lt;`: the parser would search to the end from each, and then show it as
    text anyway."""
    last_gt = html.rfind(">") + 1
    comments_end = 0
    for comments_end_match in _COMMENT_END.finditer(html):
        comments_end = comments_end_match.end()
    head, tail = html[:last_gt], html[last_gt:].replace("<", "&lt;")
    return head[:comments_end] + head[comments_end:].replace("<!--", "&lt;!--") + tail


def flatten_deep_nesting(html: str) -> str:
    """`html` with each list or quote nested deeper than MAX_NESTING made a `div` (its
    closing tag too): its text stays, its indentation goes. One linear pass."""
    depth = 0
    flattened: list[bool] = []  # for each open tag: was it made a div?

    def retag(match: re.Match[str]) -> str:
        nonlocal depth
        if not match.group(1):
            depth += 1
            flattened.append(depth > MAX_NESTING)
            return "<div" if flattened[-1] else match.group(0)
        if not flattened:  # a closing tag that opened nothing: html2text ignores it too
            return match.group(0)
        depth -= 1
        return "</div" if flattened.pop() else match.group(0)

    return _NESTING_TAG.sub(retag, html)


def trim_reply(text: str) -> str:
    """The new part of a reply: without the quoted history and a common signature; the
    whole text if trimming leaves nothing. Past MAX_TRIM_TEXT characters (long lines set
    aside), only the head is searched: trimmed if the new text ends there, else whole."""
    if not text.strip():
        return text
    guarded, long_lines = _set_long_lines_aside(_BLANK_RUN.sub("\n\n\n", text))
    searched = len(guarded) <= MAX_TRIM_TEXT
    head = guarded if searched else guarded[:MAX_TRIM_TEXT].rsplit("\n", 1)[0]
    try:
        parsed = EmailReplyParser(languages=REPLY_LANGUAGES).read(head)
        latest = (parsed.replies[0].body if parsed.replies else "") or parsed.latest_reply or ""
    except Exception:  # a third-party heuristic must never lose the message
        return text.strip()
    latest = _put_long_lines_back(latest, long_lines).strip()
    if not searched and _letters(latest) >= _letters(_put_long_lines_back(head, long_lines)):
        return text.strip()  # nothing cut: the new text goes on past what was searched
    return _without_trailing_quote(latest) or text.strip()


def _letters(text: str) -> int:
    """The length of `text` without its whitespace (which the trimmer tidies)."""
    return len("".join(text.split()))


def _set_long_lines_aside(text: str) -> tuple[str, dict[str, str]]:
    """`text` with each line over MAX_TRIM_LINE replaced by a placeholder the trimmer's
    patterns cannot match (private-use characters around a random tag: not in the text)."""
    tag = secrets.token_hex(8)
    long_lines: dict[str, str] = {}
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if len(line.strip()) > MAX_TRIM_LINE:
            placeholder = f"\ue000{tag}{len(long_lines)}\ue001"
            long_lines[placeholder] = line.strip()
            lines[i] = placeholder
    return "\n".join(lines), long_lines


_PLACEHOLDER = re.compile("\ue000[0-9a-f]{16}[0-9]+\ue001")


def _put_long_lines_back(text: str, long_lines: dict[str, str]) -> str:
    if not long_lines:
        return text
    return _PLACEHOLDER.sub(lambda m: long_lines.get(m.group(0), m.group(0)), text)


def _without_trailing_quote(text: str) -> str:
    """Without a block of `>` lines that ends the text (quoted without an "On ... wrote:"
    line, which the reply parser needs to see it)."""
    lines = text.splitlines()
    end = len(lines)
    while end and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith(">")):
        end -= 1
    if end == len(lines) or not any(line.lstrip().startswith(">") for line in lines[end:]):
        return text
    return "\n".join(lines[:end]).rstrip()
