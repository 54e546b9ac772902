"""Real-world-shaped inbound emails, each with the outcome the desk must reach.

The messages are written as the mail clients and servers in question write them (header
order, folding, charsets, transfer encodings, quoting styles). Placeholders are filled in
by the test with the ticket world it builds: {PID} and {ACK_ID} of the customer's open
ticket, {TOKEN_ADDR} its signed plus-address, {CLOSED_ACK_ID} of a CLOSED ticket of the
same customer, {NOTICE_ID} of the assignment notice its AGENT received.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    name: str
    raw: bytes
    outcome: str  # "created", "threaded" (into the open ticket) or "follow-up"
    body: tuple[str, ...] = ()  # texts the stored (displayed) body contains
    body_excludes: tuple[str, ...] = ()  # quoted history that must be trimmed
    files: tuple[tuple[str, str], ...] = ()  # (filename, content type) kept
    automatic: bool = False  # recorded, never answered, never reopens
    acknowledged: bool | None = None  # for "created"
    author: str = "CUSTOMER"
    subject: str | None = None
    # Threaded by the [#PID] of its subject alone: kept and marked, reopens nothing.
    subject_only: bool = False


def _b64(data: bytes) -> str:
    encoded = base64.b64encode(data).decode()
    return "\r\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))


PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4//8/AAX+Av4N70a4AAAAAElFTkSuQmCC"
)
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"
SCANNER_TEXT = b"The scanner uploads empty PDFs.\nSince Monday."
NINE_MIB = (b"2026-11-24 10:00:00 printer spooler: page 1 of 1 sent\n" * 200_000)[: 9 * 2**20]


def msg(text: str) -> bytes:
    """A message as it travels: CRLF line ends, ASCII (8-bit bodies are added raw)."""
    return text.lstrip("\n").replace("\n", "\r\n").encode("latin-1")


CASES: list[Case] = [
    Case(
        "gmail-reply-with-quoted-history",
        msg("""
