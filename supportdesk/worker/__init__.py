"""The worker process (`supportdesk worker`): delivering the outbox's email.

`process.run_worker` starts it; `worker` takes ids from the reliable queue
(`supportdesk.mail.outbound.queue`), `delivery` sends one and records the outcome, `sweeper`
re-enqueues rows that no queue holds. Producers live in `supportdesk.mail.outbound.outbox`;
nothing here writes new outbox rows.

May import: the domains and `core`; never `web` or `dev` (checked by `make lint`).
"""
