"""A saved reply's files (DESIGN.md section 12, issue 24), on both storage backends: added
through the same upload checks as attachments, listed with the reply, downloaded, removed
(their stored bytes with them); sent with a reply, each becomes an attachment of the message
under its own key, so deleting the saved reply leaves the ticket whole; the orphan sweep
never takes them."""

from __future__ import annotations

import hashlib
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
import webtest

from supportdesk.files.storage import make_storage
from supportdesk.tickets.orphan_files import OrphanSweep
from tests.api.test_attachments import ELF, HTML, PDF, PNG, TEXT
from tests.conftest import shared_app
from tests.factories import make_ticket


@pytest.fixture(params=["local", "s3"])
def backend_settings(request, settings):
    return request.getfixturevalue("s3_settings") if request.param == "s3" else settings


@pytest.fixture
def api(backend_settings, db) -> webtest.TestApp:
    return webtest.TestApp(shared_app(backend_settings, db))


@pytest.fixture
def storage(backend_settings):
    return make_storage(backend_settings)


@pytest.fixture
def people(make_staff):
    return {
        "admin": make_staff("ADMIN", name="Ada Admin"),
        "agent": make_staff("AGENT", name="Mia Agent"),
        "other": make_staff("AGENT", name="Otto Other"),
    }


def _reply(api, headers, **fields) -> dict:
    body = {"title": "Terms", "body": "Our terms are attached."} | fields
    return api.post_json("/api/saved-replies", body, headers=headers).json["saved_reply"]


def _add(api, headers, reply_id, files, status=201):
    return api.post(
        f"/api/saved-replies/{reply_id}/files",
        upload_files=[("attachments", name, content) for name, content in files],
        headers=headers,
        status=status,
    )


def _rows(db, table="saved_reply_files") -> list[dict]:
    with db.transaction() as conn:
        cur = conn.execute(f"SELECT * FROM {table} ORDER BY id")
        return [dict(zip([c.name for c in cur.description], r, strict=True)) for r in cur]


def _downloaded(api, url, headers) -> bytes:
    resp = api.get(url, headers=headers, status=[200, 302])
    if resp.status_int == 302:  # S3: a presigned URL
        with urllib.request.urlopen(resp.headers["Location"], timeout=5) as stored:
            return stored.read()
    assert resp.headers["Content-Disposition"].startswith("attachment;")
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    return resp.body


# --- adding, listing, downloading, removing -----------------------------------------------


def test_files_are_stored_listed_and_downloaded(api, db, storage, people, bearer):
    agent = bearer(people["agent"])
    reply = _reply(api, agent)
    assert reply["files"] == []
    added = _add(api, agent, reply["id"], [("terms.pdf", PDF), ("map.png", PNG)]).json
    files = added["saved_reply"]["files"]
    assert [(f["filename"], f["content_type"], f["size"]) for f in files] == [
        ("terms.pdf", "application/pdf", len(PDF)),
        ("map.png", "image/png", len(PNG)),
    ]
    rows = _rows(db)
    for row, content in zip(rows, (PDF, PNG), strict=True):
        assert row["storage_key"].startswith(f"saved-replies/{reply['id']}/")
        assert row["sha256"] == hashlib.sha256(content).hexdigest()
        assert b"".join(storage.read(row["storage_key"])) == content
    # Listed with the reply, and downloaded with the same bytes.
    [listed] = api.get("/api/saved-replies", headers=agent).json["items"]
    assert listed["files"] == files
    assert _downloaded(api, files[0]["url"], agent) == PDF


def test_removing_a_file_removes_its_stored_bytes(api, db, storage, people, bearer):
    agent = bearer(people["agent"])
    reply = _reply(api, agent)
    files = _add(api, agent, reply["id"], [("a.pdf", PDF), ("b.txt", TEXT)]).json
    first, second = files["saved_reply"]["files"]
    [key, kept] = [r["storage_key"] for r in _rows(db)]
    api.delete(first["url"], headers=agent, status=204)
    assert not storage.exists(key)
    assert storage.exists(kept)
    [listed] = api.get("/api/saved-replies", headers=agent).json["items"]
    assert [f["id"] for f in listed["files"]] == [second["id"]]
    api.delete(first["url"], headers=agent, status=404)  # gone already
    api.get(first["url"], headers=agent, status=404)


def test_deleting_the_saved_reply_removes_its_files(api, db, storage, people, bearer):
    agent = bearer(people["agent"])
    reply = _reply(api, agent)
    _add(api, agent, reply["id"], [("a.pdf", PDF)])
    [key] = [r["storage_key"] for r in _rows(db)]
    api.delete(f"/api/saved-replies/{reply['id']}", headers=agent, status=204)
    assert _rows(db) == []
    assert not storage.exists(key)


# --- who may ------------------------------------------------------------------------------