MIME-Version: 1.0
Date: Tue, 24 Nov 2026 10:12:01 +0100
References: {ACK_ID}
In-Reply-To: {ACK_ID}
Message-ID: <CAF=gmail.1@mail.gmail.com>
Subject: Re: [#{PID}] We received your request: The printer jams
From: Cleo Customer <cleo@example.org>
To: Support Desk <support@example.com>
Content-Type: multipart/alternative; boundary="000000000000gmail"

--000000000000gmail
Content-Type: text/plain; charset="UTF-8"

Thanks, it works now after the restart.

On Tue, Nov 24, 2026 at 9:00 AM Support Desk <support@example.com> wrote:

> Hello Cleo,
>
> we have received your request and opened ticket {PID}.
>

--000000000000gmail
Content-Type: text/html; charset="UTF-8"

<div dir="ltr">Thanks, it works now after the restart.</div><br><div class="gmail_quote">
<blockquote>Hello Cleo, we have received your request</blockquote></div>

--000000000000gmail--
"""),
        "threaded",
        body=("Thanks, it works now after the restart.",),
        body_excludes=("we have received your request",),
    ),
    Case(
        "outlook-reply-windows-1252",
        msg("""
From: Cleo Customer <cleo@example.org>
To: "support@example.com" <support@example.com>
Subject: RE: [#{PID}] We received your request: The printer jams
Thread-Topic: [#{PID}] We received your request: The printer jams
Thread-Index: AQHbPrinter==
Date: Tue, 24 Nov 2026 09:30:00 +0000
Message-ID: <AM0PR01MB1234.outlook@AM0PR01MB1234.eurprd01.prod.outlook.com>
References: {ACK_ID}
Accept-Language: de-DE, en-US
Content-Language: en-US
Content-Type: text/plain; charset="Windows-1252"
Content-Transfer-Encoding: quoted-printable
MIME-Version: 1.0

It still doesn=92t print =96 the tray light blinks.

________________________________
From: Support Desk <support@example.com>
Sent: Tuesday, November 24, 2026 9:00 AM
To: Cleo Customer <cleo@example.org>
Subject: [#{PID}] We received your request: The printer jams

Hello Cleo,
we have received your request.
"""),
        "threaded",
        body=("It still doesn\u2019t print \u2013 the tray light blinks.",),
        body_excludes=("we have received your request",),
    ),
    Case(
        "apple-mail-reply",
        msg("""
Content-Type: text/plain;
\tcharset=utf-8
Content-Transfer-Encoding: quoted-printable
Mime-Version: 1.0 (Mac OS X Mail 16.0 \\(3774.600.62\\))
Subject: Re: [#{PID}] We received your request: The printer jams
From: Cleo Customer <cleo@example.org>
In-Reply-To: {ACK_ID}
Date: Tue, 24 Nov 2026 10:40:00 +0100
Message-Id: <A1B2C3D4-apple@example.org>
To: Support Desk <support@example.com>

Here is the serial number: PX-4410.

> On 24 Nov 2026, at 09:00, Support Desk <support@example.com> wrote:
>=20
> Hello Cleo,
> we have received your request.
"""),
        "threaded",
        body=("Here is the serial number: PX-4410.",),
        body_excludes=("we have received your request",),
    ),
    Case(
        "thunderbird-reply-format-flowed",
        msg("""
Message-ID: <9f1e-thunderbird@example.org>
Date: Tue, 24 Nov 2026 11:02:13 +0100
MIME-Version: 1.0
User-Agent: Mozilla Thunderbird
Subject: Re: [#{PID}] We received your request: The printer jams
Content-Language: en-GB
To: Support Desk <support@example.com>
References: <older@example.org> {ACK_ID}
From: Cleo Customer <cleo@example.org>
In-Reply-To: {ACK_ID}
Content-Type: text/plain; charset=UTF-8; format=flowed
Content-Transfer-Encoding: 7bit

The paper is A4, 80 g. I have loaded a new ream and it jams again on
page two.

On 24/11/2026 09:00, Support Desk wrote:
> Hello Cleo,
> we have received your request.
""").replace(b"again on\r\n", b"again on \r\n"),  # format=flowed: a soft line break
        "threaded",
        body=("it jams again on page two.",),
        body_excludes=("we have received your request",),
    ),
    Case(
        "subject-tag-only",
        msg("""
From: cleo@example.org
To: support@example.com
Subject: Re: [#{PID}] printer
Message-ID: <subject-only.1@example.org>
Date: Tue, 24 Nov 2026 12:00:00 +0000

One more thing: it is the second floor printer.
"""),
        "threaded",
        body=("second floor printer",),
        subject_only=True,
    ),
    Case(
        "plus-address-token-only",
        msg("""
From: Cleo Customer <cleo@example.org>
To: {TOKEN_ADDR}
Subject: printer again (subject rewritten by a gateway)
Message-ID: <plus-only.1@example.org>
Date: Tue, 24 Nov 2026 12:05:00 +0000

The gateway strips headers, but this still belongs to my ticket.
"""),
        "threaded",
        body=("still belongs to my ticket",),
    ),
    Case(
        "forged-in-reply-to-from-a-stranger",
        msg("""
From: Mallory <mallory@evil.example>
To: support@example.com
Subject: Re: [#{PID}] We received your request: The printer jams
In-Reply-To: {ACK_ID}
References: {ACK_ID}
Message-ID: <forged.1@evil.example>
Date: Tue, 24 Nov 2026 12:10:00 +0000

Please send the invoice to my address instead.
"""),
        "created",
        body=("Please send the invoice",),
        acknowledged=True,
    ),
    Case(
        "signed-plus-address-and-pid-from-another-stranger",
        msg("""
From: Vic Other <vic@other.example>
To: {TOKEN_ADDR}
Subject: Re: [#{PID}] The printer jams
References: <cleo.original.1@example.org>
Message-ID: <vic.1@other.example>
Date: Tue, 24 Nov 2026 12:20:00 +0000

Cleo forwarded me your email. Please cancel her order.
"""),
        "created",
        body=("Please cancel her order",),
        acknowledged=True,
    ),
    Case(
        "new-plain-text",
        msg("""
From: Dan Newcomer <dan@example.net>
To: support@example.com
Subject: Cannot log in to the portal
Message-ID: <new-plain.1@example.net>
Date: Tue, 24 Nov 2026 13:00:00 +0000
Content-Type: text/plain; charset=us-ascii

Hello,
since this morning the portal says my password is wrong.
Dan
"""),
        "created",
        body=("the portal says my password is wrong",),
        acknowledged=True,
        subject="Cannot log in to the portal",
    ),
    Case(
        "iso-8859-1-quoted-printable",
        msg("""
From: =?ISO-8859-1?Q?J=FCrgen_M=FCller?= <juergen@example.de>
To: support@example.com
Subject: =?ISO-8859-1?Q?Drucker_druckt_nicht_=FCberall?=
Message-ID: <latin1.1@example.de>
MIME-Version: 1.0
Content-Type: text/plain; charset=ISO-8859-1
Content-Transfer-Encoding: quoted-printable

Gr=FC=DFe aus M=FCnchen, der Drucker im B=FCro streikt.
"""),
        "created",
        body=("Gr\u00fc\u00dfe aus M\u00fcnchen, der Drucker im B\u00fcro streikt.",),
        acknowledged=True,
        subject="Drucker druckt nicht \u00fcberall",
    ),
    Case(
        "windows-1252-8bit",
        msg("""
From: Ana <ana@example.es>
To: support@example.com
Subject: Factura
Message-ID: <cp1252.1@example.es>
MIME-Version: 1.0
Content-Type: text/plain; charset=windows-1252
Content-Transfer-Encoding: 8bit

""")
        + "La factura \u201cno llega\u201d \u2014 \u00bfpueden reenviarla?\r\n".encode("cp1252"),
        "created",
        body=("La factura \u201cno llega\u201d \u2014 \u00bfpueden reenviarla?",),
        acknowledged=True,
    ),
    Case(
        "shift-jis-base64",
        msg(f"""
From: Tanaka <tanaka@example.jp>
To: support@example.com
Subject: =?ISO-2022-JP?B?GyRCJVclaiVzJT8bKEI=?=
Message-ID: <sjis.1@example.jp>
MIME-Version: 1.0
Content-Type: text/plain; charset=Shift_JIS
Content-Transfer-Encoding: base64

{_b64("プリンターが動きません。".encode("shift_jis"))}
"""),
        "created",
        body=("プリンターが動きません。",),
        acknowledged=True,
        subject="プリンタ",
    ),
    Case(
        "unknown-charset",
        msg("""
From: Old Client <old@example.org>
To: support@example.com
Subject: Strange encoding
Message-ID: <badcharset.1@example.org>
MIME-Version: 1.0
Content-Type: text/plain; charset=x-no-such-charset
Content-Transfer-Encoding: 8bit

""")
        + "Caf\u00e9 ist zu \u00fcberf\u00fcllt\r\n".encode("latin-1"),
        "created",
        body=("Caf\ufffd ist zu \ufffdberf\ufffdllt",),  # replacement characters, no 500
        acknowledged=True,
    ),
    Case(
        "declared-ascii-sent-utf8",
        msg("""
From: Liar <liar@example.org>
To: support@example.com
Subject: Wrong charset
Message-ID: <wrongcharset.1@example.org>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii
Content-Transfer-Encoding: 8bit

""")
        + "na\u00efve caf\u00e9 \u2014 fine\r\n".encode("utf-8"),
        "created",
        body=("na\u00efve caf\u00e9 \u2014 fine",),  # read as the UTF-8 it really is
        acknowledged=True,
    ),
    Case(
        "base64-text",
        msg(f"""
From: Bea <bea@example.org>
To: support@example.com
Subject: Base64 body
Message-ID: <b64.1@example.org>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: base64

{_b64(SCANNER_TEXT)}
"""),
        "created",
        body=("The scanner uploads empty PDFs.",),
        acknowledged=True,
    ),
    Case(
        "html-only",
        msg("""
From: Web Shop <orders@shop.example>
To: support@example.com
Subject: Order question
Message-ID: <htmlonly.1@shop.example>
MIME-Version: 1.0
Content-Type: text/html; charset=utf-8

<html><head><style>p{color:red}</style></head><body><p>Hello,</p>
<p>where is <b>order 4711</b>? See <a href="https://shop.example/o/4711">the order</a>.</p>
<script>alert(1)</script></body></html>
"""),
        "created",
        body=("where is order 4711?", "https://shop.example/o/4711"),
        body_excludes=("<b>", "<script>", "color:red"),
        acknowledged=True,
    ),
    Case(
        "rfc2047-subject-and-name",
        msg(
            """
From: =?UTF-8?B?w4lsb2TDqWU=?= <elodee@example.fr>
To: support@example.com
Subject: =?UTF-8?Q?Probl=C3=A8me_d=E2=80=99impression?=
Message-ID: <rfc2047.1@example.fr>

L'imprimante ne répond plus.
""".replace("ne répond", "ne repond")
        ),
        "created",
        body=("imprimante ne repond plus",),
        acknowledged=True,
        subject="Probl\u00e8me d\u2019impression",
    ),
    Case(
        "inline-image-multipart-related",
        msg(f"""
From: Cleo Customer <cleo@example.org>
To: support@example.com
Subject: Screenshot of the error
Message-ID: <inline.1@example.org>
MIME-Version: 1.0
Content-Type: multipart/related; boundary="rel"

--rel
Content-Type: text/html; charset=utf-8

<p>The error:</p><img src="cid:shot@example.org">
--rel
Content-Type: image/png; name="shot.png"
Content-Disposition: inline; filename="shot.png"
Content-ID: <shot@example.org>
Content-Transfer-Encoding: base64

{_b64(PNG)}
--rel--
"""),
        "created",
        body=("The error:",),
        files=(("shot.png", "image/png"),),
        acknowledged=True,
    ),
    Case(
        "pdf-attachment",
        msg(f"""
From: Accounts <accounts@client.example>
To: support@example.com
Subject: Invoice attached
Message-ID: <pdf.1@client.example>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="mix"

--mix
Content-Type: text/plain; charset=utf-8

Please check the attached invoice.
--mix
Content-Type: application/pdf; name="invoice-2026-11.pdf"
Content-Disposition: attachment; filename="invoice-2026-11.pdf"
Content-Transfer-Encoding: base64

{_b64(PDF)}
--mix--
"""),
        "created",
        body=("Please check the attached invoice.",),
        files=(("invoice-2026-11.pdf", "application/pdf"),),
        acknowledged=True,
    ),
    Case(
        "nine-mib-attachment",
        msg(f"""
From: Ops <ops@client.example>
To: support@example.com
Subject: Spooler log
Message-ID: <big.1@client.example>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="big"

--big
Content-Type: text/plain; charset=utf-8

The whole spooler log is attached.
--big
Content-Type: text/plain; name="spooler.log"
Content-Disposition: attachment; filename="spooler.log"
Content-Transfer-Encoding: base64

{_b64(NINE_MIB)}
--big--
"""),
        "created",
        body=("The whole spooler log is attached.",),
        files=(("spooler.log", "text/plain"),),
        acknowledged=True,
    ),
    Case(
        "forwarded-message",
        msg("""
From: Cleo Customer <cleo@example.org>
To: support@example.com
Subject: Fwd: Delivery failed
Message-ID: <fwd.1@example.org>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="fw"

--fw
Content-Type: text/plain; charset=utf-8

See the forwarded message below.
--fw
Content-Type: message/rfc822
Content-Disposition: attachment

From: Printer <printer@example.org>
To: cleo@example.org
Subject: Toner low
Message-ID: <inner.1@example.org>

Toner is at 3%.
--fw--
"""),
        "created",
        body=("See the forwarded message below.",),
        files=(("Toner low.eml", "message/rfc822"),),
        acknowledged=True,
    ),
    Case(
        "executable-attachment-not-kept",
        msg(f"""
From: Eve <eve@example.org>
To: support@example.com
Subject: Please run this tool
Message-ID: <exe.1@example.org>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="exe"

--exe
Content-Type: text/plain

Run the attached fix.
--exe
Content-Type: application/octet-stream; name="fix.exe"
Content-Disposition: attachment; filename="fix.exe"
Content-Transfer-Encoding: base64

{_b64(b"MZ" + bytes(200))}
--exe--
"""),
        "created",
        body=("Run the attached fix.", "[Not kept: fix.exe: This type of file is not accepted.]"),
        acknowledged=True,
    ),
    Case(
        "out-of-office",
        msg("""
From: Cleo Customer <cleo@example.org>
To: support@example.com
Subject: Automatic reply: [#{PID}] We received your request: The printer jams
Auto-Submitted: auto-replied
X-Auto-Response-Suppress: All
In-Reply-To: {ACK_ID}
Message-ID: <ooo.1@example.org>
Content-Type: text/plain; charset=utf-8

I am out of the office until Monday.
"""),
        "threaded",
        body=("out of the office",),
        automatic=True,
    ),
    Case(
        "bounce-multipart-report",
        msg("""
Return-Path: <>
From: Mail Delivery System <MAILER-DAEMON@mx.example.org>
To: support@example.com
Subject: Undelivered Mail Returned to Sender
Message-ID: <bounce.1@mx.example.org>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="rep"

--rep
Content-Type: text/plain; charset=us-ascii

This is the mail system. Your message could not be delivered: user unknown.
--rep
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org
Final-Recipient: rfc822; nobody@example.org
Action: failed
Status: 5.1.1
--rep--
"""),
        "created",
        body=("could not be delivered",),
        automatic=True,
        acknowledged=False,
    ),
    Case(
        "mailing-list",
        msg("""
From: Printer Users <announce@lists.example.org>
To: printer-users@lists.example.org
Cc: support@example.com
Subject: [printer-users] Firmware 4.2 released
List-Id: <printer-users.lists.example.org>
List-Unsubscribe: <mailto:leave@lists.example.org>
Precedence: list
Message-ID: <list.1@lists.example.org>

Firmware 4.2 is out.
"""),
        "created",
        body=("Firmware 4.2 is out.",),
        automatic=True,
        acknowledged=False,
    ),
    Case(
        "another-help-desks-acknowledgement",
        msg("""
From: Vendor Help Desk <helpdesk@vendor.example>
To: support@example.com
Subject: [Ticket #88231] We received your request
Auto-Submitted: auto-replied
Precedence: auto_reply
Message-ID: <ack.88231@vendor.example>

Thank you for contacting Vendor support. Your ticket number is 88231.
"""),
        "created",
        body=("Your ticket number is 88231.",),
        automatic=True,
        acknowledged=False,
    ),
    Case(
        "from-our-own-address",
        msg("""
From: Support Desk <support@example.com>
To: support@example.com
Subject: Looped
Message-ID: <own.1@example.com>

This came from us.
"""),
        "created",
        body=("This came from us.",),
        automatic=True,
        acknowledged=False,
    ),
    Case(
        "reply-to-a-closed-ticket",
        msg("""
From: Cleo Customer <cleo@example.org>
To: support@example.com
Subject: Re: [#{CLOSED_PID}] old problem
In-Reply-To: {CLOSED_ACK_ID}
Message-ID: <closed.1@example.org>

The old problem is back.
"""),
        "follow-up",
        body=("The old problem is back.",),
        acknowledged=True,
    ),
    Case(
        "staff-answers-from-their-inbox",
        msg("""
From: Bo Agent <bo@example.com>
To: support@example.com
Subject: Re: [#{PID}] Assigned to you: The printer jams
In-Reply-To: {NOTICE_ID}
Message-ID: <staff.1@example.com>

Hi Cleo, a technician comes tomorrow at 10.

On Tue, Support Desk wrote:
> Ana Admin assigned ticket {PID} to you.
"""),
        "threaded",
        body=("a technician comes tomorrow at 10",),
        body_excludes=("assigned ticket",),
        author="STAFF",
    ),
    Case(
        "no-message-id",
        msg("""
From: Frank <frank@example.org>
To: support@example.com
Subject: Old mailer without ids

My mailer sends no Message-ID.
"""),
        "created",
        body=("My mailer sends no Message-ID.",),
        acknowledged=True,
    ),
]
