"""Demo and benchmark data: `supportdesk seed --tickets N` (a million in a few minutes).

Tickets are spread over the last months with a mild upward trend and office hours, made of
realistic subjects, requesters, priorities and statuses that fit their age (old tickets are
mostly RESOLVED or CLOSED, recent ones OPEN, IN_PROGRESS or WAITING), and assigned to a
handful of active staff, a share left unassigned. Each ticket gets its CREATED event, as
TicketService.create writes it, and a conversation of MESSAGES_PER_TICKET messages (the
customer's first, a staff reply, the customer's answer, a staff reply or INTERNAL note; the
later ones without their MESSAGE_ADDED events, which would only slow the load), but no
outbox email: demo data must never mail anyone (the requesters are on reserved example
domains anyway). The message bodies carry words the subjects never do: COMMON_BODY_WORD in a
large share of the tickets, RARE_BODY_WORD in about RARE_BODY_TICKETS of them, whatever the
count (the full-text search of `make bench-tickets`).

Speed comes from COPY: the tickets are streamed in created_at order, one COPY per month, and
each month's messages and events are derived from its tickets on the server with INSERT ...
SELECT. PIDs follow DESIGN.md section 4: just before a month is written, its counter is
advanced once by the number of tickets going into it, and the tickets take the numbers in
between, so numbering is gapless and continues where it stood. All of it is one transaction:
a failure leaves nothing behind, no half-advanced counter. The current month comes last, so
a ticket opened meanwhile waits for its counter only while that month is being written.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
import secrets
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from tqdm import tqdm

from supportdesk.accounts.auth import hash_password
from supportdesk.core.db import Database, queries
from supportdesk.core.vocabulary import CHANNELS, PRIORITIES, STATUSES
from supportdesk.tickets.pids import format_pid

DEFAULT_AGENTS = 8
MESSAGES_PER_TICKET = 4  # 2 without staff to write the other two (supportdesk/sql/seed.sql)
COMMON_BODY_WORD = "screenshot"  # in the staff replies and customer answers (seed.sql)
RARE_BODY_WORD = "kerberos"  # in the answers of tickets whose id is a multiple of rare_every
RARE_BODY_TICKETS = 6
DEFAULT_MONTHS = 18

# COPY streams rows rather than taking parameters and returning rows, which the named-query
# loader is not made for: it stays here, a constant naming the columns the rows below fill.
# `id` is left out: tickets.id is GENERATED ALWAYS, the sequence numbers the rows in order.
COPY_TICKETS = (
    "COPY tickets (pid, subject, status, priority, requester_email, requester_name, channel,"
    " assigned_to, created_at, updated_at) FROM STDIN"
)

_max_ticket_id = queries.max_ticket_id
_reserve_pid_numbers = queries.reserve_pid_numbers
_check_constraints_now = queries.check_constraints_now
_insert_seeded_messages = queries.insert_seeded_messages
_insert_seeded_events = queries.insert_seeded_events
_vacuum_seeded_tables = queries.vacuum_seeded_tables
_active_users = queries.active_users
_all_users = queries.all_users
_insert_user = queries.insert_user

HOUR = 3600.0
DAY = 86400.0
PROGRESS_EVERY = 5_000  # rows between progress-bar updates (each update costs a little)

# --- the vocabulary -------------------------------------------------------------------------

PRODUCTS = (
    "mobile app",
    "iOS app",
    "Android app",
    "web dashboard",
    "customer portal",
    "desktop client",
    "reporting module",
    "admin console",
    "browser extension",
    "public API",
    "checkout page",
    "Outlook add-in",
)
SYMPTOMS = (
    "crashes on start",
    "is very slow",
    "shows a blank page",
    "keeps logging me out",
    "does not sync",
    "freezes when uploading files",
    "shows the wrong time zone",
    "does not load in Safari",
    "times out",
    "shows an empty list",
    "sends duplicate notifications",
    "cannot find my projects",
    "rejects my password",
)
REPORTS = ("the monthly report", "all invoices", "the user list", "time entries", "the audit log")
FEATURES = ("dark mode", "bulk edit", "CSV import", "single sign-on", "custom fields", "webhooks")
PLANS = ("Starter", "Team", "Business", "Enterprise")
ERROR_CODES = ("500", "502", "403", "E1042", "E2210", "429")


def _subject_makers() -> tuple[list[Any], list[float]]:
    """(makers, cumulative weights); a maker builds one subject from (rng, year)."""
    choice = random.Random.choice
    weighted = [
        (6, lambda r, y: f"Cannot log in to the {choice(r, PRODUCTS)} after the update"),
        (14, lambda r, y: f"{choice(r, PRODUCTS)} {choice(r, SYMPTOMS)}"),
        (8, lambda r, y: f"The {choice(r, PRODUCTS)} {choice(r, SYMPTOMS)} since this morning"),
        (5, lambda r, y: f"Invoice {y}-{r.randrange(1, 1000):03d} shows the wrong VAT rate"),
        (4, lambda r, y: f"Invoice {y}-{r.randrange(1, 1000):03d} was charged twice"),
        (3, lambda r, y: f"Refund for order {r.randrange(100000, 1000000)} not received"),
        (3, lambda r, y: f"Order {r.randrange(100000, 1000000)} still not delivered"),
        (
            4,
            lambda r, y: f"How do I export {choice(r, REPORTS)} from the {choice(r, PRODUCTS)}?",
        ),
        (4, lambda r, y: "Password reset email never arrives"),
        (
            4,
            lambda r, y: f"Feature request: {choice(r, FEATURES)} in the {choice(r, PRODUCTS)}",
        ),
        (3, lambda r, y: f"Two-factor codes are rejected in the {choice(r, PRODUCTS)}"),
        (2, lambda r, y: "Please cancel my subscription"),
        (3, lambda r, y: f"Change the billing address on invoice {y}-{r.randrange(1, 1000):03d}"),
        (
            5,
            lambda r, y: f"Error {choice(r, ERROR_CODES)} when saving in the {choice(r, PRODUCTS)}",
        ),
        (
            5,
            lambda r, y: (
                f"{choice(r, PRODUCTS)}: {choice(r, SYMPTOMS)} after update "
                f"{r.randrange(2, 9)}.{r.randrange(0, 20)}"
            ),
        ),
        (3, lambda r, y: f"Question about the {choice(r, PLANS)} plan"),
        (2, lambda r, y: f"Please add {r.randrange(2, 40)} more seats to our account"),
    ]
    makers, cumulative, total = [], [], 0.0
    for weight, make in weighted:
        total += weight
        makers.append(make)
        cumulative.append(total)
    return makers, [c / total for c in cumulative]


_PLAIN_FIRST_NAMES = """Maria James Anna Peter Laura David Sofia Michael Emma Thomas Olivia
Daniel Julia Lucas Chloe Martin Hannah Paul Sarah Mark Nina Oliver Eva Samuel Grace Adam Lea Ravi
Priya Chen Mei Kenji Yuki Omar Fatima Ahmed Ines Pedro"""
_PLAIN_LAST_NAMES = """Smith Garcia Keller Novak Rossi Jensen Brown Martin Silva Kowalski Nguyen
Patel Kim Tanaka Schmidt Dubois Larsen Murphy Costa Horvat Fischer Wilson Ivanova Haddad Okafor
Lindqvist Moreau Walsh Bianchi Yilmaz Santos Berg Chen"""
# (display name, its ASCII form for addresses)
FIRST_NAMES = (
    *((n, n.lower()) for n in _PLAIN_FIRST_NAMES.split()),
    ("José", "jose"),
    ("Zoë", "zoe"),
    ("Björn", "bjorn"),
    ("Łukasz", "lukasz"),
    ("Chloé", "chloe"),
)
LAST_NAMES = (
    *((n, n.lower()) for n in _PLAIN_LAST_NAMES.split()),
    ("Müller", "mueller"),
    ("Núñez", "nunez"),
    ("O'Brien", "obrien"),
    ("Søndergaard", "sondergaard"),
)
# Reserved names only (RFC 2606 / 6761): a reply to a seeded ticket can never reach anyone.
CUSTOMER_DOMAINS = (
    "example.com",
    "example.org",
    "example.net",
    "mail.example",
    "northwind.example",
    "globex.example",
    "initech.example",
    "umbrella.example",
    "acme.example",
    "contoso.example",
)
STAFF_DOMAIN = "support.example.com"

PRIORITY_WEIGHTS = (0.15, 0.80, 0.95, 1.0)  # cumulative: mostly NORMAL
CHANNEL_WEIGHTS = (0.55, 0.95, 1.0)
# Cumulative status weights by the ticket's age: (younger than N days, weights).
STATUS_BY_AGE = (
    (2, (0.55, 0.80, 0.90, 1.0, 1.0)),
    (14, (0.20, 0.45, 0.65, 0.95, 1.0)),
    (60, (0.06, 0.12, 0.20, 0.60, 1.0)),
    (math.inf, (0.01, 0.015, 0.02, 0.32, 1.0)),
)
UNASSIGNED_SHARE = {"OPEN": 0.7}  # a new ticket waits for triage; others mostly have an owner
UNASSIGNED_OTHERWISE = 0.08
# How long after creation the last change came, by status (mean seconds, exponential).
LAST_CHANGE_AFTER = {
    "OPEN": 0.0,
    "IN_PROGRESS": 6 * HOUR,
    "WAITING": 1 * DAY,
    "RESOLVED": 2 * DAY,
    "CLOSED": 6 * DAY,
}


# --- the plan ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class MonthPlan:
    period: str  # YYYYMM
    start: float  # epoch seconds, inclusive
    end: float  # exclusive
    count: int


def _month_start(year: int, month: int) -> float:
    return datetime(year, month, 1, tzinfo=UTC).timestamp()


def plan_months(count: int, months: int, now: datetime) -> list[MonthPlan]:
    """How many tickets each UTC month of the window gets: in proportion to the part of the
    month inside the window, growing towards the present (the last month about twice the
    first), rounded so that the counts add up to `count`."""
    end = now.timestamp()
    year, month = now.year, now.month - months
    while month < 1:
        year, month = year - 1, month + 12
    start = datetime(year, month, min(now.day, 28), now.hour, now.minute, tzinfo=UTC).timestamp()
    spans: list[tuple[str, float, float]] = []
    y, m = year, month
    while True:
        lo = max(_month_start(y, m), start)
        ny, nm = (y + 1, 1) if m == 12 else (y, m + 1)
        hi = min(_month_start(ny, nm), end)
        if hi > lo:
            spans.append((f"{y:04d}{m:02d}", lo, hi))
        if hi >= end:
            break
        y, m = ny, nm
    window = end - start
    weights = [(hi - lo) * (1 + ((lo + hi) / 2 - start) / window) for _, lo, hi in spans]
    exact = [count * w / sum(weights) for w in weights]
    counts = [int(x) for x in exact]
    # Largest remainders get the rounding leftovers, so the total is exact.
    for i in sorted(range(len(exact)), key=lambda i: exact[i] - counts[i], reverse=True)[
        : count - sum(counts)
    ]:
        counts[i] += 1
    return [MonthPlan(p, lo, hi, n) for (p, lo, hi), n in zip(spans, counts, strict=True) if n]


def _office_hours_weight(ts: float) -> float:
    """Customers write mostly on weekdays during the (UTC) working day."""
    days, seconds = divmod(ts, DAY)
    weekday = (int(days) + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
    if weekday >= 5:
        return 0.2
    return 1.0 if 8 * HOUR <= seconds < 18 * HOUR else 0.3


def _moments(rng: random.Random, plan: MonthPlan) -> list[float]:
    """`plan.count` creation times inside the month, sorted, denser in office hours."""
    out: list[float] = []
    span = plan.end - plan.start
    while len(out) < plan.count:
        ts = plan.start + rng.random() * span
        if rng.random() < _office_hours_weight(ts):
            out.append(ts)
    out.sort()
    return out


# --- staff ------------------------------------------------------------------------------------


def ensure_assignees(
    conn: psycopg.Connection, wanted: int, rng: random.Random, bcrypt_rounds: int
) -> tuple[list[int], int]:
    """(ids of the active staff to assign tickets to, how many AGENTs were created for it).

    With fewer than `wanted` active staff, AGENT accounts make up the difference. Each gets a
    real bcrypt hash of a random password nobody knows: an ADMIN sets a password on the
    Staff page before that account is used.
    """
    staff = [u["id"] for u in _active_users(conn)]
    taken = {u["email"].lower() for u in _all_users(conn)}
    created = 0
    while len(staff) < wanted:
        first, first_ascii = rng.choice(FIRST_NAMES)
        last, last_ascii = rng.choice(LAST_NAMES)
        email = next(
            address
            for n in itertools.count(1)
            if (address := f"{first_ascii}.{last_ascii}{n if n > 1 else ''}@{STAFF_DOMAIN}")
            not in taken
        )
        taken.add(email)
        user = _insert_user(
            conn,
            email=email,
            name=f"{first} {last}",
            role="AGENT",
            password_hash=hash_password(secrets.token_urlsafe(24), bcrypt_rounds),
            is_active=True,
        )
        staff.append(user["id"])
        created += 1
    return staff, created


# --- the rows ---------------------------------------------------------------------------------


class TicketFactory:
    """Builds the COPY rows of one month after another, in created_at order."""

    def __init__(self, rng: random.Random, now: datetime, assignees: list[int], count: int):
        self.rng = rng
        self.now = now.timestamp()
        self.makers, self.maker_weights = _subject_makers()
        self.assignees = assignees
        self.rare_every = 1  # RARE_BODY_WORD: in the tickets whose id is a multiple of it
        # Some staff carry more tickets than others.
        loads = [rng.uniform(0.5, 1.5) for _ in assignees]
        total = sum(loads)
        self.assignee_weights = [sum(loads[: i + 1]) / total for i in range(len(loads))]
        # Requesters come back: a pool of customers, a few of them frequent.
        self.customers = [self._customer() for _ in range(max(50, min(count // 4, 100_000)))]

    def _customer(self) -> tuple[str, str]:
        rng = self.rng
        first, first_ascii = rng.choice(FIRST_NAMES)
        last, last_ascii = rng.choice(LAST_NAMES)
        local = rng.choice(
            (f"{first_ascii}.{last_ascii}", f"{first_ascii[0]}{last_ascii}", f"{first_ascii}")
        )
        if rng.random() < 0.6:
            local += str(rng.randrange(1, 100))
        return f"{first} {last}", f"{local}@{rng.choice(CUSTOMER_DOMAINS)}"

    def rows(self, plan: MonthPlan, first_number: int) -> Iterator[tuple[Any, ...]]:
        rng, now = self.rng, self.now
        random_ = rng.random
        customers, n_customers = self.customers, len(self.customers)
        assignees = self.assignees
        year = plan.period[:4]
        for number, ts in enumerate(_moments(rng, plan), start=first_number):
            age_days = (now - ts) / DAY
            for limit, weights in STATUS_BY_AGE:
                if age_days < limit:
                    status = STATUSES[bisect.bisect(weights, random_())]
                    break
            mean = LAST_CHANGE_AFTER[status]
            updated = min(now, ts + rng.expovariate(1 / mean)) if mean else ts
            if not assignees or random_() < UNASSIGNED_SHARE.get(status, UNASSIGNED_OTHERWISE):
                assignee = None
            else:
                assignee = assignees[bisect.bisect(self.assignee_weights, random_())]
            name, email = customers[int(n_customers * random_() ** 2)]
            make = self.makers[bisect.bisect(self.maker_weights, random_())]
            subject = make(rng, year)
            yield (
                format_pid(plan.period, number),
                subject[0].upper() + subject[1:],
                status,
                PRIORITIES[bisect.bisect(PRIORITY_WEIGHTS, random_())],
                email,
                name,
                CHANNELS[bisect.bisect(CHANNEL_WEIGHTS, random_())],
                assignee,
                datetime.fromtimestamp(ts, UTC),
                datetime.fromtimestamp(updated, UTC),
            )


# --- the service ------------------------------------------------------------------------------


@dataclass
class SeedResult:
    tickets: int
    assignees: int
    agents_created: int
    # period -> (first, last) number seeded into that month
    numbers: dict[str, tuple[int, int]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def first_pid(self) -> str:
        period = min(self.numbers)
        return format_pid(period, self.numbers[period][0])

    @property
    def last_pid(self) -> str:
        period = max(self.numbers)
        return format_pid(period, self.numbers[period][1])


def seed_tickets(
    db: Database,
    count: int,
    *,
    agents: int = DEFAULT_AGENTS,
    months: int = DEFAULT_MONTHS,
    seed: int | None = None,
    bcrypt_rounds: int = 12,
    progress: bool = True,
    vacuum: bool = True,
    owner_url: str | None = None,
    now: datetime | None = None,
) -> SeedResult:
    """Seed `count` tickets over the last `months` months, in one transaction.

    `seed` makes the data reproducible (the same seed on the same empty database gives the
    same rows, save for `now`). `vacuum` runs VACUUM (ANALYZE) afterwards, so that the lists
    are planned and served as they would be on a long-lived database: as the tables' owner
    (`owner_url`, MIGRATION_DATABASE_URL) when the app's own role may not.
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    if months < 1:
        raise ValueError("months must be at least 1")
    if agents < 0:
        raise ValueError("agents must not be negative")
    rng = random.Random(seed)  # noqa: S311 - demo data; the passwords use `secrets`
    now = now or datetime.now(UTC)
    plan = plan_months(count, months, now)
    seconds = dict.fromkeys(("staff", "tickets", "messages_events", "commit"), 0.0)
    numbers: dict[str, tuple[int, int]] = {}
    bar = _bar(count, progress)
    with bar, db.transaction() as conn:
        started = time.perf_counter()
        assignees, created = ensure_assignees(conn, agents, rng, bcrypt_rounds)
        factory = TicketFactory(rng, now, assignees, count)
        factory.rare_every = max(1, count // RARE_BODY_TICKETS)
        _check_constraints_now(conn)
        seconds["staff"] = time.perf_counter() - started
        # Oldest month first, the current one last: a ticket someone opens meanwhile waits
        # for the current month's counter only while that month is written, and counter
        # rows are always locked in the same order.
        for month in plan:
            bar.set_postfix_str(month.period, refresh=False)
            numbers[month.period] = _seed_month(conn, factory, month, bar, seconds)
        bar.set_postfix_str("commit")
        started = time.perf_counter()
    seconds["commit"] = time.perf_counter() - started
    if vacuum:
        _say("VACUUM (ANALYZE) of tickets, messages and events...", progress)
        started = time.perf_counter()
        vacuum_seeded_tables(owner_url or db.pool.conninfo)
        seconds["vacuum"] = time.perf_counter() - started
    return SeedResult(count, len(assignees), created, numbers, seconds)


def _seed_month(
    conn: psycopg.Connection,
    factory: TicketFactory,
    month: MonthPlan,
    bar: tqdm,
    seconds: dict[str, float],
) -> tuple[int, int]:
    """One month's tickets, then their first messages and CREATED events; (first, last) PID
    number. The month's counter is taken just before its rows are written."""
    started = time.perf_counter()
    after_id = _max_ticket_id(conn)
    last = _reserve_pid_numbers(conn, period=month.period, count=month.count)
    first = last - month.count + 1
    with conn.cursor() as cur, cur.copy(COPY_TICKETS) as copy:
        done = 0
        for row in factory.rows(month, first):
            copy.write_row(row)
            done += 1
            if done == PROGRESS_EVERY:
                bar.update(done)
                done = 0
        bar.update(done)
    seconds["tickets"] += time.perf_counter() - started

    started = time.perf_counter()
    messages = _insert_seeded_messages(
        conn, after_id=after_id, staff=factory.assignees, rare_every=factory.rare_every
    )
    events = _insert_seeded_events(conn, after_id=after_id)
    per_ticket = MESSAGES_PER_TICKET if factory.assignees else 2
    if messages != per_ticket * month.count or events != month.count:  # rolls all back
        raise RuntimeError(
            f"{month.period}: seeded {month.count} tickets but wrote {messages} messages"
            f" and {events} events"
        )
    seconds["messages_events"] += time.perf_counter() - started
    return first, last


def vacuum_seeded_tables(conninfo: str) -> None:
    """VACUUM cannot run inside a transaction: its own autocommit connection, not the pool's."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        _vacuum_seeded_tables(conn)


def _bar(total: int, enabled: bool) -> tqdm:
    """The progress bar, on stderr; a disabled tqdm costs nothing per update."""
    return tqdm(
        total=total,
        unit=" tickets",
        unit_scale=True,
        file=sys.stderr,
        desc="seeding",
        dynamic_ncols=True,
        disable=not enabled,
    )


def _say(message: str, enabled: bool) -> None:
    if enabled:
        print(message, file=sys.stderr, flush=True)
