"""Notices to staff (DESIGN.md section 12) as the real worker delivers them to the SMTP
server: a new ticket, a customer reply, an assignment, a mention; each to whom it should go
and to nobody else, once per event, `Auto-Submitted: auto-generated`, with the STAFF token.
Each test lets the worker deliver everything that was queued before it looks, so that a
notice "not sent" is one that was never queued, not one still on its way."""

from __future__ import annotations

import pytest
import webtest

from supportdesk.core.errors import NotFound
from supportdesk.core.redis_client import make_redis
from supportdesk.tickets.customer_replies import CustomerMessage
from supportdesk.tickets.inputs import Assignment, NewMessage, NewTicket
from supportdesk.web.services import build_services
from tests.conftest import shared_app
from tests.worker.conftest import outbox_statuses, running, wait_until

NEW_TICKET = {
    "name": "Cleo Customer",
    "email": "cleo@example.org",
    "subject": "Printer jam",
    "body": "Paper is stuck in tray 2.",
}


@pytest.fixture(params=[False, True], ids=["v1", "shared"])
def desk(request, settings, db, redis_client):
    """The app and its services, under one AGENTS_SEE_UNASSIGNED setting."""
    current = settings.replace(agents_see_unassigned=request.param)
    app = webtest.TestApp(shared_app(current, db))
    return app, build_services(current, db, make_redis(current))


@pytest.fixture
def v1(settings, db, redis_client):
    app = webtest.TestApp(shared_app(settings, db))
    return app, build_services(settings, db, make_redis(settings))


@pytest.fixture
def team(make_staff):
    return {
        "ana": make_staff("ADMIN", name="Ana Admin", email="ana@example.com"),
        "sub": make_staff("SUB_ADMIN", name="Sam Sub", email="sam@example.com"),
        "bo": make_staff("AGENT", name="Bo Agent", email="bo@example.com"),
        "cy": make_staff("AGENT", name="Cy Agent", email="cy@example.com"),
    }


def prefer(db, user, **wants: bool) -> None:
    """Set some of a user's notify_* preferences."""
    with db.transaction() as conn:
        for name, value in wants.items():
            conn.execute(f"UPDATE users SET notify_{name} = %s WHERE id = %s", (value, user["id"]))


def deactivate(db, user) -> None:
    with db.transaction() as conn:
        conn.execute("UPDATE users SET is_active = false WHERE id = %s", (user["id"],))


def delivered(db, smtp_server) -> list:
    """Every email queued so far, once the worker has sent them all (inside `running`)."""
    wait_until(
        lambda: set(outbox_statuses(db).values()) <= {"SENT"},
        message="every email sent",
    )
    return smtp_server.wait_for(len(outbox_statuses(db)))


def notices(received, what: str | None = None) -> list[tuple[str, str]]:
    """(recipient, notice) of the notices to staff among `received`, sorted."""
    found = [
        (r.rcpt_tos[0], r.header("X-Support-Desk-Notice"))
        for r in received
        if r.header("X-Support-Desk-Notice")
    ]
    return sorted(f for f in found if what is None or f[1] == what)


# --- a new ticket ------------------------------------------------------------------------------


def test_a_new_ticket_goes_to_the_staff_who_want_it_and_may_see_it(
    desk, db, team, make_worker, smtp_server
):
    app, services = desk
    shared = services.settings.agents_see_unassigned
    for who in ("ana", "bo"):
        prefer(db, team[who], new_ticket=True)
    prefer(db, team["cy"], new_ticket=True)
    deactivate(db, team["cy"])  # a deactivated colleague is never told
    with running(make_worker()):
        pid = app.post_json("/api/tickets", NEW_TICKET).json["ticket"]["pid"]
        received = delivered(db, smtp_server)
    # Sam did not ask; Bo, an AGENT, reaches an unassigned ticket only on a shared desk.
    expected = [("ana@example.com", "new-ticket")]
    if shared:
        expected.append(("bo@example.com", "new-ticket"))
    assert notices(received) == expected
    [to_ana] = [r for r in received if r.rcpt_tos == ["ana@example.com"]]
    assert to_ana.header("Subject") == f"[#{pid}] New ticket from Cleo Customer: Printer jam"
    assert to_ana.header("Auto-Submitted") == "auto-generated"
    staff_token = services.composer.tokens.plus_address("support@example.com", pid, "STAFF")
    assert to_ana.header("Reply-To") == staff_token
    text = to_ana.message.get_body(("plain",)).get_content()
    assert "Paper is stuck in tray 2." in text
    assert f"http://127.0.0.1:8000/tickets/{pid}" in text
    assert (
        f'href="http://127.0.0.1:8000/tickets/{pid}"'
        in to_ana.message.get_body(("html",)).get_content()
    )


