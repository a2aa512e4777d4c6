"""Steps 3 and 5 of the chat path overlapped (gatewayz/chat/admission.py), through the real
chat handler with real PostgreSQL and Redis: the rate-limit call and the credit hold run
at the same time, and whatever one side refuses, the other side's work is given back at
once: no count, no hold, no ledger entry, no usage row for a refused request."""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING

import pytest

from gatewayz import db
from gatewayz.billing import credits
from gatewayz.identity import auth, keys
from gatewayz.ratelimit import get_store
from tests import ledger
from tests.conftest import reset_caches
from tests.factories import fund, new_hold, new_key, new_owner
from tests.functions.billing_api import chat
from tests.functions.events import event, invoke, json_body

if TYPE_CHECKING:
    from collections.abc import Iterator

    import redis

    from gatewayz.identity.accounts import Owner
    from tests.functions.keys_api import Reply

pytestmark = pytest.mark.usefixtures("database_url")
USD = 1_000_000_000
DOWN = "redis://127.0.0.1:1/0"  # nothing listens on port 1


@pytest.fixture
def shared_redis(monkeypatch: pytest.MonkeyPatch, redis_url: str) -> Iterator[pytest.MonkeyPatch]:
    """The chat function counting in the test Redis (as in Lambda); more variables may be
    set on the returned monkeypatch before `reset_caches()`."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    reset_caches()
    yield monkeypatch
    monkeypatch.undo()
    reset_caches()


def money(account_id: str) -> ledger.Footprint:
    return ledger.footprint(db.connection(), account_id)


def settled(account_id: str, before: ledger.Footprint, reply: Reply) -> None:
    """The request was charged what its answer says, once, and holds nothing more."""
    after = money(account_id)
    charged = round(reply.body["usage"]["cost"] * 1e9)
    assert (after.balance, after.holds) == (before.balance - charged, 0)
    assert (after.entries, after.usage_rows) == (before.entries + 1, before.usage_rows + 1)


def counted(redis_client: redis.Redis, account_id: str) -> int:
    """Requests the account's per-minute window holds now."""
    return int(redis_client.get(f"rl:{{{account_id}}}:rpm") or 0)


def paid_owner() -> Owner:
    owner = new_owner()
    fund(owner.account_id, 5 * USD)
    return owner


def change_key(owner: Owner, key_id: str, assignment: str) -> None:
    """What the keys API does: change the key in one transaction (its account's version
    rises), then announce the new version to every warm function."""
    with db.transaction() as cur:
        cur.execute(f"UPDATE api_keys SET {assignment} WHERE id = %s".encode(), (key_id,))
    auth.announce(owner.account_id, store=get_store())


def intact(account_id: str) -> None:
    assert ledger.invariant_holds(db.connection(), account_id)


def test_admitted_and_held_together_the_request_is_served_and_settled(
    shared_redis: pytest.MonkeyPatch, redis_client: redis.Redis
) -> None:
    owner = paid_owner()
    before = money(owner.account_id)
    reply = chat(new_key(owner).secret)
    assert reply.status == 200, reply.raw
    assert round(reply.body["usage"]["cost"] * 1e9) > 0
    settled(owner.account_id, before, reply)
    assert counted(redis_client, owner.account_id) == 1
    intact(owner.account_id)


def test_a_rate_limited_request_gives_its_hold_back_at_once(
    shared_redis: pytest.MonkeyPatch, redis_client: redis.Redis
) -> None:
    owner = paid_owner()
    key = new_key(owner, requests_per_minute=1)
    assert chat(key.secret).status == 200
    before = money(owner.account_id)
    refused = chat(key.secret)
    assert refused.status == 429, refused.raw
    assert refused.body["error"]["code"] == "rate_limit_exceeded"
    assert refused.body["error"]["metadata"] == {"limit": "key_requests_per_minute"}
    # The hold taken alongside is gone, the balance whole: nothing in the ledger.
    assert money(owner.account_id) == before
    assert counted(redis_client, owner.account_id) == 1
    intact(owner.account_id)


def test_a_refused_hold_gives_the_rate_limit_counts_back(
    shared_redis: pytest.MonkeyPatch, redis_client: redis.Redis
) -> None:
    owner = new_owner()  # pay as you go, nothing paid yet
    before = money(owner.account_id)
    refused = chat(new_key(owner).secret)
    assert refused.status == 402, refused.raw
    assert refused.body["error"]["metadata"]["limit_source"] == "credits"
    assert "Insufficient credits" in refused.body["error"]["message"]
    assert money(owner.account_id) == before
    assert counted(redis_client, owner.account_id) == 0
    assert int(redis_client.get(f"rl:{{{owner.account_id}}}:tpm") or 0) == 0


