"""Outgoing webhooks delivered by the worker machinery against the real things: PostgreSQL,
Redis, a webhook receiver in this process (tests/webhookreceiver.py) and a DNS server of the
test's own (tests/dnsserver.py). Timings are shortened instead of waited out."""

from __future__ import annotations

import json
import signal
import ssl
import time
from datetime import UTC, datetime

import pytest
import redis
from psycopg.rows import dict_row

from supportdesk.accounts.audit import Origin
from supportdesk.core.errors import Unauthenticated
from supportdesk.core.redis_client import make_redis
from supportdesk.core.signing import WebhookSignature
from supportdesk.mail.mailboxes.secrets import SecretBox
from supportdesk.tickets.inputs import NewTicket, TicketChange
from supportdesk.web.services import build_services
from supportdesk.webhooks.client import AttemptFailed, WebhookClient
from supportdesk.webhooks.queue import WEBHOOKS
from supportdesk.webhooks.targets import DnsAddresses
from supportdesk.worker.delivery import Timings
from supportdesk.worker.webhooks import DeliveryListener, WebhookWorker
from tests.dnsserver import DnsServer
from tests.webhookreceiver import Reply, WebhookReceiver, when
from tests.worker.conftest import running

FAST = Timings(retry_base=0.05, retry_max=0.2, max_attempts=3, sweep_every=0.2, heartbeat=0.2)
SECRET = "whsec-0123456789abcdef"
PUBLIC = "93.184.215.14"


@pytest.fixture
def receiver():
    made: list[WebhookReceiver] = []

    def make(*replies: Reply, **options) -> WebhookReceiver:
        made.append(WebhookReceiver(*replies, **options).start())
        return made[-1]

    yield make
    for server in made:
        server.stop()


@pytest.fixture
def dns():
    server = DnsServer({("hooks.example.com", "A"): [PUBLIC]})
    yield server
    server.close()


@pytest.fixture
def resolver(dns):
    return DnsAddresses(timeout=5, nameservers=[("127.0.0.1", dns.port)])


@pytest.fixture
def services(settings, db, resolver):
    """The web's services, registering with private targets allowed (the receiver is on
    127.0.0.1) unless a test makes its own."""
    allowed = settings.replace(webhook_allow_private=True)
    return build_services(allowed, db, make_redis(allowed), webhook_resolver=resolver)


@pytest.fixture
def make_worker(db, redis_url, settings, resolver):
    clients: list[redis.Redis] = []

    def make(*, allow_private=True, timeout=2.0, max_bytes=65536, timings=FAST):
        client = redis.Redis.from_url(redis_url, socket_timeout=5)
        clients.append(client)
        http = WebhookClient(
            timeout=timeout,
            max_response_bytes=max_bytes,
            allow_private=allow_private,
            resolver=resolver,
        )
        return WebhookWorker(db, client, http, SecretBox(settings), timings=timings)

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def listener(database_url, redis_url):
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    listening = DeliveryListener(database_url, client, poll=0.1)
    yield listening
    client.close()


def register(services, admin, url, events=("ticket.created",)):
    data = {"url": url, "events": list(events), "secret": SECRET}
    return services.webhooks.create(data, Origin(admin["id"]))


def new_ticket(services, subject="The printer jams"):
    new = NewTicket("Cleo Customer", "cleo@example.org", subject, "Tray 2.", "NORMAL")
    return services.tickets.create(new, channel="WEB")


def delivery_rows(db):
    with db.transaction() as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT id, status::text AS status, attempts, last_error, response_status "
            "FROM webhook_deliveries ORDER BY id"
        ).fetchall()


def status_of(db):
    return [row["status"] for row in delivery_rows(db)]


def assert_signed(received, secret=SECRET):
    """The receiver's own check of a request: our inbound webhook's verifier, under the
    webhook's secret."""
    checker = WebhookSignature(secret, lambda: datetime.now(UTC))
    mac = checker.start(received.headers["x-timestamp"], received.headers["x-signature"])
    mac.update(received.body)
    checker.finish(mac, received.headers["x-signature"])


# --- delivered, signed, once ---------------------------------------------------------------


