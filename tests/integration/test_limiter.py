"""The chat path's rate limiter (gatewayz/ratelimit/limiter.py)
on every store backend: memory, Redis and Upstash (tests/redis_fixtures.py)."""

from __future__ import annotations

import json
import logging
import re
import socket
import uuid
from typing import TYPE_CHECKING, ClassVar

import pytest

from gatewayz import errors
from gatewayz.identity import auth
from gatewayz.identity.auth import Caller
from gatewayz.ratelimit import Store, StoreUnavailable
from gatewayz.ratelimit.limiter import Limits, admit, correct, publish_version, release
from gatewayz.ratelimit.memory import MemoryStore
from gatewayz.ratelimit.redis import RedisStore
from gatewayz.ratelimit.upstash import UpstashStore
from tests.conftest import reset_caches
from tests.factories import new_key, new_owner

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    import redis

    from gatewayz.ratelimit.limiter import Admission

ROOMY = 1_000_000


def caller(
    *,
    rpm: int = ROOMY,
    rpd: int = ROOMY,
    tpm: int = ROOMY,
    account_id: str | None = None,
    key_rpm: int | None = None,
    key_rpd: int | None = None,
    key_tpm: int | None = None,
) -> Caller:
    """A caller of a fresh account (or of `account_id`), with a fresh key."""
    return Caller(
        key_id=str(uuid.uuid4()),
        account_id=account_id or str(uuid.uuid4()),
        user_id=str(uuid.uuid4()),
        scopes=frozenset({"chat"}),
        allowed_models=None,
        allowed_cidrs=None,
        allowed_referers=None,
        limits=Limits(
            requests_per_minute=rpm,
            requests_per_day=rpd,
            tokens_per_minute=tpm,
            concurrent_requests=10,
            key_requests_per_minute=key_rpm,
            key_requests_per_day=key_rpd,
            key_tokens_per_minute=key_tpm,
        ),
        spend_limit_nanos=None,
        expires_at=None,
        revoked_at=None,
        secret_expires_at=None,
        account_status="active",
        plan_id="payg",
    )


class Counting(Store):
    """The backend under test, with every round trip to it counted."""

    name: ClassVar[str] = "counting"

    def __init__(self, backend: Store) -> None:
        self.backend = backend
        self.hits: list[list[tuple[str, int]]] = []  # the corrections each hit carried
        self.adjusts = 0

    def ping(self) -> None:
        self.backend.ping()

    def _hit(
        self,
        keys: list[str],
        args: list[int],
        corrections: Sequence[tuple[str, int]],
        version_key: str | None,
    ) -> Sequence[int]:
        self.hits.append(list(corrections))
        return self.backend._hit(keys, args, corrections, version_key)

    def _adjust(self, key: str, delta: int) -> None:
        self.adjusts += 1
        self.backend._adjust(key, delta)

    def _announce(self, key: str, version: int, ttl_ms: int) -> int:
        return self.backend._announce(key, version, ttl_ms)


def remaining(admission: Admission, kind: str) -> int:
    return int(admission.headers[f"x-ratelimit-remaining-{kind}"])


def reset_seconds(value: str) -> float:
    """OpenAI's reset format (`250ms`, `1.5s`, `6m0s`, `1h0m0s`) in seconds."""
    if millis := re.fullmatch(r"(\d+)ms", value):
        return int(millis[1]) / 1000
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(\d+(?:\.\d+)?)s", value)
    assert match, value
    return int(match[1] or 0) * 3600 + int(match[2] or 0) * 60 + float(match[3])


def test_exactly_n_of_2n_requests_are_admitted(store: Store) -> None:
    n, tokens = 5, 100
    who = caller(rpm=n, tpm=10_000)
    admitted: list[Admission] = []
    refused: list[errors.RateLimited] = []
    for _ in range(2 * n):
        try:
            admitted.append(admit(store, who, tokens))
        except errors.RateLimited as exc:
            refused.append(exc)
    assert (len(admitted), len(refused)) == (n, n)

    assert [remaining(a, "requests") for a in admitted] == list(range(n - 1, -1, -1))
    assert [remaining(a, "tokens") for a in admitted] == [
        10_000 - tokens * i for i in range(1, n + 1)
    ]
    for admission in admitted:
        assert admission.headers["x-ratelimit-limit-requests"] == str(n)
        assert admission.headers["x-ratelimit-limit-tokens"] == "10000"
        assert 0 < reset_seconds(admission.headers["x-ratelimit-reset-requests"]) <= 60
        assert 0 < reset_seconds(admission.headers["x-ratelimit-reset-tokens"]) <= 60
    for exc in refused:
        assert exc.status == 429
        assert exc.code == "rate_limit_exceeded"
        assert exc.metadata == {"limit": "requests_per_minute"}
        assert 1 <= int(exc.headers["retry-after"]) <= 60
        assert exc.headers["x-ratelimit-remaining-requests"] == "0"


