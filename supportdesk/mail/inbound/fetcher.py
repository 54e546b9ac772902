"""Fetching one mailbox over IMAP into tickets (DESIGN.md section 10).

A fetcher connects with `MailboxLogin`, selects the folder and imports what is new, then
waits: IMAP IDLE where the server has it (woken by new mail; renewed every
IMAP_POLL_SECONDS, well within the 29 minutes RFC 2177 allows, which also looks again for
mail announced while the fetcher was busy), else a poll every IMAP_POLL_SECONDS. Each
message goes the way the SMTP listener's do (parsed in the sandbox, then
`InboundService.receive`), inside an outer transaction that also advances the mailbox's
last UID: a crash re-fetches at most what was not committed, and the Message-ID dedupe
makes that harmless. Only after the commit is the message marked \\Seen or moved.

Where fetching starts:
- The first connection (`backfilled_at` empty) with `backfill_days` N > 0 imports the
  folder's messages of the last N days (SEARCH SINCE), once. With N = 0 it imports nothing
  that is already there: only mail that arrives from then on (it starts after UIDNEXT-1).
- A new UIDVALIDITY (the server rebuilt the folder) starts over from UID 1, but only for
  mail since the mailbox was connected (less its backfill days): what was imported is
  recognised by its Message-ID, and older mail stays out as it did before.
- A message whose UID is at most the last imported one is never read again; a message
  the parse refuses is left in the folder, unread, and skipped (the log says which). A
  crash between the commit and the \\Seen flag or the move leaves that one message in the
  folder as it was: it is imported all the same, and not read again.

A server that is down, slow or refusing the login: the mailbox is ERROR with a reason an
ADMIN can act on, and the fetcher tries again after a wait that doubles up to
IMAP_RETRY_MAX_SECONDS; once it works the mailbox is OK again. An OAuth mailbox whose
provider refuses the token is REAUTHORIZE and its fetcher ends: nothing is retried until
an ADMIN connects it again. At most one fetcher runs per mailbox (`fetchers.py`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import redis
from imapclient import DELETED, SEEN, IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError

from supportdesk.core.config import Settings
from supportdesk.core.db import Database, queries
from supportdesk.core.errors import AppError, RateLimited
from supportdesk.mail.inbound.sandbox import ParseSandbox, ParseUnavailable
from supportdesk.mail.inbound.sender_auth import trusted_ids_for, verdict_from_headers
from supportdesk.mail.inbound.service import InboundService
from supportdesk.mail.mailboxes.connect import MailboxLogin
from supportdesk.mail.mailboxes.probe import ConnectionFailed, Folder, failure, open_folder

log = logging.getLogger("supportdesk.mail.fetcher")

_mailbox_by_id = queries.mailbox_by_id
_start_mailbox_at = queries.start_mailbox_at
_advance_mailbox = queries.advance_mailbox
_mailbox_fetched = queries.mailbox_fetched
_mailbox_failed = queries.mailbox_failed
_mailbox_needs_reauthorization = queries.mailbox_needs_reauthorization

Row = Mapping[str, Any]
# Messages fetched in one round trip: fewer waits on the server, bounded memory.
FETCH_BATCH = 25
# RFC 2177: a server may end an IDLE after 29 minutes; renewed well before.
IDLE_RENEW_SECONDS = 25 * 60
# The dependencies of storing a message: when they fail, the message waits on the server.
STORE_OUTAGES = (psycopg.Error, redis.RedisError, ParseUnavailable)


@dataclass(frozen=True)
class FetchTimings:
    poll: float = 60.0  # between two looks at a server without IDLE
    timeout: float = 30.0  # each socket operation
    retry_base: float = 5.0  # the first wait after a failure; doubling from there
    retry_max: float = 300.0
    idle_renew: float = IDLE_RENEW_SECONDS
    # How often a waiting fetcher looks up from IDLE to see whether it should stop.
    idle_check: float = 1.0

    @classmethod
    def from_settings(cls, settings: Settings) -> FetchTimings:
        return cls(
            poll=settings.imap_poll_seconds,
            timeout=settings.imap_timeout_seconds,
            retry_base=min(5.0, settings.imap_retry_max_seconds),
            retry_max=settings.imap_retry_max_seconds,
        )

    def backoff(self, failures: int) -> float:
        return min(self.retry_max, self.retry_base * 2 ** max(0, failures - 1))


class Dropped(Exception):
    """The server ended the session (BYE, say during IDLE): connect again at once."""


class MailboxFetcher:
    """Fetches one mailbox until `stop` is set, its row is gone or inactive, or it must be
    authorized again."""

    def __init__(
        self,
        mailbox_id: int,
        db: Database,
        inbound: InboundService,
        parser: ParseSandbox,
        login: MailboxLogin,
        *,
        timings: FetchTimings | None = None,
        stop: threading.Event | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.mailbox_id = mailbox_id
        self.db = db
        self.inbound = inbound
        self.parser = parser
        self.login = login
        self.timings = timings or FetchTimings()
        self.stop = stop or threading.Event()
        self.clock = clock
        self.connections = 0  # attempts to connect, for the curious (and the tests)

    # --- the loop ----------------------------------------------------------------------------

    def run(self) -> None:
        failures = 0
        while not self.stop.is_set():
            mailbox = self._mailbox()
            if mailbox is None or not mailbox["is_active"] or mailbox["status"] == "REAUTHORIZE":
                return
            try:
                self.connections += 1
                self._session(mailbox)
                failures = 0
            except ConnectionFailed as failed:
                if failed.reauthorize:
                    self._record(_mailbox_needs_reauthorization, error=failed.message)
                    log.warning("mailbox %s: %s; paused", self.mailbox_id, failed.message)
                    return
                failures += 1
                self._failed(failed.message, failures)
            except Dropped:
                log.info(
                    "mailbox %s: the server ended the session; connecting again", self.mailbox_id
                )
                self.stop.wait(min(1.0, self.timings.retry_base))
            except STORE_OUTAGES as ex:
                failures += 1
                log.warning(
                    "mailbox %s: could not store mail (%r); again later", self.mailbox_id, ex
                )
                self.stop.wait(self.timings.backoff(failures))
            except Exception as error:  # the connection broke in the middle of a session
                failures += 1
                self._failed(failure(error, mailbox, self.timings.timeout).message, failures)

    def _failed(self, message: str, failures: int) -> None:
        wait = self.timings.backoff(failures)
        log.warning("mailbox %s: %s (again in %.1fs)", self.mailbox_id, message, wait)
        try:
            self._record(_mailbox_failed, error=message)
        except STORE_OUTAGES as ex:
            log.warning("mailbox %s: status not recorded: %r", self.mailbox_id, ex)
        self.stop.wait(wait)

    def _session(self, mailbox: Row) -> None:
        """One connection: import, wait for more, import again, until stopped or dropped."""
        client, folder = open_folder(self.login, mailbox, self.timings.timeout)
        try:
            target = _move_target(mailbox["processed"])
            if target:
                _ensure_folder(client, target)
            self._start(mailbox, folder)
            while not self.stop.is_set():
                try:
                    self._import_new(client, folder, mailbox)
                except RateLimited as limited:  # the rest waits on the server, unread
                    log.info("mailbox %s: %s", self.mailbox_id, limited.message)
                    self.stop.wait(min(self.timings.poll, limited.retry_after))
                    continue
                self._record(_mailbox_fetched, now=self.clock())
                if folder.idle:
                    self._idle(client)
                else:
                    self.stop.wait(self.timings.poll)
        finally:
            _close(client)

    # --- where to start ----------------------------------------------------------------------

    def _start(self, mailbox: Row, folder: Folder) -> Row:
        """The mailbox row, its position set for this folder generation."""
        current = self._mailbox() or mailbox
        if current["uidvalidity"] == folder.uidvalidity:
            return current
        if current["backfilled_at"] is None and not current["backfill_days"]:
            last_uid = folder.uidnext - 1  # only mail that arrives from now on
        else:
            last_uid = 0  # a backfill, or a new folder generation: see `_since`
        if current["uidvalidity"] is not None:
            log.warning(
                "mailbox %s: UIDVALIDITY changed (%s -> %s); reading the folder again",
                self.mailbox_id,
                current["uidvalidity"],
                folder.uidvalidity,
            )
        with self.db.transaction() as conn:
            _start_mailbox_at(
                conn,
                id=self.mailbox_id,
                uidvalidity=folder.uidvalidity,
                last_uid=last_uid,
                now=self.clock(),
            )
            return _mailbox_by_id(conn, id=self.mailbox_id)

    def _since(self, mailbox: Row) -> datetime | None:
        """From UID 1 (a backfill, a new UIDVALIDITY), only mail since the mailbox was
        connected, less its backfill days."""
        if mailbox["last_uid"] or mailbox["backfilled_at"] is None:
            return None
        return mailbox["backfilled_at"] - timedelta(days=mailbox["backfill_days"])

    # --- importing ---------------------------------------------------------------------------

    def _import_new(self, client: IMAPClient, folder: Folder, mailbox: Row) -> None:
        """Import until a search finds nothing new. The server announces new mail once
        (EXISTS), in the answer to whatever command runs then: mail that arrived while the
        last batch was stored was announced to the STORE or MOVE, not to the IDLE that
        follows, so only a search that comes back empty lets the fetcher wait."""
        while not self.stop.is_set() and self._import_batch(client, folder, mailbox):
            pass

    def _import_batch(self, client: IMAPClient, folder: Folder, mailbox: Row) -> bool:
        """Import what one search finds; False when it found nothing."""
        current = self._mailbox()
        if current is None:
            self.stop.set()
            return False
        last_uid = current["last_uid"]
        criteria: list[Any] = ["UID", f"{last_uid + 1}:*"]
        since = self._since(current)
        if since is not None:
            criteria += ["SINCE", since.date()]
        # Whose Authentication-Results to believe: this mailbox's provider's.
        trusted_ids = trusted_ids_for(current)
        # `n:*` names the last message even when n is past it: keep only the new ones.
        uids = sorted(uid for uid in client.search(criteria) if uid > last_uid)
        for batch in _batches(uids, FETCH_BATCH):
            if self.stop.is_set():
                return False
            fetched = client.fetch(batch, ["BODY.PEEK[]"])
            stored = []
            for uid in batch:
                raw = fetched.get(uid, {}).get(b"BODY[]")
                if self._store(uid, raw, folder.uidvalidity, trusted_ids):
                    stored.append(uid)
            if stored:
                _mark_processed(client, stored, mailbox["processed"], folder.move)
        return bool(uids)

    def _store(
        self, uid: int, raw: bytes | None, uidvalidity: int, trusted_ids: tuple[str, ...]
    ) -> bool:
        """Store one message and advance past it, together. True when it was stored (or
        was there already, or kept in the quarantine); False when skipped, left in the
        folder as it is. Its sender's DMARC verdict is the mailbox provider's own
        Authentication-Results, as the trusted authserv-ids tell."""
        if raw is None:  # expunged since the search
            self._advance(uid, uidvalidity)
            return False
        try:
            email = self.parser.parse_mime(raw)
            email = replace(email, sender_auth=verdict_from_headers(raw, trusted_ids))
            with self.db.transaction() as conn:
                received = self.inbound.receive(email, mailbox_id=self.mailbox_id)
                _advance_mailbox(conn, id=self.mailbox_id, uid=uid, uidvalidity=uidvalidity)
        except RateLimited:
            raise
        except AppError as refused:
            log.warning(
                "mailbox %s: UID %s not imported, left in the folder: %s",
                self.mailbox_id,
                uid,
                refused.message,
            )
            self._advance(uid, uidvalidity)
            return False
        log.info(
            "mailbox %s: UID %s %s %s", self.mailbox_id, uid, received.outcome, received.ticket_pid
        )
        return True

    def _advance(self, uid: int, uidvalidity: int) -> None:
        with self.db.transaction() as conn:
            _advance_mailbox(conn, id=self.mailbox_id, uid=uid, uidvalidity=uidvalidity)

    # --- waiting -----------------------------------------------------------------------------

    def _idle(self, client: IMAPClient) -> None:
        """Until new mail, a stop, or time to renew the IDLE. Renewed at least every poll
        interval too: a look that costs three short commands, and a safety net for an
        announcement that went to another command (see `_import_new`)."""
        client.idle()
        deadline = time.monotonic() + min(self.timings.idle_renew, self.timings.poll)
        try:
            while not self.stop.is_set() and time.monotonic() < deadline:
                responses = client.idle_check(timeout=self.timings.idle_check)
                if any(b"BYE" in _words(r) for r in responses):
                    raise Dropped()
                if any(b"EXISTS" in _words(r) or b"RECENT" in _words(r) for r in responses):
                    break
        except (Dropped, IMAPClientAbortError, OSError):
            raise Dropped() from None
        client.idle_done()

    # --- the row -----------------------------------------------------------------------------

    def _mailbox(self) -> Row | None:
        with self.db.transaction() as conn:
            return _mailbox_by_id(conn, id=self.mailbox_id)

    def _record(self, query: Any, **params: Any) -> None:
        with self.db.transaction() as conn:
            query(conn, id=self.mailbox_id, **params)


# --- after storing -------------------------------------------------------------------------


def _move_target(processed: str) -> str | None:
    return processed.split(":", 1)[1] if processed.startswith("MOVE:") else None


def _ensure_folder(client: IMAPClient, name: str) -> None:
    if not client.folder_exists(name):
        try:
            client.create_folder(name)
        except IMAPClientError:  # made by someone else meanwhile
            if not client.folder_exists(name):
                raise


def _mark_processed(client: IMAPClient, uids: list[int], processed: str, move: bool) -> None:
    target = _move_target(processed)
    if target is None:
        client.add_flags(uids, [SEEN], silent=True)
    elif move:
        client.move(uids, target)
    else:  # RFC 6851's fallback: copy, mark deleted, expunge exactly those
        client.copy(uids, target)
        client.add_flags(uids, [DELETED], silent=True)
        client.expunge(uids)


def _batches(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _words(response: Any) -> tuple[Any, ...]:
    return response if isinstance(response, tuple) else (response,)


def _close(client: IMAPClient) -> None:
    try:
        client.logout()
    except Exception:  # dropped already, or stopping: the socket goes either way
        with contextlib.suppress(Exception):  # nothing left to close
            client.shutdown()
