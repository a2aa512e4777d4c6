"""Authentication (docs/architecture.md): bearer key → HMAC → one indexed lookup → Caller.

The lookup returns the key with its account, plan, limits, the membership of the key's
user in the account, and the account's `auth_version`, which the database raises with
every change to any of those (infra/migrations/0012). A warm process caches the result.
After a change commits, `announce` publishes the new version to the rate-limit store,
whose one call per request returns it (`Admission.version`); `revalidate` then looks the
key up again when the cached version is older, so revocation, rotation and every other
change apply on the very next request in every process, without a round trip of its
own. Expiry and rotation deadlines are checked on every request against the clock.
"""

from __future__ import annotations

import threading
import time
from dataclasses import field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from gatewayz import config, db, errors
from gatewayz.identity import keys
from gatewayz.logs import get_logger
from gatewayz.ratelimit import StoreUnavailable, get_store, limiter
from gatewayz.record import record

if TYPE_CHECKING:
    from collections.abc import Mapping

    from gatewayz.ratelimit import Store

# A backstop only: announced changes apply on the next request. It still bounds what is
# never announced (a row edited by hand, a plan's limits changed, a version lost with a
# Redis restart) and keeps unused entries from living on.
AUTH_CACHE_TTL_S = 60.0
# While the rate-limit store is unreachable no announcement can arrive, so an entry is
# trusted only this long (the cache's lifetime before versions existed).
STALE_WITHOUT_STORE_S = 5.0
_CACHE_MAX = 10_000

_LOOKUP = """
SELECT k.id, k.account_id, k.user_id, k.scopes, k.allowed_models, k.allowed_cidrs::text[],
       k.allowed_referers, k.requests_per_minute, k.requests_per_day, k.tokens_per_minute,
       k.concurrent_requests, k.limits_set_by_admin, k.spend_limit_nanos, k.expires_at,
       k.revoked_at, s.expires_at, a.status, a.plan_id, p.requests_per_minute,
       p.requests_per_day, p.tokens_per_minute, p.concurrent_requests, a.auth_version,
       m.user_id IS NOT NULL, k.disabled
  FROM api_key_secrets s
  JOIN api_keys k ON k.id = s.key_id
  JOIN accounts a ON a.id = k.account_id
  JOIN plans p ON p.id = a.plan_id
  LEFT JOIN memberships m ON m.account_id = k.account_id AND m.user_id = k.user_id
 WHERE s.hash = %s
"""


@record
class Caller:
    """Who is calling: the key, its account and user, what it may do, and its limits."""

    key_id: str
    account_id: str
    user_id: str
    scopes: frozenset[str]
    allowed_models: tuple[str, ...] | None
    allowed_cidrs: tuple[str, ...] | None
    allowed_referers: tuple[str, ...] | None
    limits: limiter.Limits
    spend_limit_nanos: int | None
    expires_at: datetime | None
    revoked_at: datetime | None
    secret_expires_at: datetime | None
    account_status: str
    plan_id: str
    auth_version: int = 0  # the account's, when this was looked up
    member: bool = True  # the key's user is still a member of the key's account
    disabled: bool = False
    # When it was looked up (the cache's clock), and whether it came out of the cache
    # rather than from the database during this request.
    looked_up_at: float = field(default=0.0, compare=False)
    cached: bool = field(default=False, compare=False)


_cache: dict[bytes, Caller] = {}
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


def authenticate(
    secret: str, *, now: float | None = None, max_age_s: float = AUTH_CACHE_TTL_S
) -> Caller:
    """The caller behind `secret`, checked for revocation, expiry, rotation and membership.

    A cached caller younger than `max_age_s` is used as it is (0: always look it up).

    Raises:
        InvalidApiKey / ExpiredApiKey / RevokedApiKey: the key cannot be used.
        PermissionDenied: the account is suspended or closed.
    """
    if not keys.looks_like_key(secret):
        raise errors.InvalidApiKey("Invalid API key.")
    digest = keys.hash_secret(secret, config.key_hash_secret())
    clock = time.monotonic() if now is None else now
    with _cache_lock:
        cached = _cache.get(digest)
    if cached is not None and clock - cached.looked_up_at < max_age_s:
        caller = cached
    else:
        caller = _lookup(digest, clock)
    _check(caller)
    return caller


