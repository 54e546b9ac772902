"""Settings are read once, validated at start-up, and every problem is named."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from supportdesk.core.config import (
    DEV_SECRET_KEY_FILE,
    PROJECT_ROOT,
    SETTINGS,
    BadValue,
    ConfigError,
    Settings,
    development_secret_key,
    duration,
)

GOOD_SECRET = "s" * 40


def test_defaults_for_development():
    settings = Settings.parse({"ENVIRONMENT": "development"})
    assert settings.database_url is None
    assert settings.secret_key == DEV_SECRET_KEY_FILE.read_text().strip()
    assert len(settings.secret_key) >= 32
    assert Settings.parse({"ENVIRONMENT": "development"}).secret_key == settings.secret_key
    assert settings.storage_backend == "local"
    assert settings.max_upload_bytes == 10 * 1024 * 1024
    assert settings.db_prepare_threshold == 5


def test_every_name_is_read():
    settings = Settings.parse(
        {
            "DATABASE_URL": "postgresql://u:p@db.example.com:6543/postgres",
            "REDIS_URL": "rediss://cache.example.com:6380/0",
            "SECRET_KEY": GOOD_SECRET,
            "PUBLIC_BASE_URL": "https://help.example.com",
            "SMTP_HOST": "smtp.example.com",
            "SMTP_PORT": "587",
            "SMTP_USERNAME": "apikey",
            "SMTP_PASSWORD": "pw",
            "SMTP_STARTTLS": "true",
            "MAIL_FROM": "Support <support@example.com>",
            "INBOUND_EMAIL_SECRET": "hook-secret",
            "STORAGE_BACKEND": "s3",
            "UPLOAD_DIR": "/srv/uploads",
            "S3_BUCKET": "files",
            "S3_ENDPOINT_URL": "https://proj.supabase.co/storage/v1/s3",
            "S3_REGION": "eu-west-1",
            "AWS_ACCESS_KEY_ID": "AKIA",
            "AWS_SECRET_ACCESS_KEY": "shh",
            "MAX_UPLOAD_BYTES": "2048",
            "DB_PREPARE_THRESHOLD": "none",
        }
    )
    assert settings.smtp_port == 587
    assert settings.smtp_starttls is True
    assert settings.storage_backend == "s3"
    assert settings.s3_bucket == "files"
    assert str(settings.upload_dir) == "/srv/uploads"
    assert settings.max_upload_bytes == 2048
    assert settings.db_prepare_threshold is None  # transaction pooler: no prepared statements
    assert settings.environment == "production"


@pytest.mark.parametrize(
    ("values", "name", "fragment"),
    [
        ({}, "SECRET_KEY", "required"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY", "at least 32"),
        ({"PUBLIC_BASE_URL": " "}, "PUBLIC_BASE_URL", "required"),
        ({"SMTP_PORT": "smtp"}, "SMTP_PORT", "whole number"),
        ({"SMTP_PORT": "70000"}, "SMTP_PORT", "between"),
        ({"SMTP_STARTTLS": "maybe"}, "SMTP_STARTTLS", "true or false"),
        ({"MAIL_FROM": "support"}, "MAIL_FROM", "email address"),
        ({"STORAGE_BACKEND": "ftp"}, "STORAGE_BACKEND", "local, s3"),
        ({"STORAGE_BACKEND": "s3"}, "S3_BUCKET", "required"),
        (
            {"STORAGE_BACKEND": "s3", "S3_BUCKET": "f", "MAX_UPLOAD_BYTES": str(5 * 1024**3 + 1)},
            "MAX_UPLOAD_BYTES",
            "at most 5 GiB",
        ),
        ({"DATABASE_URL": "mysql://x/y"}, "DATABASE_URL", "postgresql://"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL", "redis://"),
        ({"MAX_UPLOAD_BYTES": "0"}, "MAX_UPLOAD_BYTES", "between"),
        ({"DB_PREPARE_THRESHOLD": "-1"}, "DB_PREPARE_THRESHOLD", "between"),
        # A request may take 30 s (supportdesk.web.server): waiting longer gives no timely 503.
        ({"DB_POOL_TIMEOUT": "60"}, "DB_POOL_TIMEOUT", "between 1 and 25"),
        ({"ENVIRONMENT": "staging"}, "ENVIRONMENT", "one of"),
        ({"SMTP_USERNAME": "u"}, "SMTP_PASSWORD", "together"),
        ({"ACKS_PER_ADDRESS_PER_HOUR": "5"}, "ACKS_PER_ADDRESS_PER_HOUR", "renamed"),
    ],
)
def test_bad_or_missing_values_are_named(values, name, fragment):
    base = {"SECRET_KEY": GOOD_SECRET, "PUBLIC_BASE_URL": "https://help.example.com"}
    if values == {}:
        base = {}
    with pytest.raises(ConfigError) as caught:
        Settings.parse(base | values)
    assert name in caught.value.problems
    assert fragment in caught.value.problems[name]
    assert name in str(caught.value)


def test_all_problems_are_reported_together():
    with pytest.raises(ConfigError) as caught:
        Settings.parse({"SMTP_PORT": "x", "STORAGE_BACKEND": "nope"})
    assert {"SECRET_KEY", "SMTP_PORT", "STORAGE_BACKEND"} <= set(caught.value.problems)


def test_env_file_is_read_and_the_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(
        '# comment\nSECRET_KEY="' + GOOD_SECRET + '"\nSMTP_PORT=2525\nSMTP_HOST=from-file\n'
        "PUBLIC_BASE_URL=https://help.example.com\n"
    )
    settings = Settings.from_env({"SMTP_HOST": "from-env"}, env_file=env_file)
    assert settings.secret_key == GOOD_SECRET
    assert settings.smtp_port == 2525
    assert settings.smtp_host == "from-env"


def test_missing_env_file_is_fine(tmp_path):
    settings = Settings.from_env({"ENVIRONMENT": "test"}, env_file=tmp_path / "absent")
    assert settings.environment == "test"


def test_cli_reports_bad_configuration_clearly(capsys, monkeypatch, tmp_path):
    from supportdesk.cli import main

    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("SMTP_PORT", "not-a-port")
    assert main(["migrate"]) == 2
    err = capsys.readouterr().err
    assert "SECRET_KEY: is required" in err
    assert "SMTP_PORT: must be a whole number" in err
    assert "Traceback" not in err


def test_the_development_key_is_made_once_per_checkout_never_a_constant(tmp_path):
    """Issue 10, finding 6: a constant development key let anyone forge ADMIN tokens for an
    exposed dev or test instance."""
    one = development_secret_key(tmp_path / "a" / "secret_key")
    assert development_secret_key(tmp_path / "a" / "secret_key") == one
    assert (tmp_path / "a" / "secret_key").stat().st_mode & 0o077 == 0
    assert development_secret_key(tmp_path / "b" / "secret_key") != one
    assert len(one) >= 32
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["secret_key"]


def test_a_development_key_file_too_short_is_replaced(tmp_path):
    path = tmp_path / "secret_key"
    path.write_text("\n")
    key = development_secret_key(path)
    assert len(key) >= 32
    assert path.stat().st_mode & 0o077 == 0


def test_an_app_is_not_built_with_a_short_key(settings, db, redis_client):
    from supportdesk.web.app import create_app

    with pytest.raises(ConfigError) as caught:
        create_app(settings.replace(secret_key=""), db=db, redis_client=redis_client)
    assert "SECRET_KEY" in caught.value.problems


def test_production_needs_the_public_base_url():
    with pytest.raises(ConfigError) as caught:
        Settings.parse({"SECRET_KEY": GOOD_SECRET})
    assert set(caught.value.problems) == {"PUBLIC_BASE_URL"}
    assert Settings.parse({"ENVIRONMENT": "development"}).public_base_url.startswith("http://")


def _readme_settings() -> dict[str, str]:
    """README's table of settings (under "## Configuration"): name -> default column. A row
    may name several settings, with one default for all or one each, comma separated."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    section = readme.split("\n## Configuration\n", 1)[1].split("\n#", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    table: dict[str, str] = {}
    for row in rows:
        names_cell, default_cell = (cell.strip() for cell in row.strip("|").split(" | ")[:2])
        names = re.findall(r"`([A-Z0-9_]+)`", names_cell)
        defaults = default_cell.split(", ")
        if len(defaults) != len(names):
            defaults = [default_cell] * len(names)
        for name, default in zip(names, defaults, strict=True):
            assert name not in table, f"README lists {name} twice"
            table[name] = default
    return table


