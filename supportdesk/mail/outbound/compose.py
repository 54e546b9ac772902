"""Composing the emails we send: subject, bodies and threading headers (DESIGN.md section 6).

The composed email is stored whole in `email_outbox`, so what is sent is exactly what was
decided, whatever changes later. Every ticket email has `[#PID]` in its subject, a
Message-ID of its own under our domain, From the support address with the company's name,
and Reply-To the support address, plus-addressed with the ticket's signed token. Each has a
plain-text body and a simple HTML alternative, both rendered from `templates/email/`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.utils import formataddr, parseaddr
from typing import TYPE_CHECKING, Any

from markupsafe import escape

from supportdesk.core.config import Settings
from supportdesk.core.signing import SignedLinks
from supportdesk.core.vocabulary import EMAIL_KIND_AUDIENCES, Audience, pid_tag
from supportdesk.mail.outbound.thread_tokens import ThreadTokens, is_made_up

if TYPE_CHECKING:  # the worker sends rows written whole; it never renders (test_imports)
    import jinja2

# The customer's view of a ticket: what its signed links sign, and for how long.
VIEW_PURPOSE = "ticket"
VIEW_DAYS = 90

# The short word of each kind inside our Message-IDs: `<sd.202611-00042.ack.…@domain>`.
_ID_WORDS = {
    "ACKNOWLEDGEMENT": "ack",
    "REPLY": "reply",
    "ASSIGNMENT": "assign",
    "NOTICE": "notice",
    "CLOSE_NOTICE": "closed",
}

# A staff reply's files go as MIME parts while their total is at most this (settings'
# EMAIL_ATTACHMENT_MAX_BYTES), else as signed links in the text.
ATTACHMENT_MAX_BYTES = 10 * 1024 * 1024

# Which notice to staff an email is (DESIGN.md section 12): new-ticket, customer-reply,
# assigned, mentioned.
NOTICE_HEADER = "X-Support-Desk-Notice"

# References keeps the first Message-ID of a thread and the most recent ones (RFC 5322
# section 3.6.4 allows trimming; the first anchors the thread in every client).
MAX_REFERENCES = 20


@dataclass(frozen=True)
class OutboundEmail:
    kind: str  # an email_kind: ACKNOWLEDGEMENT, REPLY, ASSIGNMENT, NOTICE, CLOSE_NOTICE
    to_address: str
    subject: str
    body_text: str
    body_html: str
    message_id: str
    from_address: str
    reply_to: str
    in_reply_to: str | None = None
    references: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # Copied: a ticket's participants on a PUBLIC reply (section 11), one email To+Cc.
    cc: tuple[str, ...] = ()
    # Files sent as MIME parts (attachments ids; the worker reads them from storage).
    attachment_ids: tuple[int, ...] = ()

    def sent_from(self, address: str, display_name: str = "") -> OutboundEmail:
        """This email From a company mailbox (section 10): its address, with its display
        name (else the name ours had). Replies go to that address itself, not to a
        plus-address with the thread token: not every mail host delivers `+tag` mail
        (a reply still threads by In-Reply-To, whose Message-ID carries the token), and
        Microsoft 365 sends only as the mailbox's own address."""
        name = display_name or parseaddr(self.from_address)[0]
        return replace(self, from_address=formataddr((name, address)), reply_to=address)


@dataclass(frozen=True)
class Quote:
    """The previous public message of a conversation, quoted below a reply (QUOTE_HISTORY):
    its trimmed text, who wrote it and when."""

    author_name: str
    written_at: datetime
    body: str

    @property
    def intro(self) -> str:
        """`On 7 Dec 2026 at 09:14 UTC, Cleo Customer wrote:`"""
        moment = self.written_at.astimezone(UTC)
        name = " ".join(self.author_name.split()) or "Someone"
        return f"On {moment.day} {moment:%b %Y at %H:%M} UTC, {name} wrote:"

    @property
    def trimmed(self) -> str:
        """The text without the empty lines around it (what the HTML blockquote holds)."""
        return self.body.strip("\r\n")

    @property
    def text(self) -> str:
        """The message as a plain-text reply quotes it: `> ` before each line."""
        return "\n".join(f"> {line}".rstrip() for line in self.trimmed.splitlines())


