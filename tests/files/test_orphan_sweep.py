"""The orphan sweep (DESIGN.md section 13) on local disk and on moto's S3 server: a file with
no attachments row, older than an hour, is removed; a young one, one with its row, and
anything outside the storage's own folder are kept; a second run removes nothing more."""

from __future__ import annotations

import io
import os
import time
from datetime import UTC, datetime

import pytest

from supportdesk.files.storage import S3Storage, make_storage
from supportdesk.tickets.orphan_files import ORPHAN_AGE, OrphanSweep
from tests.factories import make_attachment, make_message, make_ticket


@pytest.fixture(params=["local", "s3"])
def backend_settings(request, settings):
    return request.getfixturevalue("s3_settings") if request.param == "s3" else settings


def put(storage, key: str, content: bytes = b"a file\n") -> str:
    storage.put(key, io.BytesIO(content), "text/plain")
    return key


def keys(storage) -> set[str]:
    """Every key of the storage, its own folder or not."""
    if isinstance(storage, S3Storage):
        listed = storage.client.list_objects_v2(Bucket=storage.bucket)
        return {item["Key"] for item in listed.get("Contents", ())}
    return {
        path.relative_to(storage.root).as_posix()
        for path in storage.root.rglob("*")
        if path.is_file() or path.is_symlink()
    }


def the_hour_between(write_old, write_young) -> datetime:
    """Writes the old files, then the young ones over a second later (S3 keeps whole
    seconds), and returns a clock an hour after the moment between them: what the sweep
    sees at the moment the old files turn an hour old and the young ones not yet."""
    write_old()
    time.sleep(1.1)
    between = datetime.now(UTC)
    time.sleep(1.1)
    write_young()
    return between + ORPHAN_AGE


def test_old_orphans_go_young_ones_and_files_with_rows_stay(backend_settings, db):
    storage = make_storage(backend_settings)
    with db.transaction() as conn:
        ticket = make_ticket(conn)
        message = make_message(conn, ticket["id"])
    written: dict[str, str] = {}

    def old() -> None:
        with db.transaction() as conn:
            row = make_attachment(conn, storage, ticket["id"], message["id"])
        written["with its row"] = row["storage_key"]
        written["orphan"] = put(storage, f"tickets/{ticket['id']}/0f1e2d3c4b5a")
        written["partial"] = put(storage, f"tickets/{ticket['id']}/.9a8b7c.part")
        written["outside"] = put(storage, "exports/old-and-not-ours")

    def young() -> None:
        written["young orphan"] = put(storage, f"tickets/{ticket['id']}/1a2b3c4d5e6f")

    later = the_hour_between(old, young)
    sweep = OrphanSweep(db, storage, clock=lambda: later)

    assert sweep.run() == 2
    assert keys(storage) == {
        written["with its row"],
        written["young orphan"],
        written["outside"],
    }
    assert sweep.run() == 0  # idempotent
    assert len(keys(storage)) == 3


def test_nothing_is_removed_before_the_hour(backend_settings, db):
    storage = make_storage(backend_settings)
    put(storage, "tickets/7/an-orphan-just-stored")
    sweep = OrphanSweep(db, storage, clock=lambda: datetime.now(UTC) + ORPHAN_AGE / 2)
    assert sweep.run() == 0
    assert keys(storage) == {"tickets/7/an-orphan-just-stored"}


def test_an_empty_storage_has_nothing_to_sweep(backend_settings, db):
    storage = make_storage(backend_settings)
    assert OrphanSweep(db, storage, clock=lambda: datetime.now(UTC) + 2 * ORPHAN_AGE).run() == 0