def test_a_new_ticket_is_delivered_once_signed_with_the_webhooks_secret(
    services, make_staff, make_worker, listener, receiver, db
):
    admin = make_staff("ADMIN")
    hook = receiver(Reply(204, b""))
    register(services, admin, hook.url())
    with running(listener):
        time.sleep(0.3)  # listening before the commit it is to hear
        ticket = new_ticket(services)
        worker = make_worker()
        with running(worker):
            when(lambda: status_of(db) == ["SENT"], what="the delivery SENT")
            time.sleep(0.5)  # a second request would arrive now
    (received,) = hook.received
    assert received.path == "/hook"
    assert received.headers["content-type"] == "application/json"
    assert received.headers["x-webhook-event"] == "ticket.created"
    assert_signed(received)
    with pytest.raises(Unauthenticated, match="does not match"):
        assert_signed(received, secret="another-secret-0000")
    body = json.loads(received.body)
    (row,) = delivery_rows(db)
    assert body["id"] == row["id"] == int(received.headers["x-webhook-delivery"])
    assert body["event"] == "ticket.created"
    assert body["ticket"]["pid"] == ticket["pid"]
    assert (row["attempts"], row["response_status"]) == (1, 204)


def test_the_listener_queues_a_committed_delivery_at_once_not_at_the_end_of_its_poll(
    services, make_staff, receiver, db, database_url, redis_url
):
    """`poll` is how often the listener looks at `stopping`, not a batching window: found by
    bench-load, where every webhook waited up to a second for the window to close."""
    admin = make_staff("ADMIN")
    register(services, admin, receiver().url())
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    slow = DeliveryListener(database_url, client, poll=3.0)
    try:
        with running(slow):
            time.sleep(0.5)  # listening before the commit it is to hear
            new_ticket(services)
            committed = time.monotonic()
            when(lambda: client.llen(WEBHOOKS.queue) == 1, what="the id queued")
            waited = time.monotonic() - committed
        assert [int(i) for i in client.lrange(WEBHOOKS.queue, 0, -1)] == [
            row["id"] for row in delivery_rows(db)
        ]
        assert waited < 1.0, f"queued {waited:.2f} s after the commit"
    finally:
        client.close()


def test_a_delivery_no_queue_holds_is_found_by_the_sweeper(
    services, make_staff, make_worker, receiver, db, redis_client
):
    """No listener ran (it was down): the row is the truth and the sweeper queues it."""
    admin = make_staff("ADMIN")
    hook = receiver()
    register(services, admin, hook.url())
    new_ticket(services)
    assert redis_client.llen(WEBHOOKS.queue) == 0
    with running(make_worker()):
        when(lambda: status_of(db) == ["SENT"], what="the swept delivery SENT")
    assert len(hook.received) == 1


# --- failures: retries, DEAD, the retry button ---------------------------------------------


def test_a_500_is_retried_with_the_same_body_then_delivered(
    services, make_staff, make_worker, listener, receiver, db
):
    admin = make_staff("ADMIN")
    hook = receiver(Reply(500, b"try later"), Reply(200))
    register(services, admin, hook.url())
    with running(listener, make_worker()):
        time.sleep(0.3)
        new_ticket(services)
        when(lambda: status_of(db) == ["SENT"], what="SENT after a retry")
    first, second = hook.received
    assert first.body == second.body
    assert_signed(first)
    assert_signed(second)
    (row,) = delivery_rows(db)
    assert (row["attempts"], row["response_status"]) == (2, 200)


def test_after_the_last_attempt_it_is_dead_until_an_admin_retries(
    services, make_staff, make_worker, listener, receiver, db
):
    admin = make_staff("ADMIN")
    hook = receiver(Reply(500, b"broken"), Reply(500), Reply(503), Reply(200))
    webhook = register(services, admin, hook.url())
    with running(listener, make_worker()):
        time.sleep(0.3)
        new_ticket(services)
        when(lambda: status_of(db) == ["DEAD"], what="DEAD")
        time.sleep(0.3)
        assert len(hook.received) == FAST.max_attempts  # and no more
        (dead,) = delivery_rows(db)
        assert dead["last_error"].startswith("HTTP 503")
        assert dead["response_status"] == 503
        listed = services.webhooks.deliveries(webhook["id"], {"status": "DEAD"})
        assert [d["id"] for d in listed] == [dead["id"]]
        retried = services.webhooks.retry(dead["id"])
        assert retried["status"] == "PENDING"
        when(lambda: status_of(db) == ["SENT"], what="SENT after the retry")
    assert len(hook.received) == FAST.max_attempts + 1
    assert delivery_rows(db)[0]["attempts"] == 1  # a fresh set of attempts


