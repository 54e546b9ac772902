"""Forwards as mail clients write them: Bo Agent (staff) forwards Cleo Customer's email to
the desk. Built after what Gmail, Outlook (classic, new/OWA, and its HTML) and Apple Mail
produce (their markers, header names and line shapes; the German variants too), as whole
RFC 5322 messages. `forward(name, ...)` fills in the forwarder, the recipient and any
headers on top (an Authentication-Results, say)."""

from __future__ import annotations

from typing import NamedTuple

NOTE = "Cleo called about this too, please handle it today."
ORIGINAL = "Tray 2 jams every time I print double-sided."
OUTLOOK_SPACE = " "  # Outlook ends its From line with a space


class Fixture(NamedTuple):
    name: str
    template: str


def _mime(subject: str, content_type: str, body: str) -> str:
    return f"""MIME-Version: 1.0
Date: Mon, 7 Dec 2026 09:30:00 +0000
Message-ID: {{MESSAGE_ID}}
Subject: {subject}
From: {{FROM}}
To: {{TO}}
Content-Type: {content_type}
Content-Transfer-Encoding: 8bit

{body}"""


GMAIL_PLAIN = f"""{NOTE}

---------- Forwarded message ---------
From: Cleo Customer <cleo@example.org>
Date: Mon, Dec 7, 2026 at 9:12 AM
Subject: The printer jams
To: Bo Agent <bo@example.com>
Cc: Dan Colleague <dan@example.org>, support@example.com


{ORIGINAL}

Cleo
"""

GMAIL_HTML = f"""<div dir="ltr">{NOTE}<br><br><div class="gmail_quote"><div dir="ltr" \
class="gmail_attr">---------- Forwarded message ---------<br>From: <strong \
class="gmail_sendername" dir="auto">Cleo Customer</strong> <span dir="auto">&lt;<a \
href="mailto:cleo@example.org">cleo@example.org</a>&gt;</span><br>Date: Mon, Dec 7, 2026 at \
9:12 AM<br>Subject: The printer jams<br>To: Bo Agent &lt;<a \
href="mailto:bo@example.com">bo@example.com</a>&gt;<br>Cc: Dan Colleague &lt;<a \
href="mailto:dan@example.org">dan@example.org</a>&gt;<br></div><br><br><div \
dir="ltr">{ORIGINAL}<div><br></div><div>Cleo</div></div></div></div>
"""

# Gmail in German writes its marker in English, the header names half translated.
GMAIL_GERMAN = f"""{NOTE}

---------- Forwarded message ---------
Von: Cleo Customer <cleo@example.org>
Date: Mo., 7. Dez. 2026 um 09:12 Uhr
Subject: The printer jams
To: Bo Agent <bo@example.com>


{ORIGINAL}
"""

OUTLOOK_CLASSIC = f"""{NOTE}

-----Original Message-----
From: Cleo Customer [mailto:cleo@example.org]{OUTLOOK_SPACE}
Sent: Monday, December 7, 2026 9:12 AM
To: Bo Agent
Cc: Dan Colleague [mailto:dan@example.org]
Subject: The printer jams

{ORIGINAL}
"""

OUTLOOK_NEW = f"""{NOTE}

________________________________
From: Cleo Customer <cleo@example.org>
Sent: Monday, December 7, 2026 09:12
To: Bo Agent <bo@example.com>
Cc: Dan Colleague <dan@example.org>
Subject: The printer jams

{ORIGINAL}
"""

OUTLOOK_GERMAN = f"""{NOTE}

-----Ursprüngliche Nachricht-----
Von: Cleo Customer <cleo@example.org>{OUTLOOK_SPACE}
Gesendet: Montag, 7. Dezember 2026 09:12
An: Bo Agent <bo@example.com>
Cc: Dan Colleague <dan@example.org>
Betreff: The printer jams

{ORIGINAL}
"""

# Outlook desktop's HTML: no marker in the text, a rule drawn by a border; html2text makes
# the bold header names plain.
OUTLOOK_HTML = f"""<html><body><div class="WordSection1"><p class="MsoNormal">{NOTE}<o:p></o:p></p>
<div><div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm">
<p class="MsoNormal"><b><span lang="EN-US">From:</span></b><span lang="EN-US"> Cleo Customer \
&lt;<a href="mailto:cleo@example.org">cleo@example.org</a>&gt; <br><b>Sent:</b> Monday, \
December 7, 2026 9:12 AM<br><b>To:</b> Bo Agent &lt;bo@example.com&gt;<br><b>Cc:</b> Dan \
Colleague &lt;dan@example.org&gt;<br><b>Subject:</b> The printer jams<o:p></o:p></span></p>
</div></div><p class="MsoNormal">{ORIGINAL}<o:p></o:p></p></div></body></html>
"""

# Outlook on the web: a real <hr>, which html2text writes as `* * *`.
OUTLOOK_WEB_HTML = f"""<div>{NOTE}</div><hr style="display:inline-block;width:98%" \
tabindex="-1"><div id="divRplyFwdMsg" dir="ltr"><font face="Calibri, sans-serif" \
color="#000000"><b>From:</b> Cleo Customer &lt;cleo@example.org&gt;<br><b>Sent:</b> Monday, \
December 7, 2026 9:12 AM<br><b>To:</b> Bo Agent &lt;bo@example.com&gt;<br><b>Subject:</b> The \
printer jams</font><div>&nbsp;</div></div><div>{ORIGINAL}</div>
"""

