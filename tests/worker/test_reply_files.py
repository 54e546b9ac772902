"""A staff reply as people expect it (DESIGN.md section 11), delivered by a real worker to
the real SMTP server of the tests: its files as MIME parts read from the storage (local disk
and an S3-protocol server) at send time, or as signed links past EMAIL_ATTACHMENT_MAX_BYTES;
the previous public message quoted below it; From the ticket's mailbox."""

from __future__ import annotations

import hashlib
import io
import urllib.request
from email.message import EmailMessage
from urllib.parse import urlsplit

import pytest
import webtest

from supportdesk.core.redis_client import make_redis
from supportdesk.files.storage import make_storage
from supportdesk.files.uploads import Upload
from supportdesk.tickets.inputs import NewMessage, NewTicket
from supportdesk.web.services import build_services
from tests.conftest import shared_app
from tests.factories import make_message
from tests.oauthserver import insert_mailbox
from tests.worker.conftest import outbox_statuses, running, wait_until

PDF = (
    b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"
    + bytes(range(256)) * 40
)
LOG = "Drucker-Protokoll: Stau in Fach 2 um 09:14 — Grüße\n".encode()
FILES = [
    ("Rechnung März 2026 \u2013 überfällig.pdf", "application/pdf", PDF),
    ("printer.log", "text/plain", LOG),
]


@pytest.fixture(params=["local", "s3"])
def backend_settings(request, settings):
    """The same tests on local disk and on a real S3-protocol server (moto's)."""
    return request.getfixturevalue("s3_settings") if request.param == "s3" else settings


def _services(settings, db):
    return build_services(settings, db, make_redis(settings))


def _uploads(files=FILES) -> list[Upload]:
    return [
        Upload(name, kind, len(data), hashlib.sha256(data).hexdigest(), io.BytesIO(data))
        for name, kind, data in files
    ]


def _ticket(services, **over):
    fields = {
        "name": "Cleo Customer",
        "email": "cleo@example.org",
        "subject": "The printer jams",
        "body": "Tray 2 jams on every page.",
        "priority": "NORMAL",
    } | over
    return services.tickets.create(NewTicket(**fields), channel="EMAIL")


def _reply(services, staff, ticket, body="Here is what we found.", files=FILES, **new):
    return services.messages.post(
        staff, ticket["pid"], NewMessage(body, **new), channel="API", uploads=_uploads(files)
    )


def _the_reply(received) -> EmailMessage:
    [reply] = [r.message for r in received if "Re:" in r.header("Subject")]
    return reply


def _text(message: EmailMessage) -> str:
    return message.get_body(("plain",)).get_content().replace("\r\n", "\n")


def _parts(message: EmailMessage) -> list[tuple[str, str, str | None, bytes]]:
    return [
        (
            part.get_filename(),
            part.get_content_type(),
            part.get_param("charset"),
            part.get_payload(decode=True),
        )
        for part in message.iter_attachments()
    ]


def test_a_replys_files_arrive_as_attachments_with_the_same_bytes(
    backend_settings, db, make_staff, make_worker, smtp_server
):
    services = _services(backend_settings, db)
    staff = make_staff("ADMIN", name="Ana Admin")
    ticket = _ticket(services)
    _reply(services, staff, ticket)
    with running(make_worker(storage=make_storage(backend_settings))):
        received = smtp_server.wait_for(2)
    reply = _the_reply(received)
    assert reply.get_content_type() == "multipart/mixed"
    body, *files = reply.iter_parts()
    assert body.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in body.iter_parts()] == ["text/plain", "text/html"]
    assert "Here is what we found." in _text(reply)
    # The files' own bytes (sha256 equal), names (RFC 2231 for the non-ASCII one), types.
    assert [(n, t, hashlib.sha256(d).hexdigest()) for n, t, _, d in _parts(reply)] == [
        (name, kind, hashlib.sha256(data).hexdigest()) for name, kind, data in FILES
    ]
    assert [p["Content-Transfer-Encoding"] for p in files] == ["base64", "base64"]
    assert _parts(reply)[1][2] == "utf-8"  # text as the desk checked it: UTF-8
    [raw] = [r.raw for r in received if "Re:" in r.header("Subject")]
    assert b"filename*0*=utf-8''Rechnung%20M%C3%A4rz" in raw
    # No link to the files in the text: they are in the email.
    assert "/api/attachments/" not in _text(reply)
    assert list(outbox_statuses(db).values()) == ["SENT", "SENT"]