# --- SSRF at connect time ------------------------------------------------------------------


def test_a_name_that_resolves_to_127_0_0_1_at_sending_time_is_never_connected_to(
    settings, db, make_staff, make_worker, listener, receiver, dns, resolver
):
    """Registered while the name resolved to a public address; by the time it is sent the
    DNS says 127.0.0.1 (rebinding): every attempt is refused before connecting, and the
    delivery ends DEAD with the reason."""
    strict = settings.replace(webhook_allow_private=False)
    services = build_services(strict, db, make_redis(strict), webhook_resolver=resolver)
    admin = make_staff("ADMIN")
    hook = receiver()
    register(services, admin, f"http://hooks.example.com:{hook.port}/hook")
    dns.records[("hooks.example.com", "A")] = ["127.0.0.1"]
    with running(listener, make_worker(allow_private=False)):
        time.sleep(0.3)
        new_ticket(services)
        when(lambda: status_of(db) == ["DEAD"], what="DEAD")
    assert hook.received == []
    (row,) = delivery_rows(db)
    assert "hooks.example.com resolves to 127.0.0.1 is loopback" in row["last_error"]
    assert row["response_status"] is None


def test_the_connection_goes_to_the_resolved_address_with_the_names_host_header(
    services, make_staff, make_worker, listener, receiver, db, dns
):
    """The positive control of the test above: allowed, the same name reaches the receiver
    (the client connected to the address it checked, saying the name in Host)."""
    admin = make_staff("ADMIN")
    hook = receiver()
    register(services, admin, f"http://hooks.example.com:{hook.port}/hook?x=1")
    dns.records[("hooks.example.com", "A")] = ["127.0.0.1"]
    with running(listener, make_worker(allow_private=True)):
        time.sleep(0.3)
        new_ticket(services)
        when(lambda: status_of(db) == ["SENT"], what="SENT")
    (received,) = hook.received
    assert received.headers["host"] == f"hooks.example.com:{hook.port}"
    assert received.path == "/hook?x=1"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/hook",
        "http://[::ffff:127.0.0.1]:{port}/hook",
        "http://10.0.0.1:{port}/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:{port}/hook",
    ],
)
def test_a_private_literal_stored_before_the_rule_is_refused_at_connect_time(
    services, make_staff, make_worker, listener, receiver, db, url
):
    """A webhook registered while private targets were allowed (say, a changed setting):
    the worker checks again and sends nothing."""
    admin = make_staff("ADMIN")
    hook = receiver()
    register(services, admin, url.format(port=hook.port))
    with running(listener, make_worker(allow_private=False)):
        time.sleep(0.3)
        new_ticket(services)
        when(lambda: status_of(db) == ["DEAD"], what="DEAD")
    assert hook.received == []
    assert "may not target private, loopback or link-local" in delivery_rows(db)[0]["last_error"]


def test_a_redirect_is_not_followed_and_counts_as_a_failure(
    services, make_staff, make_worker, listener, receiver, db
):
    admin = make_staff("ADMIN")
    inside = receiver()  # where the redirect points: it must never be asked
    hook = receiver(Reply(302, b"", {"Location": inside.url("/internal")}))
    register(services, admin, hook.url())
    with running(listener, make_worker(allow_private=True)):
        time.sleep(0.3)
        new_ticket(services)
        when(lambda: status_of(db) == ["DEAD"], what="DEAD")
    assert len(hook.received) == FAST.max_attempts
    assert inside.received == []
    (row,) = delivery_rows(db)
    assert row["response_status"] == 302
    assert "redirects are not followed" in row["last_error"]
    assert inside.url("/internal") in row["last_error"]


# --- bounds: time and size -----------------------------------------------------------------