def test_readme_lists_every_setting_with_its_declared_default():
    declared = {each.env: each.documented_default() for each in SETTINGS.values()}
    assert _readme_settings() == declared


def test_every_setting_is_read_from_its_own_variable():
    names = [each.env for each in SETTINGS.values()]
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[A-Z][A-Z0-9_]*", name) for name in names)
    assert all(each.meaning and "\n" not in each.meaning for each in SETTINGS.values())


@pytest.mark.parametrize(
    ("mail_from", "address", "name", "domain"),
    [
        ("support@example.com", "support@example.com", "", "example.com"),
        ("Support <help@acme.example>", "help@acme.example", "Support", "acme.example"),
        ('"Acme, Inc" <help@acme.example>', "help@acme.example", "Acme, Inc", "acme.example"),
    ],
)
def test_mail_from_is_taken_apart_in_one_place(mail_from, address, name, domain):
    settings = Settings.parse({"ENVIRONMENT": "test", "MAIL_FROM": mail_from})
    assert settings.mail_from == mail_from
    assert settings.support_address == address
    assert settings.sender_name == name
    assert settings.mail_domain == domain


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("7d", timedelta(days=7)),
        ("12h", timedelta(hours=12)),
        ("30m", timedelta(minutes=30)),
        ("90s", timedelta(seconds=90)),
        ("90", timedelta(seconds=90)),
        (" 2D ", timedelta(days=2)),
        ("0", None),
        ("0d", None),
    ],
)
def test_durations_read_as_people_write_them(raw, expected):
    assert duration(raw) == expected


@pytest.mark.parametrize("raw", ["", "7 days", "-1d", "1.5h", "1w", "d", "99999999d"])
def test_a_duration_that_is_not_one_is_named(raw):
    with pytest.raises(BadValue, match=r"duration|100 years"):
        duration(raw)


def test_auto_close_after_is_read_from_the_environment():
    settings = Settings.parse({"ENVIRONMENT": "test", "AUTO_CLOSE_AFTER": "12h"})
    assert settings.auto_close_after == timedelta(hours=12)
    assert Settings.parse({"ENVIRONMENT": "test", "AUTO_CLOSE_AFTER": "0"}).auto_close_after is None
