"""Saved replies (DESIGN.md section 12): shared ones managed by ADMIN and SUB_ADMIN, personal
ones by their owner (another's is 404), and the render in Jinja's sandbox: each placeholder,
the escapes people try, and the bounds on size and work."""

from __future__ import annotations

import time

import pytest
import webtest

from tests.conftest import shared_app
from tests.factories import make_ticket


@pytest.fixture
def shared_inbox(settings, db) -> webtest.TestApp:
    """The app of a desk whose AGENTs see the unassigned pile."""
    on = settings.replace(agents_see_unassigned=True)
    return webtest.TestApp(shared_app(on, db))


@pytest.fixture
def people(make_staff):
    return {
        "admin": make_staff("ADMIN", name="Ada Admin"),
        "sub": make_staff("SUB_ADMIN", name="Sam Sub"),
        "agent": make_staff("AGENT", name="Mia Agent", email="mia@desk.example"),
        "other": make_staff("AGENT", name="Otto Other"),
    }


def _create(client, headers, status=201, **fields):
    body = {"title": "Thanks", "body": "Thank you!"} | fields
    return client.post_json("/api/saved-replies", body, headers=headers, status=status)


def _titles(client, headers) -> list[str]:
    return [r["title"] for r in client.get("/api/saved-replies", headers=headers).json["items"]]


# --- CRUD and who may do what -------------------------------------------------------------


def test_an_agent_saves_a_personal_reply_and_only_it_sees_it(client, people, bearer, db):
    made = _create(client, bearer(people["agent"]), title="Mine").json["saved_reply"]
    assert made["shared"] is False
    assert made["owner_id"] == people["agent"]["id"]
    assert _titles(client, bearer(people["agent"])) == ["Mine"]
    assert _titles(client, bearer(people["other"])) == []
    assert _titles(client, bearer(people["admin"])) == []  # personal means personal


@pytest.mark.parametrize("role", ["admin", "sub"])
def test_managers_make_shared_replies_everyone_sees(client, people, bearer, role):
    _create(client, bearer(people[role]), title="Shared one", shared=True)
    _create(client, bearer(people["agent"]), title="A mine")
    # Shared first, then one's own.
    assert _titles(client, bearer(people["agent"])) == ["Shared one", "A mine"]
    assert _titles(client, bearer(people["other"])) == ["Shared one"]


def test_an_agent_may_not_make_change_or_delete_a_shared_reply(client, people, bearer):
    agent = bearer(people["agent"])
    assert _create(client, agent, status=403, shared=True).json["error"]["code"] == "forbidden"
    shared = _create(client, bearer(people["sub"]), shared=True).json["saved_reply"]
    url = f"/api/saved-replies/{shared['id']}"
    client.patch_json(url, {"title": "Mine now"}, headers=agent, status=403)
    client.delete(url, headers=agent, status=403)
    # Nor turn its own into a shared one.
    own = _create(client, agent).json["saved_reply"]
    client.patch_json(
        f"/api/saved-replies/{own['id']}", {"shared": True}, headers=agent, status=403
    )
    assert _titles(client, bearer(people["other"])) == ["Thanks"]  # the shared one, unchanged


def test_someone_elses_personal_reply_is_not_found(client, people, bearer):
    own = _create(client, bearer(people["agent"])).json["saved_reply"]
    url = f"/api/saved-replies/{own['id']}"
    for who in ("other", "admin"):
        client.patch_json(url, {"title": "x"}, headers=bearer(people[who]), status=404)
        client.delete(url, headers=bearer(people[who]), status=404)
        client.post_json(
            f"{url}/render", {"pid": "202601-00001"}, headers=bearer(people[who]), status=404
        )
    assert _titles(client, bearer(people["agent"])) == ["Thanks"]


