"""The rate limiter of the chat path (docs/architecture.md, step 3): one store call per request.

Requests per minute and per day and tokens per minute are counted for the account, and
for the key where the key has limits of its own. Tokens are counted up front at the
request's estimate (prompt + max output) and corrected once the real count is known;
the correction rides along with the account's next hit, so a request costs one round
trip. A request refused after it was counted (no credit, a key changed meanwhile) gives
every count back at once (`release`). Concurrency is not counted here: requests in flight
are the account's credit holds (`credits.reserve`), which a crash cannot leak past their
expiry.

The same call reads the account's auth version, which `publish_version` raises after a
key or its account changed (gatewayz/identity/auth.py), so a warm function hears of the change on
its next request without a round trip of its own.

The request path starts this call (`begin_admit`), holds the credits in PostgreSQL, then
takes its answer (gatewayz/chat/admission.py), worked out when it arrived if the store
could tell (Redis, on an event loop); a store that cannot send now and read later makes
the call from a worker thread, so the functions here are thread-safe.

If the store is unreachable, `RATE_LIMIT_FAILURE` decides: `open` (the default) lets the
request through, with a warning logged and the `RateLimitStoreUnavailable` metric counted
(credits and their holds still bound what anyone can spend, and an outage of Redis should
not become an outage of the API); `closed` refuses it with a 503.
"""

from __future__ import annotations

import contextlib
import math
import threading
from typing import TYPE_CHECKING, Protocol

from gatewayz import errors
from gatewayz.ratelimit.base import StoreUnavailable, Window
from gatewayz.record import record

if TYPE_CHECKING:
    from collections.abc import Callable

    from gatewayz.ratelimit.base import Decision, Store, WindowState


@record
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


class Subject(Protocol):
    """Whose requests are counted: a key of an account, with its limits (an authenticated
    `gatewayz.identity.auth.Caller`)."""

    @property
    def account_id(self) -> str: ...
    @property
    def key_id(self) -> str: ...
    @property
    def limits(self) -> Limits: ...


MINUTE_MS = 60_000
DAY_MS = 86_400_000
# An announced version must outlive every cache entry older than the announcement
# (auth.AUTH_CACHE_TTL_S); an hour is ample, and an unread key costs nothing.
VERSION_TTL_MS = 3_600_000


@record
class Admission:
    """A request let through: its headers, the token windows to correct later, every
    count it took, and the account's announced auth version."""

    headers: dict[str, str]
    token_keys: tuple[str, ...] = ()
    tokens_counted: tuple[int, ...] = ()  # what each window of `token_keys` counted
    counted: tuple[tuple[str, int], ...] = ()  # (window key, count) of every window
    version: int | None = None  # None: the store was not reached (failing open)


_pending: dict[str, dict[str, int]] = {}  # account id -> window key -> correction
_pending_lock = threading.Lock()


def version_key(account_id: str) -> str:
    """Where the account's auth version is announced: in the account's hash tag, so the
    script of every request can read it on Redis Cluster too."""
    return f"rl:{{{account_id}}}:v"


def admit(store: Store, caller: Subject, estimated_tokens: int) -> Admission:
    """Count this request in every window that applies, or refuse it.

    Raises:
        RateLimited: a window is full; `Retry-After` says when it resets.
        ServiceUnavailable: the store is unreachable and `RATE_LIMIT_FAILURE=closed`.
    """
    return begin_admit(store, caller, estimated_tokens)()


def begin_admit(store: Store, caller: Subject, estimated_tokens: int) -> Callable[[], Admission]:
    """`admit`, started: the store call is on its way; the returned call waits for it and
    gives the admission or raises what `admit` raises (the same each time it is called).
    The admission is worked out as soon as the store's answer arrives when the store can
    tell (Redis, on an event loop): while the request still waits for its credit hold,
    not after it."""
    named = _windows(caller, estimated_tokens)
    with _pending_lock:
        corrections = list(_pending.pop(caller.account_id, {}).items())
    admitting = _Admitting(named)
    try:
        admitting.decided = store.begin_hit(
            [window for _, window in named],
            corrections,
            version_key(caller.account_id),
            on_answer=admitting.arrived,
        )
    except StoreUnavailable as exc:
        unreachable = exc
        return lambda: _unavailable(unreachable)
    return admitting


class _Admitting:
    """A `begin_admit` call: its admission, or the error refusing it, worked out once,
    when the store's answer arrives or when asked, whichever comes first."""

    __slots__ = ("decided", "named", "outcome")

    def __init__(self, named: list[tuple[str, Window]]) -> None:
        self.named = named
        self.decided: Callable[[], Decision] | None = None
        self.outcome: Admission | Exception | None = None

    def __call__(self) -> Admission:
        if self.outcome is None:
            assert self.decided is not None
            try:
                try:
                    decision = self.decided()
                except StoreUnavailable as exc:
                    self.outcome = _unavailable(exc)
                else:
                    self.outcome = _admitted(self.named, decision)
            except Exception as exc:  # noqa: BLE001 - a refusal: raised to whoever asks
                self.outcome = exc
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome

    def arrived(self) -> None:
        """The store's answer has come (called by the event loop): work it out now."""
        if self.decided is not None:  # else begin_hit has not even returned
            with contextlib.suppress(Exception):  # kept for whoever asks
                self()


