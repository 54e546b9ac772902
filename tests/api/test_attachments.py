"""Attachments through the API, on both storage backends: accepted, refused, downloaded."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import io
import socket
import threading
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import webtest

from supportdesk.core.redis_client import make_redis
from supportdesk.dev.embedded import free_port
from supportdesk.files import storage as storage_module
from supportdesk.files.storage import make_storage
from supportdesk.web.app import create_app
from supportdesk.web.server import REQUEST_TIMEOUT_SECONDS
from tests import images
from tests.conftest import shared_app
from tests.factories import make_ticket


def _png() -> bytes:
    """A real 1x1 PNG (a browser draws it: the thumbnail test checks its width)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


PNG = _png()
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"
TEXT = b"Printer log\njam in tray 2 at 09:14\n"
ELF = b"\x7fELF\x02\x01\x01" + b"\x00" * 64
HTML = b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
NEW_TICKET = {
    "name": "Cleo Customer",
    "email": "cleo@example.org",
    "subject": "Printer jams",
    "body": "See the attached log.",
}


def zip_bomb() -> bytes:
    """20 MB of zeros in a zip of about 20 KB."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.bin", b"\x00" * 20_000_000)
    return buffer.getvalue()


@pytest.fixture(params=["local", "s3"])
def backend_settings(request, settings):
    """The same tests on local disk and on a real S3-protocol server."""
    return request.getfixturevalue("s3_settings") if request.param == "s3" else settings


@pytest.fixture
def api(backend_settings, db, redis_client) -> webtest.TestApp:
    return webtest.TestApp(shared_app(backend_settings, db))


@pytest.fixture
def storage(backend_settings):
    return make_storage(backend_settings)


def _rows(db) -> list[dict]:
    with db.transaction() as conn:
        cur = conn.execute("SELECT * FROM attachments ORDER BY id")
        return [dict(zip([c.name for c in cur.description], r, strict=True)) for r in cur]


def _open(api, files, status=201, **fields):
    return api.post(
        "/api/tickets",
        NEW_TICKET | fields,
        upload_files=[("attachments", name, content) for name, content in files],
        status=status,
    )


def test_a_ticket_with_files_stores_them_under_generated_keys(api, db, storage, bearer, make_staff):
    pid = _open(api, [("jam.png", PNG), ("invoice.pdf", PDF)]).json["ticket"]["pid"]
    rows = _rows(db)
    assert [(r["filename"], r["content_type"], r["size_bytes"]) for r in rows] == [
        ("jam.png", "image/png", len(PNG)),
        ("invoice.pdf", "application/pdf", len(PDF)),
    ]
    for row, content in zip(rows, (PNG, PDF), strict=True):
        assert row["sha256"] == hashlib.sha256(content).hexdigest()
        assert row["storage_key"].startswith(f"tickets/{row['ticket_id']}/")
        assert "jam" not in row["storage_key"]
        assert "invoice" not in row["storage_key"]
        assert b"".join(storage.read(row["storage_key"])) == content
    with db.transaction() as conn:
        events = conn.execute(
            "SELECT type::text, data->>'filename' FROM ticket_events ORDER BY id"
        ).fetchall()
    assert events == [
        ("CREATED", None),
        ("ATTACHMENT_ADDED", "jam.png"),
        ("ATTACHMENT_ADDED", "invoice.pdf"),
    ]
    timeline = api.get(f"/api/tickets/{pid}/events", headers=bearer(make_staff("ADMIN"))).json
    assert [e["summary"] for e in timeline["items"]][1:] == [
        "The customer attached jam.png",
        "The customer attached invoice.pdf",
    ]
    admin = make_staff("ADMIN")
    thread = api.get(f"/api/tickets/{pid}/messages", headers=bearer(admin)).json["items"]
    assert [a["filename"] for a in thread[0]["attachments"]] == ["jam.png", "invoice.pdf"]
    assert thread[0]["attachments"][0]["url"] == f"/api/attachments/{rows[0]['id']}"


def _download(api, url, headers=None, status=200):
    """Follows the storage's redirect (S3) like a browser would; returns (headers with
    lower-case names, bytes)."""
    resp = api.get(url, headers=headers or {}, status=[status, 302])
    if resp.status_int == 302:
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        with urllib.request.urlopen(resp.headers["Location"], timeout=5) as stored:
            return {k.lower(): v for k, v in stored.headers.items()}, stored.read()
    return {k.lower(): v for k, v in resp.headers.items()}, resp.body


def test_staff_download_is_an_attachment_with_the_stored_type(api, db, bearer, make_staff):
    _open(api, [("../../etc/passwd", TEXT)])
    [row] = _rows(db)
    assert row["filename"] == "passwd"  # shown sanitised; stored under a generated key
    admin = make_staff("ADMIN")
    headers, body = _download(api, f"/api/attachments/{row['id']}", bearer(admin))
    assert body == TEXT
    assert headers["content-type"].startswith("text/plain")
    assert headers["content-disposition"] == (
        "attachment; filename=\"passwd\"; filename*=UTF-8''passwd"
    )
    resp = api.get(f"/api/attachments/{row['id']}", headers=bearer(admin), status=[200, 302])
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    ("files", "status", "message"),
    [
        ([("setup.exe", PNG)], 415, "setup.exe: Its content is image/png"),
        ([("cat.png", HTML)], 415, "cat.png: This type of file is not accepted."),
        ([("logo.svg", SVG)], 415, "logo.svg: This type of file is not accepted."),
        ([("logo.png", SVG)], 415, "logo.png: This type of file is not accepted."),
        ([("report.pdf", ELF)], 415, "report.pdf: This type of file is not accepted."),
        ([("notes.txt", b"")], 422, "notes.txt is empty."),
        ([("big.txt", b"a" * (10 * 1024 * 1024 + 1))], 413, "big.txt is larger than 10 MiB."),
        ([(f"log{i}.txt", TEXT) for i in range(6)], 413, "Attach at most 5 files"),
    ],
    ids=[
        "png-as-exe",
        "html-as-png",
        "svg",
        "svg-as-png",
        "elf-as-pdf",
        "empty",
        "10MiB+1",
        "sixth-file",
    ],
)
def test_refused_files_store_nothing(api, db, storage, files, status, message):
    resp = _open(api, files, status=status)
    assert resp.json["error"]["details"]["attachments"].startswith(message)
    with db.transaction() as conn:
        assert conn.execute("SELECT count(*) FROM tickets").fetchone() == (0,)
    assert _rows(db) == []


def _nothing_stored(db, settings) -> None:
    with db.transaction() as conn:
        assert conn.execute("SELECT count(*) FROM tickets").fetchone() == (0,)
    assert _rows(db) == []
    assert [p for p in settings.upload_dir.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("bomb.png", images.png(65535, 65535)),
        ("bomb.jpg", images.jpeg_claiming(65535, 65535)),
        ("bomb.gif", images.gif((65535, 65535), (1, 1))),
        ("frame.gif", images.gif((1, 1), (65535, 65535))),
        ("bomb.webp", images.webp_claiming(16384, 16384)),
        ("just-over.png", images.png(10_000, 5_001)),
    ],
    ids=["png", "jpeg", "gif-screen", "gif-first-frame", "webp", "50MP-and-a-row"],
)
def test_an_image_of_too_many_pixels_is_refused_and_stores_nothing(
    client, db, settings, name, content
):
    """Issue 18: a few hundred bytes saying 65535 x 65535 would be drawn as a thumbnail,
    gigabytes for the staff member's browser. Refused by what its headers say."""
    resp = _open(client, [("log.txt", TEXT), (name, content)], status=422)
    assert resp.json["error"]["code"] == "validation_error"
    assert resp.json["error"]["details"]["attachments"].startswith(f"{name} is ")
    _nothing_stored(db, settings)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("cut.png", images.png(1, 1)[:20]),
        ("cut.jpg", images.JPG_16[: images.JPG_16.index(b"\xff\xc0")]),
        ("cut.gif", images.GIF_16[:10]),
        ("cut-frame.gif", images.gif((1, 1), (1, 1))[:-4]),
        ("odd.webp", images.WEBP_16[:12] + b"VP9 " + images.WEBP_16[16:]),
    ],
    ids=["png", "jpeg", "gif-screen", "gif-frame", "webp"],
)
def test_an_image_whose_size_cannot_be_read_is_refused(client, db, settings, name, content):
    """No browser would draw it either; refusing keeps every stored image's size known."""
    resp = _open(client, [(name, content)], status=415)
    assert resp.json["error"]["code"] == "unsupported_media_type"
    assert "attachments" in resp.json["error"]["details"]
    _nothing_stored(db, settings)