def test_owners_change_and_delete_their_replies(client, people, bearer):
    agent = bearer(people["agent"])
    own = _create(client, agent).json["saved_reply"]
    url = f"/api/saved-replies/{own['id']}"
    changed = client.patch_json(url, {"body": "Hi {{ customer.first_name }}"}, headers=agent)
    assert changed.json["saved_reply"]["body"] == "Hi {{ customer.first_name }}"
    assert changed.json["saved_reply"]["title"] == "Thanks"
    client.delete(url, headers=agent, status=204)
    client.delete(url, headers=agent, status=404)
    assert _titles(client, agent) == []


def test_a_manager_makes_a_shared_reply_its_own(client, people, bearer):
    admin = bearer(people["admin"])
    shared = _create(client, admin, shared=True).json["saved_reply"]
    mine = client.patch_json(
        f"/api/saved-replies/{shared['id']}", {"shared": False}, headers=admin
    ).json["saved_reply"]
    assert (mine["shared"], mine["owner_id"]) == (False, people["admin"]["id"])
    assert _titles(client, bearer(people["agent"])) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": "", "body": "x"}, "title"),
        ({"title": "x" * 201, "body": "x"}, "title"),
        ({"title": "x", "body": "   "}, "body"),
        ({"title": "x", "body": "x" * 50_001}, "body"),
        ({"title": "x"}, "body"),
        ({"title": "x", "body": "x", "shared": "yes"}, "shared"),
        ({"title": "x", "body": "x", "owner_id": 1}, "owner_id"),
    ],
)
def test_invalid_fields_are_422_with_their_message(client, people, bearer, body, field):
    resp = client.post_json("/api/saved-replies", body, headers=bearer(people["admin"]), status=422)
    assert resp.json["error"]["code"] == "validation_error"
    assert field in resp.json["error"]["details"]


def test_an_empty_change_is_422(client, people, bearer):
    own = _create(client, bearer(people["agent"])).json["saved_reply"]
    client.patch_json(
        f"/api/saved-replies/{own['id']}", {}, headers=bearer(people["agent"]), status=422
    )


@pytest.mark.parametrize(
    ("body", "line", "says"),
    [
        ("Hello\n\n{{ customer.name ", 3, "Line 3:"),
        ("Hi\n{% if customer.name %}", 2, "Line 2:"),
        ("Hi {{ customer.nmae }}", 1, "customer.nmae"),
        ("Hi\n{{ config }}", 2, "'config'"),
    ],
)
def test_a_template_that_does_not_compile_is_422_naming_the_line(
    client, people, bearer, body, line, says
):
    resp = _create(client, bearer(people["agent"]), body=body, status=422)
    message = resp.json["error"]["details"]["body"]
    assert message.startswith(f"Line {line}:")
    assert says in message
    own = _create(client, bearer(people["agent"])).json["saved_reply"]
    changed = client.patch_json(
        f"/api/saved-replies/{own['id']}",
        {"body": body},
        headers=bearer(people["agent"]),
        status=422,
    )
    assert changed.json["error"]["details"]["body"].startswith(f"Line {line}:")


# --- the render -----------------------------------------------------------------------------


@pytest.fixture
def ticket(db, people):
    with db.transaction() as conn:
        return make_ticket(
            conn,
            requester_name="Grace  Brewster Hopper",
            requester_email="grace@example.org",
            subject="The printer {{ is }} jammed",
            assigned_to=people["agent"]["id"],
            priority="HIGH",
        )


