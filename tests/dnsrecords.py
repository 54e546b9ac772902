"""The tests' DNS: the one `Resolver` the sender checks ask, holding the records a test
gives, and a DKIM key whose public half a test publishes in it."""

from __future__ import annotations

import base64
import functools
from collections.abc import Iterable, Mapping

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from supportdesk.mail.inbound.sender_auth.resolver import DnsTemporaryError, normalized


class RecordsResolver:
    """`records`: a name's TXT records under the name (`{"example.org": ["v=spf1 -all"]}`),
    other types under "TYPE name" (`{"A mail.example.org": ["192.0.2.1"]}`). A name in
    `failing` cannot be asked (DnsTemporaryError, as for a timeout). `asked` lists the
    questions, in order."""

    def __init__(
        self, records: Mapping[str, Iterable[str]] | None = None, failing: Iterable[str] = ()
    ):
        self.records = {_key_of(k): list(v) for k, v in (records or {}).items()}
        self.failing = {normalized(name) for name in failing}
        self.asked: list[tuple[str, str]] = []

    def lookup(self, name: str, rdtype: str) -> list[str]:
        name = normalized(name)
        self.asked.append((rdtype, name))
        if name in self.failing:
            raise DnsTemporaryError(f"{rdtype} {name}: timed out (test)")
        key = name if rdtype == "TXT" else f"{rdtype} {name}"
        return list(self.records.get(key, []))


def _key_of(given: str) -> str:
    rdtype, _, name = given.rpartition(" ")
    return f"{rdtype} {normalized(name)}" if rdtype else normalized(name)


@functools.cache
def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def dkim_key_record() -> str:
    """The TXT record publishing the test key: `v=DKIM1; k=rsa; p=...`."""
    public = (
        _key()
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return "v=DKIM1; k=rsa; p=" + base64.b64encode(public).decode("ascii")


def dkim_signed(raw: bytes, domain: str, selector: str = "s1") -> bytes:
    """`raw` with a DKIM-Signature of `domain` (d=) by the test key, prepended."""
    private = _key().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    signature = dkim.sign(
        raw,
        selector.encode(),
        domain.encode(),
        private,
        include_headers=[b"from", b"to", b"subject", b"message-id", b"in-reply-to"],
    )
    return signature + raw


def key_name(domain: str, selector: str = "s1") -> str:
    return f"{selector}._domainkey.{domain}"
