"""Idempotent retries through the `openai` SDK: an answer lost after the gateway charged is
replayed to the SDK's retry with the same `Idempotency-Key` and charged once; a request
still running makes its twin wait (409 the SDK retries); the key with another body is a
409 it does not; a first attempt that failed keeps nothing; without the header nothing
changes; and each account's keys are its own."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import httpx
import openai
import pytest

from gatewayz import db, jobs
from tests.e2e.conftest import MODEL, ledger_usage, new_account
from tests.fakes.openai_upstream import Behaviour

if TYPE_CHECKING:
    from tests.e2e.conftest import Account, Upstreams

HELLO = [{"role": "user", "content": "one two three four"}]


class LosesFirstAnswer(httpx.BaseTransport):
    """Reads the first response to its end, then drops the connection: the gateway
    answered (and charged), but the client never saw it."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.sent: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        response = self.inner.handle_request(request)
        if len(self.sent) > 1:
            return response
        response.read()
        response.close()
        raise httpx.ReadError("connection reset after the answer", request=request)


def sdk(gateway: str, account: Account, transport: httpx.BaseTransport | None = None) -> Any:
    return openai.OpenAI(
        base_url=gateway,
        api_key=account.secret,
        max_retries=2,
        http_client=httpx.Client(transport=transport) if transport else None,
    )


def usage_count(account: Account) -> int:
    row = db.execute(
        "SELECT count(*) FROM usage_records WHERE account_id = %s", (account.account_id,)
    )
    return int(row.fetchone()[0])  # type: ignore[index]


def records(account: Account) -> list[tuple[object, ...]]:
    return db.execute(
        "SELECT key, status FROM idempotency_records WHERE account_id = %s ORDER BY key",
        (account.account_id,),
    ).fetchall()


