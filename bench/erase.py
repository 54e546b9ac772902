"""Erasing a customer with 1,000 tickets (issue 23: <= 10 s), next to a raw baseline.

A desk of `--tickets` seeded tickets (20,000 by default) gains customers of the same shape:
each requested `--customer-tickets` tickets (1,000), each ticket with three messages (theirs,
a staff reply, theirs again), four events, an acknowledgement in the outbox and a stored
file (on local disk) with each of their messages, and is copied on 50 others' tickets. Two
ways, each on customers of its own, `--rounds` times:

- service: ErasureService.erase, as the ADMIN's request runs it, as the app role: the
  owner's SECURITY DEFINER function (every table, the generic scrub of names and address,
  the ERASED events), the audit row, then the files removed from disk (the target is on
  this number);
- raw: the least the database must do for the same visible result, as the owner, in one
  transaction of plain statements: blank the messages, replace the requester, blank the
  outbox, delete the files' rows, drop the participation, one ERASED event a ticket, and
  remove the files. No scrubbing of text for names, no timeline rewrite.

Run: `make bench-erase` (`BENCH_ARGS="--rounds 5"`).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

from bench.common import bench_settings, describe, services
from supportdesk.accounts.audit import SYSTEM
from supportdesk.core.db import Database
from supportdesk.core.migrate import grant_app_role
from supportdesk.dev.seed import seed_tickets
from supportdesk.files.storage import LocalStorage
from supportdesk.privacy.erasure import ErasureService

TARGET_SECONDS = 10.0
APP_ROLE = "supportdesk_bench_app"

SEED_CUSTOMER = """
WITH made AS (
    INSERT INTO tickets (pid, subject, requester_email, requester_name, channel, status,
                         created_at, updated_at)
    SELECT %(prefix)s || lpad(n::text, 6, '0'), 'Order ' || n || ' for ' || %(name)s,
           %(email)s, %(name)s, 'EMAIL', 'OPEN', now() - n * interval '1 hour', now()
    FROM generate_series(1, %(tickets)s) AS n
    RETURNING id
), messages AS (
    INSERT INTO ticket_messages (ticket_id, author, author_email, author_user_id, channel, body,
                                 full_body)
    SELECT id, kind.author::message_author, CASE WHEN kind.author = 'STAFF' THEN NULL
                                                ELSE %(email)s END,
           CASE WHEN kind.author = 'STAFF' THEN %(staff)s END, 'EMAIL',
           kind.body || ' ' || %(name)s, kind.body || E'\n\n> quoted history of ' || %(email)s
    FROM made, (VALUES ('CUSTOMER', 'My order never came. Regards,'),
                       ('STAFF', 'We are sorry: it ships today. Dear'),
                       ('CUSTOMER', 'Thanks, it came. Regards,')) AS kind(author, body)
    RETURNING id, ticket_id, author
), events AS (
    INSERT INTO ticket_events (ticket_id, type, data)
    SELECT id, t.type::ticket_event_type, t.data
    FROM made, LATERAL (VALUES
        ('CREATED', jsonb_build_object('requester', jsonb_build_object('email', %(email)s,
                                                                       'name', %(name)s))),
        ('EMAIL_RECEIVED', jsonb_build_object('from', %(name)s || ' <' || %(email)s || '>')),
        ('MESSAGE_ADDED', '{}'::jsonb),
        ('EMAIL_SENT', jsonb_build_object('to', %(email)s, 'subject', 'Re: Order')))
        AS t(type, data)
), outbox AS (
    INSERT INTO email_outbox (ticket_id, kind, to_address, subject, body_text, message_id,
                              status, sent_at)
    SELECT id, 'ACKNOWLEDGEMENT', %(email)s, 'We received your request',
           'Dear ' || %(name)s || ', thanks.', '<ack.' || id || '.' || %(prefix)s || '@bench>',
           'SENT', now()
    FROM made
)
INSERT INTO attachments (ticket_id, message_id, filename, content_type, size_bytes, sha256,
                         storage_key)
SELECT ticket_id, id, 'scan.txt', 'text/plain', 12, repeat('0', 64),
       'tickets/' || ticket_id || '/' || md5(id::text || %(prefix)s)
FROM messages WHERE author = 'CUSTOMER'
RETURNING storage_key
"""

SEED_PARTICIPATION = """
INSERT INTO ticket_participants (ticket_id, email, name)
SELECT id, %(email)s, %(name)s FROM tickets
WHERE requester_email NOT LIKE 'bench-%%' ORDER BY id LIMIT 50 OFFSET %(offset)s
"""

RAW_ERASE = """
SET LOCAL supportdesk.rewriting_history = 'on';
CREATE TEMP TABLE raw_own ON COMMIT DROP AS
    SELECT id FROM tickets WHERE lower(requester_email) = %(email)s FOR UPDATE;
