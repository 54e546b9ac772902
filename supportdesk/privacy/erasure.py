"""Erasing a customer (DESIGN.md section 13; README "Personal data: export and erasure").

The work is one SQL function, `privacy_erase_customer` (migration 0017), run as the schema's
owner through SECURITY DEFINER: the app role may not rewrite `ticket_events` itself. It runs
in one transaction with the CUSTOMER_ERASED audit row, so a crash undoes both, and a second
run finds what the first left (nothing, once it committed). The files' bytes go after the
commit (privacy/files.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from supportdesk.accounts.audit import Origin, customer_key, record
from supportdesk.core.db import Database, queries
from supportdesk.core.errors import ValidationFailed
from supportdesk.core.text import MAIL_SHAPE
from supportdesk.core.vocabulary import MAX_EMAIL
from supportdesk.files.storage import Storage
from supportdesk.privacy.files import remove_pending_files

_erase_customer = queries.erase_customer

# What erased data reads as (the same values as migration 0017 writes).
PLACEHOLDER_EMAIL = "erased@erased.invalid"
PLACEHOLDER_NAME = "Erased customer"
ERASED_TEXT = "[erased]"


def parse_customer_email(value: object) -> str:
    """A customer's address as the desk keeps it (any address mail came from, `root@intranet`
    too), lower-cased; 422 for anything else."""
    email = value.strip().lower() if isinstance(value, str) else ""
    if not email:
        raise ValidationFailed({"email": "Enter the customer's email address."})
    if len(email) > MAX_EMAIL or not MAIL_SHAPE.match(email):
        raise ValidationFailed({"email": "Enter a valid email address, like name@example.com."})
    return email


@dataclass(frozen=True)
class Erased:
    """What one erasure changed: its own tickets, others' tickets it took part in, messages
    blanked, files removed, outbox rows, quarantined emails, timeline events rewritten."""

    tickets: int
    other_tickets: int
    messages: int
    files: int
    outbox: int
    quarantine: int
    events: int

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class ErasureService:
    def __init__(self, db: Database, storage: Storage, secret_key: str):
        self.db = db
        self.storage = storage
        self.secret_key = secret_key

    def erase(self, origin: Origin, email: str) -> Erased:
        """Erase the customer of `email` everywhere, record it, then remove their files."""
        email = parse_customer_email(email)
        with self.db.transaction() as conn:
            counts: dict[str, Any] = _erase_customer(conn, email=email, actor_id=origin.actor_id)
            erased = Erased(**{k: int(counts[k]) for k in Erased.__dataclass_fields__})
            record(
                conn,
                "CUSTOMER_ERASED",
                origin,
                target=("customer", customer_key(self.secret_key, email)),
                data=erased.as_dict(),
            )
        remove_pending_files(self.db, self.storage)
        return erased
