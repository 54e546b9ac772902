"""Outgoing webhooks through the API (ADMIN): registration with its target checked (by IP
literal, and by a name that a DNS server of the test's own resolves), the secret sealed and
never returned, the audit rows, and a delivery row written by each change that fires one,
in that change's own transaction."""

from __future__ import annotations

import pytest
import webtest
from psycopg.rows import dict_row

from supportdesk.core.redis_client import make_redis
from supportdesk.mail.mailboxes.secrets import SecretBox
from supportdesk.tickets.inputs import Assignment, NewMessage, NewTicket, TicketChange
from supportdesk.web.services import build_services
from supportdesk.webhooks.queue import WEBHOOKS
from supportdesk.webhooks.targets import DnsAddresses
from tests.conftest import shared_app
from tests.dnsserver import DnsServer
from tests.webhook import SECRET as INBOUND_SECRET
from tests.webhook import post_json

PUBLIC = "93.184.215.14"  # a global address: nothing connects to it at registration
SECRET = "whsec-0123456789abcdef"


@pytest.fixture(scope="module")
def dns():
    """The module's DNS server (its answers never change) and the one app that asks it."""
    server = DnsServer(
        {
            ("hooks.example.com", "A"): [PUBLIC],
            ("inside.example.com", "A"): ["127.0.0.1"],
            ("mixed.example.com", "A"): [PUBLIC, "10.1.2.3"],
            ("six.example.com", "AAAA"): ["::1"],
        }
    )
    yield server
    server.close()


@pytest.fixture(scope="module")
def resolver(dns) -> DnsAddresses:
    return DnsAddresses(timeout=5, nameservers=[("127.0.0.1", dns.port)])


@pytest.fixture
def api(settings, db, redis_client, resolver) -> webtest.TestApp:
    public_only = settings.replace(webhook_allow_private=False)
    return webtest.TestApp(shared_app(public_only, db, webhook_resolver=resolver))


@pytest.fixture
def admin(make_staff):
    return make_staff("ADMIN", name="Ana Admin")


@pytest.fixture
def auth(admin, bearer):
    return bearer(admin)


def register(api, auth, status=201, **over):
    body = {"url": f"https://{PUBLIC}/hook", "events": ["ticket.created"], "secret": SECRET}
    return api.post_json("/api/webhooks", body | over, headers=auth, status=status)


def rows(db, sql, *args):
    with db.transaction() as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql, args).fetchall()


def test_a_webhook_is_registered_with_its_secret_sealed_and_never_returned(
    api, auth, db, settings, admin
):
    resp = register(api, auth, events=["ticket.assigned", "ticket.created"])
    webhook = resp.json["webhook"]
    assert resp.headers["Location"] == f"/api/webhooks/{webhook['id']}"
    assert webhook["events"] == ["ticket.created", "ticket.assigned"]  # our order
    assert webhook["active"] is True
    assert "secret" not in webhook
    assert "secret_encrypted" not in webhook
    assert SECRET not in resp.text
    listed = api.get("/api/webhooks", headers=auth).json["items"]
    assert [w["id"] for w in listed] == [webhook["id"]]
    assert SECRET not in str(listed)
    stored = rows(db, "SELECT secret_encrypted FROM webhooks")[0]["secret_encrypted"]
    assert stored != SECRET
    assert SecretBox(settings).open(stored) == SECRET
    audit = rows(db, "SELECT action, actor_id, target_type, target_id, data FROM audit_log")
    assert audit == [
        {
            "action": "WEBHOOK_CREATED",
            "actor_id": admin["id"],
            "target_type": "webhook",
            "target_id": str(webhook["id"]),
            "data": {"url": f"https://{PUBLIC}/hook", "events": webhook["events"]},
        }
    ]


