"""OAuth 2.0 access tokens of mailboxes (DESIGN.md section 10): the stored one while it has
more than `margin` to live, else a new one from the provider's token endpoint (authlib).

- A refresh locks the mailbox row (FOR UPDATE) and reads it again first: of two processes
  refreshing at once, the second finds the first one's token and uses it. Providers that
  rotate refresh tokens (Microsoft does, at every refresh) retire the old one, so a refresh
  that overwrote a newer refresh token with an older one would lose the mailbox.
- A refusal of the refresh token (`invalid_grant`: revoked, expired, consent withdrawn;
  `interaction_required`: a new sign-in policy) marks the mailbox REAUTHORIZE with the
  reason in `last_error`, calls `on_reauthorize(conn, mailbox, reason)` in the same
  transaction (the caller's alert to admins: once per occurrence, since only the change of
  status calls it) and raises `connect.Reauthorize`. Nothing else is touched: the fetcher's
  position stays, and mail waits.
- A provider that is down or answers oddly is `TokenUnavailable`: transient, retried later,
  the mailbox's status unchanged.

Call `current` outside any transaction of the caller's (the refresh is its own unit of work;
joined to an outer one, a REAUTHORIZE would roll back with it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import psycopg

from supportdesk.core.config import OAuthProvider, Settings
from supportdesk.core.db import Database, queries
from supportdesk.mail.mailboxes.connect import Reauthorize
from supportdesk.mail.mailboxes.secrets import SecretBox, SecretUnreadable

if TYPE_CHECKING:
    from authlib.integrations.requests_client import OAuth2Session

# authlib and requests are imported where a provider is asked: together 0.3 s of the start
# of every process of the desk (web, worker), most of which never ask one.

log = logging.getLogger("supportdesk.mail.mailboxes.tokens")

Row = Mapping[str, Any]
OnReauthorize = Callable[[psycopg.Connection, Row, str], None]

# Errors of the token endpoint that no retry will change: the user must consent again.
REFUSALS = frozenset({"invalid_grant", "interaction_required", "consent_required"})
# An access token is replaced when it has less than this to live: a fetch or a send that
# starts with it must not see it expire half-way.
MARGIN = timedelta(minutes=5)
# When the provider does not say how long a token lives (RFC 6749 makes expires_in optional).
DEFAULT_LIFETIME = 3600

_lock_mailbox = queries.lock_oauth_mailbox
_store_access_token = queries.store_access_token
_mark_reauthorize = queries.mark_reauthorize


class TokenUnavailable(Exception):
    """No access token right now: the provider is down, slow or answered oddly, or the
    desk's OAuth settings are incomplete. Transient; the mailbox's status is unchanged."""


def oauth_session(provider: OAuthProvider, timeout: float, **kwargs: Any) -> OAuth2Session:
    """authlib's client for `provider`: the client secret in the form body, which both
    Microsoft and Google take (a public client, without a secret, sends its id alone)."""
    from authlib.integrations.requests_client import OAuth2Session

    return OAuth2Session(
        provider.client_id,
        provider.client_secret,
        token_endpoint_auth_method="client_secret_post" if provider.client_secret else "none",
        default_timeout=timeout,
        **kwargs,
    )


def expiry(answer: Mapping[str, Any], now: datetime) -> datetime:
    """When an access token of a token endpoint's `answer` expires, by our clock."""
    try:
        lifetime = int(answer.get("expires_in") or DEFAULT_LIFETIME)
    except (TypeError, ValueError):
        lifetime = DEFAULT_LIFETIME
    return now + timedelta(seconds=lifetime)


