"""A mailbox provider's Authentication-Results: only its own header counts (RFC 8601)."""

from __future__ import annotations

import email
import email.policy

import pytest

from supportdesk.mail.inbound.sender_auth import (
    GOOGLE_AUTHSERV_IDS,
    MICROSOFT_AUTHSERV_IDS,
    trusted_ids_for,
    verdict_from_headers,
)

GOOGLE = "mx.google.com"
# Microsoft 365's header, as Exchange Online writes it: no authserv-id.
MICROSOFT_PASS = (
    "spf=pass (sender IP is 209.85.128.41) smtp.mailfrom=example.org; dkim=pass "
    "(signature was verified) header.d=example.org;dmarc=pass action=none "
    "header.from=example.org;compauth=pass reason=100"
)
MICROSOFT_FAIL = (
    "spf=fail (sender IP is 203.0.113.9) smtp.mailfrom=example.org; dkim=none (message "
    "not signed) header.d=none;dmarc=fail action=oreject header.from=example.org;"
    "compauth=fail reason=000"
)


def message(*results: str, sender: str = "cleo@example.org") -> bytes:
    """A message with these Authentication-Results values, topmost first."""
    headers = "".join(f"Authentication-Results: {r}\r\n" for r in results)
    return (
        f"{headers}Received: from mail.example.org\r\nFrom: Cleo <{sender}>\r\n"
        "To: support@example.com\r\nSubject: Re: the printer\r\n"
        "Message-ID: <r1@example.org>\r\n\r\nThanks.\r\n"
    ).encode()


def google(result: str, domain: str = "example.org") -> str:
    return (
        f"{GOOGLE}; dkim=pass header.i=@{domain} header.s=s1 header.b=AbC; "
        f"spf=pass smtp.mailfrom={domain}; dmarc={result} (p=REJECT sp=REJECT dis=NONE) "
        f"header.from={domain}"
    )


@pytest.mark.parametrize(
    ("results", "trusted", "verdict"),
    [
        pytest.param([google("pass")], GOOGLE_AUTHSERV_IDS, "pass", id="google-pass"),
        pytest.param([google("fail")], GOOGLE_AUTHSERV_IDS, "fail", id="google-fail"),
        pytest.param([google("none")], GOOGLE_AUTHSERV_IDS, "none", id="google-no-policy"),
        pytest.param([google("temperror")], GOOGLE_AUTHSERV_IDS, "none", id="temperror"),
        pytest.param([], GOOGLE_AUTHSERV_IDS, "none", id="no-header"),
        pytest.param([google("pass")], (), "none", id="nothing-trusted"),
        pytest.param(
            [google("pass").replace(GOOGLE, "mx.evil.example")],
            GOOGLE_AUTHSERV_IDS,
            "none",
            id="untrusted-authserv-id",
        ),
        pytest.param(
            [google("fail"), google("pass")],
            GOOGLE_AUTHSERV_IDS,
            "fail",
            id="forged-pass-below-the-providers-fail",
        ),
        pytest.param(
            ["mx.evil.example; dmarc=pass header.from=example.org", google("fail")],
            GOOGLE_AUTHSERV_IDS,
            "fail",
            id="untrusted-above-the-trusted",
        ),
        pytest.param(
            [f"{GOOGLE}; dkim=pass header.d=example.org; spf=pass smtp.mailfrom=example.org"],
            GOOGLE_AUTHSERV_IDS,
            "none",
            id="dkim-and-spf-without-dmarc",
        ),
        pytest.param(
            [google("pass", domain="other.example")],
            GOOGLE_AUTHSERV_IDS,
            "none",
            id="judged-another-from-domain",
        ),
        pytest.param(
            [f"{GOOGLE}; dmarc=pass (nested (((" + "(" * 5000],
            GOOGLE_AUTHSERV_IDS,
            "none",
            id="unreadable-header",
        ),
        pytest.param(
            ["MX.Google.COM; dmarc=pass header.from=example.org"],
            GOOGLE_AUTHSERV_IDS,
            "pass",
            id="ids-compare-in-any-case",
        ),
        # Microsoft's id-less header: read only at the top, for a Microsoft mailbox.
        pytest.param([MICROSOFT_PASS], MICROSOFT_AUTHSERV_IDS, "pass", id="microsoft-pass"),
        pytest.param([MICROSOFT_FAIL], MICROSOFT_AUTHSERV_IDS, "fail", id="microsoft-fail"),
        pytest.param(
            [MICROSOFT_PASS.replace("dmarc=pass", "dmarc=bestguesspass")],
            MICROSOFT_AUTHSERV_IDS,
            "none",
            id="microsoft-best-guess-is-no-policy",
        ),
        pytest.param(
            [MICROSOFT_FAIL, MICROSOFT_PASS],
            MICROSOFT_AUTHSERV_IDS,
            "fail",
            id="microsoft-forged-id-less-below",
        ),
        pytest.param(
            ["mx.relay.example; spf=pass smtp.mailfrom=example.org", MICROSOFT_PASS],
            MICROSOFT_AUTHSERV_IDS,
            "none",
            id="microsoft-id-less-not-at-the-top",
        ),
        pytest.param([MICROSOFT_PASS], GOOGLE_AUTHSERV_IDS, "none", id="id-less-for-google"),
        pytest.param(
            [MICROSOFT_PASS], ("mx.example-host.net",), "none", id="id-less-for-another-host"
        ),
        pytest.param(
            [
                "mx.microsoft.com 1; spf=pass smtp.mailfrom=example.org; dmarc=pass "
                "action=none header.from=example.org"
            ],
            MICROSOFT_AUTHSERV_IDS,
            "pass",
            id="microsoft-named",
        ),
    ],
)
def test_the_topmost_trusted_header_decides(results, trusted, verdict):
    raw = message(*results)
    assert verdict_from_headers(raw, trusted) == verdict
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert verdict_from_headers(parsed, trusted) == verdict


def test_a_folded_header_is_read():
    raw = message(f"{GOOGLE};\r\n       dkim=pass header.d=example.org;\r\n       dmarc=fail")
    assert verdict_from_headers(raw, GOOGLE_AUTHSERV_IDS) == "fail"


def test_a_second_from_header_is_judged_too():
    """A provider judged the first From; a second From of another domain is not vouched for."""
    raw = message(google("pass")).replace(b"To:", b"From: Bank <alerts@bank.example>\r\nTo:", 1)
    assert verdict_from_headers(raw, GOOGLE_AUTHSERV_IDS) == "none"


@pytest.mark.parametrize(
    ("mailbox", "ids"),
    [
        ({"oauth_provider": "MICROSOFT", "imap_host": "imap.example"}, MICROSOFT_AUTHSERV_IDS),
        ({"oauth_provider": None, "imap_host": "Outlook.Office365.com"}, MICROSOFT_AUTHSERV_IDS),
        ({"oauth_provider": "GOOGLE", "imap_host": "imap.example"}, GOOGLE_AUTHSERV_IDS),
        ({"oauth_provider": None, "imap_host": "imap.gmail.com"}, GOOGLE_AUTHSERV_IDS),
        ({"oauth_provider": None, "imap_host": "mail.example-host.net"}, ()),
        (
            {
                "oauth_provider": "GOOGLE",
                "imap_host": "imap.gmail.com",
                "trusted_authserv_ids": ["mx.filter.example"],
            },
            ("mx.filter.example",),
        ),
    ],
)
def test_a_mailbox_trusts_its_own_list_else_its_providers(mailbox, ids):
    assert trusted_ids_for(mailbox) == ids
