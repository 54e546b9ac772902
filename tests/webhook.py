"""The signed inbound webhook as tests drive it: its secret, signed posts, and the
placeholders of the `world` fixture (tests/api/conftest.py) filled into raw mail."""

from __future__ import annotations

import json
import time

from supportdesk.core.signing import WebhookSignature

SECRET = "inbound-test-secret-0123456789"


def signed(body: bytes, *, at: float | None = None) -> dict[str, str]:
    timestamp = int(at if at is not None else time.time())
    signature = WebhookSignature(SECRET, lambda: None).sign(timestamp, body)
    return {"X-Timestamp": str(timestamp), "X-Signature": signature}


def post_raw(api, raw: bytes, status="2*", headers=None):
    return api.request(
        "/api/inbound/email",
        method="POST",
        body=raw,
        content_type="message/rfc822",
        headers=headers if headers is not None else signed(raw),
        status=status,
    )


def post_json(api, payload: dict, status="2*"):
    body = json.dumps(payload).encode()
    return api.request(
        "/api/inbound/email",
        method="POST",
        body=body,
        content_type="application/json",
        headers=signed(body),
        status=status,
    )


def fill(raw: bytes, world: dict) -> bytes:
    for key, value in world.items():
        if key.startswith("{"):
            raw = raw.replace(key.encode(), value.encode())
    return raw


def rows(db, sql: str, *args) -> list[dict]:
    with db.transaction() as conn:
        cur = conn.execute(sql, args)
        names = [c.name for c in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