def test_a_ticket_staff_open_tells_nobody_but_the_others_of_one_typed_in(
    v1, db, team, make_worker, smtp_server, bearer
):
    app, _ = v1
    prefer(db, team["ana"], new_ticket=True)
    prefer(db, team["sub"], new_ticket=True)
    staff_email = {"to": "cleo@example.org", "subject": "Your order", "body": "It shipped."}
    with running(make_worker()):
        # Written first by Sam: Sam's own ticket, WAITING on the customer; nobody is told.
        app.post_json("/api/tickets", staff_email, headers=bearer(team["sub"]))
        # Typed into the form by Sam for a customer who phoned: the others are told, not Sam.
        app.post_json("/api/tickets", NEW_TICKET, headers=bearer(team["sub"]))
        received = delivered(db, smtp_server)
    assert notices(received) == [("ana@example.com", "new-ticket")]


def test_nobody_is_told_of_a_new_ticket_by_default(v1, db, team, make_worker, smtp_server):
    app, _ = v1
    with running(make_worker()):
        app.post_json("/api/tickets", NEW_TICKET)
        received = delivered(db, smtp_server)
    assert [r.rcpt_tos for r in received] == [["cleo@example.org"]]  # the acknowledgement


# --- a customer reply --------------------------------------------------------------------------


def _ticket(services, assignee=None):
    """Cleo's ticket, unacknowledged, given to `assignee` without a notice of its own (so
    that a test sees only the notices of what it does)."""
    new = NewTicket("Cleo Customer", "cleo@example.org", "Printer jam", "Tray 2.", "NORMAL")
    ticket = services.tickets.create(new, channel="EMAIL", acknowledge=False)
    if assignee is not None:
        with services.db.transaction() as conn:
            conn.execute(
                "UPDATE tickets SET assigned_to = %s WHERE id = %s", (assignee["id"], ticket["id"])
            )
    return ticket


def _customer_writes(services, ticket, body="Any news?", sender="cleo@example.org"):
    services.customers.add(ticket["id"], CustomerMessage(body, "WEB", sender))


def test_a_customer_reply_goes_to_the_assignee_and_followers_once_each(
    desk, db, team, make_worker, smtp_server, bearer
):
    app, services = desk
    sub, bo = team["sub"], team["bo"]
    ticket = _ticket(services, assignee=bo)
    pid = ticket["pid"]
    for follower in (sub, bo):  # Bo follows his own ticket too: one email all the same
        assert app.post(f"/api/tickets/{pid}/follow", headers=bearer(follower)).json == {
            "following": True
        }
    prefer(db, team["cy"], customer_reply=True)
    with running(make_worker()):
        _customer_writes(services, ticket)
        received = delivered(db, smtp_server)
    assert notices(received, "customer-reply") == [
        ("bo@example.com", "customer-reply"),
        ("sam@example.com", "customer-reply"),
    ]
    to_sam = next(r for r in received if r.rcpt_tos == ["sam@example.com"])
    assert to_sam.header("Auto-Submitted") == "auto-generated"
    assert "which you follow" in to_sam.message.get_body(("plain",)).get_content()
    assert to_sam.header("Reply-To") == services.composer.tokens.plus_address(
        "support@example.com", pid, "STAFF"
    )


def test_a_participants_reply_is_told_as_the_requesters(v1, db, team, make_worker, smtp_server):
    _, services = v1
    ticket = _ticket(services, assignee=team["bo"])
    with running(make_worker()):
        _customer_writes(services, ticket, "Me too", sender="dan@example.net")
        received = delivered(db, smtp_server)
    assert notices(received, "customer-reply") == [("bo@example.com", "customer-reply")]


def test_a_burst_of_replies_is_told_once_and_a_mention_does_not_count(
    v1, db, team, make_worker, smtp_server, bearer
):
    app, services = v1
    ticket = _ticket(services, assignee=team["bo"])
    app.post(f"/api/tickets/{ticket['pid']}/follow", headers=bearer(team["sub"]))
    with running(make_worker()):
        # A mention of Sam just before: another kind of notice, not a customer-reply one.
        services.messages.post(
            team["ana"],
            ticket["pid"],
            NewMessage("@sam look", visibility="INTERNAL"),
            channel="WEB",
        )
        _customer_writes(services, ticket, "First")
        _customer_writes(services, ticket, "Second")  # within NOTICE_COALESCE: not told
        received = delivered(db, smtp_server)
    assert notices(received) == [
        ("bo@example.com", "customer-reply"),
        ("sam@example.com", "customer-reply"),
        ("sam@example.com", "mentioned"),
    ]


def test_preferences_off_and_lost_access_tell_nobody_of_a_reply(
    desk, db, team, make_worker, smtp_server, bearer
):
    app, services = desk
    ana, sub, bo, cy = team["ana"], team["sub"], team["bo"], team["cy"]
    ticket = _ticket(services, assignee=cy)
    for follower in (sub, cy):
        app.post(f"/api/tickets/{ticket['pid']}/follow", headers=bearer(follower))
    # Cy follows, then the ticket goes to Bo: Cy, an AGENT, may no longer see it.
    services.assignment.assign(ana, ticket["pid"], Assignment(bo["id"]))
    for who in (sub, bo):
        prefer(db, who, customer_reply=False)
    with running(make_worker()):
        _customer_writes(services, ticket)
        received = delivered(db, smtp_server)
    assert notices(received, "customer-reply") == []
    # Cy still follows: given the ticket back, Cy is told again.
    services.assignment.assign(ana, ticket["pid"], Assignment(cy["id"]))
    with running(make_worker()):
        _customer_writes(services, ticket, "Again")
        received = delivered(db, smtp_server)
    assert notices(received, "customer-reply") == [("cy@example.com", "customer-reply")]


