"""Composing the emails we send: subject, body and threading headers (DESIGN.md section 6).

The composed email is stored whole in `email_outbox`, so what is sent is exactly what was
decided, whatever changes later. Every ticket email has `[#PID]` in its subject and a
Message-ID of its own under our domain.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jinja2


@dataclass(frozen=True)
class OutboundEmail:
    to_address: str
    subject: str
    body_text: str
    message_id: str
    in_reply_to: str | None = None
    references: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def ticket_subject(pid: str, subject: str) -> str:
    return f"[#{pid}] {subject}"


class EmailComposer:
    def __init__(
        self,
        templates: jinja2.Environment,
        mail_domain: str,
        public_base_url: str,
        team_name: str = "The Support Team",
    ):
        self.templates = templates
        self.mail_domain = mail_domain
        self.public_base_url = public_base_url
        self.team_name = team_name

    def message_id(self, pid: str, kind: str) -> str:
        """Unique, and stable once stored: a resend carries the same id."""
        return f"<sd.{pid}.{kind}.{uuid.uuid4().hex}@{self.mail_domain}>"

    def acknowledgement(
        self, ticket: Mapping[str, Any], customer_message_id: str | None
    ) -> OutboundEmail:
        """The automatic reply that gives the customer their ticket number."""
        body = self.templates.get_template("email/acknowledgement.txt").render(
            name=ticket["requester_name"],
            pid=ticket["pid"],
            subject=ticket["subject"],
            team=self.team_name,
        )
        return OutboundEmail(
            to_address=ticket["requester_email"],
            subject=ticket_subject(ticket["pid"], f"We received your request: {ticket['subject']}"),
            body_text=body,
            message_id=self.message_id(ticket["pid"], "ack"),
            in_reply_to=customer_message_id,
            references=customer_message_id,
            # RFC 3834: an automatic reply; well-behaved autoresponders will not answer it.
            headers={"Auto-Submitted": "auto-replied"},
        )

    def assignment_notice(
        self, ticket: Mapping[str, Any], assignee: Mapping[str, Any], actor: Mapping[str, Any]
    ) -> OutboundEmail:
        body = self.templates.get_template("email/assignment_notice.txt").render(
            assignee_name=assignee["name"],
            actor_name=actor["name"],
            pid=ticket["pid"],
            subject=ticket["subject"],
            requester_name=ticket["requester_name"],
            requester_email=ticket["requester_email"],
            priority=ticket["priority"],
            status=ticket["status"],
            url=f"{self.public_base_url}/tickets/{ticket['pid']}",
        )
        return OutboundEmail(
            to_address=assignee["email"],
            subject=ticket_subject(ticket["pid"], f"Assigned to you: {ticket['subject']}"),
            body_text=body,
            message_id=self.message_id(ticket["pid"], "assign"),
            headers={"Auto-Submitted": "auto-generated"},
        )
