"""Secrets at rest (DESIGN.md sections 10 and 13): mailbox passwords, OAuth tokens and staff
members' TOTP secrets are stored as Fernet tokens (AES-128-CBC with HMAC-SHA256, from
`cryptography`), never in clear, and never returned by the API.

The key is ENCRYPTION_KEY (a Fernet key) when set, else derived from SECRET_KEY with HKDF,
so that a desk without the setting still encrypts; changing SECRET_KEY then makes the stored
secrets unreadable, and the mailboxes say so (`SecretUnreadable`) and ask to be set again (a
TOTP secret too: its owner logs in with a recovery code, or an ADMIN resets their two-factor).

Kept in core (the layer every domain may import): the mailboxes and the accounts both seal.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from supportdesk.core.config import Settings


class SecretUnreadable(Exception):
    """A stored secret that this key cannot decrypt (the key changed): set it again."""


class SecretBox:
    def __init__(self, settings: Settings):
        if settings.encryption_key:
            key = settings.encryption_key.encode()
        else:
            derived = HKDF(
                algorithm=hashes.SHA256(),
                length=32,
                salt=None,
                info=b"supportdesk mailbox secrets",
            ).derive(settings.secret_key.encode())
            key = base64.urlsafe_b64encode(derived)
        self._fernet = Fernet(key)

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken as error:
            raise SecretUnreadable(
                "a stored secret cannot be decrypted: ENCRYPTION_KEY or SECRET_KEY changed"
            ) from error