# --- an assignment -----------------------------------------------------------------------------


def test_an_assignment_is_told_to_the_new_assignee_unless_theirs_or_unwanted(
    desk, db, team, make_worker, smtp_server, bearer
):
    app, services = desk
    ana, sub, bo, cy = team["ana"], team["sub"], team["bo"], team["cy"]
    prefer(db, cy, assigned=False)
    first, second, third = (_ticket(services) for _ in range(3))
    with running(make_worker()):
        services.assignment.assign(ana, first["pid"], Assignment(bo["id"]))  # told
        services.assignment.assign(ana, second["pid"], Assignment(cy["id"]))  # does not want it
        services.assignment.assign(sub, third["pid"], Assignment(sub["id"]))  # to oneself
        app.post(f"/api/tickets/{first['pid']}/take", headers=bearer(ana))  # a take: oneself
        received = delivered(db, smtp_server)
    assert notices(received) == [("bo@example.com", "assigned")]
    [notice] = received
    assert notice.header("Subject") == f"[#{first['pid']}] Assigned to you: Printer jam"
    assert notice.header("Auto-Submitted") == "auto-generated"


# --- a mention ---------------------------------------------------------------------------------


def _note(services, author, pid, body, visibility="INTERNAL"):
    services.messages.post(author, pid, NewMessage(body, visibility=visibility), channel="WEB")


def test_a_mention_in_an_internal_note_tells_the_member_once(
    desk, db, team, make_worker, smtp_server, bearer
):
    app, services = desk
    ana, bo = team["ana"], team["bo"]
    ticket = _ticket(services, assignee=bo)
    app.post(f"/api/tickets/{ticket['pid']}/follow", headers=bearer(bo))
    body = "@bo please call her; @Bo@Example.com, this is yours. Cc @ana (me) and @nobody."
    with running(make_worker()):
        _note(services, ana, ticket["pid"], body)
        received = delivered(db, smtp_server)
    # Bo is assignee, follower and mentioned twice: one email. Ana wrote it: none.
    assert notices(received) == [("bo@example.com", "mentioned")]
    [notice] = received
    assert notice.header("Subject") == f"[#{ticket['pid']}] Ana Admin mentioned you: Printer jam"
    assert notice.header("Auto-Submitted") == "auto-generated"
    assert notice.header("Reply-To") == services.composer.tokens.plus_address(
        "support@example.com", ticket["pid"], "STAFF"
    )
    assert "@bo please call her" in notice.message.get_body(("plain",)).get_content()
    # The note never reached the customer.
    assert all(r.rcpt_tos != ["cleo@example.org"] for r in received)


def test_a_mention_of_whoever_may_not_be_told_mails_nobody(
    desk, db, team, make_worker, smtp_server, make_staff
):
    _app, services = desk
    ana, sub, bo, cy = team["ana"], team["sub"], team["bo"], team["cy"]
    ticket = _ticket(services, assignee=bo)
    deactivate(db, sub)
    prefer(db, ana, mentioned=False)
    # Two active staff share the login name "dee": `@dee` names neither.
    make_staff("AGENT", name="Dee One", email="dee@example.com")
    make_staff("AGENT", name="Dee Two", email="dee@example.net")
    body = "@sam (deactivated), @cy (another AGENT's ticket), @ana (off), @dee (ambiguous)"
    with running(make_worker()):
        _note(services, bo, ticket["pid"], body)
        received = delivered(db, smtp_server)
    assert received == []
    # Cy still cannot see the ticket: a mention grants nothing.
    with pytest.raises(NotFound):
        services.messages.thread(cy, ticket["pid"])


def test_an_unassigned_ticket_mention_reaches_an_agent_only_on_a_shared_desk(
    desk, db, team, make_worker, smtp_server
):
    _app, services = desk
    ticket = _ticket(services)
    with running(make_worker()):
        _note(services, team["ana"], ticket["pid"], "@cy can you take this?")
        received = delivered(db, smtp_server)
    expected = [("cy@example.com", "mentioned")] if services.settings.agents_see_unassigned else []
    assert notices(received) == expected


def test_a_mention_in_a_public_reply_notifies_nobody(v1, db, team, make_worker, smtp_server):
    _, services = v1
    ticket = _ticket(services, assignee=team["bo"])
    with running(make_worker()):
        _note(services, team["ana"], ticket["pid"], "@bo will call you.", visibility="PUBLIC")
        received = delivered(db, smtp_server)
    # The reply itself, to the customer; no notice to Bo.
    assert [r.rcpt_tos for r in received] == [["cleo@example.org"]]
    assert notices(received) == []