UPDATE ticket_messages SET body = '[erased]', full_body = NULL, html_body = NULL,
       author_email = CASE WHEN author_email IS NULL THEN NULL ELSE 'erased@erased.invalid' END
WHERE ticket_id IN (SELECT id FROM raw_own);
UPDATE email_outbox SET to_address = 'erased@erased.invalid', subject = '[erased]',
       body_text = '[erased]', body_html = NULL
WHERE ticket_id IN (SELECT id FROM raw_own);
UPDATE ticket_events SET data = '{}'
WHERE ticket_id IN (SELECT id FROM raw_own) AND type IN ('CREATED', 'EMAIL_RECEIVED', 'EMAIL_SENT');
CREATE TEMP TABLE raw_files ON COMMIT DROP AS
    WITH gone AS (DELETE FROM attachments WHERE ticket_id IN (SELECT id FROM raw_own)
                  RETURNING storage_key) SELECT storage_key FROM gone;
DELETE FROM ticket_participants WHERE email = %(email)s;
UPDATE tickets SET subject = '[erased]', requester_email = 'erased@erased.invalid',
       requester_name = 'Erased customer' WHERE id IN (SELECT id FROM raw_own);
INSERT INTO ticket_events (ticket_id, type, data)
SELECT id, 'ERASED', '{"requester": true}' FROM raw_own;
"""


def seed_customer(owner_url: str, storage: LocalStorage, n: int, tickets: int) -> str:
    email, name = f"bench-{n}@example.org", f"Bench Customer{n}"
    with psycopg.connect(owner_url) as conn:
        staff = conn.execute("SELECT id FROM users ORDER BY id LIMIT 1").fetchone()[0]
        prefix = f"19{n // 12 + 10:02d}{n % 12 + 1:02d}-"  # a month of its own
        values = {"prefix": prefix, "email": email, "name": name, "tickets": tickets}
        keys = conn.execute(SEED_CUSTOMER, values | {"staff": staff}).fetchall()
        conn.execute(SEED_PARTICIPATION, {"email": email, "name": name, "offset": n * 50})
    for (key,) in keys:
        path = storage.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"scanned page")
    return email


def raw_erase(owner_url: str, storage: LocalStorage, email: str) -> None:
    with psycopg.connect(owner_url) as conn:
        for statement in RAW_ERASE.split(";\n"):
            if statement.strip():
                conn.execute(statement, {"email": email})
        keys = [key for (key,) in conn.execute("SELECT storage_key FROM raw_files")]
        conn.commit()
    for key in keys:
        storage.delete(key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=20_000, help="seeded background tickets")
    parser.add_argument("--customer-tickets", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with services() as (owner_url, redis_url), tempfile.TemporaryDirectory() as uploads:
        grant_app_role(owner_url, APP_ROLE, create=True)
        app_url = _as_role(owner_url, APP_ROLE)
        settings = bench_settings(app_url, redis_url, upload_dir=Path(uploads))
        owner_db = Database(bench_settings(owner_url, redis_url)).open(wait=True)
        seed_tickets(owner_db, args.tickets, bcrypt_rounds=4, progress=False, owner_url=owner_url)
        owner_db.close()
        storage = LocalStorage(Path(uploads))
        customers = [
            seed_customer(owner_url, storage, n, args.customer_tickets)
            for n in range(2 * args.rounds)
        ]
        with psycopg.connect(owner_url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
        db = Database(settings).open(wait=True)
        erasure = ErasureService(db, storage, settings.secret_key)
        timings: dict[str, list[float]] = {"service": [], "raw": []}
        for n in range(args.rounds):  # interleaved, so drift affects both alike
            start = time.perf_counter()
            erased = erasure.erase(SYSTEM, customers[2 * n])
            timings["service"].append(time.perf_counter() - start)
            assert erased.tickets == args.customer_tickets, erased
            start = time.perf_counter()
            raw_erase(owner_url, storage, customers[2 * n + 1])
            timings["raw"].append(time.perf_counter() - start)
        left = sum(1 for p in Path(uploads).rglob("*") if p.is_file())
        db.close()
    service, raw = (statistics.median(timings[k]) for k in ("service", "raw"))
    print(
        f"erasing a customer with {args.customer_tickets:,} tickets (3 messages, 4 events, "
        f"1 outbox row, 2 files each; copied on 50 others), among {args.tickets:,} tickets"
    )
    print(f"  service  {describe(timings['service'])}   (target <= {TARGET_SECONDS:.0f} s)")
    print(f"  raw      {describe(timings['raw'])}")
    print(f"  service / raw: {service / raw:.1f}x   files left on disk: {left}")
    verdict = "PASS" if service <= TARGET_SECONDS else "FAIL"
    print(f"{verdict}: median {service:.2f} s for the erasure (target <= {TARGET_SECONDS:.0f} s)")


def _as_role(url: str, role: str) -> str:
    """The same server and database, as `role` (no password: the server trusts it)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{role}@{host}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()


if __name__ == "__main__":
    main()
