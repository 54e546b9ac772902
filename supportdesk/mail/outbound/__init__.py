"""Outbound email: what a ticket's change sends, until it is handed to the worker.

`compose` writes the emails (subjects, bodies, headers, thread tokens from `thread_tokens`),
`outbox` stores them in the transaction that caused them and pushes ids to Redis after the
commit, `queue` is the reliable Redis queue (all its keys), `sender` speaks SMTP, and
`deliveries` is the admin's view of the outbox.

May import: `core`, `files`, `accounts`.
"""
