"""Secrets at rest: Fernet encryption under `ENCRYPTION_KEYS`.

`ENCRYPTION_KEYS` is a comma-separated list of Fernet keys, newest first. New secrets are
encrypted with the first; any of them decrypts, so a key can be rotated in: put the new
key first, run `gatewayz reencrypt` (every stored secret re-encrypted with it), then drop
the old key. `cryptography` is imported on first use, never at import.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from gatewayz import config, errors

if TYPE_CHECKING:
    from cryptography.fernet import Fernet, MultiFernet

SETTING = "ENCRYPTION_KEYS"


class Undecryptable(Exception):
    """A token none of the configured keys can open (its key was dropped, or it is corrupt)."""


def new_key() -> str:
    """A fresh Fernet key (URL-safe base64 of 32 random bytes)."""
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def encrypt(plaintext: str) -> str:
    """`plaintext` encrypted with the newest key.

    Raises:
        MissingConfiguration: ENCRYPTION_KEYS is unset or not a list of Fernet keys.
    """
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    """The plaintext of `token`, opened with whichever configured key sealed it.

    Raises:
        MissingConfiguration: ENCRYPTION_KEYS is unset or invalid.
        Undecryptable: no configured key opens it.
    """
    from cryptography.fernet import InvalidToken

    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise Undecryptable("no configured key decrypts this token") from None


def rotate(token: str) -> str:
    """`token` re-encrypted with the newest key (its plaintext unchanged).

    Raises:
        MissingConfiguration, Undecryptable: as `decrypt`.
    """
    from cryptography.fernet import InvalidToken

    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise Undecryptable("no configured key decrypts this token") from None


def is_current(token: str) -> bool:
    """Whether `token` opens with the newest key alone (re-encrypting it would change nothing
    but its timestamp)."""
    from cryptography.fernet import InvalidToken

    newest = _keys()[1]
    try:
        newest.decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def _fernet() -> MultiFernet:
    return _keys()[0]


def _keys() -> tuple[MultiFernet, Fernet]:
    return _build(config.require("encryption_keys"))


@lru_cache(maxsize=4)
def _build(keys: str) -> tuple[MultiFernet, Fernet]:
    """Every key as one MultiFernet, and the newest alone; cached by the settings value,
    so a changed value takes effect."""
    from cryptography.fernet import Fernet, MultiFernet

    parts = [part.strip() for part in keys.split(",") if part.strip()]
    if not parts:
        raise errors.MissingConfiguration(SETTING)
    try:
        fernets = [Fernet(part) for part in parts]
    except ValueError:  # not 32 bytes of URL-safe base64
        raise errors.MissingConfiguration(SETTING, invalid=True) from None
    return MultiFernet(fernets), fernets[0]
