"""Erasing a customer (DESIGN.md section 13; README "Personal data: export and erasure"):
their data goes from every table and from storage, on local disk and on S3; twice is
harmless; a crash halfway undoes everything and the next run finishes; the audit log names
them by a keyed hash only."""

from __future__ import annotations

import threading
import time
from urllib.parse import quote

import psycopg
import pytest
import webtest

from supportdesk.accounts.audit import SYSTEM, customer_key
from supportdesk.dev.embedded import free_port
from supportdesk.files.storage import StorageUnavailable, make_storage
from supportdesk.privacy.erasure import (
    ERASED_TEXT,
    PLACEHOLDER_EMAIL,
    PLACEHOLDER_NAME,
    ErasureService,
)
from tests.conftest import shared_app
from tests.customers import DANA, FAY, HERS, ZELDA, build_desk, find_anywhere
from tests.webhook import SECRET, rows

ZERO = {
    "tickets": 0,
    "other_tickets": 0,
    "messages": 0,
    "files": 0,
    "outbox": 0,
    "quarantine": 0,
    "events": 0,
}


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


def _erase(api, headers, address=ZELDA, status=200):
    return api.post(f"/api/customers/{quote(address)}/erase", headers=headers, status=status)


def _stored_keys(db) -> list[str]:
    return [r["storage_key"] for r in rows(db, "SELECT storage_key FROM attachments")]


def _keys_of(db, pid: str) -> list[str]:
    return [
        r["storage_key"]
        for r in rows(
            db,
            "SELECT a.storage_key FROM attachments a JOIN tickets t ON t.id = a.ticket_id "
            "WHERE t.pid = %s",
            pid,
        )
    ]


def _searched(api, headers, q: str) -> list[str]:
    return [t["pid"] for t in api.get(f"/api/tickets?q={quote(q)}", headers=headers).json["items"]]


def test_erasure_removes_her_data_from_every_table_and_storage(
    api, db, conn, desk, admin, bearer, backend_settings
):
    storage = make_storage(backend_settings)
    headers = bearer(admin)
    assert len(find_anywhere(conn)) > 10  # the check finds what there is to find
    files = _keys_of(db, desk["own"]) + _keys_of(db, desk["copied"])
    assert len(files) == 3
    assert all(storage.exists(k) for k in files)
    assert _searched(api, headers, "sparkleberry")

    erased = _erase(api, headers).json["erased"]

    assert erased["tickets"] == 1
    assert erased["other_tickets"] == 1
    assert erased["files"] == 3
    assert erased["quarantine"] == 1
    assert erased["messages"] == 4  # her email, the reply and note on hers; hers on Fay's
    assert find_anywhere(conn) == []
    assert not any(storage.exists(k) for k in files)
    assert rows(db, "SELECT * FROM pending_file_deletions") == []
    assert _searched(api, headers, "sparkleberry") == []
    assert _searched(api, headers, "zelda") == []


def test_what_is_not_hers_stays(api, db, desk, admin, bearer):
    headers = bearer(admin)
    _erase(api, headers)
    fay = api.get(f"/api/tickets/{desk['unrelated']}/messages", headers=headers).json["items"]
    assert [m["body"] for m in fay] == ["Fay's own words about the printer."]
    copied = api.get(f"/api/tickets/{desk['copied']}", headers=headers).json["ticket"]
    assert copied["requester"] == {"email": FAY, "name": "Fay Client"}
    thread = api.get(f"/api/tickets/{desk['copied']}/messages", headers=headers).json["items"]
    assert [m["body"] for m in thread] == [
        "Since this morning. I copied [erased] from accounts.",
        ERASED_TEXT,
        "Thanks Fay and [erased]: the scanner works again.",
    ]
    # Dana, copied on Zelda's ticket, is still copied there; Zelda is not on Fay's.
    people = rows(db, "SELECT t.pid, p.email FROM ticket_participants p JOIN tickets t "
                      "ON t.id = p.ticket_id ORDER BY 1")  # fmt: skip
    assert [(r["pid"], r["email"]) for r in people] == [(desk["own"], DANA)]