@pytest.mark.parametrize(
    ("name", "content", "content_type"),
    [
        ("python.jpg", images.JPG_16, "image/jpeg"),
        ("python.gif", images.GIF_16, "image/gif"),
        ("python.webp", images.WEBP_16, "image/webp"),
        ("lossless.webp", images.WEBP_LOSSLESS_1, "image/webp"),
        ("lossy.webp", images.WEBP_LOSSY_1, "image/webp"),
        ("dot.gif", images.gif((1, 1), (1, 1)), "image/gif"),
        ("wide.png", images.png(7071, 7071), "image/png"),  # 49,999,041 pixels
    ],
)
def test_real_images_within_the_cap_are_kept(client, db, name, content, content_type):
    _open(client, [(name, content)])
    [row] = _rows(db)
    assert (row["filename"], row["content_type"], row["size_bytes"]) == (
        name,
        content_type,
        len(content),
    )


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("page.html", HTML),
        ("notes.html", TEXT),
        ("notes.htm", TEXT),
        ("NOTES.HTM", TEXT),
        ("table.html", b"a,b\n1,2\n"),
        ("invoice.pdf.html", PDF),
        ("picture.html", images.png(1, 1)),
    ],
)
def test_a_file_named_html_is_refused_whatever_it_holds(client, db, settings, name, content):
    """Downloaded and opened, a browser shows a file named .html as a page: refused by its
    name, before its content is looked at (and an allow-list that ever took HTML would stop
    at import: uploads.NEVER_TYPES)."""
    resp = _open(client, [("log.txt", TEXT), (name, content)], status=415)
    assert resp.json["error"]["code"] == "unsupported_media_type"
    assert "attachments" in resp.json["error"]["details"]
    _nothing_stored(db, settings)