def key_header(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


def test_a_lost_answer_is_replayed_to_the_retry_and_charged_once(
    gateway: str, account: Account, upstreams: Upstreams
) -> None:
    lossy = LosesFirstAnswer()
    before = account.balance()
    raw = sdk(gateway, account, lossy).chat.completions.with_raw_response.create(
        model=MODEL, messages=HELLO, extra_headers=key_header("lost-1")
    )
    answer = raw.parse()
    assert answer.choices[0].message.content == HELLO[0]["content"]
    assert raw.headers["idempotent-replayed"] == "true"
    assert len(lossy.sent) == 2  # the SDK retried once, with the same key
    assert {r.headers["idempotency-key"] for r in lossy.sent} == {"lost-1"}
    assert len(upstreams.primary.requests) + len(upstreams.secondary.requests) == 1
    assert usage_count(account) == 1
    cost = before - account.balance()
    assert cost > 0
    assert round(answer.usage.cost * 1e9) == cost  # type: ignore[union-attr]
    assert records(account) == [("lost-1", "completed")]


def test_a_lost_stream_is_replayed_event_by_event_and_charged_once(
    gateway: str, account: Account, upstreams: Upstreams
) -> None:
    lossy = LosesFirstAnswer()
    before = account.balance()
    chunks = list(
        sdk(gateway, account, lossy).chat.completions.create(
            model=MODEL,
            messages=HELLO,
            stream=True,
            stream_options={"include_usage": True},
            extra_headers=key_header("lost-stream"),
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == HELLO[0]["content"]
    assert len(lossy.sent) == 2
    assert len(upstreams.primary.requests) == 1
    assert usage_count(account) == 1
    assert round(chunks[-1].usage.cost * 1e9) == before - account.balance()  # type: ignore[union-attr]


def test_a_retry_while_the_first_runs_waits_then_gets_the_first_answer(
    gateway: str, account: Account, upstreams: Upstreams
) -> None:
    at_provider, release = threading.Event(), threading.Event()
    upstreams.primary.enqueue(Behaviour(received=at_provider, release=release))
    once = openai.OpenAI(base_url=gateway, api_key=account.secret, max_retries=0)
    first: list[Any] = []
    slow = threading.Thread(
        target=lambda: first.append(
            once.chat.completions.create(
                model=MODEL, messages=HELLO, extra_headers=key_header("twins")
            )
        )
    )
    slow.start()
    try:
        assert at_provider.wait(30)
        with pytest.raises(openai.ConflictError) as caught:
            once.chat.completions.create(
                model=MODEL, messages=HELLO, extra_headers=key_header("twins")
            )
    finally:
        release.set()
        slow.join()
    assert caught.value.code == "idempotency_in_progress"
    assert caught.value.response.headers["x-should-retry"] == "true"
    assert caught.value.response.headers["retry-after"] == "1"
    again = once.chat.completions.with_raw_response.create(
        model=MODEL, messages=HELLO, extra_headers=key_header("twins")
    )
    assert again.headers["idempotent-replayed"] == "true"
    assert again.parse().id == first[0].id
    assert len(upstreams.primary.requests) == 1  # one upstream call for three requests
    assert usage_count(account) == 1


def test_the_sdk_retries_a_twin_in_progress_until_the_first_answer_is_there(
    gateway: str, account: Account, upstreams: Upstreams
) -> None:
    at_provider, release = threading.Event(), threading.Event()
    upstreams.primary.enqueue(Behaviour(received=at_provider, release=release))
    first: list[Any] = []
    slow = threading.Thread(
        target=lambda: first.append(
            sdk(gateway, account).chat.completions.create(
                model=MODEL, messages=HELLO, extra_headers=key_header("race")
            )
        )
    )
    slow.start()
    assert at_provider.wait(30)

    def on_answer(response: httpx.Response) -> None:
        if response.status_code == 409:  # the twin was told to wait: let the first finish
            release.set()

    statuses: list[int] = []
    twin = openai.OpenAI(
        base_url=gateway,
        api_key=account.secret,
        max_retries=2,
        http_client=httpx.Client(
            event_hooks={"response": [on_answer, lambda r: statuses.append(r.status_code)]}
        ),
    )
    try:
        second = twin.chat.completions.create(
            model=MODEL, messages=HELLO, extra_headers=key_header("race")
        )
    finally:
        release.set()
        slow.join()
    assert statuses[0] == 409
    assert statuses[-1] == 200
    assert second.id == first[0].id
    assert len(upstreams.primary.requests) == 1
    assert usage_count(account) == 1


def test_the_same_key_with_another_body_is_a_conflict_the_sdk_does_not_retry(
    gateway: str, account: Account, upstreams: Upstreams
) -> None:
    sent: list[httpx.Request] = []
    client = openai.OpenAI(
        base_url=gateway,
        api_key=account.secret,
        max_retries=2,
        http_client=httpx.Client(event_hooks={"request": [sent.append]}),
    )
    client.chat.completions.create(model=MODEL, messages=HELLO, extra_headers=key_header("k"))
    other = [{"role": "user", "content": "something else"}]
    with pytest.raises(openai.ConflictError) as caught:
        client.chat.completions.create(model=MODEL, messages=other, extra_headers=key_header("k"))
    assert caught.value.code == "idempotency_key_reused"
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert len(sent) == 2  # not retried
    # The same body on another route is another request too.
    with pytest.raises(openai.ConflictError):
        client.completions.create(model=MODEL, prompt="hi", extra_headers=key_header("k"))
    assert len(upstreams.primary.requests) == 1
    assert usage_count(account) == 1


def test_key_order_and_spacing_do_not_make_another_request(
    gateway: str, account: Account, upstreams: Upstreams
) -> None:
    headers = {"authorization": f"Bearer {account.secret}", "content-type": "application/json"}
    first = httpx.post(
        f"{gateway}/chat/completions",
        content=b'{"model": "test/echo", "messages": [{"role": "user", "content": "hi"}]}',
        headers={**headers, **key_header("spacing")},
    )
    second = httpx.post(
        f"{gateway}/chat/completions",
        content=b'{"messages":[{"content":"hi","role":"user"}],"model":"test/echo"}',
        headers={**headers, **key_header("spacing")},
    )
    assert first.status_code == second.status_code == 200
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert second.json() == first.json()
    assert second.headers["content-type"] == first.headers["content-type"]
    assert second.headers["x-request-id"] != first.headers["x-request-id"]
    assert len(upstreams.primary.requests) == 1


def test_a_failed_first_attempt_keeps_nothing_and_its_retry_runs(
    gateway: str, account: Account, upstreams: Upstreams
) -> None:
    client = openai.OpenAI(base_url=gateway, api_key=account.secret, max_retries=0)
    upstreams.primary.enqueue(Behaviour(status=400))
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL, messages=HELLO, extra_headers=key_header("f"))
    assert records(account) == []
    answer = client.chat.completions.create(
        model=MODEL, messages=HELLO, extra_headers=key_header("f")
    )
    assert answer.choices[0].message.content == HELLO[0]["content"]
    assert len(upstreams.primary.requests) == 2
    assert len(ledger_usage(account.account_id)) == 1  # the failure cost nothing


def test_without_the_header_every_request_runs_and_nothing_is_kept(
    gateway: str, account: Account, upstreams: Upstreams
) -> None:
    client = openai.OpenAI(base_url=gateway, api_key=account.secret, max_retries=0)
    for _ in range(2):
        raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=HELLO)
        assert "idempotent-replayed" not in raw.headers
    assert len(upstreams.primary.requests) == 2
    assert usage_count(account) == 2
    assert records(account) == []


def test_each_account_has_its_own_keys(
    gateway: str, account: Account, upstreams: Upstreams
) -> None:
    other = new_account()
    for owner in (account, other):
        answer = openai.OpenAI(
            base_url=gateway, api_key=owner.secret, max_retries=0
        ).chat.completions.with_raw_response.create(
            model=MODEL, messages=HELLO, extra_headers=key_header("shared")
        )
        assert "idempotent-replayed" not in answer.headers
        assert usage_count(owner) == 1
    assert len(upstreams.primary.requests) == 2


@pytest.mark.parametrize("key", ["", "a" * 256, "has space", "caf\u00e9".encode()])
def test_a_malformed_key_is_a_400(gateway: str, account: Account, key: str | bytes) -> None:
    reply = httpx.post(
        f"{gateway}/chat/completions",
        json={"model": MODEL, "messages": HELLO},
        headers={"authorization": f"Bearer {account.secret}", "idempotency-key": key},
    )
    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == "Idempotency-Key"
    assert reply.headers["x-should-retry"] == "false"
    assert usage_count(account) == 0


def test_a_crashed_first_request_does_not_block_the_key(
    gateway: str, account: Account, upstreams: Upstreams
) -> None:
    client = openai.OpenAI(base_url=gateway, api_key=account.secret, max_retries=0)
    client.chat.completions.create(model=MODEL, messages=HELLO, extra_headers=key_header("c"))
    # As if that request had died mid-way: still running, its lease over.
    db.execute(
        """UPDATE idempotency_records SET status = 'running', lease_until = now() - interval '1 s'
            WHERE account_id = %s""",
        (account.account_id,),
    )
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=HELLO, extra_headers=key_header("c")
    )
    assert "idempotent-replayed" not in raw.headers
    assert len(upstreams.primary.requests) == 2
    assert records(account) == [("c", "completed")]


def test_the_hold_sweeper_deletes_expired_records(
    gateway: str, account: Account, upstreams: Upstreams
) -> None:
    client = openai.OpenAI(base_url=gateway, api_key=account.secret, max_retries=0)
    for key in ("old", "new"):
        client.chat.completions.create(model=MODEL, messages=HELLO, extra_headers=key_header(key))
    db.execute(
        """UPDATE idempotency_records SET expires_at = now() - interval '1 s'
            WHERE account_id = %s AND key = 'old'""",
        (account.account_id,),
    )
    report = jobs.run({"job": "hold_sweeper"})
    assert report["idempotency_records_deleted"] >= 1
    assert records(account) == [("new", "completed")]