def test_shared_files_are_added_by_managers_and_used_by_everyone(api, people, bearer):
    admin, agent = bearer(people["admin"]), bearer(people["agent"])
    shared = _reply(api, admin, shared=True)
    file = _add(api, admin, shared["id"], [("terms.pdf", PDF)]).json["saved_reply"]["files"][0]
    # An AGENT uses it (downloads it) but may neither add nor remove one.
    assert _downloaded(api, file["url"], agent) == PDF
    refused = _add(api, agent, shared["id"], [("x.pdf", PDF)], status=403).json
    assert refused["error"]["code"] == "forbidden"
    api.delete(file["url"], headers=agent, status=403)
    assert [
        f["id"] for f in api.get("/api/saved-replies", headers=agent).json["items"][0]["files"]
    ] == [file["id"]]


def test_anothers_personal_reply_and_its_files_are_not_found(api, people, bearer):
    mine, theirs = bearer(people["agent"]), bearer(people["other"])
    reply = _reply(api, mine)
    file = _add(api, mine, reply["id"], [("terms.pdf", PDF)]).json["saved_reply"]["files"][0]
    for headers in (theirs, bearer(people["admin"])):  # personal means personal
        _add(api, headers, reply["id"], [("x.pdf", PDF)], status=404)
        api.get(file["url"], headers=headers, status=404)
        api.delete(file["url"], headers=headers, status=404)
    # A file id under another saved reply of one's own is no file of that reply.
    own = _reply(api, theirs, title="Theirs")
    api.get(f"/api/saved-replies/{own['id']}/files/{file['id']}", headers=theirs, status=404)


# --- the checks of uploads ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "status"),
    [
        ("page.html", HTML, 415),
        ("tool.pdf", ELF, 415),
        ("photo.pdf", PNG, 415),  # its name says otherwise
        ("empty.txt", b"", 422),
    ],
)
def test_a_file_refused_as_an_attachment_is_refused_here(
    api, db, people, bearer, name, content, status
):
    agent = bearer(people["agent"])
    reply = _reply(api, agent)
    refused = _add(api, agent, reply["id"], [(name, content)], status=status).json
    assert "attachments" in refused["error"]["details"]
    assert _rows(db) == []


def test_a_file_past_the_size_limit_is_413(backend_settings, db, people, bearer):
    settings = backend_settings.replace(max_upload_bytes=len(PDF) - 1)
    api = webtest.TestApp(shared_app(settings, db))
    agent = bearer(people["agent"])
    reply = _reply(api, agent)
    _add(api, agent, reply["id"], [("terms.pdf", PDF)], status=413)
    assert _rows(db) == []


def test_a_saved_reply_holds_at_most_max_upload_files(api, db, storage, people, bearer, settings):
    agent = bearer(people["agent"])
    reply = _reply(api, agent)
    most = settings.max_upload_files
    _add(api, agent, reply["id"], [(f"f{i}.txt", TEXT) for i in range(most - 1)])
    refused = _add(api, agent, reply["id"], [("a.txt", TEXT), ("b.txt", TEXT)], status=413).json
    assert f"at most {most} files" in refused["error"]["message"]
    assert len(_rows(db)) == most - 1
    # Nothing of the refused request stayed in storage.
    stored = list(storage.listing(f"saved-replies/{reply['id']}/"))
    assert sorted(f.key for f in stored) == sorted(r["storage_key"] for r in _rows(db))
    _add(api, agent, reply["id"], [("last.txt", TEXT)])


def test_no_file_or_not_multipart_is_refused(api, people, bearer):
    agent = bearer(people["agent"])
    reply = _reply(api, agent)
    url = f"/api/saved-replies/{reply['id']}/files"
    empty = api.post(url, {"note": "x"}, headers=agent, content_type="multipart/form-data",
                     status=422).json  # fmt: skip
    assert empty["error"]["details"] == {"note": "Unknown field."}
    none = api.post(url, {}, headers=agent, content_type="multipart/form-data", status=422)
    assert none.json["error"]["details"] == {"attachments": "Choose a file to add."}
    api.post_json(url, {"attachments": ["x"]}, headers=agent, status=415)


# --- replying with them -------------------------------------------------------------------


@pytest.fixture
def ticket(db, people):
    with db.transaction() as conn:
        return make_ticket(conn, assigned_to=people["agent"]["id"])


def test_render_offers_the_files(api, people, bearer, ticket):
    agent = bearer(people["agent"])
    reply = _reply(api, agent)
    files = _add(api, agent, reply["id"], [("terms.pdf", PDF)]).json["saved_reply"]["files"]
    rendered = api.post_json(
        f"/api/saved-replies/{reply['id']}/render", {"pid": ticket["pid"]}, headers=agent
    ).json
    assert rendered == {"text": "Our terms are attached.", "files": files}