def test_an_estimate_larger_than_the_token_window_counts_as_the_whole_window(
    store: Store,
) -> None:
    who = caller(tpm=1_000)
    huge = admit(store, who, 50_000)
    assert remaining(huge, "tokens") == 0
    with pytest.raises(errors.RateLimited) as raised:
        admit(store, who, 1)
    assert raised.value.metadata == {"limit": "tokens_per_minute"}


def test_a_correction_rides_along_with_the_accounts_next_admit(store: Store) -> None:
    counting = Counting(store)
    first = caller(tpm=10_000)
    other = caller(tpm=10_000)
    estimated = admit(counting, first, 1_000)
    assert remaining(estimated, "tokens") == 9_000

    correct(first, estimated, 100)
    assert (len(counting.hits), counting.adjusts) == (1, 0)  # remembered, not sent

    # Another account's request carries none of it, and its window is its own.
    assert remaining(admit(counting, other, 10), "tokens") == 10_000 - 10
    assert counting.hits[-1] == []

    # The same account's next request moves the window from the estimate to the actual.
    nxt = admit(counting, caller(tpm=10_000, account_id=first.account_id), 10)
    assert remaining(nxt, "tokens") == 10_000 - 100 - 10
    assert counting.hits[-1] != []
    assert (len(counting.hits), counting.adjusts) == (3, 0)

    # A correction is sent once.
    assert remaining(admit(counting, first, 10), "tokens") == 10_000 - 100 - 20
    assert counting.hits[-1] == []


def test_corrections_of_requests_in_flight_together_add_up(store: Store) -> None:
    who = caller(tpm=10_000)
    first, second = admit(store, who, 1_000), admit(store, who, 1_000)
    correct(who, first, 100)
    correct(who, second, 300)
    # Both corrections ride along with the next request: 100 + 300 + 10 used.
    assert remaining(admit(store, who, 10), "tokens") == 10_000 - 100 - 300 - 10


def test_a_keys_own_limits_add_key_windows(store: Store) -> None:
    limited = caller(rpm=100, key_rpm=2)
    sibling = caller(rpm=100, account_id=limited.account_id)
    assert [remaining(admit(store, limited, 1), "requests") for _ in range(2)] == [1, 0]
    with pytest.raises(errors.RateLimited) as raised:
        admit(store, limited, 1)
    assert raised.value.metadata == {"limit": "key_requests_per_minute"}
    assert raised.value.headers["x-ratelimit-limit-requests"] == "2"

    # Another key of the account has no key window, but shares the account's.
    assert remaining(admit(store, sibling, 1), "requests") == 100 - 3


def test_a_key_limited_below_the_plan_is_not_starved_by_its_siblings(
    store: Store, database_url: str
) -> None:
    # Keys as `auth` makes them: one with the plan's limits, one limited to 2 rpm.
    owner = new_owner("payg")
    auth.forget()
    busy = auth.authenticate(new_key(owner).secret)
    capped = auth.authenticate(new_key(owner, requests_per_minute=2).secret)
    for _ in range(3):
        admit(store, busy, 1)
    # The capped key has made no request yet: its own window has room, and so has the
    # account's (the plan's limit, shared by both keys).
    first = admit(store, capped, 1)
    assert remaining(first, "requests") == 1
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    admit(store, capped, 1)
    with pytest.raises(errors.RateLimited) as raised:
        admit(store, capped, 1)
    assert raised.value.metadata == {"limit": "key_requests_per_minute"}
    admit(store, busy, 1)  # the sibling is not held back by the capped key


