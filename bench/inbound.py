"""Inbound email: raw MIME messages per second through the signed webhook, next to the same
service called in-process, in the same run (DESIGN.md section 6).

(a) New tickets: `--messages` distinct emails (a Gmail-shaped multipart/alternative, text
    and HTML, from a new sender each: a ticket, its CREATED event and a queued
    acknowledgement each), POSTed as `message/rfc822` with a valid signature to
    `POST /api/inbound/email` on gunicorn (`--workers` processes) by `--clients`
    keep-alive clients; next to the parse (in its child process, as the webhook does it)
    + `InboundService.receive` called by as many threads spread over as many processes (the
    baseline: the same work without HTTP), and by as many threads in one process (to show
    what the GIL does to it).
(b) Replies threaded by In-Reply-To: one reply to each of those tickets, from its
    requester, quoting the acknowledgement (as mail clients do), so each is parsed, trimmed,
    threaded by the acknowledgement's Message-ID and stored as a customer message.
    Each way runs `--rounds` times, alternating; the medians of the rates and the p50/p95
    of every call are reported. No target is set yet.
(c) Where the time goes: one message at a time in-process, the share of parsing (in this
    process, and in the child process the webhook uses: the difference is the sandbox's
    cost), of the service, and of the HTTP layer (gunicorn, middleware, the signature
    check), then the functions that take the most of the service's own time (cProfile).

Run: `make bench-inbound` (`BENCH_ARGS="--messages 300"` for a quicker run).
"""

from __future__ import annotations

import argparse
import cProfile
import http.client
import io
import multiprocessing
import os
import pstats
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

from bench.common import (
    bench_settings,
    percentile,
    run_concurrently,
    server_shape,
    services,
    web_server,
)
from supportdesk.core.config import Settings
from supportdesk.core.db import Database
from supportdesk.core.redis_client import make_redis
from supportdesk.core.signing import WebhookSignature
from supportdesk.mail.inbound.parse import parse_mime
from supportdesk.web.services import Services, build_services

INBOUND_SECRET = "bench-inbound-secret-" + "y" * 24
MAIL_FROM = "Support Desk <support@example.com>"
DEFAULT_WORKERS = 2  # one gunicorn worker per core, as bench.tickets

TEXT = (
    "Hello,\n\nthe invoice for order {n} shows our old VAT number, DE811234567, although we "
    "changed it in the account settings in March. Our accountant cannot book it like this.\n"
    "Could you send a corrected invoice? The order was placed on 3 November.\n\n"
    "Thanks,\nCustomer {n}\nAccounts payable, Example Trading GmbH\n"
)
REPLY = (
    "Thank you, that was quick. One more thing: the delivery address on it is also wrong, "
    "it should be Hafenstrasse 12.\n\nBest regards,\nCustomer {n}\n\n"
    "On {date}, Support Desk <support@example.com> wrote:\n"
    "> Hello Customer {n},\n>\n> we have received your request and opened ticket {pid}.\n"
    "> We will answer as soon as we can; reply to this email to add to it.\n>\n"
    "> Support Desk\n"
)


def main() -> None:
    args = parse_args()
    print(
        f"bench-inbound: {os.cpu_count()} CPUs, {server_shape(args.workers)}, "
        f"{args.clients} clients, {args.messages} messages x {args.rounds} rounds per way\n"
    )
    with services() as (database_url, redis_url):
        settings = inbound_settings(database_url, redis_url, args.clients)
        env = {
            "INBOUND_EMAIL_SECRET": INBOUND_SECRET,
            "MAIL_FROM": MAIL_FROM,
            "ACKS_PER_ADDRESS_PER_DAY": str(10**6),
        }
        db = Database(settings).open(wait=True)
        redis_client = make_redis(settings)
        try:
            built = build_services(settings, db, redis_client)
            with web_server(database_url, redis_url, args.workers, env) as server:
                ways: dict[str, Way] = {
                    f"webhook, gunicorn x{args.workers}": http_way(server.port, args.clients),
                    f"service, {args.workers} processes": processes_way(
                        database_url, redis_url, args.workers, args.clients
                    ),
                    "service, 1 process": threads_way(built, args.clients),
                }
                throughput(db, ways, args)
                where_the_time_goes(db, built, server.port, args)
        finally:
            redis_client.close()
            db.close()


