"""The email worker against a plain smtplib loop, in the same run (DESIGN.md section 6).

(a) Throughput: `--emails` staff replies (outbox rows), each with a 200 KiB attachment and
    two Cc (section 11), delivered by one `supportdesk worker` process to a local SMTP sink
    (its own process), next to a plain smtplib loop making the same rows into the same
    messages (the file read from the same storage for each, the same bytes) and sending
    them over one connection to the same sink, To and both Cc. Each is run `--rounds`
    times; medians and the ratio are reported. Target: the worker at >= 0.70 of the loop.
(b) Latency: `--replies` staff replies saved through MessageService, one every 20 ms, while
    the worker idles; the time from each reply's commit to the sink's 250 (p50, p95).
(c) The worker's peak RSS (VmHWM).

Run: `make bench-worker`.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import random
import signal
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.common import SECRET_KEY, SUPPORTDESK, bench_settings, percentile, services
from supportdesk.accounts.staff import create_admin
from supportdesk.core.config import Settings
from supportdesk.core.db import Database
from supportdesk.core.redis_client import make_redis
from supportdesk.dev.embedded import free_port
from supportdesk.files.storage import make_storage
from supportdesk.files.uploads import Upload
from supportdesk.mail.outbound.attached import AttachedFile
from supportdesk.mail.outbound.outbox import push_after_commit
from supportdesk.mail.outbound.sender import message_bytes
from supportdesk.tickets.inputs import NewMessage, NewTicket
from supportdesk.web.services import build_services

TARGET_SHARE = 0.70
MAIL_FROM = "Support Desk <support@example.com>"
ATTACHMENT_BYTES = 200 * 1024
CC = ("colleague@example.org", "manager@example.org")


def main() -> None:
    args = parse_args()
    folder = Path(tempfile.mkdtemp(prefix="sd-bench-worker-"))
    with services() as (database_url, redis_url):
        settings = bench_settings(
            database_url,
            redis_url,
            mail_from=MAIL_FROM,
            bcrypt_rounds=4,
            storage_backend="local",
            upload_dir=folder / "uploads",
        )
        db = Database(settings.replace(db_pool_max_size=4)).open(wait=True)
        try:
            print(
                f"worker benchmark: {args.emails} emails x {args.rounds} rounds, "
                f"{args.replies} replies for latency\n"
            )
            throughput(settings, db, folder, args)
            latency(settings, db, folder, args)
        finally:
            db.close()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.worker", description=__doc__.split("\n")[0])
    parser.add_argument("--emails", type=int, default=1000, help="emails per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each way")
    parser.add_argument("--replies", type=int, default=200, help="replies for the latency")
    return parser.parse_args()


# --- the pieces --------------------------------------------------------------------------------


class SinkProcess:
    """bench/smtp_sink.py in its own process; `stop()` returns {message_id: time of 250}."""

    def __init__(self, folder: Path, name: str):
        self.port = free_port()
        self.out = folder / f"{name}.received"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.smtp_sink",
                "--port",
                str(self.port),
                "--out",
                str(self.out),
            ],
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        self.proc.stdout.readline()  # "ready"
        self.cpu_at_start = cpu_seconds(self.proc.pid)

    def stop(self) -> dict[str, float]:
        self.cpu = cpu_seconds(self.proc.pid) - self.cpu_at_start
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)
        received: dict[str, float] = {}
        self.sizes: list[tuple[int, int]] = []  # (bytes, recipients) of each message
        for line in self.out.read_text().splitlines():
            moment, size, recipients, message_id = line.split(" ", 3)
            received.setdefault(message_id, float(moment))
            self.sizes.append((int(size), int(recipients)))
        return received


@contextmanager
def sink_and_worker(settings: Settings, folder: Path, name: str) -> Iterator[SinkProcess]:
    """A sink, and one idle `supportdesk worker` sending to it; both stopped at the end
    (the worker with SIGTERM, as in production). `sink.worker_rss` is read before that."""
    sink = SinkProcess(folder, name)
    env = dict(os.environ) | {
        "DATABASE_URL": settings.database_url or "",
        "REDIS_URL": settings.redis_url or "",
        "SECRET_KEY": SECRET_KEY,
        "ENVIRONMENT": "test",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(sink.port),
        "MAIL_FROM": MAIL_FROM,
        "STORAGE_BACKEND": "local",
        "UPLOAD_DIR": str(settings.upload_dir),
    }
    log = (folder / f"{name}.log").open("wb")
    worker = subprocess.Popen([SUPPORTDESK, "worker"], env=env, stdout=log, stderr=log)
    sink.worker_pid = worker.pid  # type: ignore[attr-defined]
    redis_client = make_redis(settings)
    try:
        wait_for(lambda: redis_client.scard("sd:email:workers") == 1, 30, "the worker")
        worker_cpu_at_start = cpu_seconds(worker.pid)
        yield sink
    finally:
        sink.worker_rss = peak_rss_mib(worker.pid)  # type: ignore[attr-defined]
        sink.worker_cpu = cpu_seconds(worker.pid) - worker_cpu_at_start  # type: ignore[attr-defined]
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
        sink.received = sink.stop()  # type: ignore[attr-defined]
        redis_client.close()


def cpu_seconds(pid: int) -> float:
    """The CPU time (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"the benchmark timed out waiting for {what}")
        time.sleep(0.02)