def test_a_keys_own_daily_limit_refuses_its_third_request(store: Store, database_url: str) -> None:
    owner = new_owner("payg")
    auth.forget()
    capped = auth.authenticate(new_key(owner, requests_per_day=2).secret)
    sibling = auth.authenticate(new_key(owner).secret)
    admit(store, capped, 1)
    admit(store, capped, 1)
    with pytest.raises(errors.RateLimited) as raised:
        admit(store, capped, 1)
    assert raised.value.status == 429
    assert raised.value.metadata == {"limit": "key_requests_per_day"}
    admit(store, sibling, 1)  # the account's own day has plenty of room


def test_day_windows_last_a_day_in_redis(redis_url: str, redis_client: redis.Redis) -> None:
    who = caller(key_rpd=5, key_rpm=5)
    admit(RedisStore.from_url(redis_url), who, 1)
    # The limiter's keys: one hash tag per account, the key's own windows under `k:`.
    account = f"rl:{{{who.account_id}}}"
    key = f"{account}:k:{who.key_id}"
    day_ms, minute_ms = 86_400_000, 60_000
    for day_window in (f"{account}:rpd", f"{key}:rpd"):
        assert minute_ms < redis_client.pttl(day_window) <= day_ms, day_window
    for minute_window in (f"{account}:rpm", f"{key}:rpm"):
        assert 0 < redis_client.pttl(minute_window) <= minute_ms, minute_window


def test_a_key_token_window_is_corrected_to_the_actual_tokens(store: Store) -> None:
    # The estimate exceeds the key's whole token window, so the key window counted less
    # than the account's; both must end at the actual count.
    who = caller(tpm=10_000, key_tpm=100)
    estimated = admit(store, who, 500)
    assert remaining(estimated, "tokens") == 0  # the key's window, the tighter one
    correct(who, estimated, 50)
    nxt = admit(store, who, 10)
    assert remaining(nxt, "tokens") == 100 - 50 - 10


def test_reset_headers_in_openais_format() -> None:
    now = [1_000.0]
    store = MemoryStore(clock=lambda: now[0])  # a clock the test moves
    who = caller(rpm=5, tpm=1_000)

    def resets() -> tuple[str, str]:
        headers = admit(store, who, 10).headers
        return headers["x-ratelimit-reset-requests"], headers["x-ratelimit-reset-tokens"]

    assert resets() == ("1m0s", "1m0s")  # a fresh minute
    now[0] += 30
    assert resets() == ("30s", "30s")
    now[0] += 17.655
    assert resets() == ("12.345s", "12.345s")  # every digit of the millisecond, never rounded
    now[0] += 11.845
    assert resets() == ("500ms", "500ms")  # below a second: milliseconds


def test_a_refusal_says_which_window_and_when_to_retry_in_whole_seconds() -> None:
    now = [1_000.0]
    store = MemoryStore(clock=lambda: now[0])
    who = caller(rpm=1, rpd=3)
    admit(store, who, 10)
    now[0] += 29.98  # 30.02 s of the minute left: retry in 31 s, not 30
    with pytest.raises(errors.RateLimited) as raised:
        admit(store, who, 10)
    assert raised.value.message == "Rate limit reached: requests per minute. Retry in 31s."
    assert raised.value.headers["retry-after"] == "31"
    now[0] += 29.9  # 120 ms left: still at least a second
    with pytest.raises(errors.RateLimited) as raised:
        admit(store, who, 10)
    assert raised.value.headers["retry-after"] == "1"
    for _ in range(2):  # the next minutes, until the day is used up
        now[0] += 60
        admit(store, who, 10)
    now[0] += 60
    with pytest.raises(errors.RateLimited) as raised:
        admit(store, who, 10)
    assert raised.value.metadata == {"limit": "requests_per_day"}
    assert raised.value.message.startswith("Rate limit reached: requests per day. Retry in ")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unreachable(backend: str) -> Store:
    port = closed_port()
    if backend == "redis":
        return RedisStore.from_url(f"redis://127.0.0.1:{port}/0", timeout_s=0.5)
    return UpstashStore(f"http://127.0.0.1:{port}", "token", timeout_s=0.5)