def test_refused_by_both_the_client_sees_the_429(
    shared_redis: pytest.MonkeyPatch, redis_client: redis.Redis
) -> None:
    owner = new_owner()  # no credit: the hold is refused too
    key = new_key(owner, requests_per_minute=1)
    redis_client.set(f"rl:{{{owner.account_id}}}:k:{key.id}:rpm", 1, px=60_000)  # window full
    before = money(owner.account_id)
    refused = chat(key.secret)
    assert refused.status == 429, refused.raw
    assert refused.body["error"]["code"] == "rate_limit_exceeded"
    assert money(owner.account_id) == before
    assert counted(redis_client, owner.account_id) == 0


def test_a_key_revoked_since_it_was_cached_gets_no_output_and_keeps_its_credit(
    shared_redis: pytest.MonkeyPatch, redis_client: redis.Redis
) -> None:
    owner = paid_owner()
    key = new_key(owner)
    assert chat(key.secret).status == 200  # the key is cached now
    before, counts = money(owner.account_id), counted(redis_client, owner.account_id)
    with db.transaction() as cur:
        version = keys.revoke(cur, key.id, owner.account_id)
    auth.announce(owner.account_id, version, store=get_store())
    refused = chat(key.secret)
    assert refused.status == 401, refused.raw
    assert refused.body["error"]["code"] == "revoked_api_key"
    # The hold taken for the key as cached went back, and so did the count.
    assert money(owner.account_id) == before
    assert counted(redis_client, owner.account_id) == counts
    intact(owner.account_id)


