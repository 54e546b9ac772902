"""Do failed logins take the same time whatever the reason? (DESIGN.md section 5) And does
a password-reset request? (section 13)

An attacker who can tell "unknown email" from "wrong password" by the response time can
enumerate staff accounts. Every failure runs one bcrypt check at the configured cost, so the
three medians should be within a few percent of each other. Run: `make bench-login`.

A reset request is answered without reading the account (it is counted and queued alike for
every address; the worker looks the account up): the medians for a known, a deactivated and
an unknown address should be within 0.95-1.05 of each other. The worker runs meanwhile, in a
process of its own as in production, making the known address's link and email.
"""

from __future__ import annotations

import multiprocessing
import statistics
import time

import webtest

from bench.common import bench_settings, describe, services
from supportdesk.accounts.password_resets import PasswordResets
from supportdesk.accounts.staff import create_admin
from supportdesk.core.config import Settings
from supportdesk.core.db import Database
from supportdesk.core.redis_client import make_redis
from supportdesk.web.app import create_app
from supportdesk.worker.password_resets import SETTLE_SECONDS, ResetRequestsLoop

ROUNDS = 12  # the production default
ATTEMPTS = 25
RESET_ATTEMPTS = 3000  # a reset request takes milliseconds: many more, for a steady median
RESET_WARMUP = 200


def main() -> None:
    with services() as (database_url, redis_url):
        settings = bench_settings(
            database_url,
            redis_url,
            bcrypt_rounds=ROUNDS,
            login_max_failures_per_account=10**6,
            login_max_failures_per_address=10**6,
            # Every reset request is queued (past a limit none is, for any address alike).
            password_resets_per_address=10**6,
            password_resets_per_account=10**6,
        )
        db = Database(settings).open(wait=True)
        create_admin(db, "known@example.com", "Known", "the right password", ROUNDS)
        create_admin(db, "gone@example.com", "Gone", "the right password", ROUNDS)
        with db.transaction() as conn:
            conn.execute("UPDATE users SET is_active = false WHERE email = 'gone@example.com'")
        client = webtest.TestApp(create_app(settings, db=db, redis_client=make_redis(settings)))
        cases = {
            "wrong password": ("known@example.com", "not the password"),
            "unknown email": ("nobody@example.com", "not the password"),
            "deactivated user": ("gone@example.com", "the right password"),
        }
        timings: dict[str, list[float]] = {case: [] for case in cases}
        for _ in range(ATTEMPTS):  # interleaved, so drift affects every case alike
            for case, (email, password) in cases.items():
                start = time.perf_counter()
                client.post_json(
                    "/api/auth/login", {"email": email, "password": password}, status=401
                )
                timings[case].append(time.perf_counter() - start)
        resets = reset_timings(settings, client, SETTLE_SECONDS)
        # The control: the worker answering each request at once, on its answer's tail.
        at_once = reset_timings(settings, client, 0.0)
        db.close()
    baseline = statistics.median(timings["wrong password"])
    print(f"failed login, bcrypt cost {ROUNDS}, {ATTEMPTS} attempts each, interleaved")
    for case, values in timings.items():
        ratio = statistics.median(values) / baseline
        print(f"  {case:17s} {describe(values)}   ratio to wrong password {ratio:5.2f}")
    for timings, when in (
        (resets, f"{SETTLE_SECONDS:g} s after each request (as it runs)"),
        (at_once, "at once (the control: no settling)"),
    ):
        baseline = statistics.median(timings["unknown email"])
        print(
            f"password-reset request (202), {RESET_ATTEMPTS} each, interleaved; the worker, "
            f"in its own process, answers {when}"
        )
        for case, values in timings.items():
            ratio = statistics.median(values) / baseline
            print(f"  {case:17s} {describe(values)}   ratio to unknown email {ratio:5.2f}")


def reset_timings(
    settings: Settings, client: webtest.TestApp, settle: float
) -> dict[str, list[float]]:
    """POST /api/auth/password-reset for a known, a deactivated and an unknown address,
    interleaved, with the worker's loop running in another process."""
    worker = multiprocessing.get_context("spawn").Process(
        target=answer_resets, args=(settings, settle), daemon=True
    )
    worker.start()
    cases = {
        "known email": "known@example.com",
        "deactivated user": "gone@example.com",
        "unknown email": "nobody@example.com",
    }
    timings: dict[str, list[float]] = {case: [] for case in cases}
    try:
        order = list(cases.items())
        for n in range(RESET_WARMUP + RESET_ATTEMPTS):
            # Each case in turn goes first: the worker's work for the known address (after
            # its answer) falls on each of the others alike.
            for case, email in order[n % 3 :] + order[: n % 3]:
                start = time.perf_counter()
                client.post_json(
                    "/api/auth/password-reset",
                    {"email": email},
                    status=202,
                )
                if n >= RESET_WARMUP:
                    timings[case].append(time.perf_counter() - start)
    finally:
        worker.terminate()
        worker.join(10)
    return timings


def answer_resets(settings: Settings, settle: float) -> None:
    """The worker's reset loop (worker/password_resets.py), until terminated."""
    from supportdesk.mail.outbound.password_reset import ResetMailer

    db = Database(settings.replace(db_pool_min_size=1, db_pool_max_size=1)).open(wait=True)
    redis_client = make_redis(settings)
    resets = PasswordResets.from_settings(db, redis_client, settings)
    ResetRequestsLoop(resets, ResetMailer(db, redis_client, resets, settings), settle).run()


if __name__ == "__main__":
    main()
