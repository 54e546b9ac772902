"""Connecting a mailbox with OAuth 2.0 (DESIGN.md section 10): the authorization code flow
with PKCE (RFC 7636, S256) and state, through authlib.

`start` makes a state and a PKCE verifier, keeps them in Redis for STATE_TTL seconds bound
to the ADMIN's session and the mailbox, and returns the provider's authorization URL (with
the mailbox's user name as `login_hint`). `finish` takes the provider's answer at
`/oauth/callback`: the state is used once (GETDEL), must belong to the same session, and
its code is exchanged (with the verifier) for the tokens, which are stored encrypted; the
mailbox is OK again. Every way it can go wrong is an AppError with a message for the
ADMIN, shown as a page, never a 500.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import redis

from supportdesk.accounts.audit import Origin, record
from supportdesk.core.config import OAuthProvider, Settings
from supportdesk.core.db import Database, queries
from supportdesk.core.errors import AppError, Conflict, NotFound
from supportdesk.mail.mailboxes.secrets import SecretBox
from supportdesk.mail.mailboxes.tokens import expiry, oauth_session

log = logging.getLogger("supportdesk.mail.mailboxes.oauth")

# How long an ADMIN has at the provider's consent page before the state expires.
STATE_TTL = 600
STATE_KEY = "sd:oauth:state:"

_oauth_mailbox = queries.oauth_mailbox
_store_authorization = queries.store_authorization

Row = Mapping[str, Any]
START_AGAIN = "Start again from the Mailboxes page."


class AuthorizationFailed(AppError):
    """The provider's answer cannot connect the mailbox (refused, expired, not ours)."""

    status, code, message = 400, "authorization_failed", "The mailbox was not connected."


class ProviderUnavailable(AppError):
    """The provider's token endpoint could not be used: try again later."""

    status, code = 502, "provider_unavailable"
    message = "The provider could not be reached to finish connecting the mailbox."