def test_a_receiver_slower_than_the_timeout_is_a_failed_attempt(
    services, make_staff, make_worker, listener, receiver, db
):
    admin = make_staff("ADMIN")
    hook = receiver(Reply(200, delay=3))
    register(services, admin, hook.url())
    once = Timings(retry_base=30, retry_max=30, max_attempts=1, sweep_every=0.2, heartbeat=0.2)
    with running(listener, make_worker(timeout=0.5, timings=once)):
        time.sleep(0.3)
        started = time.monotonic()
        new_ticket(services)
        when(lambda: status_of(db) == ["DEAD"], what="DEAD")
        assert time.monotonic() - started < 2.5
    assert "timed out" in delivery_rows(db)[0]["last_error"].lower()


def test_an_answer_dripping_past_the_timeout_is_cut_off(
    services, make_staff, make_worker, listener, receiver, db
):
    """Each byte comes in time, the whole never would: reading stops at the deadline."""
    admin = make_staff("ADMIN")
    hook = receiver(Reply(200, b"x" * 1000, drip=0.05))
    register(services, admin, hook.url())
    with running(listener, make_worker(timeout=0.5)):
        time.sleep(0.3)
        started = time.monotonic()
        new_ticket(services)
        when(lambda: status_of(db) == ["SENT"], what="SENT")
        assert time.monotonic() - started < 2.5  # not 1000 x 0.05 s


def test_a_large_answer_is_read_only_up_to_the_limit(
    settings, services, make_staff, make_worker, receiver, db
):
    """The client stops reading at WEBHOOK_MAX_RESPONSE_BYTES (a 200 is a success however
    much it says)."""
    hook = receiver(Reply(200, b"y" * 1_000_000))
    client = WebhookClient(timeout=5, max_response_bytes=1000, allow_private=True)
    answer = client.post(hook.url(), b"{}", {"Content-Type": "application/json"})
    assert (answer.status, answer.body) == (200, b"y" * 1000)


def test_a_failed_answer_keeps_only_an_excerpt_as_its_error(receiver):
    hook = receiver(Reply(500, b"z" * 100_000))
    client = WebhookClient(timeout=5, max_response_bytes=500, allow_private=True)
    with pytest.raises(AttemptFailed) as failed:
        client.post(hook.url(), b"{}", {})
    assert str(failed.value) == "HTTP 500: " + "z" * 200
    assert failed.value.status == 500


# --- which change fires what, end to end ---------------------------------------------------


def test_only_the_events_a_webhook_asked_for_reach_it(
    services, make_staff, make_worker, listener, receiver, db
):
    admin = make_staff("ADMIN")
    hook = receiver()
    register(services, admin, hook.url(), events=["ticket.status_changed"])
    with running(listener, make_worker()):
        time.sleep(0.3)
        ticket = new_ticket(services)
        services.tickets.update(admin, ticket["pid"], TicketChange(status="RESOLVED"))
        when(lambda: status_of(db) == ["SENT"], what="SENT")
        time.sleep(0.3)
    (received,) = hook.received
    body = json.loads(received.body)
    assert body["event"] == "ticket.status_changed"
    assert body["changes"] == {"from": "OPEN", "to": "RESOLVED"}
    assert body["actor"]["id"] == admin["id"]


# --- https: the checked address, the URL's name as SNI and certificate name ----------------


@pytest.fixture
def authority():
    import trustme

    return trustme.CA()


def test_https_connects_to_the_checked_address_and_checks_the_names_certificate(
    receiver, dns, resolver, authority
):
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("hooks.example.com").configure_cert(server)
    hook = receiver(tls=server)
    dns.records[("hooks.example.com", "A")] = ["127.0.0.1"]
    dns.records[("other.example.com", "A")] = ["127.0.0.1"]
    trusting = ssl.create_default_context()
    authority.configure_trust(trusting)
    client = WebhookClient(
        timeout=5, max_response_bytes=1000, allow_private=True, resolver=resolver,
        ssl_context=trusting,
    )  # fmt: skip
    answer = client.post(hook.url(host="hooks.example.com"), b"{}", {})
    assert answer.status == 200
    assert hook.server_names == ["hooks.example.com"]
    assert hook.received[0].headers["host"] == f"hooks.example.com:{hook.port}"
    # The same server under another name: its certificate does not say that name.
    with pytest.raises(AttemptFailed, match=r"hostname 'other\.example\.com' doesn't match"):
        client.post(hook.url(host="other.example.com"), b"{}", {})
    assert len(hook.received) == 1
    # Nor does a certificate from an authority nobody trusts pass.
    untrusting = WebhookClient(
        timeout=5, max_response_bytes=1000, allow_private=True, resolver=resolver
    )
    with pytest.raises(AttemptFailed, match="CERTIFICATE_VERIFY_FAILED"):
        untrusting.post(hook.url(host="hooks.example.com"), b"{}", {})
    assert len(hook.received) == 1