def test_a_declared_type_that_contradicts_the_content_is_refused(api, db):
    resp = api.post(
        "/api/tickets",
        NEW_TICKET,
        upload_files=[("attachments", "chart.png", PNG, "application/pdf")],
        status=415,
    )
    assert "not application/pdf" in resp.json["error"]["message"]


def test_a_zip_bomb_is_kept_as_it_is_never_unpacked(api, db, storage):
    bomb = zip_bomb()
    _open(api, [("logs.zip", bomb)])
    [row] = _rows(db)
    assert (row["content_type"], row["size_bytes"]) == ("application/zip", len(bomb))
    assert b"".join(storage.read(row["storage_key"])) == bomb


def test_files_of_a_failed_transaction_are_deleted(api, db, conn, storage, backend_settings):
    """The files are stored before the transaction; when it fails, they go again."""
    conn.execute(
        "CREATE FUNCTION refuse_attachment() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'attachments refused for this test'; END; $$"
    )
    conn.execute(
        "CREATE TRIGGER refuse_attachment BEFORE INSERT ON attachments "
        "FOR EACH ROW EXECUTE FUNCTION refuse_attachment()"
    )
    try:
        resp = _open(api, [("jam.png", PNG), ("log.txt", TEXT)], status=500)
    finally:
        conn.execute("DROP TRIGGER refuse_attachment ON attachments")
        conn.execute("DROP FUNCTION refuse_attachment()")
    assert resp.json["error"]["code"] == "internal_error"
    assert _stored_keys(backend_settings) == []


def _stored_keys(settings) -> list[str]:
    if settings.storage_backend == "local":
        root = settings.upload_dir
        return [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()]
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    return [o["Key"] for o in client.list_objects_v2(Bucket=settings.s3_bucket).get("Contents", [])]


@pytest.fixture
def links_api(backend_settings, db, redis_client) -> webtest.TestApp:
    """The API of a desk whose replies' files go as links (EMAIL_ATTACHMENT_MAX_BYTES=0),
    as those of any reply whose files are too large together to be attached."""
    settings = backend_settings.replace(email_attachment_max_bytes=0)
    return webtest.TestApp(shared_app(settings, db))


