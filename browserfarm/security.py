"""Secrets: bearer tokens and v5 access keys (random, stored as SHA-256), and the
cipher for proxy passwords at rest (Fernet, key from settings or the data dir)."""
from __future__ import annotations

import functools
import hashlib
import hmac
import os
import secrets

from cryptography.fernet import Fernet, InvalidToken

TOKEN_PREFIX = "bf_"


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_access_key() -> str:
    return secrets.token_hex(20)


def digest(secret: str) -> str:
    """SHA-256 of a high-entropy secret: enough at rest, and indexable for lookup."""
    return hashlib.sha256(secret.encode()).hexdigest()


class ProxyCipher:
    """Encrypts proxy passwords at rest."""

    def __init__(self, key: str | bytes):
        self._fernet = Fernet(key)
        self._key = key.encode() if isinstance(key, str) else key
        # A token always decrypts to the same text, and Fernet takes ~20 us: a list of
        # 20 windows spent a fifth of its time here. Kept per process, bounded.
        self._decrypted = functools.lru_cache(maxsize=16384)(self._decrypt)

    @classmethod
    def from_settings(cls, settings) -> "ProxyCipher":
        if settings.secret_key:
            return cls(settings.secret_key)
        return cls(_key_file(settings.data))

    def derive(self, purpose: str) -> bytes:
        """A key for ``purpose`` (e.g. signing the dashboard's sessions) derived from the
        farm's secret: one secret to keep, and no use of it reveals it or another's."""
        return hmac.new(self._key, purpose.encode(), hashlib.sha256).digest()

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode() if plaintext else ""

    def decrypt(self, ciphertext: str) -> str:
        return self._decrypted(ciphertext) if ciphertext else ""

    def _decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise RuntimeError("proxy password cannot be decrypted: the secret key changed") \
                from None


def _key_file(data) -> bytes:
    """Read the data dir's key, creating it (mode 0600) on first use."""
    path = data.prepare(data.secret_key)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(Fernet.generate_key())
    return path.read_bytes().strip()