def _render(client, headers, reply_id, pid, status=200):
    return client.post_json(
        f"/api/saved-replies/{reply_id}/render", {"pid": pid}, headers=headers, status=status
    )


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ customer.name }}", "Grace  Brewster Hopper"),
        ("{{ customer.first_name }}", "Grace"),
        ("{{ customer.email }}", "grace@example.org"),
        ("{{ ticket.pid }}", "PID"),
        # Data is never a template: the subject's braces come out as they are.
        ("{{ ticket.subject }}", "The printer {{ is }} jammed"),
        ("{{ ticket.status }}/{{ ticket.priority }}", "OPEN/HIGH"),
        ("{{ agent.name }}", "Mia Agent"),
        ("{{ agent.first_name }} <{{ agent.email }}>", "Mia <mia@desk.example>"),
        (
            "{% if customer.first_name %}Hi {{ customer.first_name|upper }}{% else %}Hello"
            "{% endif %}",
            "Hi GRACE",
        ),
        ("{{ customer.first_name ~ '!' if ticket.priority == 'HIGH' else 'x' }}", "Grace!"),
        # Autoescape is off: the text goes into a plain text box.
        ("<b>{{ customer.name|truncate(9) }} & co</b>", "<b>Grace... & co</b>"),
        ("Line one\n{# a note to staff #}Line two", "Line one\nLine two"),
    ],
)
def test_render_fills_in_each_placeholder(client, people, bearer, ticket, template, expected):
    agent = bearer(people["agent"])
    reply = _create(client, agent, body=template).json["saved_reply"]
    text = _render(client, agent, reply["id"], ticket["pid"]).json["text"]
    assert text == expected.replace("PID", ticket["pid"])


def test_render_needs_access_to_the_ticket(client, people, bearer, db):
    with db.transaction() as conn:
        theirs = make_ticket(conn, assigned_to=people["other"]["id"])
        unassigned = make_ticket(conn)
    shared = _create(client, bearer(people["admin"]), shared=True).json["saved_reply"]
    agent = bearer(people["agent"])
    for pid in (theirs["pid"], unassigned["pid"], "202601-99999", "not-a-pid"):
        status = 422 if pid == "not-a-pid" else 404
        _render(client, agent, shared["id"], pid, status=status)
    assert _render(client, bearer(people["sub"]), shared["id"], theirs["pid"]).json["text"]


def test_an_agent_renders_for_an_unassigned_ticket_where_it_sees_them(
    shared_inbox, people, bearer, db
):
    with db.transaction() as conn:
        unassigned = make_ticket(conn, requester_name="Lin")
    agent = bearer(people["agent"])
    reply = _create(shared_inbox, agent, body="Hi {{ customer.name }}").json["saved_reply"]
    assert _render(shared_inbox, agent, reply["id"], unassigned["pid"]).json["text"] == "Hi Lin"


# Each is refused when saved (a 422 naming what is not available) and, were it stored some
# other way, when rendered: never an object's internals, never a 500.
ESCAPES = [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ self }}",
    "{{ config }}",
    "{{ config.items() }}",
    "{{ request }}",
    "{{ lipsum.__globals__['os'] }}",
    "{% for x in range(999999999) %}{% endfor %}",
    "{% for x in range(10) %}{% for y in range(10) %}x{% endfor %}{% endfor %}",
    "{{ '{0.__class__}'.format(1) }}",
    "{{ '%s'|format(customer) }}",
    "{{ customer.__class__ }}",
    "{{ customer.name.__class__.__base__ }}",
    "{{ customer['name'] }}",
    "{{ customer.items() }}",
    "{{ customer|attr('__class__') }}",
    "{{ 'x' * 999999999 }}",
    "{{ customer.name|replace('', 'xxxxxxxxxxxxxxxxxxx') }}",
    "{{ customer.name|center(999999999) }}",
    "{% set x = 1 %}",
    "{% macro m() %}{% endmacro %}",
    "{% include 'layout.html' %}",
    "{% extends 'layout.html' %}",
    "{% raw %}ok{% endraw %}{{ namespace() }}",
    "{{ joiner }}",
    "{{ dict(a=1) }}",
]


@pytest.mark.parametrize("template", ESCAPES)
def test_sandbox_escapes_are_refused_when_saved(client, people, bearer, template):
    resp = _create(client, bearer(people["admin"]), body=template, status=422)
    message = resp.json["error"]["details"]["body"]
    assert message.startswith("Line 1:")
    assert "object at 0x" not in message
    assert "<class" not in message


