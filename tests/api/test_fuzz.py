"""The API against its own OpenAPI document (issues 11 and 24): schemathesis generates requests
for every operation, as an ADMIN and as nobody, and every answer must be documented by number,
match its schema, and never be a 5xx.

Random ids only ever reach a 404, so the ADMIN's valid run draws three cases in four against a
prepared world: the path parameters and the body fields that name things (`pid`, `into`,
`user_id`, ...) are replaced by ids that exist (a ticket, its messages, a participant, a file, a
DEAD delivery and webhook delivery, a quarantined email, a mailbox, a webhook, a saved reply and
its file, a blocked sender, an API token, a customer). Each case runs with a fresh session of
the ADMIN read again from the database, so an operation that ends the session (a logout, a
password change) does not turn the rest of the run into 401s. Destructive operations (an
erasure, a deletion) run on that world too: later cases on the same id answer 404, which is
documented.

The run writes the schemathesis summary: operations exercised, examples sent, the statuses
seen, failures; and for the ADMIN's valid run, the operations that were never answered 2xx
(each one is listed with a reason in NEVER_SUCCEEDS: the world cannot give them one)."""

from __future__ import annotations

import pytest
import webtest

from tests.api import test_rbac_matrix as matrix
from tests.conftest import RUN_SUMMARY

world = matrix.world  # the route x role matrix's world of existing things (a fixture)


@pytest.mark.parametrize(
    ("caller", "mode"),
    [("admin", "positive"), ("admin", "negative"), ("anonymous", "positive")],
    ids=["admin-valid", "admin-invalid", "anonymous-valid"],
)
def test_every_operation_answers_as_documented(
    app, db, settings, make_staff, tokens, world, caller, mode
):
    from tests.api import fuzzing  # schemathesis, only in the process that runs this

    outcome = fuzzing.run(app, db, settings, make_staff("ADMIN"), tokens, world, caller, mode)
    covered, succeeded = set(outcome.covered), outcome.succeeded
    seen = ", ".join(f"{code}: {n}" for code, n in sorted(outcome.statuses.items()))
    RUN_SUMMARY.append(
        f"schemathesis ({caller}, {mode} data): {len(covered)} of "
        f"{len(covered) + len(outcome.unsatisfiable)} operations "
        f"({len(outcome.unsatisfiable)} with nothing to make invalid), {outcome.examples} "
        f"examples (up to {outcome.each} each), statuses {{{seen}}}, "
        f"{len(outcome.failures)} failing"
    )
    aimed = (caller, mode) == ("admin", "positive")
    if aimed:
        RUN_SUMMARY.append(
            f"schemathesis (admin, positive data): {len(succeeded)} operations answered 2xx; "
            f"never: {', '.join(sorted(covered - succeeded)) or 'none'}"
        )
    assert not outcome.failures, "\n\n".join(outcome.failures)
    # Every operation of the document was exercised (schemathesis leaves out the GET of the
    # document itself, which tests/api/test_system.py reads).
    exercised = covered | set(outcome.unsatisfiable)
    assert exercised == outcome.document - {"GET /api/openapi.json"}
    if aimed:
        assert covered - succeeded == set(fuzzing.NEVER_SUCCEEDS), "update NEVER_SUCCEEDS"


def test_limited_operations_list_their_429(app):
    """Today's rate limits: the login, a password change and the public form."""
    document = webtest.TestApp(app).get("/api/openapi.json").json
    for path, method in (
        ("/api/auth/login", "post"),
        ("/api/auth/password", "post"),
        ("/api/tickets", "post"),
    ):
        assert "429" in document["paths"][path][method]["responses"], path
