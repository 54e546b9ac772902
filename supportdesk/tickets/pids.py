"""Ticket numbers (PID): `YYYYMM-NNNNN`, gapless within a UTC month (DESIGN.md section 4)."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg

from supportdesk.core.db import queries

_take_pid_number = queries.take_pid_number


def pid_period(moment: datetime) -> str:
    """The counter row for the UTC month of `moment`, e.g. `202611`."""
    return moment.astimezone(UTC).strftime("%Y%m")


def format_pid(period: str, number: int) -> str:
    """`202611-00042`; zero-padded to at least five digits, wider past 99,999."""
    return f"{period}-{number:05d}"


def take_next_pid(conn: psycopg.Connection, moment: datetime) -> str:
    """Take the next PID of `moment`'s month inside the caller's ticket-creating transaction.

    Call it as late in that transaction as possible: the counter row stays locked until
    commit, and a rollback gives the number back.
    """
    period = pid_period(moment)
    return format_pid(period, _take_pid_number(conn, period=period))
