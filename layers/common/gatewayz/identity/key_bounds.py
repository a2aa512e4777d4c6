"""What a key may grant: never more than it holds itself.

A key that creates, changes or rotates a key cannot give it a scope it lacks, a wider
allowlist, a higher spending limit (or one that resets more often), higher per-key rate
limits or a later expiry than its own. Per-key rate limits stay at or below the plan's
unless a platform admin (a user with `is_admin`, acting through an `admin` key) sets
them, which marks the key `limits_set_by_admin`. The plan's `max_keys` caps the live
(neither revoked nor expired) keys of an account.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from gatewayz import errors
from gatewayz.identity import keys
from gatewayz.record import record

if TYPE_CHECKING:
    from collections.abc import Callable

    import psycopg

    from gatewayz.identity.principal import Principal

RATE_LIMITS = (
    "requests_per_minute", "requests_per_day", "tokens_per_minute", "concurrent_requests",
)  # fmt: skip
# Restrictions a new key takes from the key that creates it unless the body says otherwise.
INHERITED = (
    "allowed_models", "allowed_cidrs", "allowed_referers", "expires_at", "limit", "limit_reset",
    *RATE_LIMITS,
)  # fmt: skip
# How often a spending limit starts afresh: more often grants more.
_RESET_RANK = {None: 0, "monthly": 1, "weekly": 2, "daily": 3}


@record
class Grantor:
    """The acting key's own settings (by API name), its plan, and whether its user is a
    platform admin."""

    own: dict[str, Any]
    plan: dict[str, int]
    platform_admin: bool

    @property
    def scopes(self) -> frozenset[str]:
        held = frozenset(self.own["scopes"])
        return frozenset(keys.SCOPES) if "admin" in held else held


def of_key(row: dict[str, Any]) -> dict[str, Any]:
    """A key's settings that `check` compares, by API name, from a `key_views` row."""
    names = {"limit": "spend_limit_nanos"}
    return {name: row[names.get(name, name)] for name in ("scopes", *INHERITED)}


def load(cur: psycopg.Cursor[Any], principal: Principal) -> Grantor:
    """The grantor behind `principal`: its key, or for a session its user, who is bound
    only by the scopes of their role and the plan (the caller owns the transaction)."""
    if principal.key is None:
        return _of_session(cur, principal)
    row = cur.execute(
        """SELECT k.scopes, k.allowed_models, k.allowed_cidrs::text[], k.allowed_referers,
                  k.expires_at, k.spend_limit_nanos, k.limit_reset, k.requests_per_minute,
                  k.requests_per_day, k.tokens_per_minute, k.concurrent_requests,
                  p.requests_per_minute, p.requests_per_day, p.tokens_per_minute,
                  p.concurrent_requests, p.max_keys, u.is_admin AND 'admin' = ANY (k.scopes)
             FROM api_keys k JOIN accounts a ON a.id = k.account_id
             JOIN plans p ON p.id = a.plan_id JOIN users u ON u.id = k.user_id
            WHERE k.id = %s""",
        (principal.key.key_id,),
    ).fetchone()
    assert row is not None
    own = dict(zip(("scopes", *INHERITED), row[:11], strict=True))
    plan = dict(zip((*RATE_LIMITS, "max_keys"), row[11:16], strict=True))
    return Grantor(own=own, plan=plan, platform_admin=bool(row[16]))


def _of_session(cur: psycopg.Cursor[Any], principal: Principal) -> Grantor:
    row = cur.execute(
        """SELECT p.requests_per_minute, p.requests_per_day, p.tokens_per_minute,
                  p.concurrent_requests, p.max_keys, u.is_admin
             FROM accounts a JOIN plans p ON p.id = a.plan_id, users u
            WHERE a.id = %s AND u.id = %s""",
        (principal.account_id, principal.user_id),
    ).fetchone()
    assert row is not None
    own: dict[str, Any] = dict.fromkeys(INHERITED)
    own["scopes"] = sorted(principal.scopes)
    plan = dict(zip((*RATE_LIMITS, "max_keys"), row[:5], strict=True))
    return Grantor(own=own, plan=plan, platform_admin=bool(row[5]) and "admin" in own["scopes"])


