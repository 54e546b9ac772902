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

import copy
import os
import random
import re
from collections import Counter
from typing import Any

import hypothesis
import pytest
import schemathesis
import webtest
from hypothesis import HealthCheck
from hypothesis import strategies as st
from psycopg.rows import dict_row
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from supportdesk.files.storage import LocalStorage
from tests.api import test_rbac_matrix as matrix
from tests.api.test_rbac_matrix import PARTICIPANT, World, _blocked_sender
from tests.conftest import RUN_SUMMARY
from tests.factories import make_quarantined, make_saved_reply_file

world = matrix.world  # the route x role matrix's world of existing things (a fixture)

# Examples per operation, by run: the ADMIN's valid data reaches the code behind each
# operation (a world of real ids); invalid data is mostly refused by the same checks, and
# an anonymous caller is refused before any of them. Hypothesis makes its examples larger as
# a run goes on: 10 each took a quarter of the time of 20, and with three cases in four aimed
# at the world (a valid body three times in four) they bring every operation that can
# succeed to a 2xx. FUZZ_EXAMPLES=100 make test PYTEST_ARGS=tests/api/test_fuzz.py searches
# deeper (every run that many).
_DEEPER = os.environ.get("FUZZ_EXAMPLES")
EXAMPLES = {
    ("admin", GenerationMode.POSITIVE): 10,
    ("admin", GenerationMode.NEGATIVE): 6,
    ("anonymous", GenerationMode.POSITIVE): 3,
}
# What the answers must satisfy. Not "schema-valid data is accepted": the schemas give the
# shapes, while the rules (an email address that looks like one, a password that is not a
# common one) live in the code and answer 422 with the field named.


@schemathesis.check
def status_is_listed(ctx, response, case) -> None:
    """Every status an operation answers is listed for it by number: the document's
    `default` (the error envelope of any other status) would let any status pass."""
    listed = {str(code) for code in case.operation.responses.status_codes if code != "default"}
    if str(response.status_code) not in listed:
        raise AssertionError(
            f"{case.operation.label} answered {response.status_code}, which its document does "
            f"not list ({', '.join(sorted(listed))})"
        )


CHECKS = [
    not_a_server_error,
    status_is_listed,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]

# Operations that no generated request can bring to 2xx, and why (checked: an operation
# answered 2xx must leave this list, and one never answered 2xx must be on it).
NEVER_SUCCEEDS = {
    # A code from the authenticator app or a recovery code, which random data never is.
    "POST /api/auth/login/2fa": "needs the challenge token of a password login",
    "POST /api/me/2fa/confirm": "needs the current TOTP code",
    "DELETE /api/me/2fa": "needs the password and a current code",
    # A reset token is mailed to the account: no request can hold one.
    "POST /api/auth/password-reset/confirm": "needs a token mailed to the account",
    # Nothing listens on the world's mailbox server (its test is a 422).
    "POST /api/mailboxes/{mailbox_id}/test": "the world's IMAP server does not answer",
    # The mail provider signs its requests (an HMAC of the body with the shared secret).
    "POST /api/inbound/email": "needs the provider's signature of the body",
}


def _world_values(world: World) -> dict[str, Any]:
    """The existing ids the prepared cases draw from, by parameter or field name."""
    pids = [world.ticket["pid"], world.open_ticket["pid"]]
    return {
        "pid": pids,
        "into": pids,
        "pids": [pids, pids[:1]],
        "message_id": [world.message_id],
        "attachment_id": [world.attachment_id, world.open_attachment_id],
        "outbox_id": [world.outbox_id],
        "quarantine_id": [world.quarantine_id],
        "mailbox_id": [world.mailbox_id],
        "webhook_id": [world.webhook_id],
        "delivery_id": [world.webhook_delivery_id],
        "reply_id": [world.shared_reply_id, world.personal_reply_id],
        "saved_reply_id": [world.shared_reply_id],
        "file_id": [world.shared_file_id, world.personal_file_id],
        # The fuzzing ADMIN may use the shared reply's file; the personal one is another's.
        "saved_reply_files": [[world.shared_file_id], []],
        "user_id": [world.target_agent["id"]],
        "email": [PARTICIPANT, world.ticket["requester_email"]],
        "bodies": _known_bodies(world),
    }