def _admitted(named: list[tuple[str, Window]], decision: Decision) -> Admission:
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
        counted=tuple((w.key, w.cost) for _, w in named),
        version=decision.version,
    )


def require_fits(caller: Subject, least_tokens: int, *, param: str) -> None:
    """Refuse a request that no tokens-per-minute window can ever hold: a 429 would only
    make the SDKs retry, in vain, for a minute.

    Raises:
        TokenRateLimitTooSmall: `least_tokens` exceeds the account's (or key's) window.
    """
    limits = caller.limits
    window = limits.tokens_per_minute
    if limits.key_tokens_per_minute is not None:
        window = min(window, limits.key_tokens_per_minute)
    if least_tokens > window:
        raise errors.TokenRateLimitTooSmall(
            f"This request needs about {least_tokens} tokens, more than the {window} tokens "
            f"per minute this key may use; shorten it or lower `{param}`.",
            param=param,
            metadata={"limit": "tokens_per_minute", "tokens": least_tokens},
        )


def release(store: Store, admission: Admission) -> None:
    """Give back every count `admission` took, now, in one store call: a request refused
    after it was admitted costs nothing (docs/architecture.md, step 5). Waiting for the account's
    next request, as `correct` does, would leave its siblings refused meanwhile.

    Never raises: when the store is down the counts simply expire with their windows.
    """
    give_back = [(key, -count) for key, count in admission.counted if count]
    if not give_back:
        return
    try:
        store.hit([], give_back)
    except StoreUnavailable as exc:
        from gatewayz.logs import get_logger

        get_logger().warning(
            "rate limit store unavailable; a refused request's counts stay until they expire",
            extra={"error": str(exc)},
        )


def publish_version(store: Store, account_id: str, version: int) -> int:
    """Announce the account's auth version to every process (see gatewayz/identity/auth.py);
    return the version the store holds now (a greater one may already be there).

    Raises:
        StoreUnavailable: the store cannot be reached.
    """
    return store.announce(version_key(account_id), version, VERSION_TTL_MS)


def correct(caller: Subject, admission: Admission, actual_tokens: int) -> None:
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


def _unavailable(exc: StoreUnavailable) -> Admission:
    """The store is unreachable: fail open or closed, as `RATE_LIMIT_FAILURE` says; either
    way an operator sees it (a warning per request and the metric)."""
    from gatewayz import config, metrics
    from gatewayz.logs import get_logger

    metrics.count("RateLimitStoreUnavailable")
    if config.get_settings().rate_limit_failure == "closed":
        get_logger().warning(
            "rate limit store unavailable; refusing (RATE_LIMIT_FAILURE=closed)",
            extra={"error": str(exc)},
        )
        raise errors.ServiceUnavailable(
            "Rate limiting is temporarily unavailable, so requests are refused; retry shortly.",
            headers={"retry-after": "1"},
        )
    get_logger().warning("rate limit store unavailable; failing open", extra={"error": str(exc)})
    return Admission(headers={})


def _windows(caller: Subject, tokens: int) -> list[tuple[str, Window]]:
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
    tightest: dict[str, WindowState] = {}
    for (name, _), state in zip(named, decision.windows, strict=True):
        kind = _PER_MINUTE.get(name)
        if kind is None:
            continue
        if kind not in tightest or state.remaining < tightest[kind].remaining:
            tightest[kind] = state
    headers: dict[str, str] = {}
    for kind, state in tightest.items():
        limit, remaining, reset = _HEADER_NAMES[kind]
        headers[limit] = str(state.limit)
        headers[remaining] = str(state.remaining)
        headers[reset] = _duration(state.reset_ms)
    return headers


# The per-minute windows, by the kind of headers they report in.
_PER_MINUTE = {
    "requests_per_minute": "requests",
    "key_requests_per_minute": "requests",
    "tokens_per_minute": "tokens",
    "key_tokens_per_minute": "tokens",
}
_HEADER_NAMES = {
    kind: tuple(f"x-ratelimit-{field}-{kind}" for field in ("limit", "remaining", "reset"))
    for kind in ("requests", "tokens")
}


def _duration(ms: int) -> str:
    """Every `x-ratelimit-reset-*` in one format, OpenAI's (Go durations): `250ms` below a
    second, else hours, minutes and seconds with up to three decimals: `1.5s`, `6m0s`,
    `1h0m0s`."""
    ms = max(0, ms)
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    if hours:
        return f"{hours}h{minutes}m{seconds}s"
    if minutes:
        return f"{minutes}m{seconds}s"
    return f"{seconds}s"