def make_attachment(settings: Settings, db: Database) -> int:
    """A staff reply with one 200 KiB file (random bytes, as a PDF would compress), stored
    as the desk stores one; its attachment id, for the outbox rows to carry."""
    services_ = build_services(settings, db, make_redis(settings))
    admin = create_admin(db, "bench-files@example.com", "Bench Files", "a long bench pw", 4)
    ticket = services_.tickets.create(
        NewTicket("Cleo", "cleo@example.org", "Files", "Hello", "NORMAL"),
        channel="WEB",
        actor=admin,
    )
    data = random.Random(21).randbytes(ATTACHMENT_BYTES)
    upload = Upload(
        "Rechnung März.pdf",
        "application/pdf",
        len(data),
        hashlib.sha256(data).hexdigest(),
        io.BytesIO(data),
    )
    posted = services_.messages.post(
        admin, ticket["pid"], NewMessage("The invoice."), channel="API", uploads=[upload]
    )
    return int(posted.attachments[0]["id"])


def write_outbox(db: Database, count: int, tag: str, attachment_id: int) -> list[int]:
    """`count` PENDING rows like the staff replies the desk writes (text and HTML), each
    with the file `attachment_id` and two Cc."""
    with db.transaction() as conn:
        rows = conn.execute(
            "INSERT INTO email_outbox (kind, to_address, from_address, reply_to, subject, "
            "body_text, body_html, message_id, headers, cc_addresses, attachment_ids) "
            "SELECT 'REPLY', 'customer' || i || '@example.org', %(from)s, "
            "'support@example.com', '[#202611-' || lpad(i::text, 5, '0') || '] Re: "
            "the printer on floor ' || i || ' jams', "
            "repeat('Hello, here is the invoice you asked for, with the fix. ', 12), "
            "'<p>' || repeat('Hello, here is the invoice you asked for. ', 12) || '</p>', "
            "'<sd.' || %(tag)s || '.' || i || '@example.com>', '{}', %(cc)s, %(files)s "
            "FROM generate_series(1, %(n)s) AS i RETURNING id",
            {
                "from": MAIL_FROM,
                "tag": tag,
                "n": count,
                "cc": list(CC),
                "files": [attachment_id],
            },
        ).fetchall()
    return [r[0] for r in rows]


