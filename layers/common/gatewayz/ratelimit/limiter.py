"""The rate limiter of the chat path (DESIGN §3 step 3): one store call per request.

Requests per minute and per day and tokens per minute are counted for the account, and
for the key where the key has limits of its own. Tokens are counted up front at the
request's estimate (prompt + max output) and corrected once the real count is known;
the correction rides along with the account's next hit, so a request costs one round
trip. Concurrency is not counted here: requests in flight are the account's credit holds
(`credits.reserve`), which a crash cannot leak past their expiry.

If the store is unreachable the limiter fails open (logged): credits still bound what
anyone can spend, and an outage of Redis should not become an outage of the API.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gatewayz import errors
from gatewayz.ratelimit.base import StoreUnavailable, Window

if TYPE_CHECKING:
    from gatewayz.auth import Caller
    from gatewayz.ratelimit.base import Decision, Store

MINUTE_MS = 60_000
DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Admission:
    """A request let through: its headers, and the token windows to correct later."""

    headers: dict[str, str]
    token_keys: tuple[str, ...] = ()
    tokens_counted: tuple[int, ...] = ()  # what each window of `token_keys` counted


_pending: dict[str, dict[str, int]] = {}  # account id -> window key -> correction
_pending_lock = threading.Lock()


def admit(store: Store, caller: Caller, estimated_tokens: int) -> Admission:
    """Count this request in every window that applies, or refuse it.

    Raises:
        RateLimited: a window is full; `Retry-After` says when it resets.
    """
    named = _windows(caller, estimated_tokens)
    with _pending_lock:
        corrections = list(_pending.pop(caller.account_id, {}).items())
    try:
        decision = store.hit([window for _, window in named], corrections)
    except StoreUnavailable as exc:
        from gatewayz.logs import get_logger

        get_logger().warning(
            "rate limit store unavailable; failing open", extra={"error": str(exc)}
        )
        return Admission(headers={})
    headers = _headers(named, decision)
    if not decision.allowed:
        assert decision.denied is not None
        name = named[decision.denied][0]
        retry_after = max(1, math.ceil(decision.retry_after_ms / 1000))
        raise errors.RateLimited(
            f"Rate limit reached: {name.replace('_', ' ')}. Retry in {retry_after}s.",
            metadata={"limit": name},
            headers={**headers, "retry-after": str(retry_after)},
        )
    token_windows = [w for name, w in named if name.endswith("tokens_per_minute")]
    return Admission(
        headers=headers,
        token_keys=tuple(w.key for w in token_windows),
        tokens_counted=tuple(w.cost for w in token_windows),
    )


def correct(caller: Caller, admission: Admission, actual_tokens: int) -> None:
    """Remember to move the token windows from the estimate to `actual_tokens`."""
    deltas = [
        (key, actual_tokens - counted)
        for key, counted in zip(admission.token_keys, admission.tokens_counted, strict=True)
        if actual_tokens != counted
    ]
    if not deltas:
        return
    with _pending_lock:
        pending = _pending.setdefault(caller.account_id, {})
        for key, delta in deltas:
            pending[key] = pending.get(key, 0) + delta


def _windows(caller: Caller, tokens: int) -> list[tuple[str, Window]]:
    limits = caller.limits
    # One hash tag per account: on Redis Cluster every key of the script is in one slot.
    account = f"rl:{{{caller.account_id}}}"
    key = f"{account}:k:{caller.key_id}"
    named = [
        ("requests_per_minute", Window(f"{account}:rpm", limits.requests_per_minute, MINUTE_MS)),
        ("requests_per_day", Window(f"{account}:rpd", limits.requests_per_day, DAY_MS)),
        # A request larger than the whole window is counted as the whole window, so it
        # can pass when the window is empty instead of never.
        (
            "tokens_per_minute",
            Window(
                f"{account}:tpm",
                limits.tokens_per_minute,
                MINUTE_MS,
                min(tokens, limits.tokens_per_minute),
            ),
        ),
    ]
    if limits.key_requests_per_minute is not None:
        named.append(
            (
                "key_requests_per_minute",
                Window(f"{key}:rpm", limits.key_requests_per_minute, MINUTE_MS),
            )
        )
    if limits.key_requests_per_day is not None:
        named.append(
            ("key_requests_per_day", Window(f"{key}:rpd", limits.key_requests_per_day, DAY_MS))
        )
    if limits.key_tokens_per_minute is not None:
        cost = min(tokens, limits.key_tokens_per_minute, limits.tokens_per_minute)
        named.append(
            (
                "key_tokens_per_minute",
                Window(f"{key}:tpm", limits.key_tokens_per_minute, MINUTE_MS, cost),
            )
        )
    return named


def _headers(named: list[tuple[str, Window]], decision: Decision) -> dict[str, str]:
    """OpenAI's `x-ratelimit-*` headers from the tightest requests and tokens windows."""
    headers: dict[str, str] = {}
    for kind in ("requests", "tokens"):
        states = [
            state
            for (name, _), state in zip(named, decision.windows, strict=True)
            if name.endswith(f"{kind}_per_minute")
        ]
        if not states:
            continue
        tightest = min(states, key=lambda state: state.remaining)
        headers[f"x-ratelimit-limit-{kind}"] = str(tightest.limit)
        headers[f"x-ratelimit-remaining-{kind}"] = str(tightest.remaining)
        headers[f"x-ratelimit-reset-{kind}"] = _duration(tightest.reset_ms)
    return headers


def _duration(ms: int) -> str:
    """OpenAI's reset format: `1s`, `6m0s`, `0.5s`."""
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.3g}s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest}s"
