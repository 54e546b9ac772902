"""The HTML of an email, sanitized to be shown as the sender wrote it (DESIGN.md section 11).

Kept beside the whole text (`full_body`) and served by
`GET /api/tickets/{pid}/messages/{id}/original` into a sandboxed frame of the ticket page.
Two layers, each enough on its own for scripts: nh3 (the Python binding of the Rust crate
ammonia, an allow-list sanitizer on a real HTML5 parser, html5ever) keeps only what is
listed here, and the document is served with a `sandbox` CSP that runs no script and loads
nothing but `data:` images and inline styles (web/resources/messages.py).

What is kept: text, tables (with their old layout attributes), formatting, lists, quotes,
links (http, https, mailto and tel only, opened in a new tab with rel="noopener
noreferrer"), images that are in the email itself, and inline styles whose properties
cannot fetch anything (no `background-image`, `list-style-image`, `border-image`, `cursor`,
`filter`, `mask`: none of the properties listed below takes a URL), with `background: <a
colour>` kept as `background-color`. What goes: scripts and event handlers, `<style>`,
`<link>`, `<meta>` (refresh), `<base>`, forms, frames, objects, SVG and MathML (with their
content), comments, `class` and `id` (no stylesheet of ours or theirs can match them).

Images: a remote image (any `src` that is not in the email) would tell the sender when and
from where the email was read, so none is loaded; the `<img>` stays with its `alt` text, and
a line at the top of the frame says that remote images were blocked. `srcset` and
`background` attributes are dropped. An inline image (`<img src="cid:…">` naming a part of
a multipart/related email) is embedded as a `data:` URI when it is a PNG, GIF, JPEG or WebP
(never SVG), within MAX_IMAGES characters for all of them (the same images are among the
message's files); a `data:` image written in the HTML itself counts the same way.

Size: at most MAX_INPUT characters of an email's HTML are read (about 0.3 s of nh3 at
worst); the result is at most MAX_HTML characters of markup (20 x MAX_BODY, the longest
text a message keeps) plus the embedded images; past that it is cut, saying so.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from html import escape

import nh3

from supportdesk.core.vocabulary import MAX_BODY

MAX_HTML = 20 * MAX_BODY  # characters of sanitized markup, images aside (1,000,000)
MAX_IMAGES = 1_500_000  # characters of data: URIs embedded in one email (~1.1 MB of images)
MAX_INPUT = 4 * MAX_HTML  # characters of an email's HTML that are read at all

REMOTE_IMAGES_BLOCKED = (
    "Remote images in this email were blocked: loading them would tell the sender that, "
    "when and where it was read."
)
IMAGES_LEFT_OUT = "Some images of this email are too large to show here; see its files."
HTML_CUT = f"This email's HTML is longer than {MAX_HTML:,} characters: the rest is not shown."

# Raster images only: an SVG can carry script (not run in an <img>, but there is no need).
IMAGE_TYPES = ("image/png", "image/gif", "image/jpeg", "image/webp")
_DATA_IMAGE = re.compile(r"data:(image/(?:png|gif|jpeg|webp));base64,[A-Za-z0-9+/=\s]+\Z", re.I)
_LINK = re.compile(r"(?:https?://|mailto:|tel:)", re.I)

TAGS = {
    *("a", "abbr", "address", "article", "aside", "b", "bdi", "bdo", "big", "blockquote"),
    *("br", "caption", "center", "cite", "code", "col", "colgroup", "dd", "del", "details"),
    *("dfn", "div", "dl", "dt", "em", "figcaption", "figure", "font", "footer", "h1", "h2"),
    *("h3", "h4", "h5", "h6", "header", "hr", "i", "img", "ins", "kbd", "li", "main"),
    *("mark", "nav", "ol", "p", "pre", "q", "s", "samp", "section", "small", "span"),
    *("strike", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th"),
    *("thead", "time", "tr", "tt", "u", "ul", "var", "wbr"),
}
# Dropped with everything in them (other tags not listed are dropped, their text kept).
DROPPED_WITH_CONTENT = {
    *("script", "style", "title", "template", "svg", "math", "iframe", "frame", "frameset"),
    *("object", "embed", "applet", "noembed", "noframes", "textarea", "select", "xmp"),
}
_LAYOUT = {"align", "valign", "width", "height", "bgcolor", "border", "dir", "lang", "title"}
ATTRIBUTES = {
    "*": {"style", *_LAYOUT},
    "a": {"href"},
    "img": {"src", "alt", "hspace", "vspace"},
    "font": {"color", "face", "size"},
    "table": {"cellpadding", "cellspacing", "frame", "rules"},
    "td": {"colspan", "rowspan", "nowrap"},
    "th": {"colspan", "rowspan", "nowrap", "scope"},
    "col": {"span"},
    "colgroup": {"span"},
    "ol": {"start", "type", "reversed"},
    "ul": {"type"},
    "li": {"value"},
    "blockquote": {"cite"},
    "q": {"cite"},
    "time": {"datetime"},
    "details": {"open"},
}
_SIDES = ("top", "right", "bottom", "left")
STYLE_PROPERTIES = {
    *("color", "background-color", "opacity", "visibility", "display", "box-sizing"),
    *("font", "font-family", "font-size", "font-style", "font-weight", "font-variant"),
    *("line-height", "letter-spacing", "word-spacing", "white-space", "word-break"),
    *("word-wrap", "overflow-wrap", "hyphens", "text-align", "text-indent", "text-transform"),
    *("text-decoration", "text-decoration-line", "text-decoration-color", "text-overflow"),
    *("text-decoration-style", "vertical-align", "direction", "unicode-bidi"),
    *("width", "min-width", "max-width", "height", "min-height", "max-height", "overflow"),
    *("float", "clear", "table-layout", "border-collapse", "border-spacing", "caption-side"),
    *("empty-cells", "list-style-type", "list-style-position", "outline", "outline-color"),
    *("margin", "padding", "border", "border-width", "border-style", "border-color"),
    *("border-radius", "outline-style", "outline-width"),
    *(f"{box}-{side}" for box in ("margin", "padding", "border") for side in _SIDES),
    *(f"border-{side}-{part}" for side in _SIDES for part in ("width", "style", "color")),
    *(f"border-{v}-{h}-radius" for v in ("top", "bottom") for h in ("left", "right")),
}
# What no allowed property needs, in any spelling: a CSS escape (`u\72l(`) is refused
# rather than decoded here; nh3 parses what is left.
_STYLE_REFUSED = re.compile(r"\\|url\s*\(|image|expression|@|javascript", re.I)
_COLOUR = re.compile(r"\s*(#[0-9a-f]{3,8}|[a-z]+|(?:rgb|hsl)a?\([0-9.,%\s/]+\))\s*\Z", re.I)
_BACKGROUND = re.compile(r"\s*background\s*:", re.I)


@dataclass(frozen=True)
class InlineImage:
    content_type: str
    data: bytes = field(repr=False)


@dataclass
class _Findings:
    """What the sanitizer met in one email: said in the frame."""

    images: Callable[[], Mapping[str, InlineImage]]
    image_budget: int = MAX_IMAGES
    remote_blocked: bool = False
    images_left_out: bool = False
    _cids: Mapping[str, InlineImage] | None = None

    def cid(self, content_id: str) -> InlineImage | None:
        if self._cids is None:
            self._cids = self.images()
        return self._cids.get(content_id.strip().strip("<>").lower())


def sanitized_html(html: str, images: Callable[[], Mapping[str, InlineImage]] = dict) -> str:
    """The email's `html` as a fragment safe to show in the sandboxed frame, with a line
    on top for what was not shown; "" when nothing of it is left (no text, no image).
    `images` gives the email's inline images by Content-ID (lower case, no brackets); it
    is called only if the HTML names one."""
    if not html.strip():
        return ""
    found = _Findings(images)
    clean = _cleaner(found).clean(html[:MAX_INPUT])
    notes = []
    markup = len(clean) - (MAX_IMAGES - found.image_budget)
    if len(html) > MAX_INPUT or markup > MAX_HTML:
        # Cut after a tag (a cut in a tag inside a table would leave its `<` as text in
        # front of the table), then cleaned again, which closes what the cut left open; the
        # images already checked pass as they are.
        cut = clean[: MAX_HTML + MAX_IMAGES - found.image_budget]
        clean = _cleaner(_Findings(dict)).clean(cut[: cut.rfind(">") + 1])
        notes.append(HTML_CUT)
    if not _shows_anything(clean):
        return ""
    if found.remote_blocked:
        notes.insert(0, REMOTE_IMAGES_BLOCKED)
    if found.images_left_out:
        notes.append(IMAGES_LEFT_OUT)
    return "".join(f'<p class="sd-notice">{escape(n, quote=False)}</p>' for n in notes) + clean


def _shows_anything(clean: str) -> bool:
    return "<img" in clean or bool(re.sub(r"<[^>]*>|&nbsp;|\s", "", clean))


def _cleaner(found: _Findings) -> nh3.Cleaner:
    def attribute(tag: str, name: str, value: str) -> str | None:
        if name == "style":
            return _style(value)
        if name == "href":
            return value if _LINK.match(value.strip()) else None
        if tag == "img" and name == "src":
            return _image(value.strip(), found)
        return value

    return nh3.Cleaner(
        tags=TAGS,
        clean_content_tags=DROPPED_WITH_CONTENT,
        attributes=ATTRIBUTES,
        attribute_filter=attribute,
        strip_comments=True,
        link_rel="noopener noreferrer",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        url_schemes={"http", "https", "mailto", "tel", "cid", "data"},
        filter_style_properties=STYLE_PROPERTIES,
    )


def _style(value: str) -> str | None:
    """The declarations nh3 is then given to filter: none that could fetch anything, and
    `background: <colour>` as `background-color`."""
    kept = []
    for declaration in value.split(";"):
        if _STYLE_REFUSED.search(declaration):
            continue
        if _BACKGROUND.match(declaration):
            colour = _COLOUR.match(declaration.split(":", 1)[1])
            if colour is None:
                continue
            declaration = f"background-color: {colour.group(1)}"
        kept.append(declaration)
    return ";".join(kept) or None


def _image(src: str, found: _Findings) -> str | None:
    """A `data:` URI of an image that is in the email, within the budget; else None (and
    what was left out noted)."""
    if not src:
        return None
    if src.lower().startswith("cid:"):
        image = found.cid(src[4:])
        if image is None or image.content_type.lower() not in IMAGE_TYPES:
            return None
        src = f"data:{image.content_type.lower()};base64,{base64.b64encode(image.data).decode()}"
    elif not src.lower().startswith("data:"):
        found.remote_blocked = True
        return None
    if not _DATA_IMAGE.match(src):
        return None
    if len(src) > found.image_budget:
        found.images_left_out = True
        return None
    found.image_budget -= len(src)
    return src