def test_files_past_the_limit_go_as_links_that_download_the_same_bytes(
    backend_settings, db, make_staff, make_worker, smtp_server
):
    limit = len(PDF) + len(LOG) - 1  # one byte short of both together
    settings = backend_settings.replace(email_attachment_max_bytes=limit)
    services = _services(settings, db)
    staff = make_staff("ADMIN")
    ticket = _ticket(services)
    _reply(services, staff, ticket)
    with running(make_worker(storage=make_storage(settings))):
        received = smtp_server.wait_for(2)
    reply = _the_reply(received)
    assert reply.get_content_type() == "multipart/alternative"
    assert _parts(reply) == []
    text = _text(reply)
    html = reply.get_body(("html",)).get_content()
    links = [line.split(": ", 1)[1] for line in text.splitlines() if "/api/attachments/" in line]
    assert len(links) == 2
    api = webtest.TestApp(shared_app(settings, db))
    for link, (name, _, data) in zip(links, FILES, strict=True):
        assert link.replace("&", "&amp;") in html
        url = urlsplit(link)
        resp = api.get(f"{url.path}?{url.query}", status=[200, 302])
        if resp.status_int == 302:  # S3: a presigned URL
            with urllib.request.urlopen(resp.headers["Location"], timeout=5) as stored:
                assert stored.read() == data
        else:
            assert resp.body == data
        assert name in text


def test_a_file_exactly_at_the_limit_is_attached(
    settings, db, make_staff, make_worker, smtp_server
):
    settings = settings.replace(email_attachment_max_bytes=len(PDF) + len(LOG))
    services = _services(settings, db)
    ticket = _ticket(services)
    _reply(services, make_staff("ADMIN"), ticket)
    with running(make_worker(storage=make_storage(settings))):
        received = smtp_server.wait_for(2)
    assert [d for *_, d in _parts(_the_reply(received))] == [PDF, LOG]


def test_a_file_gone_from_storage_is_never_sent_and_the_row_says_which(
    settings, db, make_staff, make_worker, smtp_server
):
    """A file gone (erased, a lost disk) at send time: no email without it, no corrupt
    one; the row is DEAD with an error naming the file, for an admin to retry once the
    file is back."""
    services = _services(settings, db)
    storage = make_storage(settings)
    ticket = _ticket(services)
    _reply(services, make_staff("ADMIN"), ticket)
    with db.transaction() as conn:
        [(key, attachment_id)] = conn.execute(
            "SELECT storage_key, id FROM attachments WHERE filename = 'printer.log'"
        ).fetchall()
    storage.delete(key)
    with running(make_worker(storage=storage)):
        wait_until(lambda: "DEAD" in outbox_statuses(db).values(), message="the reply DEAD")
    assert [r.header("Subject") for r in smtp_server.received] == [
        f"[#{ticket['pid']}] We received your request: The printer jams"
    ]
    with db.transaction() as conn:
        [error] = conn.execute(
            "SELECT last_error FROM email_outbox WHERE kind = 'REPLY'"
        ).fetchone()
    assert error == (
        f"attachment {attachment_id} ('printer.log') is missing from the file storage: not sent"
    )