# What `_unnumbered` leaves in a body, after a mark of its own (a NUL and a random hex):
# PostgreSQL refuses a NUL in text, so a mark left over could never be sent.
_PID_MARK, _URL_MARK = ".pid\x00", ".url\x00"


@dataclass(frozen=True)
class UnnumberedEmail:
    """An email rendered before its ticket has a PID; `numbered(pid)` puts in the PID and
    what is signed with it, by replacing text, not by rendering again."""

    composer: EmailComposer
    kind: str
    to: str
    subject: str  # without its [#PID]
    body_text: str
    body_html: str
    mark: str
    thread: tuple[str, ...]
    headers: dict[str, str]
    attachment_ids: tuple[int, ...] = ()

    def numbered(self, pid: str) -> OutboundEmail:
        composer = self.composer
        pid_mark, url_mark = self.mark + _PID_MARK, self.mark + _URL_MARK
        url = composer.customer_url(pid) if url_mark in self.body_text + self.body_html else ""
        in_reply_to, references = thread_headers(self.thread)
        return OutboundEmail(
            kind=self.kind,
            to_address=self.to,
            subject=ticket_subject(pid, self.subject),
            body_text=self.body_text.replace(url_mark, url).replace(pid_mark, pid),
            body_html=self.body_html.replace(url_mark, escape(url)).replace(pid_mark, escape(pid)),
            message_id=composer.message_id(pid, self.kind),
            from_address=composer.from_header,
            reply_to=composer.tokens.plus_address(
                composer.support_address, pid, audience_of(self.kind)
            ),
            in_reply_to=in_reply_to,
            references=references,
            headers=dict(self.headers),
            attachment_ids=self.attachment_ids,
        )


def notice_headers(what: str) -> dict[str, str]:
    """The headers of a notice to staff: RFC 3834's "auto-generated" (a notice, not a reply
    to anyone), and which notice it is, for a mail filter (and for the quiet period of
    customer-reply notices, which counts only those)."""
    return {"Auto-Submitted": "auto-generated", NOTICE_HEADER: what}


def audience_of(kind: str) -> Audience:
    """Whom an email of `kind` goes to (vocabulary): KeyError for a kind nobody named."""
    return EMAIL_KIND_AUDIENCES[kind]


def ticket_subject(pid: str, subject: str) -> str:
    return f"{pid_tag(pid)} {subject}"


def thread_headers(message_ids: Sequence[str]) -> tuple[str | None, str | None]:
    """(In-Reply-To, References) for a new email in a thread whose Message-IDs, oldest
    first, are `message_ids`: it answers the newest, and refers to the first and the last."""
    kept = [m for m in message_ids if not is_made_up(m)]
    if not kept:
        return None, None
    if len(kept) > MAX_REFERENCES:
        kept = kept[:1] + kept[-(MAX_REFERENCES - 1) :]
    return kept[-1], " ".join(kept)


ECHOED_SUBJECT_CHARS = 120
# What a mail client would make a link of, in a subject we repeat to whoever typed it:
# a URL, `www.…`, an email address, or a dotted host name (`pay-here.zip`).
_LINK = re.compile(r"(?i)\b[a-z][a-z0-9+.-]{0,20}:/{1,3}\S*|\bwww\.\S*|\S+@\S+")
# Host names in any script (an IDN is linked too), and IPv4 addresses.
_HOST = re.compile(r"\b[\w-]{1,63}(?:\.[\w-]{1,63})*\.[^\W\d_]{2,63}\b|\b(?:\d{1,3}\.){3}\d{1,3}\b")


