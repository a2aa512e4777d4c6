"""Authentication (DESIGN §3 step 1, §8): bearer key → HMAC → one indexed lookup → Caller.

The lookup returns the key with its account, plan and limits. A warm process keeps the
result for `AUTH_CACHE_TTL_S` seconds, so a revoked key stops working within that time;
expiry and rotation deadlines are checked on every request against the clock.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from gatewayz import errors, keys

if TYPE_CHECKING:
    from collections.abc import Mapping

AUTH_CACHE_TTL_S = 5.0
_CACHE_MAX = 10_000

_LOOKUP = """
SELECT k.id, k.account_id, k.user_id, k.scopes, k.allowed_models, k.allowed_cidrs::text[],
       k.allowed_referers, k.requests_per_minute, k.requests_per_day, k.tokens_per_minute,
       k.concurrent_requests, k.limits_set_by_admin, k.spend_limit_nanos, k.expires_at,
       k.revoked_at, s.expires_at, a.status, a.plan_id, p.requests_per_minute,
       p.requests_per_day, p.tokens_per_minute, p.concurrent_requests
  FROM api_key_secrets s
  JOIN api_keys k ON k.id = s.key_id
  JOIN accounts a ON a.id = k.account_id
  JOIN plans p ON p.id = a.plan_id
 WHERE s.hash = %s
"""


@dataclass(frozen=True, slots=True)
class Limits:
    """Limits of a key. The unprefixed ones are the account's windows, shared by all its
    keys: the plan's, or a key's own where an admin raised it above the plan. `key_*` are
    the key's own windows, if any: its limits, capped by the plan unless an admin set them."""

    requests_per_minute: int
    requests_per_day: int
    tokens_per_minute: int
    concurrent_requests: int
    key_requests_per_minute: int | None = None
    key_requests_per_day: int | None = None
    key_tokens_per_minute: int | None = None
    key_concurrent_requests: int | None = None


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the key, its account and user, what it may do, and its limits."""

    key_id: str
    account_id: str
    user_id: str
    scopes: frozenset[str]
    allowed_models: tuple[str, ...] | None
    allowed_cidrs: tuple[str, ...] | None
    allowed_referers: tuple[str, ...] | None
    limits: Limits
    spend_limit_nanos: int | None
    expires_at: datetime | None
    revoked_at: datetime | None
    secret_expires_at: datetime | None
    account_status: str
    plan_id: str


_cache: dict[bytes, tuple[float, Caller]] = {}
_cache_lock = threading.Lock()


def bearer(headers: Mapping[str, str]) -> str:
    """The key in `Authorization: Bearer …`.

    Raises:
        InvalidApiKey: no bearer token.
    """
    value = headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise errors.InvalidApiKey(
            "Missing API key: send it as `Authorization: Bearer gw_live_...`."
        )
    return token.strip()


def authenticate(secret: str, *, now: float | None = None) -> Caller:
    """The caller behind `secret`, checked for revocation, expiry and rotation.

    Raises:
        InvalidApiKey / ExpiredApiKey / RevokedApiKey: the key cannot be used.
        PermissionDenied: the account is suspended or closed.
    """
    if not keys.looks_like_key(secret):
        raise errors.InvalidApiKey("Invalid API key.")
    from gatewayz import config

    digest = keys.hash_secret(secret, config.key_hash_secret())
    clock = time.monotonic() if now is None else now
    with _cache_lock:
        cached = _cache.get(digest)
    if cached is not None and clock - cached[0] < AUTH_CACHE_TTL_S:
        caller = cached[1]
    else:
        caller = _lookup(digest)
        with _cache_lock:
            if len(_cache) >= _CACHE_MAX:
                _cache.clear()
            _cache[digest] = (clock, caller)
    _check(caller)
    return caller


def forget() -> None:
    """Drop every cached caller (tests; after revoking a key in this process)."""
    with _cache_lock:
        _cache.clear()


def _lookup(digest: bytes) -> Caller:
    from gatewayz import db

    row = db.execute(_LOOKUP, (digest,)).fetchone()
    if row is None:
        raise errors.InvalidApiKey("Invalid API key.")
    return _caller(row)


def _caller(row: tuple[Any, ...]) -> Caller:
    (key_id, account_id, user_id, scopes, models, cidrs, referers, key_rpm, key_rpd, key_tpm,
     key_conc, by_admin, spend_limit, expires_at, revoked_at, secret_expires_at, status,
     plan_id, plan_rpm, plan_rpd, plan_tpm, plan_conc) = row  # fmt: skip

    def effective(own: int | None, plan: int) -> int:
        if own is None:
            return int(plan)
        return int(own) if by_admin else min(int(own), int(plan))

    def account(own: int | None, plan: int) -> int:
        # A key's lower limit is its own window's: lowering the shared account window
        # would let the key's siblings use up its budget.
        return max(int(own), int(plan)) if by_admin and own is not None else int(plan)

    limits = Limits(
        requests_per_minute=account(key_rpm, plan_rpm),
        requests_per_day=account(key_rpd, plan_rpd),
        tokens_per_minute=account(key_tpm, plan_tpm),
        concurrent_requests=account(key_conc, plan_conc),
        key_requests_per_minute=None if key_rpm is None else effective(key_rpm, plan_rpm),
        key_requests_per_day=None if key_rpd is None else effective(key_rpd, plan_rpd),
        key_tokens_per_minute=None if key_tpm is None else effective(key_tpm, plan_tpm),
        key_concurrent_requests=None if key_conc is None else effective(key_conc, plan_conc),
    )
    return Caller(
        key_id=str(key_id),
        account_id=str(account_id),
        user_id=str(user_id),
        scopes=frozenset(scopes),
        allowed_models=tuple(models) if models is not None else None,
        allowed_cidrs=tuple(cidrs) if cidrs is not None else None,
        allowed_referers=tuple(referers) if referers is not None else None,
        limits=limits,
        spend_limit_nanos=spend_limit,
        expires_at=expires_at,
        revoked_at=revoked_at,
        secret_expires_at=secret_expires_at,
        account_status=status,
        plan_id=plan_id,
    )


def _check(caller: Caller) -> None:
    now = datetime.now(UTC)
    if caller.revoked_at is not None and caller.revoked_at <= now:
        raise errors.RevokedApiKey("This API key was revoked.")
    if caller.secret_expires_at is not None and caller.secret_expires_at <= now:
        raise errors.RevokedApiKey("This API key was rotated; use its new secret.")
    if caller.expires_at is not None and caller.expires_at <= now:
        raise errors.ExpiredApiKey("This API key has expired.")
    if caller.account_status != "active":
        raise errors.AccountInactive(f"This account is {caller.account_status}.")