def test_a_file_changed_in_storage_is_never_sent(
    settings, db, make_staff, make_worker, smtp_server
):
    services = _services(settings, db)
    storage = make_storage(settings)
    ticket = _ticket(services)
    _reply(services, make_staff("ADMIN"), ticket)
    with db.transaction() as conn:
        [key] = conn.execute(
            "SELECT storage_key FROM attachments WHERE filename = 'printer.log'"
        ).fetchone()
    storage.put(key, io.BytesIO(LOG[:-1] + b"!"), "text/plain")  # same size, other bytes
    with running(make_worker(storage=storage)):
        wait_until(lambda: "DEAD" in outbox_statuses(db).values(), message="the reply DEAD")
    assert len(smtp_server.received) == 1  # the acknowledgement only
    with db.transaction() as conn:
        [error] = conn.execute(
            "SELECT last_error FROM email_outbox WHERE kind = 'REPLY'"
        ).fetchone()
    assert "is not the file that was stored" in error


def test_a_resend_is_the_same_bytes(settings, db, make_staff, make_worker, smtp_server):
    """Dropped after DATA (the server may have it), sent again: the very same message,
    files, Message-ID, Date and MIME boundaries, so a duplicate is recognisable."""
    services = _services(settings, db)
    ticket = _ticket(services)
    with running(make_worker(storage=make_storage(settings))):
        smtp_server.wait_for(1)  # the acknowledgement first
        smtp_server.handler.next("drop")
        _reply(services, make_staff("ADMIN"), ticket)
        smtp_server.wait_for(2)
    first, second = [r for r in smtp_server.received if "Re:" in r.header("Subject")]
    assert first.answer == "dropped"
    assert second.accepted
    assert first.raw == second.raw
    assert b'boundary="=_sd_' in first.raw


def test_a_mailbox_tickets_reply_with_files_goes_from_the_mailbox(
    settings, db, make_staff, make_worker, smtp_server
):
    services = _services(settings, db)
    with db.transaction() as conn:
        mailbox = insert_mailbox(
            conn, auth="PASSWORD", address="help@acme.example", username="help@acme.example"
        )
    ticket = _ticket(services, mailbox_id=mailbox["id"])
    _reply(services, make_staff("ADMIN"), ticket)
    with running(make_worker(storage=make_storage(settings))):
        received = smtp_server.wait_for(2)
    [reply] = [r for r in received if "Re:" in r.header("Subject")]
    assert reply.header("From") == "Acme Support <help@acme.example>"
    assert reply.mail_from == "help@acme.example"
    assert [d for *_, d in _parts(reply.message)] == [PDF, LOG]


# --- the quoted history ---------------------------------------------------------------------


def test_a_reply_quotes_the_previous_public_message_in_text_and_html(
    settings, db, make_staff, make_worker, smtp_server
):
    services = _services(settings, db)
    staff = make_staff("ADMIN", name="Ana Admin")
    ticket = _ticket(services)
    with db.transaction() as conn:
        make_message(
            conn,
            ticket["id"],
            author_email="cleo@example.org",
            body="Still jams.\n\n<b>Tray 2</b> & <script>alert(1)</script>\nSee you",
        )
    services.messages.post(
        staff, ticket["pid"], NewMessage("A note", visibility="INTERNAL"), channel="API"
    )
    _reply(services, staff, ticket, files=())
    with running(make_worker()):
        received = smtp_server.wait_for(2)
    reply = _the_reply(received)
    text = _text(reply)
    html = reply.get_body(("html",)).get_content().replace("\r\n", "\n")
    assert text.startswith("Here is what we found.")
    intro = text.split("\n\nOn ", 1)[1].splitlines()[0]
    assert intro.endswith(" UTC, Cleo Customer wrote:")
    assert text.rstrip().endswith(
        "> Still jams.\n>\n> <b>Tray 2</b> & <script>alert(1)</script>\n> See you"
    )
    assert "A note" not in text  # an internal note is never quoted
    quoted = html.split("<blockquote", 1)[1].split("</blockquote>", 1)[0]
    assert quoted.split(">", 1)[1] == (
        "Still jams.\n\n&lt;b&gt;Tray 2&lt;/b&gt; &amp; &lt;script&gt;alert(1)&lt;/script&gt;"
        "\nSee you"
    )
    assert "<script>" not in html
    assert "Cleo Customer wrote:</p>" in html