APPLE_PLAIN = f"""{NOTE}

Begin forwarded message:

From: Cleo Customer <cleo@example.org>
Subject: The printer jams
Date: 7 December 2026 at 09:12:00 GMT
To: Bo Agent <bo@example.com>
Cc: Dan Colleague <dan@example.org>

{ORIGINAL}
"""

APPLE_QUOTED_GERMAN = f"""{NOTE}

> Anfang der weitergeleiteten Nachricht:
>
> Von: Cleo Customer <cleo@example.org>
> Betreff: The printer jams
> Datum: 7. Dezember 2026 um 09:12:00 MEZ
> An: Bo Agent <bo@example.com>
> Kopie: Dan Colleague <dan@example.org>
>
> {ORIGINAL}
>
"""

ATTACHED_ORIGINAL = f"""MIME-Version: 1.0
Date: Mon, 7 Dec 2026 09:12:00 +0000
Message-ID: <cleo.original@example.org>
Subject: The printer jams
From: Cleo Customer <cleo@example.org>
To: Bo Agent <bo@example.com>
Cc: Dan Colleague <dan@example.org>
Content-Type: multipart/mixed; boundary="inner"

--inner
Content-Type: text/plain; charset=utf-8

{ORIGINAL}

--inner
Content-Type: application/pdf; name="jam.pdf"
Content-Disposition: attachment; filename="jam.pdf"
Content-Transfer-Encoding: base64

JVBERi0xLjQKJcOkw7zDtsOfCjEgMCBvYmoKPDwvVHlwZS9DYXRhbG9nPj4KZW5kb2JqCnRyYWlsZXIK
PDwvUm9vdCAxIDAgUj4+CiUlRU9GCg==
--inner--
"""

_ALTERNATIVE = 'multipart/alternative; boundary="000000000000gmail"'

FIXTURES = [
    Fixture(
        "gmail",
        _mime(
            "Fwd: The printer jams",
            _ALTERNATIVE,
            f"""--000000000000gmail
Content-Type: text/plain; charset="UTF-8"

{GMAIL_PLAIN}
--000000000000gmail
Content-Type: text/html; charset="UTF-8"

{GMAIL_HTML}
--000000000000gmail--
""",
        ),
    ),
    Fixture(
        "gmail-html-only", _mime("Fwd: The printer jams", 'text/html; charset="UTF-8"', GMAIL_HTML)
    ),
    Fixture(
        "gmail-german",
        _mime("Fwd: The printer jams", "text/plain; charset=UTF-8", GMAIL_GERMAN),
    ),
    Fixture(
        "outlook-classic",
        _mime("FW: The printer jams", "text/plain; charset=us-ascii", OUTLOOK_CLASSIC),
    ),
    Fixture("outlook-new", _mime("FW: The printer jams", "text/plain; charset=utf-8", OUTLOOK_NEW)),
    Fixture(
        "outlook-german",
        _mime("WG: The printer jams", "text/plain; charset=utf-8", OUTLOOK_GERMAN),
    ),
    Fixture(
        "outlook-html-only",
        _mime("FW: The printer jams", "text/html; charset=utf-8", OUTLOOK_HTML),
    ),
    Fixture(
        "outlook-web-html-only",
        _mime("FW: The printer jams", "text/html; charset=utf-8", OUTLOOK_WEB_HTML),
    ),
    Fixture(
        "apple-mail",
        _mime("Fwd: The printer jams", "text/plain; charset=utf-8", APPLE_PLAIN),
    ),
    Fixture(
        "apple-mail-quoted-german",
        _mime("WG: The printer jams", "text/plain; charset=utf-8", APPLE_QUOTED_GERMAN),
    ),
    Fixture(
        "attached-rfc822",
        _mime(
            "Fwd: The printer jams",
            'multipart/mixed; boundary="outer"',
            f"""--outer
Content-Type: text/plain; charset=utf-8

{NOTE}

--outer
Content-Type: message/rfc822
Content-Disposition: attachment; filename="The printer jams.eml"

{ATTACHED_ORIGINAL}
--outer--
""",
        ),
    ),
]
# The fixtures whose original is copied to Dan (the Outlook web one names no Cc).
WITH_CC = {f.name for f in FIXTURES} - {"gmail-german", "outlook-web-html-only"}


def forward(
    fixture: Fixture,
    *,
    sender: str = "Bo Agent <bo@example.com>",
    to: str = "support@example.com",
    message_id: str = "<forward.1@example.com>",
    on_top: str = "",
) -> bytes:
    """The fixture as a message, CRLF line ends, UTF-8; `on_top`: header lines put first."""
    text = (
        fixture.template.replace("{FROM}", sender)
        .replace("{TO}", to)
        .replace("{MESSAGE_ID}", message_id)
    )
    return (on_top + text).replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