def revalidate(
    secret: str, caller: Caller, version: int | None, *, now: float | None = None
) -> Caller:
    """`caller` (from `authenticate(secret)`), or, if the account changed since it was
    cached, the caller as the database has it now, checked again.

    `version` is the account's announced auth version from this request's rate-limit
    call (`Admission.version`); None means the store was not reached, so no news could
    arrive and a cached caller older than `STALE_WITHOUT_STORE_S` is looked up again.
    A caller looked up during this request is as fresh as it gets: no second lookup.

    Raises:
        what `authenticate` raises.
    """
    if not caller.cached:
        return caller
    clock = time.monotonic() if now is None else now
    if version is None:
        stale = clock - caller.looked_up_at >= STALE_WITHOUT_STORE_S
    else:
        stale = version > caller.auth_version
    if not stale:
        return caller
    return authenticate(secret, now=clock, max_age_s=0)


def announce(account_id: str, version: int | None = None, *, store: Store | None = None) -> None:
    """Tell every warm function that the account's keys changed (call it after the change
    committed): publish its `auth_version` (read from the database unless given) to the
    rate-limit store (the configured one unless given).

    Never raises for an unreachable store: the change then applies within
    `STALE_WITHOUT_STORE_S` in functions that cannot reach it either, and within
    `AUTH_CACHE_TTL_S` everywhere.
    """
    if version is None:
        row = db.execute("SELECT auth_version FROM accounts WHERE id = %s", (account_id,))
        found = row.fetchone()
        if found is None:
            return
        version = int(found[0])
    try:
        limiter.publish_version(store or get_store(), account_id, version)
    except StoreUnavailable as exc:
        get_logger().warning(
            "rate limit store unavailable; a key change applies when caches expire",
            extra={"account_id": account_id, "error": str(exc)},
        )


def forget() -> None:
    """Drop every cached caller (tests)."""
    with _cache_lock:
        _cache.clear()


def _lookup(digest: bytes, clock: float) -> Caller:
    row = db.execute(_LOOKUP, (digest,)).fetchone()
    if row is None:
        with _cache_lock:
            _cache.pop(digest, None)
        raise errors.InvalidApiKey("Invalid API key.")
    caller = _caller(row, clock)
    with _cache_lock:
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()
        _cache[digest] = replace(caller, cached=True)
    return caller


def _caller(row: tuple[Any, ...], looked_up_at: float) -> Caller:
    (key_id, account_id, user_id, scopes, models, cidrs, referers, key_rpm, key_rpd, key_tpm,
     key_conc, by_admin, spend_limit, expires_at, revoked_at, secret_expires_at, status,
     plan_id, plan_rpm, plan_rpd, plan_tpm, plan_conc, auth_version, member,
     disabled) = row  # fmt: skip

    def effective(own: int | None, plan: int) -> int:
        if own is None:
            return int(plan)
        return int(own) if by_admin else min(int(own), int(plan))

    def account(own: int | None, plan: int) -> int:
        # A key's lower limit is its own window's: lowering the shared account window
        # would let the key's siblings use up its budget.
        return max(int(own), int(plan)) if by_admin and own is not None else int(plan)

    limits = limiter.Limits(
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
        auth_version=int(auth_version),
        member=bool(member),
        disabled=bool(disabled),
        looked_up_at=looked_up_at,
    )


def _check(caller: Caller) -> None:
    now = datetime.now(UTC)
    if caller.revoked_at is not None and caller.revoked_at <= now:
        raise errors.RevokedApiKey("This API key was revoked.")
    if caller.disabled:
        raise errors.DisabledApiKey("This API key is disabled.")
    if caller.secret_expires_at is not None and caller.secret_expires_at <= now:
        raise errors.RevokedApiKey("This API key was rotated; use its new secret.")
    if caller.expires_at is not None and caller.expires_at <= now:
        raise errors.ExpiredApiKey("This API key has expired.")
    if not caller.member:
        raise errors.RevokedApiKey(
            "This API key no longer works: its user is no longer a member of its account."
        )
    if caller.account_status != "active":
        raise errors.AccountInactive(f"This account is {caller.account_status}.")