def test_a_second_reply_quotes_the_first_one(settings, db, make_staff, make_worker, smtp_server):
    services = _services(settings, db)
    staff = make_staff("ADMIN", name="Ana <Admin>")
    ticket = _ticket(services)
    _reply(services, staff, ticket, body="First answer.", files=())
    _reply(services, staff, ticket, body="Second answer.", files=())
    with running(make_worker()):
        received = smtp_server.wait_for(3)
    first, second = [r.message for r in received if "Re:" in r.header("Subject")]
    # The first quotes the customer's opening message; the second, the first reply.
    assert "Customer wrote:\n> Tray 2 jams on every page." in _text(first)
    text = _text(second)
    assert "UTC, Ana <Admin> wrote:\n> First answer." in text
    assert "Ana &lt;Admin&gt; wrote:" in second.get_body(("html",)).get_content()


def test_quote_history_off_quotes_nothing(settings, db, make_staff, make_worker, smtp_server):
    services = _services(settings.replace(quote_history=False), db)
    ticket = _ticket(services)
    _reply(services, make_staff("ADMIN"), ticket, files=())
    with running(make_worker()):
        received = smtp_server.wait_for(2)
    reply = _the_reply(received)
    assert "wrote:" not in _text(reply)
    assert "Tray 2 jams" not in _text(reply)
    assert "<blockquote" not in reply.get_body(("html",)).get_content()


def test_supportdesk_worker_reads_the_files_from_s3(
    s3_settings, db, make_staff, worker_process, smtp_server
):
    """The `supportdesk worker` process itself, configured for S3 by its environment."""
    services = _services(s3_settings, db)
    ticket = _ticket(services)
    _reply(services, make_staff("ADMIN"), ticket)
    proc = worker_process(
        "s3",
        STORAGE_BACKEND="s3",
        S3_BUCKET=s3_settings.s3_bucket,
        S3_ENDPOINT_URL=s3_settings.s3_endpoint_url,
        S3_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
    )
    received = smtp_server.wait_for(2, timeout=30)
    assert [d for *_, d in _parts(_the_reply(received))] == [PDF, LOG]
    assert proc.poll() is None


def test_a_saved_replys_file_reaches_the_customer_and_the_cc_as_any_attachment(
    backend_settings, db, make_staff, make_worker, smtp_server
):
    """Issue 24: a reply sent with a saved reply's file is one email, To the requester and
    Cc the participant, carrying the file's own bytes; the saved reply deleted before the
    send takes nothing from it (the ticket has its own copy)."""
    services = _services(backend_settings, db)
    staff = make_staff("ADMIN", name="Ana Admin")
    ticket = _ticket(services)
    saved = services.saved_replies.create(staff, {"title": "Invoice", "body": "Attached."})
    services.saved_reply_files.add(staff, saved["id"], _uploads(FILES[:1]))
    [file] = services.saved_replies.get(staff, saved["id"])["files"]
    services.messages.post(
        staff,
        ticket["pid"],
        NewMessage(
            "Your invoice is attached.", cc=("dana@example.net",), saved_reply_files=(file["id"],)
        ),
        channel="API",
    )
    services.saved_replies.delete(staff, saved["id"])
    with running(make_worker(storage=make_storage(backend_settings))):
        received = smtp_server.wait_for(2)
    [sent] = [r for r in received if "Re:" in r.header("Subject")]
    assert sorted(sent.rcpt_tos) == ["cleo@example.org", "dana@example.net"]
    assert sent.message["Cc"] == "dana@example.net"
    name, kind, data = FILES[0]
    assert [(n, t, d) for n, t, _, d in _parts(sent.message)] == [(name, kind, data)]
    assert "Your invoice is attached." in _text(sent.message)