def test_a_reply_with_a_file_links_it_in_the_customers_email(links_api, db, bearer, make_staff):
    api = links_api
    admin = make_staff("ADMIN")
    with db.transaction() as conn:
        ticket = make_ticket(conn, requester_email="cleo@example.org")
    resp = api.post(
        f"/api/tickets/{ticket['pid']}/messages",
        {"body": "Here is the fixed driver.", "last_seen_message_id": "0"},
        upload_files=[("attachments", "driver-notes.txt", TEXT)],
        headers=bearer(admin),
    )
    [attachment] = resp.json["message"]["attachments"]
    with db.transaction() as conn:
        body = conn.execute("SELECT body_text FROM email_outbox").fetchone()[0]
    link = next(line.split(": ", 1)[1] for line in body.splitlines() if "driver-notes" in line)
    assert f"/api/attachments/{attachment['id']}?expires=" in link
    # The customer's link works without a login, and not with its signature changed.
    url = urlsplit(link)
    path = f"{url.path}?{url.query}"
    assert _download(api, path)[1] == TEXT
    api.get(path[:-3] + ("000" if not path.endswith("000") else "111"), status=404)


def test_a_signed_link_expires(backend_settings, db, redis_client, bearer, make_staff):
    start = datetime.now(UTC)
    now = {"value": start}
    app = create_app(
        backend_settings.replace(email_attachment_max_bytes=0),  # files as links
        db=db,
        redis_client=make_redis(backend_settings),
        clock=lambda: now["value"],
    )
    api = webtest.TestApp(app)
    admin = make_staff("ADMIN")
    with db.transaction() as conn:
        ticket = make_ticket(conn)
    api.post(
        f"/api/tickets/{ticket['pid']}/messages",
        {"body": "Attached."},
        upload_files=[("attachments", "a.txt", TEXT)],
        headers=bearer(admin),
    )
    with db.transaction() as conn:
        body = conn.execute("SELECT body_text FROM email_outbox").fetchone()[0]
    url = urlsplit(next(w for w in body.split() if "/api/attachments/" in w))
    path = f"{url.path}?{url.query}"
    expires = int(parse_qs(url.query)["expires"][0])
    assert expires - start.timestamp() == pytest.approx(30 * 86400, abs=5)
    assert _download(api, path)[1] == TEXT
    now["value"] = start + timedelta(days=30, minutes=1)
    assert "expired" in api.get(path, status=404).json["error"]["message"]


def test_an_agent_not_assigned_gets_404_and_nobody_gets_401(api, db, bearer, make_staff):
    mine, other = make_staff("AGENT"), make_staff("AGENT")
    _open(api, [("jam.png", PNG)])
    [row] = _rows(db)
    with db.transaction() as conn:
        conn.execute("UPDATE tickets SET assigned_to = %s", (mine["id"],))
    url = f"/api/attachments/{row['id']}"
    api.get(url, headers=bearer(other), status=404)
    api.get(url, status=401)
    assert _download(api, url, bearer(mine))[1] == PNG
    api.get("/api/attachments/999999", headers=bearer(mine), status=404)


def test_an_image_may_be_shown_inline_and_anything_else_not(api, db, bearer, make_staff):
    admin = make_staff("ADMIN")
    _open(api, [("jam.png", PNG), ("log.txt", TEXT)])
    png, text = _rows(db)
    shown = api.get(
        f"/api/attachments/{png['id']}?inline=1", headers=bearer(admin), status=[200, 302]
    )
    assert shown.headers["Content-Disposition"].startswith("inline;")
    forced = api.get(
        f"/api/attachments/{text['id']}?inline=1", headers=bearer(admin), status=[200, 302]
    )
    assert forced.headers["Content-Disposition"].startswith("attachment;")


def test_routes_without_files_keep_a_small_body_limit(api):
    big = {"email": "x@example.org", "password": "p" * (70 * 1024)}
    resp = api.post_json("/api/auth/login", big, status=413)
    assert resp.json["error"]["code"] == "payload_too_large"
    # The routes that take files take a long message too.
    body = "word " * 20_000  # 100,000 bytes of JSON
    api.post_json("/api/tickets", NEW_TICKET | {"body": body[:50_000]}, status=201)


