"""The parts of the fuzzing in tests/api/test_fuzz.py: schemathesis's checks, the cases aimed at
a prepared world, and one run over every operation of the document. Imported by the tests
when they run, not when test_fuzz is collected: schemathesis and what it brings cost each
test process about half a second to import, and one process runs these tests."""

from __future__ import annotations

import copy
import os
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import schemathesis
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
from tests.factories import make_quarantined, make_saved_reply_file

# Examples per operation, by run: the ADMIN's valid data reaches the code behind each
# operation (a world of real ids); invalid data is mostly refused by the same checks, and
# an anonymous caller is refused before any of them. Hypothesis makes its examples larger as
# a run goes on: 10 each took a quarter of the time of 20, and with three cases in four aimed
# at the world (a valid body three times in four) they bring every operation that can
# succeed to a 2xx. FUZZ_EXAMPLES=100 make test PYTEST_ARGS=tests/api/test_fuzz.py searches
# deeper (every run that many).
_DEEPER = os.environ.get("FUZZ_EXAMPLES")
EXAMPLES = {
    ("admin", "positive"): 10,
    ("admin", "negative"): 6,
    ("anonymous", "positive"): 3,
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


@dataclass
class Outcome:
    """What one run over the document saw."""

    each: int  # examples per operation
    covered: list[str] = field(default_factory=list)  # operations exercised
    unsatisfiable: list[str] = field(default_factory=list)  # nothing of them can be invalid
    failures: list[str] = field(default_factory=list)
    succeeded: set[str] = field(default_factory=set)  # operations answered 2xx
    statuses: Counter[int] = field(default_factory=Counter)
    examples: int = 0
    document: set[str] = field(default_factory=set)  # "METHOD /path" of every operation


def run(app, db, settings, admin, tokens, world: World, caller: str, mode_name: str) -> Outcome:
    """Every operation of the app's document with generated cases (`mode_name`: positive or
    negative data), as `admin` (a fresh session for each case) or as nobody; the ADMIN's
    valid run aims its cases at `world`. Failures are collected, one per operation."""
    mode = GenerationMode(mode_name)
    outcome = Outcome(each=int(_DEEPER or EXAMPLES[caller, mode_name]))

    def headers() -> dict[str, str]:
        if caller == "anonymous":
            return {}
        with db.transaction() as conn, conn.cursor(row_factory=dict_row) as cur:
            # read again: a password change bumps token_version
            user = cur.execute("SELECT * FROM users WHERE id = %s", (admin["id"],)).fetchone()
        token, _ = tokens.issue(user)
        return {"Authorization": f"Bearer {token}"}

    values = _world_values(world) if (caller, mode_name) == ("admin", "positive") else None
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
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
            max_examples=outcome.each,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def one(case):
            response = case.call(headers=headers())
            outcome.examples += 1
            outcome.statuses[response.status_code] += 1
            if 200 <= response.status_code < 300:
                outcome.succeeded.add(case.operation.label)
            case.validate_response(response, checks=CHECKS)

        try:
            one()
        except hypothesis.errors.Unsatisfiable:
            outcome.unsatisfiable.append(operation.label)
            continue  # nothing of it can be invalid (no parameters, no body)
        except (Exception, BaseExceptionGroup) as failure:  # one report naming them all
            outcome.failures.append(f"{operation.label}: {failure}")
        outcome.covered.append(operation.label)
    outcome.document = {
        f"{method.upper()} {path}"
        for path, methods in schema.raw_schema["paths"].items()
        for method in methods
        if method in ("get", "put", "post", "delete", "patch")
    }
    return outcome
