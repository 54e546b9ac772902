"""Sending one webhook request: to a checked address, with bounded time and answer.

urllib3's public connection pools do what a rebinding-proof client needs: the pool is made
for the checked IP address itself (nothing resolves the name again), while the request
carries the URL's `Host` header and, for https, the name as SNI (`server_hostname`) and as
the name the certificate must match (`assert_hostname`). Redirects are never followed
(`redirect=False`, `retries=False`): a 3xx is a failed attempt like any other. The answer is
read up to WEBHOOK_MAX_RESPONSE_BYTES; each network step waits at most
WEBHOOK_TIMEOUT_SECONDS in all (urllib3's `Timeout(total=...)` over connecting and the
request, what is left of it for a name's next address), and reading the answer stops once
that time has gone by, so one attempt takes at most about twice the timeout. A name's next
address is tried only when one cannot be connected to: a request that reached a server is
never sent to another in the same attempt.
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass

import urllib3
from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError

from supportdesk.webhooks.targets import (
    AddressResolver,
    DnsAddresses,
    TargetRefused,
    checked_addresses,
    parse_target,
)

CHUNK = 16 * 1024


class AttemptFailed(Exception):
    """The request did not get a 2xx answer; says what happened (kept as `last_error`)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes  # at most max_response_bytes of it
    location: str | None = None  # of a redirect, for the error it becomes


class WebhookClient:
    def __init__(
        self,
        *,
        timeout: float,
        max_response_bytes: int,
        allow_private: bool,
        resolver: AddressResolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ):
        """`ssl_context`: the certificates https targets are checked against (the
        system's by default; tests give their own authority's)."""
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes
        self.allow_private = allow_private
        self.resolver = resolver or DnsAddresses(timeout=timeout)
        self.ssl_context = ssl_context

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Answer:
        """POST `body` to `url`; AttemptFailed unless the answer is 2xx."""
        try:
            target = parse_target(url)
            addresses = checked_addresses(target, self.resolver, allow_private=self.allow_private)
        except TargetRefused as refused:
            raise AttemptFailed(str(refused)) from refused
        deadline = time.monotonic() + self.timeout
        last: Exception | None = None
        for address in addresses:
            if time.monotonic() >= deadline:
                break
            remaining = deadline - time.monotonic()
            pool = self._pool(target.scheme, str(address), target.port, target.host, remaining)
            try:
                answer = self._send(
                    pool, target.path, body, headers | {"Host": target.host_header}, deadline
                )
            except (NewConnectionError, ConnectTimeoutError) as ex:  # not there: the next one
                last = ex
                continue
            except (HTTPError, OSError) as ex:  # reached, then cut off: never sent twice
                raise AttemptFailed(f"no answer from {target.host}: {_reason(ex)}") from ex
            finally:
                pool.close()
            if 200 <= answer.status < 300:
                return answer
            raise AttemptFailed(_said(answer), answer.status)
        raise AttemptFailed(f"no answer from {target.host}: {_reason(last)}")

    def _pool(
        self, scheme: str, address: str, port: int, name: str, seconds: float
    ) -> urllib3.HTTPConnectionPool:
        timeout = urllib3.Timeout(total=max(0.1, seconds))
        if scheme == "http":
            return urllib3.HTTPConnectionPool(
                address, port, timeout=timeout, retries=False, maxsize=1
            )
        return urllib3.HTTPSConnectionPool(
            address,
            port,
            timeout=timeout,
            retries=False,
            maxsize=1,
            server_hostname=name,
            assert_hostname=name,
            cert_reqs="CERT_REQUIRED",
            ssl_context=self.ssl_context,
        )

    def _send(
        self,
        pool: urllib3.HTTPConnectionPool,
        path: str,
        body: bytes,
        headers: dict[str, str],
        deadline: float,
    ) -> Answer:
        response = pool.urlopen(
            "POST",
            path,
            body=body,
            headers=headers,
            redirect=False,
            retries=False,
            preload_content=False,
            assert_same_host=False,
        )
        try:
            read = bytearray()
            while len(read) < self.max_response_bytes and time.monotonic() < deadline:
                # read1: what has arrived (a receiver dripping bytes meets the deadline);
                # raw bytes, never decompressed (a small gzip can unpack to gigabytes).
                want = min(CHUNK, self.max_response_bytes - len(read))
                chunk = response.read1(want, decode_content=False)
                if not chunk:
                    break
                read += chunk
            return Answer(response.status, bytes(read), response.headers.get("Location"))
        finally:
            response.close()  # the rest, if any, is never read


def _said(answer: Answer) -> str:
    excerpt = answer.body[:200].decode("utf-8", "replace").strip()
    if 300 <= answer.status < 400:
        where = f" to {answer.location[:300]}" if answer.location else ""
        return f"HTTP {answer.status}{where}: redirects are not followed"
    return f"HTTP {answer.status}" + (f": {excerpt}" if excerpt else "")


def _reason(error: Exception | None) -> str:
    if error is None:
        return "timed out"
    reason = getattr(error, "reason", None)
    return str(reason or error) or type(error).__name__