def test_the_s3_backend_answers_with_a_short_lived_redirect(
    s3_settings, db, redis_client, bearer, make_staff
):
    api = webtest.TestApp(shared_app(s3_settings, db))
    admin = make_staff("ADMIN")
    _open(api, [("jam.png", PNG)])
    [row] = _rows(db)
    assert row["url"] == f"s3://{s3_settings.s3_bucket}/{row['storage_key']}"
    resp = api.get(f"/api/attachments/{row['id']}", headers=bearer(admin), status=302)
    location = urlsplit(resp.headers["Location"])
    query = parse_qs(location.query)
    assert location.path == f"/{s3_settings.s3_bucket}/{row['storage_key']}"  # path-style
    assert query["X-Amz-Expires"] == ["300"]
    assert query["response-content-disposition"][0].startswith('attachment; filename="jam.png"')
    with urllib.request.urlopen(resp.headers["Location"], timeout=5) as stored:
        assert stored.read() == PNG
        assert stored.headers["Content-Type"] == "image/png"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"--x\r\nnonsense", "multipart/form-data; boundary=x"),
        (
            b'--x\r\nContent-Disposition: form-data; name="body"\r\n\r\ncut off',
            "multipart/form-data; boundary=x",
        ),
        (b"anything", "multipart/form-data"),
        (b"\xff\xfe" * 100, "multipart/form-data; boundary=\xe2\x98\x83"),
    ],
    ids=["garbage", "truncated", "no-boundary", "odd-boundary"],
)
def test_a_broken_multipart_body_is_a_4xx_envelope(api, db, body, content_type):
    resp = api.request(
        "/api/tickets", method="POST", body=body, content_type=content_type, status="4*"
    )
    assert resp.json["error"]["code"] in ("bad_request", "validation_error")
    assert _rows(db) == []


@pytest.mark.parametrize(
    "content",
    [
        b"<!-- x --><html><body><img src=x onerror=alert(1)>",
        b"\xef\xbb\xbf<html><body onload=alert(1)>",
        b"<body onload=alert(1)>",
        b"<img src=x onerror=alert(1)>",
        b"hello <svg/onload=alert(1)>",
        b"x" * 1100 + b"<script>alert(1)</script>",
        b"log line\n" * 20_000 + b"<script>alert(1)</script>",  # past the first bytes
        b"caf\xe9 au lait\n" * 10,  # not UTF-8
    ],
    ids=["comment-first", "bom", "body", "img", "svg-inline", "padded", "far", "latin-1"],
)
def test_text_with_markup_anywhere_is_refused(api, db, content):
    resp = _open(api, [("notes.txt", content)], status=415)
    assert resp.json["error"]["details"]["attachments"].startswith("notes.txt:")
    assert _rows(db) == []


def test_a_nameless_file_part_has_the_same_limits(api, db):
    """A file part with an empty name is a file input left empty only when it is empty."""
    resp = api.post(
        "/api/tickets",
        NEW_TICKET,
        upload_files=[("attachments", "", b"a" * (10 * 1024 * 1024 + 1))],
        status=413,
    )
    assert resp.json["error"]["code"] == "payload_too_large"
    api.post("/api/tickets", NEW_TICKET, upload_files=[("attachments", "", b"")], status=201)
    assert _rows(db) == []


def test_undecodable_part_headers_are_a_400(api, db):
    body = (
        b'--x\r\nContent-Disposition: form-data; name="attachments"; filename="caf\xe9.txt"'
        b"\r\nContent-Type: text/pl\xe9in\r\n\r\nhello\r\n--x--\r\n"
    )
    resp = api.request(
        "/api/tickets",
        method="POST",
        body=body,
        content_type="multipart/form-data; boundary=x",
        status=400,
    )
    assert resp.json["error"]["code"] == "bad_request"


def test_the_api_ignores_a_csrf_field_in_a_multipart_body(api, db):
    api.post(
        "/api/tickets",
        NEW_TICKET | {"csrf_token": "whatever"},
        upload_files=[("attachments", "a.txt", TEXT)],
        status=201,
    )


def test_a_file_gone_from_storage_is_a_404_not_a_broken_response(
    settings, db, redis_client, bearer, make_staff
):
    api = webtest.TestApp(shared_app(settings, db))
    _open(api, [("a.txt", TEXT)])
    [row] = _rows(db)
    (settings.upload_dir / row["storage_key"]).unlink()
    resp = api.get(f"/api/attachments/{row['id']}", headers=bearer(make_staff("ADMIN")), status=404)
    assert resp.json["error"]["message"] == "This file is no longer available."


