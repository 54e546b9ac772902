"""Whom the limits count: the socket peer, or the client a trusted proxy names (issue 10,
finding 2), with IPv6 clients counted by their /64."""

import pytest
import webtest

from supportdesk.core.clients import ClientAddresses, parse_networks
from supportdesk.core.config import ConfigError, Settings
from tests.conftest import shared_app

PROXIES, _ = parse_networks("10.0.0.1, 192.168.0.0/16, fd00::/8")


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "client"),
    [
        # No X-Forwarded-For, or from a peer that is not a trusted proxy: the peer.
        ("203.0.113.5", None, "203.0.113.5"),
        ("203.0.113.5", "198.51.100.1", "203.0.113.5"),
        # Through the proxy: the hop it appended.
        ("10.0.0.1", "198.51.100.1", "198.51.100.1"),
        # A client's own header to the left of its proxy's hop is not believed.
        ("10.0.0.1", "1.2.3.4, 198.51.100.1", "198.51.100.1"),
        # Two trusted hops (a load balancer behind the proxy): walked past both.
        ("10.0.0.1", "1.2.3.4, 198.51.100.1, 192.168.3.3", "198.51.100.1"),
        # Only trusted hops: the leftmost of them.
        ("10.0.0.1", "192.168.1.1", "192.168.1.1"),
        # Garbage in the header: the last address that could be read.
        ("10.0.0.1", "not-an-address", "10.0.0.1"),
        ("10.0.0.1", "1.2.3.4, garbage, 192.168.3.3", "192.168.3.3"),
        # Ports, brackets and IPv4-mapped IPv6, as proxies write them.
        ("10.0.0.1", "198.51.100.1:51000", "198.51.100.1"),
        ("10.0.0.1", "[2001:db8:1:2:3::9]:443", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.5", None, "203.0.113.5"),
        # IPv6 by /64.
        ("2001:db8:aa:bb:1::1", None, "2001:db8:aa:bb::/64"),
        ("2001:db8:aa:bb:ffff::2", None, "2001:db8:aa:bb::/64"),
        ("fd00::1", "2001:db8:aa:cc::7", "2001:db8:aa:cc::/64"),
    ],
)
def test_the_client_of_a_request(peer, forwarded_for, client):
    assert ClientAddresses(PROXIES).client(peer, forwarded_for) == client


def test_no_proxy_is_trusted_by_default():
    assert ClientAddresses().client("10.0.0.1", "198.51.100.1") == "10.0.0.1"


def test_trusted_proxies_setting():
    settings = Settings.parse({"ENVIRONMENT": "test", "TRUSTED_PROXIES": "10.0.0.1, fd00::/8"})
    assert [str(n) for n in settings.trusted_proxies] == ["10.0.0.1/32", "fd00::/8"]
    with pytest.raises(ConfigError) as error:
        Settings.parse({"ENVIRONMENT": "test", "TRUSTED_PROXIES": "10.0.0.1, proxy.local"})
    assert "proxy.local" in error.value.problems["TRUSTED_PROXIES"]


def _behind_proxy(settings, db, **changes):
    changed = settings.replace(trusted_proxies=PROXIES, **changes)
    return webtest.TestApp(shared_app(changed, db))


def _login(client, forwarded_for, status, peer="10.0.0.1"):
    client.post_json(
        "/api/auth/login",
        {"email": "nobody@example.com", "password": "wrong password!"},
        headers={"X-Forwarded-For": forwarded_for},
        extra_environ={"REMOTE_ADDR": peer},
        status=status,
    )


def test_behind_a_trusted_proxy_each_client_has_its_own_limit(settings, db):
    client = _behind_proxy(settings, db, login_max_failures_per_address=2)
    for _ in range(2):
        _login(client, "198.51.100.1", 401)
    _login(client, "198.51.100.1", 429)
    _login(client, "198.51.100.2", 401)  # another client behind the same proxy
    # A client that forges the header in front of its proxy's hop is still itself.
    _login(client, "198.51.100.2, 198.51.100.1", 429)


def test_an_untrusted_peer_cannot_choose_its_address(settings, db):
    client = _behind_proxy(settings, db, login_max_failures_per_address=2)
    for n in range(2):
        _login(client, f"198.51.100.{n}", 401, peer="203.0.113.9")
    _login(client, "198.51.100.77", 429, peer="203.0.113.9")


def test_an_ipv6_host_cannot_step_through_its_64(settings, db):
    client = _behind_proxy(settings, db, login_max_failures_per_address=2)
    _login(client, "", 401, peer="2001:db8:5:6::1")
    _login(client, "", 401, peer="2001:db8:5:6::2")
    _login(client, "", 429, peer="2001:db8:5:6:ffff::3")
    _login(client, "", 401, peer="2001:db8:5:7::1")  # the next /64 is someone else


def test_the_public_form_limit_counts_clients_behind_the_proxy(settings, db):
    client = _behind_proxy(settings, db, public_tickets_per_address=1)
    ticket = {"email": "ann@example.org", "name": "Ann", "subject": "Help", "body": "Please."}

    def post(forwarded_for, status):
        client.post_json(
            "/api/tickets",
            ticket,
            headers={"X-Forwarded-For": forwarded_for},
            extra_environ={"REMOTE_ADDR": "10.0.0.1"},
            status=status,
        )

    post("198.51.100.1", 201)
    post("198.51.100.1", 429)
    post("198.51.100.2", 201)
