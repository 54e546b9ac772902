"""Core: what every other package builds on, and the one home of each fact.

Settings (`config`), the database pool and the named SQL queries (`db`), migrations
(`migrate`), the Redis client (`redis_client`), the errors services raise (`errors`), the text
rules every input goes through (`text`), each request field declared once for its check and
its published schema (`fields`), the vocabulary (`vocabulary`: enums, labels, field
limits, the PID pattern), HMAC signatures (`signing`), client addresses behind trusted proxies
(`clients`), Redis rate limits (`ratelimit`) and a list's paging (`paging`).

May import: nothing of ours outside `core` (checked by `make lint`).
"""