# --- the `supportdesk worker` process ------------------------------------------------------


def test_the_worker_process_delivers_webhooks_and_stops_on_sigterm(
    services, make_staff, receiver, db, worker_process, redis_client
):
    admin = make_staff("ADMIN")
    hook = receiver()
    register(services, admin, hook.url())
    proc = worker_process("webhooks", WEBHOOK_ALLOW_PRIVATE="true", WEBHOOK_TIMEOUT_SECONDS="2")
    try:
        # Its webhook worker is up (registered on the webhooks' queue), then its listener.
        when(lambda: redis_client.scard(WEBHOOKS.workers) == 1, timeout=20, what="the worker")
        time.sleep(1)
        new_ticket(services)
        when(lambda: status_of(db) == ["SENT"], timeout=20, what="SENT by the process")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, proc.log_path.read_text()  # type: ignore[attr-defined]
    assert len(hook.received) == 1
    assert_signed(hook.received[0])


# --- a worker that died holding a delivery ---------------------------------------------------


def test_a_delivery_held_by_a_dead_worker_is_handed_on_by_the_sweeper(
    services, make_staff, make_worker, receiver, db, redis_client
):
    """A worker claimed the delivery (SENDING, in its processing list) and died: no
    heartbeat. The live worker's sweeper sets the row back and queues it; it is sent."""
    admin = make_staff("ADMIN")
    hook = receiver()
    register(services, admin, hook.url())
    new_ticket(services)
    (row,) = delivery_rows(db)
    with db.transaction() as conn:
        conn.execute(
            "UPDATE webhook_deliveries SET status = 'SENDING', claimed_by = 'ghost', "
            "updated_at = now() WHERE id = %s",
            (row["id"],),
        )
    redis_client.sadd(WEBHOOKS.workers, "ghost")
    redis_client.lpush(WEBHOOKS.processing("ghost"), row["id"])
    with running(make_worker()):
        when(lambda: status_of(db) == ["SENT"], what="SENT by the live worker")
    assert len(hook.received) == 1
    assert not redis_client.sismember(WEBHOOKS.workers, "ghost")
    assert redis_client.llen(WEBHOOKS.processing("ghost")) == 0


def test_an_address_that_refuses_the_connection_passes_to_the_names_next(receiver, dns, resolver):
    """127.0.0.2 is loopback too, where nothing listens on the receiver's port: refused, the
    next address is tried within the same attempt (the request had not reached anyone)."""
    hook = receiver()
    dns.records[("hooks.example.com", "A")] = ["127.0.0.2", "127.0.0.1"]
    client = WebhookClient(timeout=5, max_response_bytes=100, allow_private=True, resolver=resolver)
    assert client.post(hook.url(host="hooks.example.com"), b"{}", {}).status == 200
    assert len(hook.received) == 1


def test_a_server_that_takes_the_request_and_goes_silent_is_not_asked_again(
    receiver, dns, resolver
):
    """Reached, then no answer in time: the attempt fails; the name's other address (a
    second receiver on the same port) is not tried, since the first may have acted on it."""
    slow = receiver(Reply(200, delay=2))
    other = receiver(address=("127.0.0.2", slow.port))
    dns.records[("hooks.example.com", "A")] = ["127.0.0.1", "127.0.0.2"]
    client = WebhookClient(
        timeout=0.5, max_response_bytes=100, allow_private=True, resolver=resolver
    )
    with pytest.raises(AttemptFailed, match=r"(?i)timed out"):
        client.post(slow.url(host="hooks.example.com"), b"{}", {})
    time.sleep(0.3)
    assert (len(slow.received), len(other.received)) == (1, 0)