class OAuthFlow:
    def __init__(
        self,
        db: Database,
        redis_client: redis.Redis,
        settings: Settings,
        secrets_box: SecretBox,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        timeout: float = 15.0,
    ):
        self.db = db
        self.redis = redis_client
        self.settings = settings
        self.secrets = secrets_box
        self.clock = clock
        self.timeout = timeout

    def start(self, mailbox_id: int, user_id: int, session_id: str) -> str:
        """The provider's authorization URL for `mailbox_id`, the state kept for this
        session (user and session id) until the answer comes back."""
        with self.db.transaction() as conn:
            mailbox = _oauth_mailbox(conn, id=mailbox_id)
        if mailbox is None:
            raise NotFound("No such mailbox.")
        if mailbox["auth"] != "OAUTH2":
            raise Conflict("This mailbox logs in with a password, not with OAuth.")
        provider = self._provider(mailbox)
        state, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(64)
        pending = {
            "mailbox_id": mailbox_id,
            "user_id": user_id,
            "session_id": session_id,
            "verifier": verifier,
            "provider": provider.name,
        }
        self.redis.set(STATE_KEY + state, json.dumps(pending), ex=STATE_TTL)
        session = self._session(provider)
        url, _ = session.create_authorization_url(
            provider.authorize_url,
            state=state,
            code_verifier=verifier,
            login_hint=mailbox["username"],
            **provider.authorize_params,
        )
        return url

    def finish(
        self, answer: Mapping[str, Any], user_id: int, session_id: str, origin: Origin
    ) -> Row:
        """The provider's redirect (`state`, then `code` or `error`) -> the mailbox, now
        connected (OK, tokens stored), with its MAILBOX_AUTHORIZED row in the audit log."""
        pending = self._pending(answer.get("state"), user_id, session_id)
        if error := answer.get("error"):
            raise AuthorizationFailed(_refusal(str(error), answer.get("error_description")))
        code = answer.get("code")
        if not isinstance(code, str) or not code:
            raise AuthorizationFailed(f"The provider's answer has no code. {START_AGAIN}")
        provider = self.settings.oauth_provider(pending["provider"])
        tokens = self._exchange(provider, code, pending["verifier"])
        now = self.clock()
        with self.db.transaction() as conn:
            mailbox = _store_authorization(
                conn,
                id=pending["mailbox_id"],
                refresh_token=self.secrets.seal(tokens["refresh_token"]),
                access_token=self.secrets.seal(tokens["access_token"]),
                expires_at=expiry(tokens, now),
                now=now,
            )
            if mailbox is not None:
                record(
                    conn,
                    "MAILBOX_AUTHORIZED",
                    origin,
                    target=("mailbox", mailbox["id"]),
                    data={"address": mailbox["address"], "provider": provider.name},
                )
        if mailbox is None:
            raise NotFound("The mailbox was deleted, or changed to log in with a password.")
        log.info("mailbox=%s connected with %s by user=%s", mailbox["id"], provider.name, user_id)
        return mailbox

    # --- the steps ------------------------------------------------------------------------------

    def _provider(self, mailbox: Row) -> OAuthProvider:
        provider = self.settings.oauth_provider(mailbox["oauth_provider"])
        if missing := provider.missing():
            raise Conflict(
                f"Connecting with {provider.name.title()} is not configured: set "
                f"{', '.join(missing)} (README, Configuration).",
                details={"missing": missing},
            )
        return provider

    def _session(self, provider: OAuthProvider):
        return oauth_session(
            provider,
            self.timeout,
            scope=" ".join(provider.scopes),
            redirect_uri=provider.redirect_uri,
            code_challenge_method="S256",
        )

    def _pending(self, state: object, user_id: int, session_id: str) -> dict[str, Any]:
        """The flow this answer belongs to, used up now: a state is good once."""
        if not isinstance(state, str) or not state:
            raise AuthorizationFailed(f"The provider's answer has no state. {START_AGAIN}")
        stored = self.redis.getdel(STATE_KEY + state)
        if stored is None:
            raise AuthorizationFailed(
                "This authorization has expired or was already used (each can be used once, "
                f"within {STATE_TTL // 60} minutes). {START_AGAIN}"
            )
        pending = json.loads(stored)
        if pending["user_id"] != user_id or pending["session_id"] != session_id:
            raise AuthorizationFailed(
                f"This authorization was started in another session. {START_AGAIN}"
            )
        return pending

    def _exchange(self, provider: OAuthProvider, code: str, verifier: str) -> Mapping[str, Any]:
        import requests  # where a provider is asked, as in tokens.py
        from authlib.integrations.requests_client import OAuthError

        session = self._session(provider)
        try:
            tokens = session.fetch_token(
                provider.token_url,
                grant_type="authorization_code",
                code=code,
                code_verifier=verifier,
            )
        except OAuthError as ex:
            raise AuthorizationFailed(_refusal(str(ex.error), ex.description)) from ex
        except (requests.RequestException, ValueError) as ex:
            log.warning("token endpoint of %s could not be used: %r", provider.name, ex)
            raise ProviderUnavailable(
                f"{provider.name.title()}'s token endpoint could not be reached or answered "
                f"with an error; the mailbox was not connected. {START_AGAIN}"
            ) from ex
        finally:
            session.close()
        if not tokens.get("access_token"):
            raise AuthorizationFailed(f"The provider sent no access token. {START_AGAIN}")
        if not tokens.get("refresh_token"):
            raise AuthorizationFailed(
                "The provider sent no refresh token, so the mailbox would stop working "
                "within the hour. Check that the scopes include offline access "
                f"(OAUTH_{provider.name}_SCOPES). {START_AGAIN}"
            )
        return tokens


def _refusal(error: str, description: object) -> str:
    said = f" ({description})" if description else ""
    if error == "access_denied":
        return (
            "The mailbox was not connected: the sign-in was cancelled or the permissions "
            f"were not granted (access_denied{said}). {START_AGAIN}"
        )
    return f"The provider refused to connect the mailbox: {error}{said}. {START_AGAIN}"
