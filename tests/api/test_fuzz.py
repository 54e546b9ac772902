"""The API against its own OpenAPI document (issue 11): schemathesis generates requests for
every operation, as an ADMIN, and every answer must be documented, match its schema, and
never be a 5xx."""

from __future__ import annotations

import hypothesis
import pytest
import schemathesis
import webtest
from hypothesis import HealthCheck
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import RUN_SUMMARY

EXAMPLES = 20
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


@pytest.mark.parametrize(
    ("caller", "mode"),
    [
        ("admin", GenerationMode.POSITIVE),
        ("admin", GenerationMode.NEGATIVE),
        ("anonymous", GenerationMode.POSITIVE),
    ],
    ids=["admin-valid", "admin-invalid", "anonymous-valid"],
)
def test_every_operation_answers_as_documented(app, make_staff, bearer, caller, mode):
    headers = bearer(make_staff("ADMIN")) if caller == "admin" else {}
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    covered, failures = [], []
    for result in schema.get_all_operations():
        operation = result.ok()

        @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
        @hypothesis.settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case):
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            run()
        except hypothesis.errors.Unsatisfiable:
            continue  # nothing of it can be invalid (no parameters, no body)
        except (Exception, BaseExceptionGroup) as failure:  # one report naming them all
            failures.append(f"{operation.label}: {failure}")
        covered.append(operation.label)
    RUN_SUMMARY.append(
        f"schemathesis ({caller}, {mode.value} data): {len(covered)} operations, up to "
        f"{EXAMPLES} examples each, {len(failures)} failing"
    )
    assert not failures, "\n\n".join(failures)


def test_limited_operations_list_their_429(app):
    """Today's rate limits: the login, a password change and the public form."""
    document = webtest.TestApp(app).get("/api/openapi.json").json
    for path, method in (
        ("/api/auth/login", "post"),
        ("/api/auth/password", "post"),
        ("/api/tickets", "post"),
    ):
        assert "429" in document["paths"][path][method]["responses"], path