def test_many_orphans_are_checked_against_the_table_in_batches(settings, db):
    """More orphans than a batch: each batch is checked and removed; rows keep theirs."""
    storage = make_storage(settings)
    with db.transaction() as conn:
        ticket = make_ticket(conn)
        message = make_message(conn, ticket["id"])
        kept = {make_attachment(conn, storage, ticket["id"], message["id"])["storage_key"]
                for _ in range(4)}  # fmt: skip
    for n in range(8):
        put(storage, f"tickets/{ticket['id']}/orphan-{n}")
    later = datetime.now(UTC) + 2 * ORPHAN_AGE
    assert OrphanSweep(db, storage, clock=lambda: later, batch=3).run() == 8
    assert keys(storage) == kept


# --- the local disk: nothing outside UPLOAD_DIR, through a link or otherwise ---------------


def _age(path, hours: float = 2) -> None:
    then = time.time() - hours * 3600
    os.utime(path, (then, then), follow_symlinks=False)


def test_local_links_are_neither_followed_nor_removed(settings, db, tmp_path):
    storage = make_storage(settings)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_bytes(b"not the desk's")
    _age(outside / "precious")
    tickets = storage.root / "tickets"
    tickets.mkdir(parents=True)
    (tickets / "linked-folder").symlink_to(outside, target_is_directory=True)
    (tickets / "linked-file").symlink_to(outside / "precious")
    (storage.root / "elsewhere.txt").write_bytes(b"in UPLOAD_DIR, not in its folder")
    _age(storage.root / "elsewhere.txt")
    for link in ("linked-folder", "linked-file"):
        _age(tickets / link)
    orphan = put(storage, "tickets/3/an-old-orphan")
    _age(storage.root / orphan)

    assert OrphanSweep(db, storage).run() == 1
    assert (outside / "precious").read_bytes() == b"not the desk's"
    assert (tickets / "linked-folder").is_symlink()
    assert (tickets / "linked-file").is_symlink()
    assert (storage.root / "elsewhere.txt").exists()
    assert not (storage.root / orphan).exists()
    assert (storage.root / "tickets" / "3").is_dir()  # folders stay: a store may be making one


def test_a_tickets_folder_linked_out_of_upload_dir_is_refused(settings, db, tmp_path):
    storage = make_storage(settings)
    outside = tmp_path / "elsewhere"
    (outside / "1").mkdir(parents=True)
    (outside / "1" / "old").write_bytes(b"x")
    _age(outside / "1" / "old")
    storage.root.mkdir(parents=True, exist_ok=True)
    (storage.root / "tickets").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ValueError, match="leaves the upload folder"):
        OrphanSweep(db, storage).run()
    assert (outside / "1" / "old").exists()


# --- S3: the listing is paginated ------------------------------------------------------------


def test_the_s3_listing_follows_every_page_and_keeps_to_its_prefix(s3_settings):
    storage = make_storage(s3_settings)
    for n in range(5):
        put(storage, f"tickets/{n}/file")
    put(storage, "ticketsX/not-under-the-folder")
    put(storage, "other/file")
    calls = []
    storage.client.meta.events.register(
        "before-call.s3.ListObjectsV2", lambda **kwargs: calls.append(kwargs["params"])
    )
    listed = [found.key for found in storage.listing("tickets/", page_size=2)]
    assert listed == [f"tickets/{n}/file" for n in range(5)]
    assert len(calls) == 3  # 2 + 2 + 1
    assert all(found.modified.tzinfo is not None for found in storage.listing("tickets/"))


def test_the_scheduler_runs_the_sweep(run_cli, redis_url, tmp_path):
    uploads = tmp_path / "swept"
    orphan = uploads / "tickets" / "9" / "left-by-a-failed-store"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"x")
    _age(orphan)
    done = run_cli("scheduler", "--once", REDIS_URL=redis_url, UPLOAD_DIR=str(uploads))
    assert done.returncode == 0, done.stderr
    assert "orphan_files: 1 changed" in done.stdout
    assert not orphan.exists()
    again = run_cli("scheduler", "--once", REDIS_URL=redis_url, UPLOAD_DIR=str(uploads))
    assert "orphan_files: 0 changed" in again.stdout