def test_a_key_changed_since_it_was_cached_is_held_again_under_its_new_limits(
    shared_redis: pytest.MonkeyPatch, redis_client: redis.Redis
) -> None:
    owner = paid_owner()
    key = new_key(owner)
    assert chat(key.secret).status == 200  # cached without a concurrency limit of its own
    in_flight = new_hold(owner.account_id, USD // 100, key_id=key.id)
    change_key(owner, key.id, "concurrent_requests = 1")
    before, counts = money(owner.account_id), counted(redis_client, owner.account_id)
    # The hold taken for the key as cached fitted; held again as the key is now, it does not.
    refused = chat(key.secret)
    assert refused.status == 429, refused.raw
    assert refused.body["error"]["message"] == "Too many requests in flight for this key."
    assert money(owner.account_id) == before
    held = db.execute(
        "SELECT request_id FROM credit_holds WHERE account_id = %s", (owner.account_id,)
    ).fetchall()
    assert held == [(in_flight.request_id,)]
    assert counted(redis_client, owner.account_id) == counts
    assert credits.release(in_flight)
    intact(owner.account_id)


def test_a_key_changed_but_still_allowed_is_served_under_one_hold(
    shared_redis: pytest.MonkeyPatch,
) -> None:
    owner = paid_owner()
    key = new_key(owner)
    assert chat(key.secret).status == 200
    change_key(owner, key.id, "allowed_models = ARRAY['mock/*']")
    before = money(owner.account_id)
    reply = chat(key.secret)
    assert reply.status == 200, reply.raw
    settled(owner.account_id, before, reply)
    intact(owner.account_id)


def test_a_failing_hold_gives_the_rate_limit_counts_back(
    shared_redis: pytest.MonkeyPatch, redis_client: redis.Redis
) -> None:
    owner = paid_owner()
    key = new_key(owner)
    gateway_id = str(uuid.uuid4())
    # A hold under this request's id already: taking another one fails in PostgreSQL.
    taken = db.run(
        credits.reserve(
            account_id=owner.account_id,
            api_key_id=key.id,
            request_id="req_" + gateway_id.replace("-", ""),
            max_nanos=USD // 100,
            min_nanos=1,
            ttl_s=300,
            concurrency=None,
            key_concurrency=None,
        )
    )
    assert isinstance(taken, credits.Hold)
    before = money(owner.account_id)
    body = json.dumps({"model": "mock/echo", "messages": [{"role": "user", "content": "hi"}]})
    lambda_event = event("chat", "chat-completions", body=body)
    for headers in (lambda_event["headers"], lambda_event["multiValueHeaders"]):
        headers.pop("Content-Length", None)
        value = f"Bearer {key.secret}"
        headers["Authorization"] = value if headers is lambda_event["headers"] else [value]
    lambda_event["requestContext"]["requestId"] = gateway_id
    result = invoke("chat", lambda_event)
    assert result["statusCode"] == 500, result["body"]
    assert json_body(result)["error"]["code"] == "internal_error"
    assert money(owner.account_id) == before
    assert counted(redis_client, owner.account_id) == 0
    assert credits.release(taken)
    intact(owner.account_id)


def test_the_store_down_and_failing_closed_gives_the_hold_back(
    shared_redis: pytest.MonkeyPatch,
) -> None:
    owner = paid_owner()
    key = new_key(owner)
    shared_redis.setenv("REDIS_URL", DOWN)
    shared_redis.setenv("RATE_LIMIT_FAILURE", "closed")
    reset_caches()
    before = money(owner.account_id)
    refused = chat(key.secret)
    assert refused.status == 503, refused.raw
    assert refused.body["error"]["code"] == "service_unavailable"
    assert money(owner.account_id) == before
    intact(owner.account_id)


def test_the_store_down_and_failing_open_still_holds_and_settles(
    shared_redis: pytest.MonkeyPatch,
) -> None:
    owner = paid_owner()
    key = new_key(owner)
    shared_redis.setenv("REDIS_URL", DOWN)
    reset_caches()
    before = money(owner.account_id)
    reply = chat(key.secret)
    assert reply.status == 200, reply.raw
    settled(owner.account_id, before, reply)
    poor = new_owner()
    refused = chat(new_key(poor).secret)
    assert refused.status == 402, refused.raw
    intact(owner.account_id)
    intact(poor.account_id)


def test_over_upstash_the_overlapped_call_counts_and_refuses_alike(
    monkeypatch: pytest.MonkeyPatch, upstash: tuple[str, str]
) -> None:
    """The rate-limit call from the worker thread through the Upstash client (httpx)."""
    url, token = upstash
    monkeypatch.setenv("UPSTASH_REDIS_REST_URL", url)
    monkeypatch.setenv("UPSTASH_REDIS_REST_TOKEN", token)
    reset_caches()
    try:
        owner = paid_owner()
        key = new_key(owner, requests_per_minute=1)
        assert chat(key.secret).status == 200
        before = money(owner.account_id)
        refused = chat(key.secret)
        assert refused.status == 429, refused.raw
        assert money(owner.account_id) == before
        intact(owner.account_id)
    finally:
        monkeypatch.undo()
        reset_caches()


def test_a_request_cancelled_while_its_hold_runs_holds_nothing_and_counts_nothing(
    shared_redis: pytest.MonkeyPatch, redis_client: redis.Redis, database_url: str
) -> None:
    """A server shutting down cancels a request waiting on its hold: the statement is
    cancelled on the server before the request is gone, and the count given back."""
    import asyncio
    import contextlib

    import psycopg

    from tests.asgi import chat_completion_scope
    from tests.functions.events import function

    owner = paid_owner()
    key = new_key(owner)
    before = money(owner.account_id)
    body = json.dumps({"model": "mock/echo", "messages": [{"role": "user", "content": "hi"}]})
    scope = chat_completion_scope(key.secret)

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": body.encode(), "more_body": False}

    async def send(message: object) -> None:
        pass

    def waiting_on_the_lock() -> bool:
        row = db.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND datname = current_database()"
        ).fetchone()
        return bool(row and row[0])

    async def cancelled_midway() -> None:
        request = asyncio.create_task(function("chat").app(scope, receive, send))
        for _ in range(500):
            await asyncio.sleep(0.01)
            if waiting_on_the_lock():
                break
        assert waiting_on_the_lock(), "the hold never reached the account's row"
        request.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await request

    with psycopg.connect(database_url) as locker:
        # The account's row locked: the hold waits in PostgreSQL until the lock goes.
        locker.execute("SELECT 1 FROM accounts WHERE id = %s FOR UPDATE", (owner.account_id,))
        asyncio.run(cancelled_midway())
    # The lock is gone now: a hold statement still alive would take its hold.
    for _ in range(100):
        row = db.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%%reserve_credits%%'"
            " AND state = 'active' AND pid <> pg_backend_pid()"
        ).fetchone()
        if not (row and row[0]):
            break
        time.sleep(0.02)
    time.sleep(0.1)
    assert money(owner.account_id) == before
    assert counted(redis_client, owner.account_id) == 0
    intact(owner.account_id)
