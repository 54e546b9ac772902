"""A customer's export (DESIGN.md section 13; GDPR articles 15 and 20): a zip of JSON and
their files, from local disk and from S3; audited under a keyed hash of the address."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from urllib.parse import quote

import pytest
import webtest

from supportdesk.accounts.audit import customer_key
from tests.conftest import shared_app
from tests.customers import DANA, FAY, LABEL, NOTES, PASSPORT, ZELDA, ZELDA_NAME, build_desk
from tests.webhook import SECRET, rows


@pytest.fixture(params=["local", "s3"])
def backend_settings(request, settings):
    chosen = request.getfixturevalue("s3_settings") if request.param == "s3" else settings
    return chosen.replace(inbound_email_secret=SECRET)


@pytest.fixture
def api(backend_settings, db, redis_client) -> webtest.TestApp:
    return webtest.TestApp(shared_app(backend_settings, db))


@pytest.fixture
def admin(make_staff):
    return make_staff("ADMIN", name="Ana Admin", email="ana@example.com")


@pytest.fixture
def desk(api, db, admin, bearer):
    return build_desk(api, db, bearer(admin))


def _export(api, headers, address=ZELDA) -> tuple[webtest.TestResponse, zipfile.ZipFile]:
    resp = api.get(f"/api/customers/{quote(address)}/export", headers=headers, status=200)
    return resp, zipfile.ZipFile(io.BytesIO(resp.body))


def _json(archive: zipfile.ZipFile, path: str):
    return json.loads(archive.read(path))


def test_the_export_holds_her_tickets_messages_timelines_and_files(api, desk, admin, bearer):
    resp, archive = _export(api, bearer(admin))
    assert resp.content_type == "application/zip"
    assert ZELDA not in resp.headers["Content-Disposition"]  # the name is a keyed hash
    manifest = _json(archive, "manifest.json")
    assert manifest["customer"] == ZELDA
    assert [(t["pid"], t["role"]) for t in manifest["tickets"]] == [
        (desk["own"], "requester"),
        (desk["copied"], "participant"),
    ]
    own = _json(archive, f"tickets/{desk['own']}.json")
    assert own["ticket"]["requester"] == {"email": ZELDA, "name": ZELDA_NAME}
    bodies = [m["body"] for m in own["messages"]]
    assert bodies[0].startswith("My sparkleberry order never came.")
    assert "sparkleberry" in own["messages"][0]["html_body"]
    assert [m["visibility"] for m in own["messages"]] == ["PUBLIC", "PUBLIC", "INTERNAL"]
    assert own["timeline"][0]["type"] == "CREATED"
    assert all(e["summary"] for e in own["timeline"])
    # On Fay's ticket: what she was sent and what she wrote, not more.
    copied = _json(archive, f"tickets/{desk['copied']}.json")
    assert [(m["author_email"], m["body"].split("\n")[0]) for m in copied["messages"]] == [
        (FAY, "Since this morning. I copied Zelda from accounts."),
        (ZELDA, "Mine too, next to the sparkleberry shelf."),
        ("ana@example.com", "Thanks Fay and Zelda: the scanner works again."),
    ]
    assert {e["type"] for e in copied["timeline"]} >= {"PARTICIPANT_ADDED"}
    assert all(e["type"] != "STATUS_CHANGED" for e in copied["timeline"])
    # Fay's other ticket, and Dana, are not hers.
    assert f"tickets/{desk['unrelated']}.json" not in archive.namelist()
    assert DANA in json.dumps(own)  # copied on her ticket: part of her conversation


def test_the_files_are_in_the_zip_with_their_checksums(api, desk, admin, bearer):
    _, archive = _export(api, bearer(admin))
    files = _json(archive, "manifest.json")["files"]
    assert sorted(f["filename"] for f in files) == [
        "label.txt",
        "zelda-notes.txt",
        "zelda-passport.txt",
    ]
    for entry in files:
        content = archive.read(entry["path"])
        assert hashlib.sha256(content).hexdigest() == entry["sha256"]
        assert content in (PASSPORT, NOTES, LABEL)
    own = _json(archive, f"tickets/{desk['own']}.json")
    assert [f["filename"] for f in own["messages"][0]["files"]] == ["zelda-passport.txt"]


def test_her_quarantined_mail_is_in_it(api, desk, admin, bearer):
    _, archive = _export(api, bearer(admin))
    [kept] = _json(archive, "manifest.json")["quarantine"]
    assert kept["subject"] == "sparkleberry again"
    assert b"Blocked words." in archive.read(kept["path"])


def test_an_address_the_desk_does_not_know_exports_nothing(api, db, admin, bearer):
    _, archive = _export(api, bearer(admin), "nobody@example.org")
    manifest = _json(archive, "manifest.json")
    assert (manifest["tickets"], manifest["files"], manifest["quarantine"]) == ([], [], [])


def test_a_bad_address_is_a_422(api, admin, bearer):
    resp = api.get("/api/customers/not-an-address/export", headers=bearer(admin), status=422)
    assert resp.json["error"]["code"] == "validation_error"


def test_the_export_is_audited_by_a_keyed_hash(api, db, desk, admin, bearer, settings):
    _export(api, bearer(admin))
    [row] = rows(db, "SELECT * FROM audit_log WHERE action = 'CUSTOMER_EXPORTED'")
    assert row["actor_id"] == admin["id"]
    assert (row["target_type"], row["target_id"]) == (
        "customer",
        customer_key(settings.secret_key, ZELDA),
    )
    assert row["data"] == {"tickets": 2, "files": 3}
    assert "zelda" not in json.dumps(row, default=str).lower()