def echoed_subject(subject: str) -> str:
    """A subject as an automatic email repeats it: at most ECHOED_SUBJECT_CHARS, and no
    link. Whoever fills in the form or forges a sender chooses the subject, and the
    acknowledgement carries it from our address to that inbox: a URL or an address is
    left out, and a host name is defanged (`pay[.]example`), so that no client links it."""
    subject = _LINK.sub("[link removed]", " ".join(subject[:1000].split()))
    subject = _HOST.sub(lambda host: host[0].replace(".", "[.]"), subject)
    if len(subject) <= ECHOED_SUBJECT_CHARS:
        return subject
    return subject[: ECHOED_SUBJECT_CHARS - 1].rstrip() + "…"


class EmailComposer:
    def __init__(
        self,
        templates: jinja2.Environment,
        *,
        support_address: str,
        mail_domain: str,
        company_name: str,
        public_base_url: str,
        tokens: ThreadTokens,
        links: SignedLinks,
        from_header: str,
        attachment_max_bytes: int = ATTACHMENT_MAX_BYTES,
        quote_history: bool = True,
    ):
        self.templates = templates
        self.attachment_max_bytes = attachment_max_bytes
        # Whether a reply quotes the previous public message (the caller looks it up).
        self.quote_history = quote_history
        self.tokens = tokens
        self.links = links
        self.support_address = support_address
        self.company_name = company_name
        self.public_base_url = public_base_url
        self.mail_domain = mail_domain
        self.from_header = from_header

    @classmethod
    def from_settings(
        cls,
        templates: jinja2.Environment,
        settings: Settings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> EmailComposer:
        """MAIL_FROM may carry a display name ("Acme Support <help@acme.example>"); without
        one, the company's name is shown."""
        return cls(
            templates,
            support_address=settings.support_address,
            mail_domain=settings.mail_domain,
            company_name=settings.company_name,
            public_base_url=settings.public_base_url,
            tokens=ThreadTokens(settings.secret_key),
            links=SignedLinks(settings.secret_key, clock),
            from_header=settings.from_header,
            attachment_max_bytes=settings.email_attachment_max_bytes,
            quote_history=settings.quote_history,
        )

    def customer_url(self, pid: str) -> str:
        """The customer's own view of the ticket (`/t/<pid>`): a signed link, 90 days."""
        return f"{self.public_base_url}/t/{pid}?{self.links.query(VIEW_PURPOSE, pid, VIEW_DAYS)}"

    def message_id(self, pid: str, kind: str) -> str:
        """Unique, and stable once stored: a resend carries the same id. It ends with the
        ticket's signed token, so a reply that names it finds the ticket (thread_tokens)."""
        unique = uuid.uuid4().hex[:16]
        return self.tokens.message_id(
            pid, _ID_WORDS[kind], unique, self.mail_domain, audience_of(kind)
        )

    def _email(self, kind: str, template: str, *, pid: str, **fields: Any) -> OutboundEmail:
        return self._unnumbered(kind, template, **fields).numbered(pid)

    def _unnumbered(
        self,
        kind: str,
        template: str,
        *,
        to: str,
        subject: str,
        thread: Sequence[str] = (),
        headers: Mapping[str, str] | None = None,
        **context: Any,
    ) -> UnnumberedEmail:
        """Render `template` with marks where the PID and the customer's signed link go
        (`pid`, `view_url`); `numbered` puts them in."""
        mark = f"\x00{uuid.uuid4().hex}"
        context |= {"pid": mark + _PID_MARK, "view_url": mark + _URL_MARK}
        context["company"] = self.company_name
        return UnnumberedEmail(
            composer=self,
            kind=kind,
            to=to,
            subject=subject,
            body_text=self.templates.get_template(f"email/{template}.txt").render(**context),
            body_html=self.templates.get_template(f"email/{template}.html").render(**context),
            mark=mark,
            thread=tuple(thread),
            headers=dict(headers or {}),
        )

    def unnumbered_acknowledgement(
        self, subject: str, to: str, customer_message_id: str | None
    ) -> UnnumberedEmail:
        """The acknowledgement of a ticket still to be numbered: TicketService renders it
        before the ticket takes its PID, so that the counter's lock, which is held until
        commit, waits for the database alone."""
        subject = echoed_subject(subject)
        return self._unnumbered(
            "ACKNOWLEDGEMENT",
            "acknowledgement",
            to=to,
            subject=f"We received your request: {subject}",
            thread=[customer_message_id] if customer_message_id else [],
            # RFC 3834: an automatic reply; well-behaved autoresponders will not answer it.
            headers={"Auto-Submitted": "auto-replied"},
            ticket_subject=subject,
        )

    def acknowledgement(
        self, ticket: Mapping[str, Any], customer_message_id: str | None
    ) -> OutboundEmail:
        """The automatic reply that gives the customer their ticket number. Whoever filled
        in the public form chose its address, name and text: it echoes none of them but the
        subject, cut short, so that it cannot carry someone's message to a stranger."""
        return self.unnumbered_acknowledgement(
            ticket["subject"], ticket["requester_email"], customer_message_id
        ).numbered(ticket["pid"])

    def staff_reply(
        self,
        ticket: Mapping[str, Any],
        body: str,
        author: Mapping[str, Any],
        thread: Sequence[str] = (),
        files: Sequence[Mapping[str, Any]] = (),
        quote: Quote | None = None,
    ) -> OutboundEmail:
        """A staff member's public reply (or the first message of a ticket staff open),
        threaded under the conversation's earlier emails (`thread`: their Message-IDs,
        oldest first), with `quote` below it. Its `files` ({id, filename, size, url}) travel
        as attachments while their total is at most `attachment_max_bytes`; past that, as
        their `url`s (signed links that open without a login) in the text."""
        linked, attached = self._files(files)
        email = self._email(
            "REPLY",
            "staff_reply",
            pid=ticket["pid"],
            to=ticket["requester_email"],
            subject=f"Re: {ticket['subject']}",
            thread=thread,
            body=body,
            author_name=author["name"],
            name=ticket["requester_name"],
            files=linked,
            quote=quote,
        )
        return replace(email, attachment_ids=attached)

    def _files(
        self, files: Sequence[Mapping[str, Any]]
    ) -> tuple[list[Mapping[str, Any]], tuple[int, ...]]:
        """(the files to link in the text, the ids of those to attach): all attached while
        their total is at most `attachment_max_bytes`, else all linked."""
        total = sum(int(f["size"]) for f in files)
        if files and total <= self.attachment_max_bytes and all(f.get("id") for f in files):
            return [], tuple(int(f["id"]) for f in files)
        return list(files), ()

    def unnumbered_first_message(
        self,
        *,
        to: str,
        name: str,
        subject: str,
        body: str,
        author: Mapping[str, Any],
        files: Sequence[Mapping[str, Any]] = (),
    ) -> UnnumberedEmail:
        """A staff member's first email to a customer, which opens the ticket (section 11):
        a staff reply with nothing to answer, so no "Re:" and no thread headers. Rendered
        before the ticket takes its PID, as the acknowledgement is. Its files travel as a
        reply's do."""
        linked, attached = self._files(files)
        email = self._unnumbered(
            "REPLY",
            "staff_reply",
            to=to,
            subject=subject,
            body=body,
            author_name=author["name"],
            name=name,
            files=linked,
            quote=None,  # nothing to answer yet
        )
        return replace(email, attachment_ids=attached)

    def customer_replied(
        self,
        ticket: Mapping[str, Any],
        assignee: Mapping[str, Any],
        text: str,
        quiet_for: timedelta,
        *,
        following: bool = False,
        writer: str | None = None,
    ) -> OutboundEmail:
        """Tells the assignee (or a follower, `following`) that the customer (or `writer`,
        a person copied on the ticket) wrote again; further replies within `quiet_for` are
        not mailed one by one (the notifier says so here)."""
        writer = writer or ticket["requester_name"]
        return self._email(
            "NOTICE",
            "customer_replied",
            pid=ticket["pid"],
            to=assignee["email"],
            subject=f"{writer} replied: {ticket['subject']}",
            headers=notice_headers("customer-reply"),
            assignee_name=assignee["name"],
            following=following,
            requester_name=ticket["requester_name"],
            writer_name=writer,
            text=text[:2000],
            quiet_minutes=int(quiet_for.total_seconds() // 60),
            status=ticket["status"],
            url=f"{self.public_base_url}/tickets/{ticket['pid']}",
        )

    def assignment_notice(
        self, ticket: Mapping[str, Any], assignee: Mapping[str, Any], actor: Mapping[str, Any]
    ) -> OutboundEmail:
        return self._email(
            "ASSIGNMENT",
            "assignment_notice",
            pid=ticket["pid"],
            to=assignee["email"],
            subject=f"Assigned to you: {ticket['subject']}",
            headers=notice_headers("assigned"),
            assignee_name=assignee["name"],
            actor_name=actor["name"],
            ticket_subject=ticket["subject"],
            requester_name=ticket["requester_name"],
            requester_email=ticket["requester_email"],
            priority=ticket["priority"],
            status=ticket["status"],
            url=f"{self.public_base_url}/tickets/{ticket['pid']}",
        )

    def unnumbered_new_ticket_notice(
        self,
        *,
        to: Mapping[str, Any],
        subject: str,
        requester_name: str,
        requester_email: str,
        priority: str,
        channel: str,
        text: str,
    ) -> UnnumberedEmail:
        """Tells a staff member who asked for it that a ticket arrived. Rendered before the
        ticket takes its PID, as the acknowledgement is (the counter's lock waits for the
        database alone)."""
        return self._unnumbered(
            "NOTICE",
            "new_ticket_notice",
            to=to["email"],
            subject=f"New ticket from {requester_name}: {subject}",
            headers=notice_headers("new-ticket"),
            staff_name=to["name"],
            ticket_subject=subject,
            requester_name=requester_name,
            requester_email=requester_email,
            priority=priority,
            channel=channel,
            text=text[:2000],
            base_url=self.public_base_url,
        )

    def mention_notice(
        self,
        ticket: Mapping[str, Any],
        mentioned: Mapping[str, Any],
        author: Mapping[str, Any],
        note: str,
    ) -> OutboundEmail:
        """Tells a staff member that a colleague mentioned them in an INTERNAL note, which it
        quotes: it goes to staff alone (a NOTICE, with the staff token)."""
        return self._email(
            "NOTICE",
            "mention_notice",
            pid=ticket["pid"],
            to=mentioned["email"],
            subject=f"{author['name']} mentioned you: {ticket['subject']}",
            headers=notice_headers("mentioned"),
            staff_name=mentioned["name"],
            author_name=author["name"],
            ticket_subject=ticket["subject"],
            text=note[:2000],
            url=f"{self.public_base_url}/tickets/{ticket['pid']}",
        )

    def close_notice(
        self,
        ticket: Mapping[str, Any],
        thread: Sequence[str],
        cc: Sequence[str],
        resolved_since: datetime,
    ) -> OutboundEmail:
        """The scheduler closed a RESOLVED ticket that saw no activity for AUTO_CLOSE_AFTER
        (section 12): a short notice to the requester, copied to the participants, threaded
        under the conversation. It says that a reply opens a new ticket (section 6: a reply
        to a CLOSED ticket does). Automatic, nobody's answer: RFC 3834's "auto-generated"."""
        subject = echoed_subject(ticket["subject"])
        email = self._email(
            "CLOSE_NOTICE",
            "close_notice",
            pid=ticket["pid"],
            to=ticket["requester_email"],
            subject=f"Closed: {subject}",
            thread=thread,
            headers={"Auto-Submitted": "auto-generated"},
            name=ticket["requester_name"],
            ticket_subject=subject,
            resolved_on=f"{resolved_since.astimezone(UTC):%d %b %Y}",
        )
        return replace(email, cc=tuple(cc))