def outbox_rows(db: Database, ids: list[int]) -> list[dict]:
    """The rows, each with its file's row (what the worker's claim brings it)."""
    with db.transaction() as conn:
        cur = conn.execute(
            "SELECT o.*, a.filename, a.content_type, a.storage_key FROM email_outbox o "
            "JOIN attachments a ON a.id = o.attachment_ids[1] WHERE o.id = ANY(%s) ORDER BY o.id",
            (ids,),
        )
        names = [c.name for c in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


# --- (a) throughput ----------------------------------------------------------------------------


def throughput(settings: Settings, db: Database, folder: Path, args: argparse.Namespace) -> None:
    redis_client = make_redis(settings)
    attachment_id = make_attachment(settings, db)
    storage = make_storage(settings)
    loop_rates, worker_rates, rss = [], [], []
    cpu: dict[str, list[float]] = {"loop": [], "loop sink": [], "worker": [], "worker sink": []}
    for round_ in range(1, args.rounds + 1):
        _fresh_outbox(db)  # every round starts alike, whatever the previous one left
        # The plain loop: the same rows made into the same messages (as anything sending
        # them must: the file read from storage for each) and sent over one connection,
        # To and Cc; no queue, no bookkeeping. smtplib doubles the leading dots itself.
        rows = outbox_rows(db, write_outbox(db, args.emails, f"L{round_}", attachment_id))
        sink = SinkProcess(folder, f"loop{round_}")
        started, loop_cpu = time.perf_counter(), time.process_time()
        with smtplib.SMTP("127.0.0.1", sink.port) as smtp:
            for row in rows:
                data = b"".join(storage.read(row["storage_key"]))
                file = AttachedFile(row["filename"], row["content_type"], data)
                smtp.sendmail(
                    "support@example.com",
                    [row["to_address"], *row["cc_addresses"]],
                    message_bytes(row, MAIL_FROM, [file]),
                )
        loop_rates.append(args.emails / (time.perf_counter() - started))
        cpu["loop"].append(time.process_time() - loop_cpu)
        assert len(sink.stop()) == args.emails
        cpu["loop sink"].append(sink.cpu)
        loop_sizes = sorted(sink.sizes)
        _mark_sent_by_hand(db, [row["id"] for row in rows])  # not the worker's to send

        # The worker: started and idle first, then every id pushed at once.
        _fresh_outbox(db)
        ids = write_outbox(db, args.emails, f"W{round_}", attachment_id)
        with sink_and_worker(settings, folder, f"worker{round_}") as sink:
            started = time.perf_counter()
            push_after_commit(redis_client, ids)
            wait_for(lambda: _unsent(db) == 0, 600, "every email SENT")
            worker_rates.append(args.emails / (time.perf_counter() - started))
        rss.append(sink.worker_rss)
        cpu["worker"].append(sink.worker_cpu)
        cpu["worker sink"].append(sink.cpu)
        assert len(sink.received) == args.emails, f"{len(sink.received)} of {args.emails}"
        # The same messages both ways: as many bytes each (the ids are as long), 3 RCPTs.
        assert sorted(sink.sizes) == loop_sizes, "the loop and the worker sent other bytes"
        print(
            f"  round {round_}: plain loop {loop_rates[-1]:7.0f}/s   "
            f"worker {worker_rates[-1]:7.0f}/s",
            flush=True,
        )
    loop, work = statistics.median(loop_rates), statistics.median(worker_rates)
    size = loop_sizes[0][0] / 1024
    print(f"\n(a) emails per second ({size:.0f} KiB each, To + 2 Cc), median of {args.rounds}")
    print(f"    plain smtplib loop, one connection   {loop:8.0f}/s")
    print(f"    supportdesk worker (1 process)       {work:8.0f}/s")
    verdict = "meets" if work / loop >= TARGET_SHARE else "MISSES"
    print(f"    worker / loop = {work / loop:.2f}  ({verdict} the target of {TARGET_SHARE:.2f})")
    per_email = {k: statistics.median(v) * 1000 / args.emails for k, v in cpu.items()}
    print(
        "    CPU per email (where the time goes): "
        f"loop {per_email['loop']:.1f} ms + its sink {per_email['loop sink']:.1f} ms; "
        f"worker {per_email['worker']:.1f} ms + its sink {per_email['worker sink']:.1f} ms"
    )
    print(f"\n(c) worker peak RSS: {max(rss):.0f} MiB", flush=True)
    redis_client.close()


def _unsent(db: Database) -> int:
    with db.transaction() as conn:
        return conn.execute("SELECT count(*) FROM email_outbox WHERE status <> 'SENT'").fetchone()[
            0
        ]


def _fresh_outbox(db: Database) -> None:
    with db.pool.connection() as conn:
        conn.autocommit = True
        conn.execute("TRUNCATE email_outbox")
        conn.execute("VACUUM (ANALYZE) email_outbox")
        conn.autocommit = False


def _mark_sent_by_hand(db: Database, ids: list[int]) -> None:
    with db.transaction() as conn:
        conn.execute(
            "UPDATE email_outbox SET status = 'SENT', sent_at = now() WHERE id = ANY(%s)", (ids,)
        )


# --- (b) latency -------------------------------------------------------------------------------


def latency(settings: Settings, db: Database, folder: Path, args: argparse.Namespace) -> None:
    services_ = build_services(settings, db, make_redis(settings))
    admin = create_admin(db, "bench-admin@example.com", "Bench Admin", "a long bench pw", 4)
    ticket = services_.tickets.create(
        NewTicket("Cleo", "cleo@example.org", "Latency", "Hello", "NORMAL"),
        channel="WEB",
        actor=admin,
    )
    committed: dict[int, float] = {}
    with sink_and_worker(settings, folder, "latency") as sink:
        for n in range(args.replies):
            posted = services_.messages.post(
                admin, ticket["pid"], NewMessage(f"Reply number {n}."), channel="API"
            )
            committed[posted.message["id"]] = time.time()  # post returns after commit + push
            time.sleep(0.02)
        wait_for(lambda: _unsent(db) == 0, 120, "every reply SENT")
    with db.transaction() as conn:
        by_message = dict(
            conn.execute(
                "SELECT ticket_message_id, message_id FROM email_outbox "
                "WHERE ticket_message_id IS NOT NULL"
            ).fetchall()
        )
    delays = [
        (sink.received[by_message[message_id]] - moment) * 1000  # type: ignore[attr-defined]
        for message_id, moment in committed.items()
    ]
    print(f"\n(b) a reply's commit to the sink's 250, {len(delays)} replies, one every 20 ms:")
    print(
        f"    p50 {statistics.median(delays):6.1f} ms   p95 {percentile(delays, 95):6.1f} ms   "
        f"max {max(delays):6.1f} ms"
    )


if __name__ == "__main__":
    main()
