"""Mailbox secrets are encrypted at rest, with ENCRYPTION_KEY or a key derived from SECRET_KEY."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from supportdesk.core.config import ConfigError, Settings
from supportdesk.mail.mailboxes.secrets import SecretBox, SecretUnreadable


def test_a_sealed_secret_opens_and_does_not_show(base_settings: Settings) -> None:
    box = SecretBox(base_settings)
    sealed = box.seal("hunter2-password")
    assert "hunter2" not in sealed
    assert box.open(sealed) == "hunter2-password"


def test_another_key_cannot_open_it(base_settings: Settings) -> None:
    sealed = SecretBox(base_settings).seal("s3cret")
    other = base_settings.replace(encryption_key=Fernet.generate_key().decode())
    with pytest.raises(SecretUnreadable):
        SecretBox(other).open(sealed)
    rotated = base_settings.replace(secret_key="x" * 40)
    with pytest.raises(SecretUnreadable):
        SecretBox(rotated).open(sealed)


def test_a_bad_encryption_key_is_a_clear_setting_error() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.parse({"ENCRYPTION_KEY": "not-a-key", "ENVIRONMENT": "test"})
    assert "ENCRYPTION_KEY" in str(caught.value)