def defaults(grantor: Grantor, sent: dict[str, Any]) -> dict[str, Any]:
    """`sent` completed for a new key: the grantor's own restrictions where the body said
    nothing, and its scopes (less `admin`) when it named none."""
    full = {name: grantor.own[name] for name in INHERITED if name not in sent}
    if "limit" in sent and "limit_reset" not in sent:
        full["limit_reset"] = None
    full.setdefault("scopes", [s for s in keys.DEFAULT_SCOPES if s in grantor.scopes])
    return {**full, **sent}


def check(grantor: Grantor, settings: dict[str, Any], *, against_plan: bool = True) -> bool:
    """Raises EscalationDenied (naming the field) unless every setting is within the
    grantor's own (and, with `against_plan`, each rate limit within the plan's unless a
    platform admin sets it). Returns whether a rate limit is above the plan's: the key
    is then `limits_set_by_admin`."""
    own = grantor.own
    _require("scopes", set(settings.get("scopes") or ()) <= grantor.scopes)
    allowlists = {"allowed_models": _model_in, "allowed_cidrs": _network_in,
                  "allowed_referers": _host_in}  # fmt: skip
    for name, covered in allowlists.items():
        if name in settings:
            _require(name, _within(settings[name], own[name], covered))
    if "expires_at" in settings and own["expires_at"] is not None:
        new = settings["expires_at"]
        _require("expires_at", new is not None and new <= own["expires_at"])
    if "limit" in settings and own["limit"] is not None:
        _require("limit", settings["limit"] is not None and settings["limit"] <= own["limit"])
    if "limit_reset" in settings and own["limit"] is not None:
        ranks = _RESET_RANK[settings["limit_reset"]], _RESET_RANK[own["limit_reset"]]
        _require("limit_reset", ranks[0] <= ranks[1])
    above_plan = False
    for name in RATE_LIMITS:
        if name not in settings:
            continue
        value = settings[name]
        if own[name] is not None:
            _require(name, value is not None and value <= own[name])
        if against_plan and value is not None and value > grantor.plan[name]:
            if not grantor.platform_admin:
                raise errors.EscalationDenied(
                    f"{name} may be at most the plan's {grantor.plan[name]}; only a platform "
                    "admin sets higher per-key limits.",
                    param=name,
                )
            above_plan = True
    return above_plan


def require_room(cur: psycopg.Cursor[Any], account_id: str) -> None:
    """Raises KeyLimitReached when the account has `max_keys` live keys already. Locks
    the account row, so two creations cannot both take the last place."""
    row = cur.execute(
        """SELECT p.max_keys, (SELECT count(*) FROM api_keys k
                                 WHERE k.account_id = a.id AND k.revoked_at IS NULL
                                   AND (k.expires_at IS NULL OR k.expires_at > now()))
             FROM accounts a JOIN plans p ON p.id = a.plan_id
            WHERE a.id = %s FOR UPDATE OF a""",
        (account_id,),
    ).fetchone()
    assert row is not None
    if row[1] >= row[0]:
        raise errors.KeyLimitReached(
            f"This account has {row[1]} live API keys, the most its plan allows ({row[0]}); "
            "revoke one first."
        )


def _require(name: str, ok: bool) -> None:
    if not ok:
        raise errors.EscalationDenied(
            f"{name} would give the key more than the API key making this request has.",
            param=name,
        )


def _within(
    new: list[str] | None, own: list[str] | None, covered: Callable[[str, str], bool]
) -> bool:
    """Whether allowlist `new` admits nothing that `own` does not (None admits all)."""
    if own is None:
        return True
    if new is None:
        return False
    return all(any(covered(entry, mine) for mine in own) for entry in new)


def _model_in(entry: str, mine: str) -> bool:
    return entry == mine or (mine.endswith("/*") and entry.startswith(mine[:-1]))


def _network_in(entry: str, mine: str) -> bool:
    new, held = ipaddress.ip_network(entry), ipaddress.ip_network(mine)
    return new.version == held.version and new.subnet_of(held)  # type: ignore[arg-type]


def _host_in(entry: str, mine: str) -> bool:
    if entry == mine:
        return True
    # `*.example.com` admits `app.example.com` and `*.app.example.com`, not `example.com`.
    return mine.startswith("*.") and entry.removeprefix("*.").endswith(mine[1:])
