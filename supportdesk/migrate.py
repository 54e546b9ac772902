"""Applying the yoyo migrations of `migrations/` (plain SQL, psycopg 3 backend)."""

from __future__ import annotations

from pathlib import Path

from yoyo import get_backend, read_migrations

from supportdesk.config import PROJECT_ROOT

MIGRATIONS_DIR = PROJECT_ROOT / "migrations"


def yoyo_url(database_url: str) -> str:
    """yoyo picks its driver from the URL scheme: `postgresql+psycopg` is psycopg 3."""
    scheme, rest = database_url.split("://", 1)
    if scheme in ("postgresql", "postgres"):
        scheme = "postgresql+psycopg"
    return f"{scheme}://{rest}"


def apply_migrations(database_url: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply every migration not yet applied; returns their ids (empty when up to date).

    yoyo holds a lock while it works, so two processes migrating at once is safe.
    """
    backend = get_backend(yoyo_url(database_url))
    try:
        migrations = read_migrations(str(directory))
        with backend.lock():
            pending = backend.to_apply(migrations)
            backend.apply_migrations(pending)
        return [migration.id for migration in pending]
    finally:
        backend.connection.close()