def test_a_body_of_unannounced_length_is_refused_before_it_is_read(live_server):
    import http.client

    host, port = live_server.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.putrequest("POST", "/api/tickets")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.putheader("Content-Type", "multipart/form-data; boundary=x")
    conn.endheaders()
    conn.send(b"5\r\n--x\r\n\r\n0\r\n\r\n")
    resp = conn.getresponse()
    assert resp.status == 411
    assert b'"code": "length_required"' in resp.read()


# --- S3 down -----------------------------------------------------------------------------


@pytest.fixture
def stalled_endpoint() -> Iterator[str]:
    """An address that accepts connections and never answers (a hung S3)."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                accepted.append(listener.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()
    for sock in accepted:
        sock.close()


@pytest.mark.parametrize("endpoint", ["refusing", "stalled"])
def test_a_file_for_an_unreachable_s3_gets_a_503_and_writes_nothing(
    endpoint, s3_settings, db, redis_client, request, monkeypatch
):
    if endpoint == "stalled":
        url = request.getfixturevalue("stalled_endpoint")
        monkeypatch.setattr(storage_module, "S3_READ_TIMEOUT", 1)  # not 6 s, for the test's sake
    else:
        url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    down = s3_settings.replace(s3_endpoint_url=url)
    api = webtest.TestApp(shared_app(down, db))
    resp = _open(api, [("jam.png", PNG)], status=503)
    assert resp.json["error"]["code"] == "service_unavailable"
    assert resp.json["error"]["request_id"]
    with db.transaction() as conn:
        assert conn.execute("SELECT count(*) FROM tickets").fetchone() == (0,)
    assert _rows(db) == []
    # Without files, S3 is not needed: the ticket is opened.
    api.post_json("/api/tickets", NEW_TICKET, status=201)


def test_storing_ends_before_the_web_server_cuts_the_request(s3_settings):
    """A hung or slow bucket must cost the user a 503, not a worker restarted under their
    request. After the storing deadline no S3 request starts and no back-off is waited out
    (the tests below); what may still run is the attempt under way: its connection (for
    each of two addresses), its TLS handshake (under the connect timeout) and its answer."""
    config = make_storage(s3_settings).client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (
        storage_module.S3_CONNECT_TIMEOUT,
        storage_module.S3_READ_TIMEOUT,
    )
    after_deadline = 2 * config.connect_timeout + config.connect_timeout + config.read_timeout
    worst = storage_module.STORING_DEADLINE_SECONDS + after_deadline
    assert worst + 2 <= REQUEST_TIMEOUT_SECONDS


class SlowDown(http.server.ThreadingHTTPServer):
    """A bucket that answers every request after 0.5 s with a throttled 503 (S3's SlowDown),
    asking to be tried again in 5 s; it counts the requests."""

    def __init__(self) -> None:
        self.requests = 0
        super().__init__(("127.0.0.1", 0), self.Answer)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()

    class Answer(http.server.BaseHTTPRequestHandler):
        def do_DELETE(self) -> None:
            self.server.requests += 1  # type: ignore[attr-defined]
            time.sleep(0.5)
            body = b"<Error><Code>SlowDown</Code><Message>Reduce your rate.</Message></Error>"
            self.send_response(503)
            self.send_header("x-amz-retry-after", "5000")
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass


@pytest.fixture
def slow_down() -> Iterator[SlowDown]:
    server = SlowDown()
    yield server
    server.shutdown()
    server.server_close()


@contextlib.contextmanager
def _deadline_in(monkeypatch, seconds: float) -> Iterator[None]:
    """A web request's storage deadline, `seconds` from now."""
    monkeypatch.setattr(storage_module, "STORING_DEADLINE_SECONDS", seconds)
    token = storage_module.start_deadline()
    try:
        yield
    finally:
        storage_module.end_deadline(token)


def test_after_the_deadline_no_s3_request_starts(s3_settings, slow_down, monkeypatch):
    bucket = make_storage(s3_settings.replace(s3_endpoint_url=slow_down.url))
    with _deadline_in(monkeypatch, -1), pytest.raises(storage_module.StorageUnavailable):
        bucket.delete("tickets/1/left")
    assert slow_down.requests == 0


def test_a_throttled_answer_after_the_deadline_is_not_retried(s3_settings, slow_down, monkeypatch):
    """The deadline passes while the bucket takes 0.5 s to say SlowDown: botocore would wait
    5 s, as asked, then retry; it gives up at once instead."""
    bucket = make_storage(s3_settings.replace(s3_endpoint_url=slow_down.url))
    started = time.monotonic()
    with _deadline_in(monkeypatch, 0.2), pytest.raises(storage_module.StorageUnavailable):
        bucket.delete("tickets/1/left")
    assert time.monotonic() - started < 2
    assert slow_down.requests == 1


def test_a_file_is_read_in_pieces_of_one_socket_write_against_the_deadline(monkeypatch):
    content = bytes(range(256)) * 400
    source = io.BytesIO(content)
    assert storage_module.within_deadline(source) is source  # outside a web request
    with _deadline_in(monkeypatch, 60):
        timed = storage_module.within_deadline(source)
        assert len(timed.read(1024 * 1024)) == storage_module.READ_PIECE
        timed.seek(0)  # all else is the file's own
        assert b"".join(iter(lambda: timed.read(1024 * 1024), b"")) == content
        assert not hasattr(timed, "readinto")  # read() is the only way to the bytes
    with _deadline_in(monkeypatch, -1), pytest.raises(storage_module.StorageUnavailable):
        storage_module.within_deadline(source).read(10)


def test_files_not_stored_by_the_deadline_get_a_503_and_the_log_names_them(
    api, db, storage, monkeypatch, caplog
):
    monkeypatch.setattr(storage_module, "STORING_DEADLINE_SECONDS", -1)  # passed at once
    resp = _open(api, [("jam.png", PNG)], status=503)
    assert resp.json["error"]["code"] == "service_unavailable"
    with db.transaction() as conn:
        assert conn.execute("SELECT count(*) FROM tickets").fetchone() == (0,)
    assert _rows(db) == []
    [left] = [r for r in caplog.records if "left without rows" in r.getMessage()]
    [key] = left.getMessage().rsplit(": ", 1)[1].split(", ")
    assert key.startswith("tickets/")
    assert not storage.exists(key)  # the first read failed: nothing was written
    # Without files, storage is not needed: the ticket is opened.
    api.post_json("/api/tickets", NEW_TICKET, status=201)


class Trickle:
    """An address that takes what it is sent slowly but steadily (1 KiB every 20 ms, which
    no timeout between bytes catches) and never answers; it gives up after 15 s."""

    def __init__(self) -> None:
        self.received = 0
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.until = time.monotonic() + 15
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn = self.listener.accept()[0]
                threading.Thread(target=self.take, args=(conn,), daemon=True).start()

    def take(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            while time.monotonic() < self.until and (chunk := conn.recv(1024)):
                self.received += len(chunk)
                time.sleep(0.02)


@pytest.fixture
def trickling_endpoint() -> Iterator[Trickle]:
    trickle = Trickle()
    yield trickle
    trickle.listener.close()


def test_a_bucket_that_takes_a_file_slowly_is_cut_off_at_the_deadline(
    s3_settings, db, trickling_endpoint, monkeypatch
):
    monkeypatch.setattr(storage_module, "STORING_DEADLINE_SECONDS", 3)
    slow = s3_settings.replace(s3_endpoint_url=trickling_endpoint.url)
    api = webtest.TestApp(shared_app(slow, db))
    big = b"several lines of a long log file\n" * 200_000  # 6.6 MB: more than socket buffers
    started = time.monotonic()
    resp = _open(api, [("big.log.txt", big)], status=503)
    took = time.monotonic() - started
    assert resp.json["error"]["code"] == "service_unavailable"
    assert trickling_endpoint.received > 32_768  # cut off while sending the file, not before
    # 3 s, then at most one socket write, and no retry; without the deadline, sending the
    # file alone would take over a minute (the endpoint gives up after 15 s).
    assert took < 8, f"the upload ran {took:.1f} s"
    assert _rows(db) == []


def test_reading_a_missing_file_fails_at_once_not_half_way_through_a_response(storage):
    with pytest.raises(FileNotFoundError):
        storage.read("tickets/0/not-there")  # not iterated: the call itself fails
