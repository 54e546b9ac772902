"""Do failed logins take the same time whatever the reason? (DESIGN.md section 5)

An attacker who can tell "unknown email" from "wrong password" by the response time can
enumerate staff accounts. Every failure runs one bcrypt check at the configured cost, so the
three medians should be within a few percent of each other. Run: `make bench-login`.
"""

from __future__ import annotations

import statistics
import time

import webtest

from bench.common import bench_settings, describe, services
from supportdesk.accounts.staff import create_admin
from supportdesk.core.db import Database
from supportdesk.core.redis_client import make_redis
from supportdesk.web.app import create_app

ROUNDS = 12  # the production default
ATTEMPTS = 25


def main() -> None:
    with services() as (database_url, redis_url):
        settings = bench_settings(
            database_url,
            redis_url,
            bcrypt_rounds=ROUNDS,
            login_max_failures_per_account=10**6,
            login_max_failures_per_address=10**6,
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
        db.close()
    baseline = statistics.median(timings["wrong password"])
    print(f"failed login, bcrypt cost {ROUNDS}, {ATTEMPTS} attempts each, interleaved")
    for case, values in timings.items():
        ratio = statistics.median(values) / baseline
        print(f"  {case:17s} {describe(values)}   ratio to wrong password {ratio:5.2f}")


if __name__ == "__main__":
    main()