def test_a_reply_with_a_saved_file_gets_its_own_copy(api, db, storage, people, bearer, ticket):
    agent = bearer(people["agent"])
    reply = _reply(api, agent)
    [file] = _add(api, agent, reply["id"], [("terms.pdf", PDF)]).json["saved_reply"]["files"]
    posted = api.post(
        f"/api/tickets/{ticket['pid']}/messages",
        {"body": "See the terms.", "saved_reply_files": str(file["id"])},
        upload_files=[("attachments", "log.txt", TEXT)],
        headers=agent,
        status=201,
    ).json
    names = [a["filename"] for a in posted["message"]["attachments"]]
    assert names == ["log.txt", "terms.pdf"]
    [saved] = _rows(db)
    copy = _rows(db, "attachments")[1]
    assert copy["storage_key"].startswith(f"tickets/{ticket['id']}/")
    assert copy["storage_key"] != saved["storage_key"]
    assert copy["sha256"] == saved["sha256"]
    with db.transaction() as conn:
        added = conn.execute(
            "SELECT data->>'filename' FROM ticket_events WHERE type = 'ATTACHMENT_ADDED' "
            "ORDER BY id"
        ).fetchall()
    assert added == [("log.txt",), ("terms.pdf",)]
    # The saved reply deleted: the ticket's file stays, with its bytes.
    api.delete(f"/api/saved-replies/{reply['id']}", headers=agent, status=204)
    assert not storage.exists(saved["storage_key"])
    url = posted["message"]["attachments"][1]["url"]
    assert _downloaded(api, url, agent) == PDF


def test_a_json_reply_names_saved_files_and_they_count_against_the_limit(
    api, db, people, bearer, ticket, settings
):
    agent = bearer(people["agent"])
    reply = _reply(api, agent)
    most = settings.max_upload_files
    files = _add(api, agent, reply["id"], [(f"f{i}.txt", TEXT) for i in range(most)]).json
    ids = [f["id"] for f in files["saved_reply"]["files"]]
    url = f"/api/tickets/{ticket['pid']}/messages"
    # With one uploaded file too: one more than a message may have.
    api.post(
        url,
        {"body": "All of them.", "saved_reply_files": [str(i) for i in ids]},
        upload_files=[("attachments", "log.txt", TEXT)],
        headers=agent,
        status=413,
    )
    assert _rows(db, "attachments") == []
    posted = api.post_json(url, {"body": "All.", "saved_reply_files": ids + ids[:1]},
                           headers=agent, status=201).json  # fmt: skip
    assert len(posted["message"]["attachments"]) == most  # each once


@pytest.mark.parametrize(
    "value",
    [["1"], [0], [True], "1", [2**63], [1.5]],
    ids=["string", "zero", "boolean", "not-a-list", "past-bigint", "fraction"],
)
def test_saved_reply_files_must_be_a_list_of_ids(api, db, people, bearer, ticket, value):
    resp = api.post_json(
        f"/api/tickets/{ticket['pid']}/messages",
        {"body": "Hi", "saved_reply_files": value},
        headers=bearer(people["agent"]),
        status=422,
    )
    assert "saved_reply_files" in resp.json["error"]["details"]
    assert _rows(db, "ticket_messages") == []


def test_a_file_the_caller_may_not_use_is_a_422_naming_it(api, db, people, bearer, ticket):
    others = _reply(api, bearer(people["other"]))
    [file] = _add(api, bearer(people["other"]), others["id"], [("x.pdf", PDF)]).json["saved_reply"][
        "files"
    ]
    for missing in (file["id"], 999_999):
        resp = api.post_json(
            f"/api/tickets/{ticket['pid']}/messages",
            {"body": "Hi", "saved_reply_files": [missing]},
            headers=bearer(people["agent"]),
            status=422,
        ).json
        assert str(missing) in resp["error"]["details"]["saved_reply_files"]
    assert _rows(db, "ticket_messages") == []
    assert _rows(db, "attachments") == []


def test_a_saved_file_gone_from_storage_is_a_422_not_a_500(
    api, db, storage, people, bearer, ticket
):
    agent = bearer(people["agent"])
    reply = _reply(api, agent)
    [file] = _add(api, agent, reply["id"], [("terms.pdf", PDF)]).json["saved_reply"]["files"]
    storage.delete(_rows(db)[0]["storage_key"])
    resp = api.post_json(
        f"/api/tickets/{ticket['pid']}/messages",
        {"body": "Hi", "saved_reply_files": [file["id"]]},
        headers=agent,
        status=422,
    ).json
    assert resp["error"]["details"] == {
        "saved_reply_files": "terms.pdf of the saved reply is no longer stored."
    }


# --- the orphan sweep ---------------------------------------------------------------------


def test_the_orphan_sweep_keeps_saved_reply_files_and_removes_their_orphans(
    api, db, storage, people, bearer, backend_settings
):
    agent = bearer(people["agent"])
    reply = _reply(api, agent)
    _add(api, agent, reply["id"], [("terms.pdf", PDF)])
    [kept] = [r["storage_key"] for r in _rows(db)]
    orphan = f"saved-replies/{reply['id']}/0123456789abcdef0123456789abcdef"
    with open(__file__, "rb") as source:  # any bytes: a store whose row was never written
        storage.put(orphan, source, "text/plain")
    later = datetime.now(UTC) + timedelta(hours=2)  # both files are old enough then
    assert OrphanSweep(db, storage, clock=lambda: later).run() == 1
    assert storage.exists(kept)
    assert not storage.exists(orphan)
