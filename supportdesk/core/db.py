"""PostgreSQL access: the connection pool, the one transaction helper, and named queries.

Named queries live in `supportdesk/sql/*.sql` in the aiosql style:

    -- name: ticket_by_pid^
    -- The ticket with this PID, or nothing.
    SELECT * FROM tickets WHERE pid = :pid;

The suffix gives the shape of the result: `^` one row (a dict, or None), `$` one value,
`*` a list of rows, `!` execute (returns the row count), `<!` insert returning one row.
Parameters are named (`:name`) only. The files are read when this module is imported, so a
malformed file or a duplicate name fails at import; code binds the queries it uses at module
level (`_ticket_by_pid = queries.ticket_by_pid`), so a missing name fails at import too.
Query functions take the connection first and never commit: the service that owns the unit
of work opens the transaction with `Database.transaction()`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from supportdesk.core.config import ConfigError, Settings

SQL_DIR = Path(__file__).resolve().parents[1] / "sql"

_NAME_LINE = re.compile(r"^--\s*name:\s*(?P<name>\S+?)(?P<shape>\^|\$|\*|<!|!)?\s*$")
_VALID_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
# Tokens that must pass through untouched: string literals (with E'..' backslash escapes),
# quoted identifiers, dollar quotes ($$ and $tag$), comments and `::` casts. Everything else
# may hold a `:name` parameter.
_SQL_TOKENS = re.compile(
    r"""(?P<skip>(?<![A-Za-z0-9_])[Ee]'(?:[^'\\]|\\.|'')*'
                |'(?:[^']|'')*'
                |"(?:[^"]|"")*"
                |\$(?P<tag>(?:[A-Za-z_][A-Za-z0-9_]*)?)\$.*?\$(?P=tag)\$
                |--[^\n]*
                |/\*.*?\*/
                |::)
      |:(?P<param>[A-Za-z_][A-Za-z0-9_]*)
      |(?P<positional>%s|%\(|\$[0-9]+)
      |(?P<percent>%)""",
    re.VERBOSE | re.DOTALL,
)


class QueryFileError(Exception):
    """A named-query file is malformed: reported at import, never at run time."""


@dataclass(frozen=True)
class Query:
    """One named query, callable as `query(conn, **params)`."""

    name: str
    shape: str
    sql: str
    params: frozenset[str]
    source: str
    # `-- options: no_prepare`: never a server-side prepared statement, so every execution
    # is planned with its parameter values (for queries whose optional filters must fold).
    prepare: bool = True

    def __call__(self, conn: psycopg.Connection, **params: Any) -> Any:
        missing = self.params - params.keys()
        if missing:
            raise TypeError(f"{self.name}() is missing parameters: {', '.join(sorted(missing))}")
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(self.sql, params, prepare=None if self.prepare else False)
            if self.shape == "!":
                return cur.rowcount
            if self.shape == "*":
                return cur.fetchall()
            row = cur.fetchone()
            if self.shape == "$":
                return None if row is None else next(iter(row.values()))
            return row


class Queries:
    """Every named query of a directory, as attributes."""

    def __init__(self, queries: dict[str, Query]):
        self._queries = queries

    def __getattr__(self, name: str) -> Query:
        try:
            return self.__dict__["_queries"][name]
        except KeyError:
            raise AttributeError(f"no SQL query named {name!r} in {SQL_DIR}") from None

    def __contains__(self, name: str) -> bool:
        return name in self._queries

    def __iter__(self) -> Iterator[Query]:
        return iter(self._queries.values())


def parse_query_file(text: str, source: str) -> list[Query]:
    """Split one .sql file into its named queries."""
    queries: list[Query] = []
    name: str | None = None
    shape = ""
    body: list[str] = []

    def finish() -> None:
        if name is None:
            if "".join(body).strip() and any(
                line.strip() and not line.strip().startswith("--") for line in body
            ):
                raise QueryFileError(f"{source}: SQL before the first '-- name:' line")
            return
        queries.append(_compile(name, shape, body, source))

    for line in text.splitlines():
        match = _NAME_LINE.match(line.strip())
        if match:
            finish()
            name, shape, body = match["name"], match["shape"] or "", []
            if not _VALID_NAME.match(name):
                raise QueryFileError(f"{source}: bad query name {name!r}")
            if not shape:
                raise QueryFileError(f"{source}: {name} has no result shape (^ $ * ! <!)")
        else:
            body.append(line)
    finish()
    return queries


_OPTIONS_LINE = re.compile(r"^--\s*options:\s*(?P<options>.*)$")
KNOWN_OPTIONS = frozenset({"no_prepare"})


def _compile(name: str, shape: str, lines: list[str], source: str) -> Query:
    options: set[str] = set()
    for line in lines:
        match = _OPTIONS_LINE.match(line.strip())
        if match:
            options.update(match["options"].replace(",", " ").split())
    if options - KNOWN_OPTIONS:
        raise QueryFileError(f"{source}: query {name} has unknown options {sorted(options)}")
    # The SQL is kept as written, comments included (PostgreSQL ignores them; removing them
    # line by line could cut into a multi-line string literal).
    sql = "\n".join(lines).strip().rstrip(";").strip()
    if not any(line.strip() and not line.strip().startswith("--") for line in lines):
        raise QueryFileError(f"{source}: query {name} is empty")
    params: set[str] = set()

    def convert(match: re.Match[str]) -> str:
        if match["skip"] is not None:
            # Quoted text passes through, but psycopg still reads % there as a placeholder.
            return match["skip"].replace("%", "%%")
        if match["param"] is not None:
            params.add(match["param"])
            return f"%({match['param']})s"
        if match["positional"] is not None:
            raise QueryFileError(
                f"{source}: query {name} uses a positional parameter {match['positional']!r}; "
                "use :named parameters only"
            )
        return "%%"

    converted = _SQL_TOKENS.sub(convert, sql)
    if shape == "<!" and not re.search(r"\breturning\b", _SQL_TOKENS.sub(" ", sql), re.I):
        raise QueryFileError(f"{source}: query {name} is '<!' but has no RETURNING")
    return Query(
        name, shape, converted, frozenset(params), source, prepare="no_prepare" not in options
    )


def load_queries(directory: Path = SQL_DIR) -> Queries:
    """Load every named query of `directory`; duplicate names are an error."""
    found: dict[str, Query] = {}
    for path in sorted(directory.glob("*.sql")):
        for query in parse_query_file(path.read_text(encoding="utf-8"), path.name):
            if query.name in found:
                raise QueryFileError(
                    f"query {query.name!r} is defined in {found[query.name].source} "
                    f"and again in {query.source}"
                )
            found[query.name] = query
    return Queries(found)


queries = load_queries()


def _in_utc(conn: psycopg.Connection) -> None:
    """Every connection reads timestamps in UTC, whatever the server's default: the pages
    say "UTC". A SET, not a startup option, which transaction poolers such as PgBouncer
    refuse; they track TimeZone and give each client its own."""
    conn.execute("SET TIME ZONE 'UTC'")
    conn.commit()


def _bounded(seconds: int) -> Callable[[psycopg.Connection], None]:
    """For the web's connections: no statement runs, or waits for a lock, longer than
    `seconds`, and a transaction left idle (its thread stuck elsewhere) is ended after a
    minute, so its locks are let go. gunicorn's gthread does not restart a worker for a long
    request (its timeout counts the worker's main loop): these are the request's limits.
    Behind a transaction pooler a SET stays with one server connection: set them on the
    app's role there (README, "Supabase")."""
    milliseconds = seconds * 1000

    def configure(conn: psycopg.Connection) -> None:
        _in_utc(conn)
        conn.execute(f"SET statement_timeout = {milliseconds}")
        conn.execute("SET idle_in_transaction_session_timeout = 60000")
        conn.commit()

    return configure


class Database:
    """The connection pool of one process and its transaction helper."""

    def __init__(
        self, settings: Settings, *, name: str = "supportdesk", for_requests: bool = False
    ):
        """`for_requests`: the web's pool, whose statements DB_STATEMENT_TIMEOUT bounds (the
        worker, the CLI and `seed`'s long COPY are not bound)."""
        if not settings.database_url:
            raise ConfigError({"DATABASE_URL": "is required (or run `supportdesk dev`)"})
        self.pool = ConnectionPool(
            settings.database_url,
            min_size=settings.db_pool_min_size,
            max_size=settings.db_pool_max_size,
            kwargs={"prepare_threshold": settings.db_prepare_threshold},
            name=name,
            open=False,
            # A request waits this long for a free connection, then gets a 503.
            timeout=settings.db_pool_timeout,
            configure=_bounded(settings.db_statement_timeout) if for_requests else _in_utc,
        )

    def open(self, wait: bool = False) -> Database:
        self.pool.open(wait=wait)
        return self

    def close(self) -> None:
        self.pool.close()

    @contextmanager
    def transaction(self, timeout: float | None = None) -> Iterator[psycopg.Connection]:
        """One unit of work: commits when the block ends, rolls back if it raises.

        Opened inside another transaction of this pool (in the same thread or task), it
        joins it as a savepoint on the same connection: an outer unit of work, such as a
        mailbox fetch that advances its UID with the message it stores, commits or rolls
        back everything its services did as one. What must wait for the commit is given
        to `after_commit`."""
        unit = _unit.get()
        if unit is not None and unit.database is self:
            with unit.conn.transaction():
                yield unit.conn
            return
        with self.pool.connection(timeout=timeout) as conn:
            unit = _Unit(self, conn)
            reset = _unit.set(unit)
            try:
                with conn.transaction():
                    yield conn
            finally:
                _unit.reset(reset)
        for callback in unit.after_commit:
            callback()

    def after_commit(self, callback: Callable[..., Any], *args: Any) -> None:
        """Call `callback(*args)` once the outermost transaction open in this context has
        committed (never if it rolls back); at once when none is open."""
        unit = _unit.get()
        if unit is not None and unit.database is self:
            unit.after_commit.append(lambda: callback(*args))
        else:
            callback(*args)


@dataclass
class _Unit:
    """The outermost transaction open in this context, and what waits for its commit."""

    database: Database
    conn: psycopg.Connection
    after_commit: list[Callable[[], Any]] = field(default_factory=list)


_unit: ContextVar[_Unit | None] = ContextVar("supportdesk_db_unit", default=None)