def test_a_change_and_a_removal_are_audited_without_the_secret(api, auth, db):
    webhook_id = register(api, auth).json["webhook"]["id"]
    changed = api.patch_json(
        f"/api/webhooks/{webhook_id}",
        {"events": ["message.created"], "secret": "another-secret-0123", "active": False},
        headers=auth,
    ).json["webhook"]
    assert (changed["events"], changed["active"]) == (["message.created"], False)
    api.delete(f"/api/webhooks/{webhook_id}", headers=auth, status=204)
    api.delete(f"/api/webhooks/{webhook_id}", headers=auth, status=404)
    audit = rows(db, "SELECT action, data FROM audit_log ORDER BY id")
    assert [a["action"] for a in audit] == ["WEBHOOK_CREATED", "WEBHOOK_UPDATED", "WEBHOOK_DELETED"]
    assert audit[1]["data"] == {
        "events": ["message.created"],
        "active": False,
        "secret": "changed",
    }
    assert "another-secret" not in str(audit)


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("http://127.0.0.1:8080/hook", "127.0.0.1 is loopback"),
        ("http://10.0.0.7/hook", "10.0.0.7 is private"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is link-local"),
        ("http://[::1]/hook", "::1 is loopback"),
        ("http://[::ffff:127.0.0.1]/hook", "127.0.0.1 is loopback (inside the IPv6 address"),
        ("http://[fe80::1]/hook", "fe80::1 is link-local"),
        ("http://[fc00::5]/hook", "fc00::5 is private"),
        ("http://100.64.1.1/hook", "shared (carrier-grade NAT)"),
        ("http://0.0.0.0/hook", "unspecified"),
        ("http://224.0.0.1/hook", "multicast"),
        ("http://240.0.0.1/hook", "reserved"),
        ("https://inside.example.com/hook", "inside.example.com resolves to 127.0.0.1"),
        ("https://mixed.example.com/hook", "resolves to 10.1.2.3 is private"),
        ("https://six.example.com/hook", "resolves to ::1 is loopback"),
        ("https://nowhere.example.com/hook", "does not resolve"),
    ],
)
def test_a_private_target_is_refused_at_registration_with_a_clear_422(api, auth, db, url, said):
    resp = register(api, auth, status=422, url=url)
    assert said in resp.json["error"]["details"]["url"]
    assert "private, loopback or link-local" in resp.json["error"]["message"] or (
        "resolve" in resp.json["error"]["message"]
    )
    assert rows(db, "SELECT id FROM webhooks") == []
    assert rows(db, "SELECT id FROM audit_log") == []