def test_her_ticket_keeps_its_shape_with_placeholders_and_an_erased_event(
    api, db, desk, admin, bearer
):
    headers = bearer(admin)
    _erase(api, headers)
    ticket = api.get(f"/api/tickets/{desk['own']}", headers=headers).json["ticket"]
    assert ticket["subject"] == ERASED_TEXT
    assert ticket["requester"] == {"email": PLACEHOLDER_EMAIL, "name": PLACEHOLDER_NAME}
    thread = api.get(f"/api/tickets/{desk['own']}/messages", headers=headers).json["items"]
    assert {m["body"] for m in thread} == {ERASED_TEXT}
    events = api.get(f"/api/tickets/{desk['own']}/events", headers=headers).json["items"]
    [erased] = [e for e in events if e["type"] == "ERASED"]
    assert erased["data"] == {"requester": True, "messages": 3, "files": 2}
    assert erased["actor"]["id"] == admin["id"]
    assert erased["summary"] == "Ana Admin erased the customer's data (3 messages, 2 files)"
    others = api.get(f"/api/tickets/{desk['copied']}/events", headers=headers).json["items"]
    assert [e["data"] for e in others if e["type"] == "ERASED"] == [
        {"requester": False, "messages": 1, "files": 1}
    ]
    # The pages still show both.
    api.get(f"/tickets/{desk['own']}", headers=headers, status=200)


def test_unsent_email_to_her_is_never_sent_but_fays_still_is(api, db, desk, admin, bearer):
    _erase(api, bearer(admin))
    outbox = rows(
        db,
        "SELECT t.pid, o.to_address, o.cc_addresses, o.status::text AS status, o.kind::text "
        "AS kind FROM email_outbox o JOIN tickets t ON t.id = o.ticket_id ORDER BY o.id",
    )
    for row in outbox:
        if row["pid"] == desk["own"]:
            assert row["status"] == "DEAD"
        else:
            assert ZELDA not in row["cc_addresses"]
            assert row["status"] == (
                "DEAD" if row["to_address"] == PLACEHOLDER_EMAIL else "PENDING"
            )
    replies_to_fay = [r for r in outbox if r["pid"] == desk["copied"] and r["to_address"] == FAY]
    assert replies_to_fay
    assert {r["status"] for r in replies_to_fay} == {"PENDING"}


def test_erasing_twice_changes_nothing_more(api, db, conn, desk, admin, bearer):
    headers = bearer(admin)
    _erase(api, headers)
    before = rows(db, "SELECT count(*) AS n FROM ticket_events")[0]["n"]
    assert _erase(api, headers).json["erased"] == ZERO
    assert rows(db, "SELECT count(*) AS n FROM ticket_events")[0]["n"] == before
    assert find_anywhere(conn) == []


def test_an_unknown_address_erases_nothing_and_a_bad_one_is_a_422(api, db, admin, bearer):
    headers = bearer(admin)
    assert _erase(api, headers, "nobody@example.org").json["erased"] == ZERO
    resp = _erase(api, headers, "not an address", status=422)
    assert resp.json["error"]["code"] == "validation_error"
    assert "email" in resp.json["error"]["details"]


def test_the_audit_log_names_her_by_a_keyed_hash_only(api, db, desk, admin, bearer, settings):
    _erase(api, bearer(admin))
    [row] = rows(db, "SELECT * FROM audit_log WHERE action = 'CUSTOMER_ERASED'")
    assert row["actor_id"] == admin["id"]
    assert (row["target_type"], row["target_id"]) == (
        "customer",
        customer_key(settings.secret_key, ZELDA),
    )
    assert row["data"]["tickets"] == 1
    assert row["data"]["files"] == 3
    assert ZELDA not in str(row)
    assert "Zelda" not in str(row)


# --- crashes ---------------------------------------------------------------------------------


