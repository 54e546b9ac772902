"""The consumer side of outbound email: the reliable Redis queue, SMTP delivery, the sweeper.

`supportdesk worker` runs `process.run_worker`. Producers live elsewhere
(`supportdesk.outbox`); nothing here writes new outbox rows.
"""
