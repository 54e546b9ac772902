"""The customer's whole words (issue 20, item 6; DESIGN.md section 6): the text the reply
trimmer cut is shown to staff (the API's `full_body`, the page's "Show the whole email"), and
every character of an HTML-only email survives its conversion to text."""

from __future__ import annotations

import quopri

import pytest
import webtest

from tests.conftest import STAFF_PASSWORD
from tests.webhook import post_json, post_raw, rows

GERMAN = (
    "Hallo,\n\ndie Rechnung vom März fehlt noch.\n\nMit freundlichen Grüßen aus Köln\nJörg Müller\n"
)


def _german_email(message_id: str = "<koeln.1@example.de>") -> bytes:
    body = quopri.encodestring(GERMAN.replace("\n", "\r\n").encode("utf-8"))
    return (
        b"From: =?utf-8?q?J=C3=B6rg_M=C3=BCller?= <joerg@example.de>\r\n"
        b"To: support@example.com\r\nSubject: Rechnung\r\n"
        b"Message-ID: " + message_id.encode() + b"\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + body
    )


def test_the_api_returns_the_whole_text_the_trimmer_cut(api, db, make_staff, bearer):
    pid = post_raw(api, _german_email(), status=201).json["ticket"]
    post_json(
        api,
        {
            "from": "joerg@example.de",
            "to": "support@example.com",
            "subject": f"[#{pid}] Danke",
            "text": "Danke!",
            "message_id": "<koeln.2@example.de>",
        },
        status=201,
    )
    thread = api.get(f"/api/tickets/{pid}/messages", headers=bearer(make_staff("ADMIN"))).json[
        "items"
    ]
    first, second = thread
    assert first["body"] == "Hallo,\n\ndie Rechnung vom März fehlt noch."
    assert first["full_body"] == GERMAN.strip()
    assert second["full_body"] is None  # nothing was cut: the body is the whole text


@pytest.fixture
def browser(api) -> webtest.TestApp:
    return webtest.TestApp(api.app, extra_environ={"HTTP_ACCEPT": "text/html"})


def test_the_page_shows_the_trimmed_text_and_the_whole_email_behind_a_disclosure(
    api, browser, db, make_staff
):
    pid = post_raw(api, _german_email(), status=201).json["ticket"]
    admin = make_staff("ADMIN")
    form = browser.get("/login").forms[0]
    form["email"], form["password"] = admin["email"], STAFF_PASSWORD
    form.submit()
    browser.post(
        f"/tickets/{pid}/messages",
        {"body": "Wir schicken sie heute.", "csrf_token": _csrf(browser, pid)},
        status=303,
    )
    page = browser.get(f"/tickets/{pid}")
    customer, staff = page.html.select("article.message")
    shown = customer.find("div", class_="message-body")
    assert shown.text == "Hallo,\n\ndie Rechnung vom März fehlt noch."
    details = customer.find("details")
    assert details.find("summary").text == "Show the whole email"
    assert "Mit freundlichen Grüßen aus Köln\nJörg Müller" in details.text
    assert "open" not in details.attrs  # closed until asked for; no script needed
    assert staff.find("details") is None  # a message that is whole has none


def _csrf(browser, pid: str) -> str:
    return browser.get(f"/tickets/{pid}").html.find("meta", attrs={"name": "csrf-token"})["content"]


# --- every character of an HTML-only email -------------------------------------------------

ENTITIES = [
    ("named-accents", "caf&eacute; na&iuml;ve &Auml;&Ouml;&Uuml;&szlig;", "café naïve ÄÖÜß"),
    ("decimal", "&#233;t&#233; &#252;ber", "été über"),
    ("hex", "&#xE9;t&#xE9; &#xFC;ber", "été über"),
    ("astral", "smile &#x1F600; &#128512; &#x1F1E9;&#x1F1EA;", "smile 😀 😀 🇩🇪"),
    ("nbsp", "100&nbsp;km", "100\u00a0km"),
    (
        "dashes-and-quotes",
        "a &mdash; b &ndash; c &bdquo;d&ldquo; &laquo;e&raquo; &hellip;",
        "a — b – c „d“ «e» …",
    ),
    ("currency", "&euro;5, &pound;3, &yen;9, &cent;", "€5, £3, ¥9, ¢"),
    ("symbols", "&copy; &reg; &trade; &deg; &times; &frac12;", "© ® ™ ° × ½"),
    ("cjk", "日本語のテキスト &#x4E2D;&#25991; 한국어", "日本語のテキスト 中文 한국어"),
    ("rtl", "שלום &#x5E2;&#x5D5;&#x5DC;&#x5DD; مرحبا", "שלום עולם مرحبا"),
    ("combining-marks", "e&#x301; n&#771; a&#x308;", "e\u0301 n\u0303 a\u0308"),
    ("markup-characters", "&lt;b&gt; &amp; &quot;q&quot; &#39;s", '<b> & "q" \'s'),
]


@pytest.mark.parametrize(("html", "text"), [e[1:] for e in ENTITIES], ids=[e[0] for e in ENTITIES])
@pytest.mark.parametrize("form", ["raw", "json"])
def test_every_character_of_an_html_only_email_survives(api, db, html, text, form):
    message_id = f"<html.{abs(hash(html))}@example.org>"
    document = f"<html><body><p>{html}</p></body></html>"
    if form == "raw":
        raw = (
            "From: Ann <ann@example.org>\r\nTo: support@example.com\r\nSubject: html\r\n"
            f"Message-ID: {message_id}\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/html; charset=utf-8\r\n\r\n" + document
        ).encode("utf-8")  # the CJK, RTL and so on as 8-bit UTF-8, the rest as entities
        resp = post_raw(api, raw, status=201)
    else:
        payload = {"from": "ann@example.org", "html": document, "message_id": message_id}
        resp = post_json(api, payload, status=201)
    [message] = rows(db, "SELECT body FROM ticket_messages WHERE id = %s", resp.json["message_id"])
    assert message["body"] == text
