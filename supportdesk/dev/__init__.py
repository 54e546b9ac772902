"""Development only: embedded PostgreSQL and Redis (`embedded`), the local mailbox that
keeps what the desk sends (`mailbox`), demo data (`seed`) and `make dev`'s set of processes
(`run`).

Imported by the CLI only (checked by `make lint`); may import the domains and `core`.
"""
