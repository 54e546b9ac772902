"""The mailboxes' secrets at rest: `supportdesk.core.secrets`, where the accounts' TOTP
secrets are sealed too (the names stay importable from here)."""

from supportdesk.core.secrets import SecretBox, SecretUnreadable

__all__ = ["SecretBox", "SecretUnreadable"]
