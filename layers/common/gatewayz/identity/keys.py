"""API keys (docs/architecture.md, keys): generation, hashing, creation, rotation, revocation.

A key is `gw_live_` (or `gw_test_`) + 32 random base62 characters, shown once. The
database keeps only HMAC-SHA256(key, KEY_HASH_SECRET), a display prefix and the last 4.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
import string
from typing import TYPE_CHECKING, Any

from gatewayz.record import record

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import timedelta

    import psycopg

ALPHABET = string.ascii_letters + string.digits
SECRET_LENGTH = 32
SCOPES = (
    "chat",
    "images",
    "embeddings",
    "models:read",
    "generations:read",
    "keys:read",
    "keys:write",
    "billing:read",
    "billing:write",
    "history",
    "referrals",
    "coupons",
    "admin",
)
# What a new key of a user gets unless it asks for less: everything but `admin`.
DEFAULT_SCOPES = tuple(scope for scope in SCOPES if scope != "admin")


@record
class NewKey:
    """A key just created: the only time its secret exists outside the client."""

    id: str
    secret: str
    prefix: str
    last4: str


def generate(environment: str = "live") -> str:
    """A fresh secret: `gw_<environment>_` + 32 base62 characters (190 bits)."""
    if environment not in ("live", "test"):
        raise ValueError(f"unknown key environment {environment!r}")
    return f"gw_{environment}_" + "".join(secrets.choice(ALPHABET) for _ in range(SECRET_LENGTH))


def hash_secret(secret: str, pepper: bytes) -> bytes:
    """HMAC-SHA256 of the secret under the pepper: what the database stores and looks up."""
    mac = _keyed(pepper).copy()
    mac.update(secret.encode())
    return mac.digest()


@functools.lru_cache(maxsize=4)
def _keyed(pepper: bytes) -> hmac.HMAC:
    """HMAC-SHA256 keyed with `pepper`, copied for each secret. On the request path,
    between other work, keying one anew cost ~18 µs and OpenSSL's one-shot
    `hmac.digest` ~54 µs (it looks the algorithms up each time); the copy ~13 µs."""
    return hmac.new(pepper, digestmod=hashlib.sha256)


_SHAPE = re.compile(rf"gw_(?:live|test)_[A-Za-z0-9]{{{SECRET_LENGTH}}}")
assert set(ALPHABET) == set(string.ascii_letters + string.digits)  # what _SHAPE allows


def looks_like_key(secret: str) -> bool:
    """Cheap shape check, so garbage never costs a database round trip."""
    return _SHAPE.fullmatch(secret) is not None


def create(
    cur: psycopg.Cursor[Any],
    *,
    account_id: str,
    user_id: str,
    name: str,
    pepper: bytes,
    scopes: Sequence[str] = DEFAULT_SCOPES,
    environment: str = "live",
    **columns: Any,
) -> NewKey:
    """Insert a key and its first secret; the caller owns the transaction. `columns` are
    further `api_keys` columns (limits, allowlists, dates), already validated."""
    from psycopg import sql

    unknown = set(scopes) - set(SCOPES)
    if unknown:
        raise ValueError(f"unknown scopes: {sorted(unknown)}")
    secret = generate(environment)
    prefix, last4 = _display(secret)
    values: dict[str, Any] = {
        "account_id": account_id,
        "user_id": user_id,
        "name": name,
        "environment": environment,
        "prefix": prefix,
        "last4": last4,
        "scopes": list(scopes),
        **columns,
    }
    row = cur.execute(
        sql.SQL("INSERT INTO api_keys ({}) VALUES ({}) RETURNING id").format(
            sql.SQL(", ").join(map(sql.Identifier, values)),
            sql.SQL(", ").join(sql.Placeholder() * len(values)),
        ),
        tuple(values.values()),
    ).fetchone()
    assert row is not None
    _store(cur, str(row[0]), secret, pepper)
    return NewKey(id=str(row[0]), secret=secret, prefix=prefix, last4=last4)


def rotate(
    cur: psycopg.Cursor[Any], key_id: str, *, environment: str, pepper: bytes, grace: timedelta
) -> NewKey:
    """Give a key a new secret; the caller owns the transaction (and checked the key is
    its to rotate). Older secrets stop at the end of `grace` (at once for 0), or earlier
    if an earlier rotation said so."""
    cur.execute(
        """UPDATE api_key_secrets SET expires_at = now() + %s
            WHERE key_id = %s AND (expires_at IS NULL OR expires_at > now() + %s)""",
        (grace, key_id, grace),
    )
    secret = generate(environment)
    prefix, last4 = _display(secret)
    _store(cur, key_id, secret, pepper)
    cur.execute(
        """UPDATE api_keys SET prefix = %s, last4 = %s, rotated_at = now(), updated_at = now()
            WHERE id = %s""",
        (prefix, last4, key_id),
    )
    return NewKey(id=key_id, secret=secret, prefix=prefix, last4=last4)


def _display(secret: str) -> tuple[str, str]:
    """What lists show of a secret: its prefix (environment and 4 characters) and last 4."""
    return secret[: len("gw_live_") + 4], secret[-4:]


def _store(cur: psycopg.Cursor[Any], key_id: str, secret: str, pepper: bytes) -> None:
    cur.execute(
        "INSERT INTO api_key_secrets (hash, key_id) VALUES (%s, %s)",
        (hash_secret(secret, pepper), key_id),
    )


def revoke(cur: psycopg.Cursor[Any], key_id: str, account_id: str) -> int | None:
    """Revoke a key of `account_id` now; the caller owns the transaction.

    Returns the account's `auth_version` after the change, to pass to `auth.announce`
    once the transaction has committed (warm functions then refuse the key on their very
    next request); None when the account has no such key (or it was already revoked).
    """
    revoked = cur.execute(
        """UPDATE api_keys SET revoked_at = now(), updated_at = now()
            WHERE id = %s AND account_id = %s AND revoked_at IS NULL""",
        (key_id, account_id),
    ).rowcount
    if not revoked:
        return None
    # A second statement: the version bump is the UPDATE's trigger, which fires after
    # that statement's RETURNING would have been computed.
    row = cur.execute("SELECT auth_version FROM accounts WHERE id = %s", (account_id,)).fetchone()
    assert row is not None
    return int(row[0])