def inbound_settings(database_url: str, redis_url: str, threads: int) -> Settings:
    return bench_settings(
        database_url,
        redis_url,
        mail_from=MAIL_FROM,
        inbound_email_secret=INBOUND_SECRET,
        acks_per_address=10**6,
        db_pool_max_size=threads + 2,
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.inbound", description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=1000, help="emails per way and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each way")
    parser.add_argument("--clients", type=int, default=8, help="concurrent senders")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="gunicorn workers")
    parser.add_argument("--profile", type=int, default=300, help="messages for (c)")
    return parser.parse_args()


# --- the messages ------------------------------------------------------------------------------


def _message(sender: str, subject: str, text: str, message_id: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "support@example.com"
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = message_id
    message["MIME-Version"] = "1.0"
    message.set_content(text)
    paragraphs = "".join(f"<p>{p}</p>" for p in text.split("\n\n"))
    message.add_alternative(
        f'<div dir="ltr">{paragraphs.replace(chr(10), "<br>")}</div>', subtype="html"
    )
    return message


def new_ticket_email(tag: str, n: int) -> bytes:
    return _message(
        f"Customer {n} <customer-{tag}-{n}@example.org>",
        f"Invoice for order {n} shows the wrong VAT number",
        TEXT.format(n=n),
        f"<CAF{tag}{n:06d}=bench@mail.example.org>",
    ).as_bytes()


def reply_email(tag: str, n: int, acknowledgement: dict[str, str]) -> bytes:
    message = _message(
        f"Customer {n} <customer-{tag}-{n}@example.org>",
        f"Re: {acknowledgement['subject']}",
        REPLY.format(n=n, date="Thu, 26 Nov 2026 at 10:02", pid=acknowledgement["pid"]),
        f"<CAF{tag}{n:06d}=reply@mail.example.org>",
    )
    message["In-Reply-To"] = acknowledgement["message_id"]
    message["References"] = acknowledgement["message_id"]
    return message.as_bytes()


def acknowledgements(db: Database, tag: str) -> dict[int, dict[str, str]]:
    """n -> the acknowledgement sent to customer-<tag>-<n> (its Message-ID and subject)."""
    with db.transaction() as conn:
        rows = conn.execute(
            "SELECT o.to_address, o.message_id, o.subject, t.pid FROM email_outbox o "
            "JOIN tickets t ON t.id = o.ticket_id "
            "WHERE o.kind = 'ACKNOWLEDGEMENT' AND o.to_address LIKE %s",
            (f"customer-{tag}-%",),
        ).fetchall()
    found = {}
    for to_address, message_id, subject, pid in rows:
        n = int(to_address.split("@")[0].rsplit("-", 1)[1])
        found[n] = {"message_id": message_id, "subject": subject, "pid": pid}
    return found


# --- the ways ----------------------------------------------------------------------------------

Sender = Callable[[bytes], object]
Way = Callable[[list[bytes]], tuple[float, list[float]]]  # emails -> (emails/s, each call's s)


def http_sender(port: int) -> Callable[[], Sender]:
    signature = WebhookSignature(INBOUND_SECRET, lambda: datetime.now(UTC))

    def make() -> Sender:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

        def send(raw: bytes) -> str:
            timestamp = int(time.time())
            headers = {
                "Content-Type": "message/rfc822",
                "X-Timestamp": str(timestamp),
                "X-Signature": signature.sign(timestamp, raw),
            }
            conn.request("POST", "/api/inbound/email", body=raw, headers=headers)
            response = conn.getresponse()
            body = response.read()
            if response.status != 201:
                raise RuntimeError(f"the webhook gave {response.status}: {body[:300]!r}")
            return body.decode()

        return send

    return make


def service_sender(services: Services) -> Callable[[], Sender]:
    inbound, parser = services.inbound, services.inbound_parser
    return lambda: lambda raw: inbound.receive(parser.parse_mime(raw))


def run_threads(
    make: Callable[[], Sender], emails: list[bytes], threads: int
) -> tuple[float, list[float]]:
    def make_worker() -> Callable[[int], None]:
        send = make()
        return lambda n: send(emails[n])

    wall, latencies = run_concurrently(len(emails), threads, make_worker)
    return len(emails) / wall, latencies


def http_way(port: int, clients: int) -> Way:
    return lambda emails: run_threads(http_sender(port), emails, clients)


def threads_way(services: Services, threads: int) -> Way:
    return lambda emails: run_threads(service_sender(services), emails, threads)


def processes_way(database_url: str, redis_url: str, processes: int, threads: int) -> Way:
    """The service in `processes` fresh processes of `threads / processes` threads each,
    started (and warmed) before the clock starts, as gunicorn's workers are."""

    def run(emails: list[bytes]) -> tuple[float, list[float]]:
        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(processes)
        results = context.Queue()
        children = [
            context.Process(
                target=_service_process,
                args=(
                    database_url,
                    redis_url,
                    emails[i::processes],
                    max(1, threads // processes),
                    barrier,
                    results,
                ),
            )
            for i in range(processes)
        ]
        for child in children:
            child.start()
        outcomes = [results.get(timeout=600) for _ in children]
        for child in children:
            child.join(60)
        if any(isinstance(o, str) for o in outcomes):
            raise SystemExit("a service process failed:\n" + "\n".join(map(str, outcomes)))
        started = min(o[0] for o in outcomes)
        ended = max(o[1] for o in outcomes)
        return len(emails) / (ended - started), [s for o in outcomes for s in o[2]]

    return run


def _service_process(database_url, redis_url, emails, threads, barrier, results) -> None:
    try:
        settings = inbound_settings(database_url, redis_url, threads)
        db = Database(settings).open(wait=True)
        redis_client = make_redis(settings)
        try:
            send = service_sender(build_services(settings, db, redis_client))
            warm = [new_ticket_email(f"warm{os.getpid()}", n) for n in range(4 * threads)]
            run_threads(send, warm, threads)
            barrier.wait(timeout=120)
            started = time.time()
            _, latencies = run_threads(send, emails, threads)
            results.put((started, time.time(), latencies))
        finally:
            redis_client.close()
            db.close()
    except BaseException as ex:  # the parent reports it
        results.put(f"{type(ex).__name__}: {ex}")


# --- (a) and (b) -------------------------------------------------------------------------------


def throughput(db: Database, ways: dict[str, Way], args: argparse.Namespace) -> None:
    results: dict[tuple[str, str], tuple[list[float], list[float]]] = {
        (kind, way): ([], []) for kind in ("new", "reply") for way in ways
    }
    # Warm every way (connections, prepared statements, templates) before measuring.
    for i, run in enumerate(ways.values()):
        run([new_ticket_email(f"warm{i}", n) for n in range(4 * args.clients)])
    for round_ in range(1, args.rounds + 1):
        for i, (way, run) in enumerate(ways.items()):
            tag = f"r{round_}w{i}"
            rate, each = run([new_ticket_email(tag, n) for n in range(args.messages)])
            results["new", way][0].append(rate)
            results["new", way][1].extend(each)
            acks = acknowledgements(db, tag)
            if len(acks) != args.messages:
                raise SystemExit(f"{len(acks)} acknowledgements for {args.messages} tickets")
            replies = [reply_email(tag, n, acks[n]) for n in range(args.messages)]
            rate, each = run(replies)
            results["reply", way][0].append(rate)
            results["reply", way][1].extend(each)
            check_threaded(db, tag, args.messages)
        print(f"  round {round_} done")
    for kind, title in (("new", "(a) new tickets"), ("reply", "(b) replies by In-Reply-To")):
        print(f"\n{title}: emails/s (median of {args.rounds} rounds) and per-call latency")
        rates = {}
        for way in ways:
            per_round, each = results[kind, way]
            rates[way] = statistics.median(per_round)
            ms = [s * 1000 for s in each]
            print(
                f"  {way:22} {rates[way]:6.0f}/s   p50 {statistics.median(ms):6.1f} ms   "
                f"p95 {percentile(ms, 95):6.1f} ms   rounds: "
                + ", ".join(f"{r:.0f}" for r in per_round)
            )
        http_rate, baseline, _ = rates.values()
        print(f"  webhook / the service in as many processes: {http_rate / baseline:.2f}")


def check_threaded(db: Database, tag: str, expected: int) -> None:
    """Every reply is a second customer message on its own ticket: nothing opened anew."""
    with db.transaction() as conn:
        tickets, messages = conn.execute(
            "SELECT count(DISTINCT t.id), count(m.id) FROM tickets t "
            "JOIN ticket_messages m ON m.ticket_id = t.id WHERE t.requester_email LIKE %s",
            (f"customer-{tag}-%",),
        ).fetchone()
    if (tickets, messages) != (expected, 2 * expected):
        raise SystemExit(f"replies did not thread: {tickets} tickets, {messages} messages")


# --- (c) where the time goes -------------------------------------------------------------------


def where_the_time_goes(
    db: Database, services: Services, port: int, args: argparse.Namespace
) -> None:
    inbound, parser = services.inbound, services.inbound_parser
    count = args.profile
    emails = [new_ticket_email("prof", n) for n in range(count)]
    parse_s, sandbox_s, service_s = [], [], []
    for raw in emails[: count // 2]:
        started = time.perf_counter()
        parse_mime(raw)
        parsed = time.perf_counter()
        email = parser.parse_mime(raw)
        sandboxed = time.perf_counter()
        inbound.receive(email)
        parse_s.append(parsed - started)
        sandbox_s.append(sandboxed - parsed)
        service_s.append(time.perf_counter() - sandboxed)
    send = http_sender(port)()
    http_s = []
    for raw in emails[count // 2 :]:
        started = time.perf_counter()
        send(raw)
        http_s.append(time.perf_counter() - started)
    parse_ms = statistics.median(parse_s) * 1000
    sandbox_ms = statistics.median(sandbox_s) * 1000
    service_ms = statistics.median(service_s) * 1000
    http_ms = statistics.median(http_s) * 1000
    print(f"\n(c) one new-ticket email at a time (median of {count // 2}):")
    print(f"  parse_mime (email package, html2text, reply trimming)  {parse_ms:6.2f} ms")
    print(f"  the same in the parse's child process (as the webhook)  {sandbox_ms:6.2f} ms")
    print(f"  InboundService.receive (threading, the transaction, ack) {service_ms:6.2f} ms")
    print(f"  the whole webhook call over HTTP                        {http_ms:6.2f} ms")
    print(
        f"  so the HTTP layer (gunicorn, middleware, signature, JSON) "
        f"{http_ms - sandbox_ms - service_ms:6.2f} ms"
    )
    profiler = cProfile.Profile()
    more = [new_ticket_email("cprof", n) for n in range(count)]
    profiler.enable()
    for raw in more:
        inbound.receive(parse_mime(raw))
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    waits = sum(
        calls
        for (file, _, name), (calls, *_rest) in stats.stats.items()  # type: ignore[attr-defined]
        if name == "wait" and file.endswith("psycopg/connection.py")
    )
    print(f"\n  PostgreSQL round trips per new-ticket email: {waits / count:.1f}")
    stats.sort_stats("tottime").print_stats(12)
    print(f"\n  cProfile of {count} emails in-process, the 12 largest own times:")
    lines = out.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls"))
    for line in lines[start : start + 13]:
        print("  " + line[:150])


if __name__ == "__main__":
    main()