def _erasing_backend(conn: psycopg.Connection, timeout: float = 20) -> int:
    """The pid of the session running the erasure, once it waits for a lock."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE query LIKE '%%privacy_erase_customer%%' "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        ).fetchone()
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError("the erasure never waited for the lock")


def test_a_connection_killed_halfway_erases_nothing_and_the_next_run_finishes(
    db, conn, database_url, desk, admin, backend_settings
):
    """The erasure has blanked messages, files and the outbox when it waits on the quarantine
    row another session holds; its connection is then killed. Nothing of that is committed,
    no file is gone; the next run does it all."""
    storage = make_storage(backend_settings)
    erasure = ErasureService(db, storage, backend_settings.secret_key)
    files = _stored_keys(db)
    failures: list[BaseException] = []

    def erase() -> None:
        try:
            erasure.erase(SYSTEM, ZELDA)
        except BaseException as error:
            failures.append(error)

    with psycopg.connect(database_url) as holder:
        holder.execute("SELECT 1 FROM quarantine FOR UPDATE")  # the lock, held open
        worker = threading.Thread(target=erase)
        worker.start()
        victim = _erasing_backend(conn)
        # Halfway: what it has done so far is in its transaction, waiting to commit.
        conn.execute("SELECT pg_terminate_backend(%s)", (victim,))
        worker.join(30)
        holder.rollback()
    assert failures
    assert isinstance(failures[0], psycopg.OperationalError)
    assert any(w.startswith("tickets.") for w in find_anywhere(conn))
    assert rows(db, "SELECT * FROM audit_log WHERE action = 'CUSTOMER_ERASED'") == []
    assert all(storage.exists(k) for k in files)

    assert erasure.erase(SYSTEM, ZELDA).tickets == 1
    assert find_anywhere(conn) == []
    assert not any(storage.exists(k) for k in files)


def test_files_left_by_a_crash_after_the_commit_go_on_the_next_run(
    db, conn, desk, backend_settings, s3_settings
):
    """Committed, then the storage did not answer (an S3 endpoint where nothing listens):
    the rows are erased, the files wait in pending_file_deletions; the next run, with the
    storage back, removes them."""
    live = make_storage(backend_settings)
    keys = _stored_keys(db)
    down = make_storage(s3_settings.replace(s3_endpoint_url=f"http://127.0.0.1:{free_port()}"))
    with pytest.raises(StorageUnavailable):
        down.delete(keys[0])

    ErasureService(db, down, backend_settings.secret_key).erase(SYSTEM, ZELDA)
    pending = sorted(r["storage_key"] for r in rows(db, "SELECT * FROM pending_file_deletions"))
    assert pending == sorted(keys)
    assert all(live.exists(k) for k in keys)
    assert find_anywhere(conn) == []

    assert ErasureService(db, live, backend_settings.secret_key).erase(SYSTEM, ZELDA).tickets == 0
    assert rows(db, "SELECT * FROM pending_file_deletions") == []
    assert not any(live.exists(k) for k in keys)


def test_the_words_checked_are_hers_alone():
    assert all(word.lower() not in (FAY + DANA).lower() for word in HERS)


def test_a_long_subject_naming_her_stays_within_its_limit(api, db, conn, admin, bearer):
    """'[erased]' is longer than 'Zelda': a subject of 255 characters naming her is cut."""
    from tests.factories import make_ticket

    with db.transaction() as c:
        theirs = make_ticket(c, subject=("Zelda " * 43)[:255], requester_email=FAY)
        c.execute("INSERT INTO ticket_participants (ticket_id, email, name) VALUES "
                  "(%s, %s, 'Zelda Quibble')", (theirs["id"], ZELDA))  # fmt: skip
    _erase(api, bearer(admin))
    [row] = rows(db, "SELECT subject FROM tickets WHERE id = %s", theirs["id"])
    assert len(row["subject"]) == 255
    assert "Zelda" not in row["subject"]