def _known_bodies(world: World) -> dict[tuple[str, str], list[Any]]:
    """The route x role matrix's valid JSON bodies, by (method, path shape): the fuzzer's own
    rarely pass the code's rules (an address that is real, a URL that is public)."""
    bodies = matrix._json_bodies(world)
    known: dict[tuple[str, str], list[Any]] = {}
    for method, path, kind, _ in matrix.MATRIX:
        body = bodies.get(kind) if isinstance(kind, str) else kind
        if kind == matrix.UPLOAD:  # a form with one small text file, as the matrix sends
            body = {"attachments": [b"Notes, in plain text.\n"]}
        if isinstance(body, dict) and path.startswith("/api/"):
            known.setdefault((method, _shape(path)), []).append(body)
    return known


def _shape(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


def _in_world(case, values: dict[str, Any], rng: random.Random, extra: dict[str, list]):
    """The case with its names of things replaced by ones that exist, and three times in four
    its body by a valid one (the matrix's, or a form with one small text file)."""
    known = values["bodies"].get((case.method.upper(), _shape(case.operation.path)))
    whole = bool(known) and isinstance(case.body, dict) and rng.random() < 0.75
    if whole:
        case.body = copy.deepcopy(rng.choice(known))  # its names are already the world's
    values = values | extra
    for name in list(case.path_parameters or {}):
        if name in values:
            case.path_parameters[name] = rng.choice(values[name])
    if isinstance(case.body, dict) and not whole:
        for name in list(case.body):
            if name in values:
                case.body[name] = rng.choice(values[name])
    return case


IN_WORLD = st.sampled_from([True, True, True, False])


def _strategy(operation, mode, values, extra):
    generated = operation.as_strategy(generation_mode=mode)
    if values is None:
        return generated
    return st.tuples(generated, IN_WORLD, st.randoms(use_true_random=False)).map(
        lambda drawn: _in_world(drawn[0], values, drawn[2], extra) if drawn[1] else drawn[0]
    )


def _api_token(db, user) -> int:
    """An API token of the fuzzing ADMIN, for the operation that revokes one."""
    with db.transaction() as conn:
        return conn.execute(
            "INSERT INTO api_tokens (user_id, name, token_hash, prefix, created_at) "
            "VALUES (%s, 'CI', sha256(random()::text::bytea), 'sd_pat_xxxx', now()) RETURNING id",
            (user["id"],),
        ).fetchone()[0]


def _saved_reply_with_file(db, admin, upload_dir) -> dict[str, list[int]]:
    """A shared saved reply with a file, for the operation that removes one (the world's
    saved replies are deleted, with their files, before it runs)."""
    with db.transaction() as conn:
        reply_id = conn.execute(
            "INSERT INTO saved_replies (title, body, created_by) VALUES ('Terms', 'See the "
            "file.', %s) RETURNING id",
            (admin["id"],),
        ).fetchone()[0]
        file = make_saved_reply_file(conn, LocalStorage(upload_dir), reply_id)
    return {"reply_id": [reply_id], "file_id": [file["id"]]}


def _quarantined(db) -> int:
    with db.transaction() as conn:
        return make_quarantined(conn)["id"]


def _destroys(operation) -> int:
    """When to run the operation: those that remove or move what the others work on last
    (a deletion, a logout, spam; then merge and split, which move messages; then erasure)."""
    path, method = operation.path, operation.method.upper()
    if path.endswith("/erase"):
        return 3
    if path.endswith(("/merge", "/split")):
        return 2
    return int(method == "DELETE" or path.endswith(("/logout", "/spam")))


@pytest.mark.parametrize(
    ("caller", "mode"),
    [
        ("admin", GenerationMode.POSITIVE),
        ("admin", GenerationMode.NEGATIVE),
        ("anonymous", GenerationMode.POSITIVE),
    ],
    ids=["admin-valid", "admin-invalid", "anonymous-valid"],
)
def test_every_operation_answers_as_documented(
    app, db, settings, make_staff, tokens, world, caller, mode
):
    admin = make_staff("ADMIN")
    each = int(_DEEPER or EXAMPLES[caller, mode])

    def headers() -> dict[str, str]:
        if caller == "anonymous":
            return {}
        with db.transaction() as conn, conn.cursor(row_factory=dict_row) as cur:
            # read again: a password change bumps token_version
            user = cur.execute("SELECT * FROM users WHERE id = %s", (admin["id"],)).fetchone()
        token, _ = tokens.issue(user)
        return {"Authorization": f"Bearer {token}"}

    values = _world_values(world) if (caller, mode) == ("admin", GenerationMode.POSITIVE) else None
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    covered, failures, succeeded, unsatisfiable = [], [], set(), []
    statuses: Counter[int] = Counter()
    examples = 0
    for operation in sorted((result.ok() for result in schema.get_all_operations()), key=_destroys):
        extra = {"token_id": [_api_token(db, admin)]} if "{token_id}" in operation.path else {}
        if "{blocked_id}" in operation.path:
            extra["blocked_id"] = [_blocked_sender(db)]
        if operation.method.upper() == "DELETE" and "{quarantine_id}" in operation.path:
            extra["quarantine_id"] = [_quarantined(db)]  # the world's own was made a ticket
        if operation.method.upper() == "DELETE" and "{file_id}" in operation.path:
            extra |= _saved_reply_with_file(
                db, admin, settings.upload_dir
            )  # the world's went with its reply

        @hypothesis.given(case=_strategy(operation, mode, values, extra))
        @hypothesis.settings(
            max_examples=each,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case):
            nonlocal examples
            response = case.call(headers=headers())
            examples += 1
            statuses[response.status_code] += 1
            if 200 <= response.status_code < 300:
                succeeded.add(case.operation.label)
            case.validate_response(response, checks=CHECKS)

        try:
            run()
        except hypothesis.errors.Unsatisfiable:
            unsatisfiable.append(operation.label)
            continue  # nothing of it can be invalid (no parameters, no body)
        except (Exception, BaseExceptionGroup) as failure:  # one report naming them all
            failures.append(f"{operation.label}: {failure}")
        covered.append(operation.label)
    seen = ", ".join(f"{code}: {n}" for code, n in sorted(statuses.items()))
    RUN_SUMMARY.append(
        f"schemathesis ({caller}, {mode.value} data): {len(covered)} of "
        f"{len(covered) + len(unsatisfiable)} operations ({len(unsatisfiable)} with nothing "
        f"to make invalid), {examples} examples (up to "
        f"{each} each), statuses {{{seen}}}, {len(failures)} failing"
    )
    if values is not None:
        RUN_SUMMARY.append(
            f"schemathesis (admin, positive data): {len(succeeded)} operations answered 2xx; "
            f"never: {', '.join(sorted(set(covered) - succeeded)) or 'none'}"
        )
    assert not failures, "\n\n".join(failures)
    # Every operation of the document was exercised (schemathesis leaves out the GET of the
    # document itself, which tests/api/test_system.py reads).
    document = {
        f"{method.upper()} {path}"
        for path, methods in schema.raw_schema["paths"].items()
        for method in methods
        if method in ("get", "put", "post", "delete", "patch")
    }
    assert set(covered) | set(unsatisfiable) == document - {"GET /api/openapi.json"}
    if values is not None:
        assert set(covered) - succeeded == set(NEVER_SUCCEEDS), "update NEVER_SUCCEEDS"


def test_limited_operations_list_their_429(app):
    """Today's rate limits: the login, a password change and the public form."""
    document = webtest.TestApp(app).get("/api/openapi.json").json
    for path, method in (
        ("/api/auth/login", "post"),
        ("/api/auth/password", "post"),
        ("/api/tickets", "post"),
    ):
        assert "429" in document["paths"][path][method]["responses"], path
