"""The named-query loader: malformed files fail at import, queries run with named params."""

from __future__ import annotations

import re

import pytest

from supportdesk.core.db import Database, QueryFileError, load_queries, parse_query_file, queries
from tests.conftest import POOLER_URL


def test_every_shipped_query_parses():
    assert "take_pid_number" in queries
    assert all(q.sql for q in queries)


def test_unknown_query_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no SQL query named 'nope'"):
        _ = queries.nope


def test_duplicate_names_fail(tmp_path):
    (tmp_path / "a.sql").write_text("-- name: same$\nSELECT 1;\n")
    (tmp_path / "b.sql").write_text("-- name: same$\nSELECT 2;\n")
    with pytest.raises(
        QueryFileError, match=re.escape("'same' is defined in a.sql and again in b.sql")
    ):
        load_queries(tmp_path)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("-- name: a$\nSELECT %s;\n", "positional"),
        ("-- name: a$\nSELECT $1;\n", "positional"),
        ("-- name: a\nSELECT 1;\n", "no result shape"),
        ("-- name: Bad-Name$\nSELECT 1;\n", "bad query name"),
        ("-- name: a$\n-- only a comment\n", "empty"),
        ("SELECT 1;\n-- name: a$\nSELECT 1;\n", "before the first"),
        ("-- name: a<!\nINSERT INTO t VALUES (1);\n", "RETURNING"),
    ],
)
def test_malformed_files_fail(text, fragment):
    with pytest.raises(QueryFileError, match=fragment):
        parse_query_file(text, "x.sql")


def test_casts_literals_and_percent_survive_conversion(conn):
    (query,) = parse_query_file(
        "-- name: odd^\n-- A comment line is dropped.\n"
        "SELECT :n::int + 1 AS n, 'a:b ''q'' :notparam 100%' AS lit, 100 % 7 AS m, "
        "'{\"k\": 1}'::jsonb ? 'k' AS has_k, $$ :alsonot $$ AS dollar;\n",
        "x.sql",
    )
    assert query.params == frozenset({"n"})
    assert query(conn, n=41) == {
        "n": 42,
        "lit": "a:b 'q' :notparam 100%",
        "m": 2,
        "has_k": True,
        "dollar": " :alsonot ",
    }


def test_shapes(conn):
    parsed = {
        q.name: q
        for q in parse_query_file(
            "-- name: one^\nSELECT 1 AS a WHERE :x\n"
            "-- name: val$\nSELECT 7\n"
            "-- name: many*\nSELECT g FROM generate_series(1, :n) g\n"
            "-- name: run!\nSELECT 1 FROM generate_series(1, 3)\n",
            "x.sql",
        )
    }
    assert parsed["one"](conn, x=True) == {"a": 1}
    assert parsed["one"](conn, x=False) is None
    assert parsed["val"](conn) == 7
    assert parsed["many"](conn, n=3) == [{"g": 1}, {"g": 2}, {"g": 3}]
    assert parsed["run"](conn) == 3


def test_missing_parameter_is_a_clear_error(conn):
    with pytest.raises(TypeError, match="missing parameters: period"):
        queries.take_pid_number(conn)


def test_prepare_threshold_none_disables_prepared_statements(settings):
    db = Database(settings.replace(db_prepare_threshold=None, db_pool_min_size=0)).open(wait=True)
    try:
        with db.transaction() as conn:
            for _ in range(10):
                queries.ping(conn)
            prepared = conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()[0]
        assert prepared == 0
    finally:
        db.close()


@pytest.mark.skipif(
    bool(POOLER_URL), reason="behind a transaction pooler the app prepares no statements"
)
def test_default_prepare_threshold_prepares_repeated_queries(settings):
    assert settings.db_prepare_threshold == 5  # the default
    db = Database(settings.replace(db_pool_min_size=0)).open(wait=True)
    try:
        with db.transaction() as conn:
            for _ in range(6):  # prepared once run more often than the threshold
                queries.ping(conn)
            prepared = conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()[0]
        assert prepared >= 1
    finally:
        db.close()


def test_comments_e_strings_and_tagged_dollar_quotes_hold_no_parameters(conn):
    (query,) = parse_query_file(
        "-- name: tricky^\n"
        "SELECT /* :nope 5% */ :x::int AS x, E'it\\'s :nope' AS e,\n"
        "       $fn1$ :nope $fn1$ AS d, 'line one\n-- not a comment\nline three' AS multi;\n",
        "x.sql",
    )
    assert query.params == frozenset({"x"})
    assert query(conn, x=1) == {
        "x": 1,
        "e": "it's :nope",
        "d": " :nope ",
        "multi": "line one\n-- not a comment\nline three",
    }


def test_returning_must_be_the_keyword():
    with pytest.raises(QueryFileError, match="RETURNING"):
        parse_query_file("-- name: a<!\nINSERT INTO t (returning_col) VALUES (1);\n", "x.sql")


def test_connections_read_timestamps_in_utc(settings, database_url):
    """The pages say UTC: a server whose default time zone is another must not shift them."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as admin:
        name = admin.info.dbname
        admin.execute(f"ALTER DATABASE {name} SET timezone TO 'Asia/Tokyo'")
    try:
        db = Database(settings.replace(db_pool_min_size=0)).open(wait=True)
        try:
            with db.transaction() as conn:
                [moment] = conn.execute("SELECT now()").fetchone()
                assert moment.utcoffset().total_seconds() == 0
        finally:
            db.close()
    finally:
        with psycopg.connect(database_url, autocommit=True) as admin:
            admin.execute(f"ALTER DATABASE {name} RESET timezone")