@pytest.mark.parametrize("template", ESCAPES)
def test_sandbox_escapes_stored_anyway_render_nothing_dangerous(
    client, people, bearer, ticket, db, template
):
    """A body written to the table directly (an older version, a migration) is checked
    again before it runs, and runs in the sandbox: a 422, never internals, never a 500."""
    with db.transaction() as conn:
        reply_id = conn.execute(
            "INSERT INTO saved_replies (title, body, owner_id, created_by) "
            "VALUES ('raw', %s, NULL, %s) RETURNING id",
            (template, people["admin"]["id"]),
        ).fetchone()[0]
    resp = _render(client, bearer(people["agent"]), reply_id, ticket["pid"], status=422)
    assert resp.json["error"]["code"] == "validation_error"
    for internals in ("object at 0x", "<class", "<function", "<built-in", "Undefined"):
        assert internals not in resp.text


def test_the_rendered_text_is_bounded_and_cheap(client, people, bearer, db):
    """The longest template of the longest placeholders is linear work, and its text past
    50,000 characters is a 422, not a reply box of megabytes."""
    with db.transaction() as conn:
        long = make_ticket(conn, subject="s" * 255, assigned_to=people["agent"]["id"])
    agent = bearer(people["agent"])
    body = "{{ ticket.subject }}" * (50_000 // len("{{ ticket.subject }}"))
    reply = _create(client, agent, body=body).json["saved_reply"]
    started = time.thread_time()  # CPU time: the work, not a busy machine's queue for a core
    resp = _render(client, agent, reply["id"], long["pid"], status=422)
    assert time.thread_time() - started < 2
    assert "longer than 50,000 characters" in resp.json["error"]["details"]["body"]
    # Just under the bound is fine.
    fits = "{{ ticket.subject }}" * (50_000 // 255)
    reply = _create(client, agent, body=fits).json["saved_reply"]
    assert len(_render(client, agent, reply["id"], long["pid"]).json["text"]) == 255 * 196


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ self._TemplateReference__context }}",
        "{{ '{0.__class__}'.format(1) }}",
        "{{ customer.__class__.__init__.__globals__ }}",
        "{% for x in range(999999999) %}{% endfor %}",
        "{{ lipsum(1000000) }}",
        "{{ config }}",
    ],
)
def test_the_sandbox_holds_on_its_own(template):
    """Gate 2 without gate 1: Jinja's immutable sandbox with no globals, over plain dicts,
    refuses each (an error the render turns into a 422) or renders nothing of note."""
    from jinja2 import TemplateError

    from supportdesk.tickets.reply_templates import ENVIRONMENT

    context = {"customer": {"name": "Grace"}}
    try:
        text = ENVIRONMENT.from_string(template).render(context)
    except TemplateError:
        return
    assert text in ("", "<TemplateReference None>")


@pytest.mark.parametrize(
    "template",
    [
        "{% include 'layout.html' %}",
        "{% extends 'layout.html' %}",
        "{{ customer.missing }}",
        "{{ nothing }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ '{0.__class__}'.format(1) }}",
        "{{ customer.update(name='x') }}",
        "{{ 'x' * 100000 }}",
        "{{ 'x' * 999999999 }}",
        "{{ 9 ** 999999 }}",
        "{{ '%s' % customer }}",
        "{% for x in range(999999999) %}{% endfor %}",
    ],
)
def test_what_fails_in_the_sandbox_alone_is_a_422_not_a_500(template):
    """Gate 2 without gate 1: what the sandbox refuses, a missing value, an include with
    nothing to include from, a text past the bound: each a field message, never an
    exception that would be a 500."""
    from supportdesk.core.errors import ValidationFailed
    from supportdesk.tickets.reply_templates import sandboxed_render

    with pytest.raises(ValidationFailed) as refused:
        sandboxed_render(template, {"customer": {"name": "Grace"}})
    assert set(refused.value.fields) == {"body"}