def test_a_name_resolving_to_public_addresses_is_accepted(api, auth):
    register(api, auth, url="https://hooks.example.com/hook")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.com/x"}, "url"),
        ({"url": "https://user:pw@example.com/x"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"events": []}, "events"),
        ({"events": ["ticket.deleted"]}, "events"),
        ({"secret": "short"}, "secret"),
        ({"secret": None}, "secret"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(api, auth, body, field):
    resp = register(api, auth, status=422, **body)
    assert field in resp.json["error"]["details"]


def test_private_targets_are_allowed_when_the_setting_says_so(settings, db, redis_client, auth):
    allowed = settings.replace(webhook_allow_private=True)
    api = webtest.TestApp(shared_app(allowed, db))
    register(api, auth, url="http://127.0.0.1:9/hook")


# --- which changes fire which events -------------------------------------------------------


@pytest.fixture
def services(settings, db, redis_client):
    return build_services(settings, db, make_redis(settings))


def deliveries(db):
    return rows(
        db,
        "SELECT d.event::text AS event, d.payload, d.status::text AS status, d.webhook_id "
        "FROM webhook_deliveries d ORDER BY d.id",
    )


def test_each_change_writes_one_delivery_per_webhook_that_wants_it(
    api, auth, services, db, admin, make_staff, redis_client
):
    everything = register(
        api,
        auth,
        events=["ticket.created", "message.created", "ticket.status_changed", "ticket.assigned"],
    ).json["webhook"]["id"]
    created_only = register(api, auth).json["webhook"]["id"]
    register(api, auth, events=["ticket.created"], active=False)  # inactive: never
    bo = make_staff("AGENT", name="Bo Agent")

    new = NewTicket("Cleo Customer", "cleo@example.org", "The printer jams", "Tray 2.", "NORMAL")
    ticket = services.tickets.create(new, channel="WEB")
    services.assignment.assign(admin, ticket["pid"], Assignment(bo["id"]))
    services.tickets.update(admin, ticket["pid"], TicketChange(status="WAITING"))
    services.messages.post(admin, ticket["pid"], NewMessage("We are on it."), channel="WEB")
    services.messages.post(
        admin, ticket["pid"], NewMessage("Bo, call her.", "INTERNAL"), channel="WEB"
    )
    services.assignment.assign(admin, ticket["pid"], Assignment(None))

    found = deliveries(db)
    assert [(d["webhook_id"], d["event"]) for d in found] == [
        (everything, "ticket.created"),
        (created_only, "ticket.created"),
        (everything, "ticket.assigned"),
        (everything, "ticket.status_changed"),
        (everything, "message.created"),
        (everything, "message.created"),
        (everything, "ticket.assigned"),
    ]
    assert all(d["status"] == "PENDING" for d in found)
    created = found[0]["payload"]
    assert created["event"] == "ticket.created"
    assert created["ticket"]["pid"] == ticket["pid"]
    assert created["ticket"]["requester"] == {"email": "cleo@example.org", "name": "Cleo Customer"}
    assert created["ticket"]["status"] == "OPEN"
    assert created["actor"] is None
    assigned = found[2]["payload"]
    assert assigned["changes"]["to"] == {"id": bo["id"], "name": "Bo Agent"}
    assert assigned["ticket"]["assignee"]["id"] == bo["id"]
    assert assigned["actor"]["id"] == admin["id"]
    assert found[3]["payload"]["changes"] == {"from": "OPEN", "to": "WAITING"}
    public, internal = found[4]["payload"]["message"], found[5]["payload"]["message"]
    assert (public["visibility"], public["body"]) == ("PUBLIC", "We are on it.")
    assert (internal["visibility"], internal["body"]) == ("INTERNAL", "Bo, call her.")
    assert found[6]["payload"]["changes"]["to"] is None  # unassigned


def test_a_change_that_rolls_back_leaves_no_delivery(api, auth, services, db, admin):
    register(api, auth, events=["ticket.status_changed"])
    new = NewTicket("Cleo Customer", "cleo@example.org", "Printer", "Tray 2.", "NORMAL")
    ticket = services.tickets.create(new, channel="WEB")

    def change_then_fail() -> None:
        with db.transaction():  # an outer unit of work: the service's joins it
            services.tickets.update(admin, ticket["pid"], TicketChange(status="WAITING"))
            raise RuntimeError("the unit of work fails after the change")

    with pytest.raises(RuntimeError):
        change_then_fail()
    assert deliveries(db) == []
    services.tickets.update(admin, ticket["pid"], TicketChange(status="WAITING"))
    assert [d["event"] for d in deliveries(db)] == ["ticket.status_changed"]


def test_deliveries_are_listed_and_only_a_dead_one_is_retried(
    api, auth, services, db, redis_client
):
    webhook_id = register(api, auth).json["webhook"]["id"]
    new = NewTicket("Cleo Customer", "cleo@example.org", "Printer", "Tray 2.", "NORMAL")
    services.tickets.create(new, channel="WEB")
    (item,) = api.get(f"/api/webhooks/{webhook_id}/deliveries", headers=auth).json["items"]
    assert (item["event"], item["status"], item["attempts"]) == ("ticket.created", "PENDING", 0)
    resp = api.post(f"/api/webhooks/deliveries/{item['id']}/retry", headers=auth, status=409)
    assert resp.json["error"]["details"] == {"status": "PENDING"}
    with db.transaction() as conn:
        conn.execute(
            "UPDATE webhook_deliveries SET status = 'DEAD', attempts = 8, last_error = 'HTTP 500'"
        )
    redis_client.delete(WEBHOOKS.queue)
    retried = api.post(f"/api/webhooks/deliveries/{item['id']}/retry", headers=auth).json
    assert (retried["delivery"]["status"], retried["delivery"]["attempts"]) == ("PENDING", 0)
    assert redis_client.lrange(WEBHOOKS.queue, 0, -1) == [str(item["id"]).encode()]
    api.post("/api/webhooks/deliveries/999999/retry", headers=auth, status=404)
    api.get("/api/webhooks/999999/deliveries", headers=auth, status=404)
    bad = api.get(f"/api/webhooks/{webhook_id}/deliveries?status=LOST", headers=auth, status=422)
    assert "status" in bad.json["error"]["details"]


def test_the_page_lists_webhooks_with_a_retry_button_for_dead_deliveries(
    api, auth, services, db, admin, tokens
):
    webhook_id = register(api, auth).json["webhook"]["id"]
    new = NewTicket("Cleo Customer", "cleo@example.org", "Printer", "Tray 2.", "NORMAL")
    services.tickets.create(new, channel="WEB")
    services.tickets.create(new, channel="WEB")
    with db.transaction() as conn:
        conn.execute(
            "UPDATE webhook_deliveries SET status = 'DEAD', attempts = 8, "
            "last_error = 'HTTP 503: down' WHERE id = (SELECT min(id) FROM webhook_deliveries)"
        )
    token, _ = tokens.issue(admin)
    api.set_cookie("session", token)
    page = api.get("/webhooks", headers={"Accept": "text/html"})
    assert f"https://{PUBLIC}/hook" in page.text
    assert "HTTP 503: down" in page.text
    retry_forms = [f for f in page.forms.values() if "/retry" in (f.action or "")]
    assert len(retry_forms) == 1  # the DEAD one only
    retry_forms[0].submit(status=303)
    statuses = [d["status"] for d in deliveries(db)]
    assert statuses == ["PENDING", "PENDING"]
    assert SECRET not in page.text
    assert f"webhook-{webhook_id}" in page.text


def test_a_customers_email_fires_ticket_created_then_message_created(
    settings, db, redis_client, api, auth
):
    """By email too: the first email opens the ticket (ticket.created, its first message no
    message.created), the customer's answer to it is a message.created of a CUSTOMER
    message on the EMAIL channel."""
    register(api, auth, events=["ticket.created", "message.created"])
    inbound = settings.replace(inbound_email_secret=INBOUND_SECRET)
    mail = webtest.TestApp(shared_app(inbound, db))
    first = {
        "from": "Cleo <cleo@example.org>",
        "to": "support@example.com",
        "subject": "The printer jams",
        "text": "Tray 2.",
        "message_id": "<m1@example.org>",
    }
    pid = post_json(mail, first).json["ticket"]
    post_json(
        mail,
        first
        | {"subject": f"Re: [#{pid}] The printer jams", "text": "Still jammed.",
           "message_id": "<m2@example.org>", "in_reply_to": "<m1@example.org>"},
    )  # fmt: skip
    found = deliveries(db)
    assert [d["event"] for d in found] == ["ticket.created", "message.created"]
    assert found[0]["payload"]["ticket"]["channel"] == "EMAIL"
    message = found[1]["payload"]["message"]
    assert (message["author"], message["channel"]) == ("CUSTOMER", "EMAIL")
    assert (message["author_email"], message["body"]) == ("cleo@example.org", "Still jammed.")
    assert found[1]["payload"]["ticket"]["pid"] == pid


def test_a_purged_ticket_takes_its_deliveries_and_their_personal_data_along(db):
    """Their payloads hold the ticket's requester and messages: a ticket deleted (the
    RETENTION_AFTER purge) deletes them too, never leaves them behind without a ticket."""
    rule = rows(
        db,
        "SELECT confdeltype FROM pg_constraint WHERE conrelid = 'webhook_deliveries'::regclass "
        "AND confrelid = 'tickets'::regclass",
    )
    assert rule == [{"confdeltype": "c"}]  # ON DELETE CASCADE