class AccessTokens:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        secrets: SecretBox,
        *,
        on_reauthorize: OnReauthorize | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        margin: timedelta = MARGIN,
        timeout: float = 15.0,
    ):
        self.db = db
        self.settings = settings
        self.secrets = secrets
        self.on_reauthorize = on_reauthorize
        self.clock = clock
        self.margin = margin
        self.timeout = timeout

    def current(self, mailbox: Row) -> str:
        """An access token for `mailbox` (a `mailboxes` row) with more than `margin` to
        live: the stored one, else a refreshed one. Raises Reauthorize or TokenUnavailable."""
        self._check_connected(mailbox)
        return self._stored(mailbox) or self.refresh(mailbox["id"])

    def refresh(self, mailbox_id: int) -> str:
        """A new access token from the provider, unless another process has just stored
        one; the row stays locked from the read to the write."""
        refused: Reauthorize | None = None
        with self.db.transaction() as conn:
            row = _lock_mailbox(conn, id=mailbox_id)
            if row is None:
                raise Reauthorize("The mailbox no longer exists.")
            self._check_connected(row)
            stored = self._stored(row)
            if stored:
                return stored
            try:
                return self._refreshed(conn, row)
            except Reauthorize as ex:
                refused = ex
                self._mark_reauthorize(conn, row, str(ex))
        raise refused

    # --- inside the lock ----------------------------------------------------------------------

    def _refreshed(self, conn: psycopg.Connection, row: Row) -> str:
        provider = self.settings.oauth_provider(row["oauth_provider"])
        if missing := provider.missing():
            raise TokenUnavailable(f"OAuth is not configured: set {', '.join(missing)}")
        try:
            refresh_token = self.secrets.open(row["secret_encrypted"])
        except SecretUnreadable as ex:
            raise Reauthorize(f"The stored refresh token cannot be read ({ex}).") from ex
        answer = self._ask(provider, refresh_token)
        now = self.clock()
        rotated = answer.get("refresh_token")
        _store_access_token(
            conn,
            id=row["id"],
            access_token=self.secrets.seal(answer["access_token"]),
            expires_at=expiry(answer, now),
            refresh_token=self.secrets.seal(rotated) if rotated else None,
            now=now,
        )
        log.info("mailbox=%s access token refreshed (rotated=%s)", row["id"], bool(rotated))
        return answer["access_token"]

    def _ask(self, provider: OAuthProvider, refresh_token: str) -> Mapping[str, Any]:
        import requests
        from authlib.integrations.requests_client import OAuthError

        scope = " ".join(provider.scopes) if provider.scopes_on_refresh else None
        session = oauth_session(provider, self.timeout, scope=scope)
        try:
            answer = session.refresh_token(provider.token_url, refresh_token=refresh_token)
        except OAuthError as ex:
            reason = f"{ex.error}: {ex.description}" if ex.description else str(ex.error)
            if ex.error in REFUSALS:
                raise Reauthorize(f"The provider refused the refresh token ({reason}).") from ex
            raise TokenUnavailable(f"The token endpoint answered {reason}") from ex
        except (requests.RequestException, ValueError) as ex:
            raise TokenUnavailable(f"The token endpoint could not be used: {ex}") from ex
        finally:
            session.close()
        if not isinstance(answer.get("access_token"), str) or not answer["access_token"]:
            raise TokenUnavailable("The token endpoint answered without an access token")
        return answer

    def _mark_reauthorize(self, conn: psycopg.Connection, row: Row, reason: str) -> None:
        _mark_reauthorize(conn, id=row["id"], error=reason, now=self.clock())
        log.warning("mailbox=%s needs to be connected again: %s", row["id"], reason)
        if row["status"] != "REAUTHORIZE" and self.on_reauthorize is not None:
            self.on_reauthorize(conn, row, reason)

    # --- reading a row ------------------------------------------------------------------------

    def _check_connected(self, row: Row) -> None:
        if row["status"] == "REAUTHORIZE":
            raise Reauthorize(row["last_error"] or "The mailbox must be connected again.")
        if not row["secret_encrypted"]:
            raise Reauthorize("The mailbox has not been connected yet.")

    def _stored(self, row: Row) -> str | None:
        """The stored access token if it lives longer than the margin, else None."""
        expires, sealed = row["access_token_expires_at"], row["access_token_encrypted"]
        if not sealed or expires is None or expires - self.clock() <= self.margin:
            return None
        try:
            return self.secrets.open(sealed)
        except SecretUnreadable:
            return None  # the key changed: a refresh finds out whether the rest reads
