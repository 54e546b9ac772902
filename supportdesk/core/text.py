"""Cleaning text that users send: one set of rules for every field of every form and API.

Each `clean_*` function returns the cleaned value and, when the value is not acceptable,
records a user-safe message under the field's name in `problems` (the caller raises one
ValidationFailed naming every field). Nothing here raises on odd input: NUL bytes, lone
surrogates and control characters are reported, never passed on to the database, bcrypt or
an email header.
"""

from __future__ import annotations

import re

from supportdesk.core.vocabulary import MAX_EMAIL

# Email addresses: every check of one is here, and they are two, for two questions.
#
# EMAIL_SHAPE: could this be an address we hold? Something, one @, a host with a dot in it,
# no white space: the rule the database holds every stored address to (the CHECKs on
# users.email, tickets.requester_email, ticket_messages.author_email and
# email_outbox.to_address; tests/sql/test_schema.py keeps the two together). The ticket
# search takes a query of this shape for a requester's address, MAIL_FROM (the operator's
# choice, not judged further) must have it, and the sender adds "printable ASCII" to it as
# the last check before SMTP.
EMAIL_SHAPE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# EMAIL_ADDRESS: an address we accept from a person or an email's From, to store and later
# put in a To: header as it is: one mailbox, ASCII, no display name, no list, no comments.
# (Internationalised addresses are not accepted in v1.) It narrows EMAIL_SHAPE: every
# address it accepts has the shape (tests/core/test_text.py), so the database takes it.
EMAIL_ADDRESS = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)
# MAIL_ADDRESS and MAIL_SHAPE: the same two questions for an address that came by email
# (DESIGN.md section 6: mail is never refused for its content). Intranets send from hosts
# with no dot (`root@intranet`, `Martin <redacted@redacted>`), so the host may be a single
# label; tickets.requester_email, ticket_messages.author_email and email_outbox.to_address
# hold MAIL_SHAPE since migration 0008 (users.email and the public form keep the strict
# pair). MAIL_ADDRESS narrows MAIL_SHAPE as EMAIL_ADDRESS narrows EMAIL_SHAPE.
MAIL_SHAPE = re.compile(r"^[^@\s]+@[^@\s]+$")
MAIL_ADDRESS = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
WHOLE_NUMBER = re.compile(r"^[0-9]{1,18}$")  # ASCII digits only; int() of it cannot fail

Problems = dict[str, str]


# NUL (PostgreSQL refuses it in text) and lone surrogates (not encodable as UTF-8), then the
# control characters (Unicode category Cc: U+0001-U+001F and U+007F-U+009F), which text of
# several lines may use for its line breaks and tabs. One search in C, not a loop over the
# characters in Python: a message body may be 100,000 of them.
_UNSTORABLE = "\x00\ud800-\udfff"
_FIRST_BAD = {
    False: re.compile(f"[{_UNSTORABLE}\x01-\x1f\x7f-\x9f]"),
    True: re.compile(f"[{_UNSTORABLE}\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"),
}


def invalid_characters(text: str, *, multiline: bool) -> str | None:
    """Why `text` cannot be stored as it is (for its first bad character), or None."""
    found = _FIRST_BAD[multiline].search(text)
    if found is None:
        return None
    if found[0] == "\x00" or "\ud800" <= found[0] <= "\udfff":
        return "Remove the invalid characters."
    return "Remove the control characters."


def clean_text(
    value: object,
    field: str,
    limit: int,
    problems: Problems,
    missing: str,
    *,
    multiline: bool = True,
) -> str:
    """Text a person typed. Several lines (a message): kept as written, without surrounding
    blank space. One line (`multiline=False`: a name, a subject): white space runs, line
    breaks among them, become one space. Then the same checks: characters, then length."""
    if not isinstance(value, str) or not value.strip():
        problems[field] = missing
        return ""
    text = value.strip() if multiline else " ".join(value.split())
    bad = invalid_characters(text, multiline=multiline)
    if bad:
        problems[field] = bad
    elif len(text) > limit:
        problems[field] = f"Use at most {limit:,} characters."
    return text


def clean_line(value: object, field: str, limit: int, problems: Problems, missing: str) -> str:
    """Text for one line (a name, a subject): clean_text with `multiline=False`."""
    return clean_text(value, field, limit, problems, missing, multiline=False)


def clean_email(
    value: object,
    problems: Problems,
    field: str = "email",
    missing: str = "Enter an email address.",
) -> str:
    """One mailbox, lower-cased: `name@example.com`."""
    if not isinstance(value, str) or not value.strip():
        problems[field] = missing
        return ""
    email = value.strip().lower()
    if len(email) > MAX_EMAIL or not EMAIL_ADDRESS.match(email):
        problems[field] = "Enter a valid email address, like name@example.com."
    return email


def clean_choice(value: object, field: str, choices: tuple[str, ...], problems: Problems) -> str:
    """One of `choices`, case-insensitively (`high` is HIGH)."""
    if isinstance(value, str) and value.strip().upper() in choices:
        return value.strip().upper()
    problems[field] = f"Choose one of {', '.join(choices)}."
    return ""