@pytest.fixture
def failure_mode(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """`RATE_LIMIT_FAILURE` as the test sets it, with metrics on; settings reset around."""
    monkeypatch.delenv("RATE_LIMIT_FAILURE", raising=False)
    monkeypatch.delenv("GATEWAYZ_METRICS", raising=False)
    reset_caches()
    yield monkeypatch
    monkeypatch.undo()
    reset_caches()


def emitted(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The names of the EMF metrics printed since the last call."""
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    return [
        metric["Name"]
        for line in lines
        if "_aws" in line  # not a log line
        for directive in line["_aws"]["CloudWatchMetrics"]
        for metric in directive["Metrics"]
    ]


@pytest.mark.parametrize("backend", ["redis", "upstash"])
def test_an_unreachable_store_fails_open_counted_in_a_metric(
    backend: str,
    failure_mode: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = unreachable(backend)
    with pytest.raises(StoreUnavailable):
        store.ping()
    with caplog.at_level(logging.WARNING):
        admission = admit(store, caller(rpm=1), 10)
    assert admission.headers == {}
    assert admission.version is None  # no news of changed keys could come
    # Said in the log, with why: failing open must never go unnoticed.
    (warning,) = [r for r in caplog.records if r.name == "gatewayz"]
    assert warning.getMessage() == "rate limit store unavailable; failing open"
    assert warning.error.startswith(f"{backend}: ")
    assert emitted(capsys) == ["RateLimitStoreUnavailable"]
    admit(store, caller(rpm=1), 10)
    assert emitted(capsys) == ["RateLimitStoreUnavailable"]  # one per request
    failure_mode.setenv("GATEWAYZ_METRICS", "off")
    admit(store, caller(rpm=1), 10)
    assert emitted(capsys) == []


@pytest.mark.parametrize("backend", ["redis", "upstash"])
def test_an_unreachable_store_fails_closed_when_configured(
    backend: str, failure_mode: pytest.MonkeyPatch
) -> None:
    failure_mode.setenv("RATE_LIMIT_FAILURE", "closed")
    reset_caches()
    with pytest.raises(errors.ServiceUnavailable) as raised:
        admit(unreachable(backend), caller(), 10)
    assert (raised.value.status, raised.value.code) == (503, "service_unavailable")
    assert "x-should-retry" not in raised.value.response_headers()  # a retry may succeed
    assert raised.value.headers["retry-after"] == "1"


def test_an_invalid_failure_mode_is_a_503_naming_it(failure_mode: pytest.MonkeyPatch) -> None:
    failure_mode.setenv("RATE_LIMIT_FAILURE", "sometimes")
    reset_caches()
    with pytest.raises(errors.MissingConfiguration, match="RATE_LIMIT_FAILURE"):
        admit(unreachable("redis"), caller(), 10)


# --- giving counts back, the auth version ----------------------------------------------


def test_a_released_admission_gives_every_count_back_in_one_call(store: Store) -> None:
    counting = Counting(store)
    greedy = caller(rpm=3, tpm=10_000, key_rpm=2, key_tpm=10_000)
    sibling = caller(rpm=3, tpm=10_000, account_id=greedy.account_id)
    admission = admit(counting, greedy, 1_000_000)  # the whole token window
    with pytest.raises(errors.RateLimited):
        admit(counting, sibling, 1)
    before = len(counting.hits)
    release(counting, admission)
    assert (len(counting.hits), counting.adjusts) == (before + 1, 0)
    # At once, for every key of the account, and the requests too: it cost nothing.
    assert remaining(admit(counting, sibling, 1), "tokens") == 10_000 - 1
    again = admit(counting, greedy, 1)
    assert remaining(again, "requests") == 1  # the key's own window: 2 - 1
    assert remaining(again, "tokens") == 10_000 - 2


def test_releasing_a_failed_open_admission_sends_nothing(store: Store) -> None:
    counting = Counting(store)
    release(counting, admit(unreachable("redis"), caller(), 10))
    assert counting.hits == []


def test_an_admission_carries_the_accounts_announced_version(store: Store) -> None:
    who = caller()
    assert admit(store, who, 1).version == 0
    assert publish_version(store, who.account_id, 3) == 3
    assert admit(store, who, 1).version == 3
    assert admit(store, caller(), 1).version == 0  # another account's is its own
    assert publish_version(store, who.account_id, 2) == 3  # never lowered
