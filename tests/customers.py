"""A desk holding one customer's data in every place the desk keeps personal data, made the
way it gets there (inbound email through the signed webhook, staff replies through the API),
for the export and erasure tests (DESIGN.md section 13).

Zelda Quibble requested ticket `own` (by email, Cc Dana, with HTML and a file; a staff reply
with a file; an internal note) and was copied on Fay's ticket `copied`, where she wrote (with
a file) and staff answered. Fay's `unrelated` ticket never names her. Her mail also sits in
the quarantine and her address among the blocked senders.
"""

from __future__ import annotations

import uuid
from email.message import EmailMessage
from typing import Any

import psycopg
from psycopg import sql

from tests.factories import make_quarantined
from tests.webhook import post_raw, rows

ZELDA = "zelda.quibble@example.org"
ZELDA_NAME = "Zelda Quibble"
FAY = "fay@example.org"
DANA = "dana@example.org"
# Words only her data holds: none may be found anywhere after the erasure.
HERS = (ZELDA, ZELDA_NAME, "Zelda", "Quibble", "sparkleberry", "ZQ-PASSPORT-4471", "ZQ-NOTES")
PASSPORT = b"ZQ-PASSPORT-4471: scanned page\n"
NOTES = b"ZQ-NOTES: the sparkleberry crate number\n"
LABEL = b"Shipping label, crate 12\n"


def email(
    sender: str,
    subject: str,
    text: str,
    *,
    cc: str = "",
    html: str | None = None,
    files: tuple[tuple[str, bytes], ...] = (),
    in_reply_to: str = "",
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "Support Desk <support@example.com>"
    if cc:
        message["Cc"] = cc
    message["Subject"] = subject
    message["Message-ID"] = f"<{uuid.uuid4().hex}@mail.example.org>"
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")
    for name, content in files:
        message.add_attachment(content, maintype="text", subtype="plain", filename=name)
    return bytes(message)


def _ack_id(db, pid: str) -> str:
    [row] = rows(
        db,
        "SELECT o.message_id FROM email_outbox o JOIN tickets t ON t.id = o.ticket_id "
        "WHERE t.pid = %s AND o.kind = 'ACKNOWLEDGEMENT'",
        pid,
    )
    return row["message_id"]


def build_desk(api, db, headers: dict[str, str]) -> dict[str, Any]:
    """The desk above, through the app `api` (with the inbound webhook's secret); `headers`
    authenticate an ADMIN. Returns the PIDs. A webhook wants every event, so its deliveries
    copy all of it too."""
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO webhooks (url, events, secret_encrypted) VALUES ('https://93.184.215.14/h',"
            " '{ticket.created,message.created,ticket.status_changed,ticket.assigned}', 'sealed')"
        )
    own = post_raw(
        api,
        email(
            f"{ZELDA_NAME} <{ZELDA}>",
            "My sparkleberry order",
            "My sparkleberry order never came. Zelda Quibble, 12 Elm Road.",
            cc=f"Dana Doe <{DANA}>",
            html="<p>My <b>sparkleberry</b> order never came. Zelda Quibble</p>",
            files=(("zelda-passport.txt", PASSPORT),),
        ),
        status=201,
    ).json["ticket"]
    api.post(
        f"/api/tickets/{own}/messages",
        {"body": "Dear Zelda Quibble, your sparkleberry crate ships today."},
        upload_files=[("attachments", "label.txt", LABEL)],
        headers=headers,
        status=201,
    )
    api.post_json(
        f"/api/tickets/{own}/messages",
        {"body": "She called twice about the sparkleberry crate.", "visibility": "INTERNAL"},
        headers=headers,
        status=201,
    )
    copied = post_raw(
        api,
        email(
            f"Fay Client <{FAY}>",
            "The scanner is offline",
            "Since this morning. I copied Zelda from accounts.",
            cc=f"{ZELDA_NAME} <{ZELDA}>",
        ),
        status=201,
    ).json["ticket"]
    post_raw(
        api,
        email(
            f"{ZELDA_NAME} <{ZELDA}>",
            "Re: The scanner is offline",
            "Mine too, next to the sparkleberry shelf.",
            files=(("zelda-notes.txt", NOTES),),
            in_reply_to=_ack_id(db, copied),
        ),
        status="2*",
    )
    api.post_json(
        f"/api/tickets/{copied}/messages",
        {"body": "Thanks Fay and Zelda: the scanner works again."},
        headers=headers,
        status=201,
    )
    unrelated = post_raw(
        api,
        email(f"Fay Client <{FAY}>", "Printer jam", "Fay's own words about the printer."),
        status=201,
    ).json["ticket"]
    with db.transaction() as conn:
        make_quarantined(
            conn,
            from_header=f"{ZELDA_NAME} <{ZELDA}>",
            subject="sparkleberry again",
            raw=email(f"{ZELDA_NAME} <{ZELDA}>", "sparkleberry again", "Blocked words."),
        )
        conn.execute("INSERT INTO blocked_senders (pattern) VALUES (%s)", (ZELDA,))
    return {"own": own, "copied": copied, "unrelated": unrelated}


def text_columns(conn: psycopg.Connection) -> list[tuple[str, str, str]]:
    """(table, column, type) of every column of the schema that can hold text: read from the
    catalog, so a table added later is searched too."""
    return conn.execute(
        "SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c "
        "JOIN information_schema.tables t USING (table_schema, table_name) "
        "WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' "
        "AND c.table_name NOT LIKE '%%yoyo%%' "
        "AND (c.data_type IN ('text', 'character varying', 'jsonb', 'json', 'bytea', "
        "'tsvector') OR c.data_type = 'ARRAY') ORDER BY 1, 2"
    ).fetchall()


def find_anywhere(conn: psycopg.Connection, words: tuple[str, ...] = HERS) -> list[str]:
    """Every `table.column` holding one of `words` (any case), in any row."""
    found = []
    for table, column, data_type in text_columns(conn):
        value = sql.Identifier(column)
        if data_type == "bytea":
            value = sql.SQL("encode({}, 'escape')").format(value)
        else:
            value = sql.SQL("{}::text").format(value)
        for word in words:
            query = sql.SQL("SELECT count(*) FROM {} WHERE {} ILIKE %s").format(
                sql.Identifier(table), value
            )
            pattern = "%" + word.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_") + "%"
            if conn.execute(query, (pattern,)).fetchone()[0]:
                found.append(f"{table}.{column}: {word}")
    return found
