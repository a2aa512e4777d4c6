"""Chat history injection through the official `openai` SDK against the running gateway
(fake providers): a request naming a session (`session_id` in the body or the
`X-Session-Id` header) gets the session's history within its budget, the system prompt
kept; the injected tokens are held and billed like any prompt tokens; the new turn is
saved (streamed answers too); another account's session is a 404 before any charge."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import httpx
import openai
import pytest

from gatewayz import db
from gatewayz.history import records
from tests.e2e.conftest import INPUT_NANOS, MODEL, OUTPUT_NANOS, ledger_usage, new_account
from tests.fakes.openai_upstream import Behaviour

if TYPE_CHECKING:
    from tests.e2e.conftest import Account, Upstreams

SYSTEM = {"role": "system", "content": "You answer in one word."}


def api(gateway: str, account: Account) -> httpx.Client:
    return httpx.Client(
        base_url=gateway, headers={"authorization": f"Bearer {account.secret}"}, timeout=10
    )


def session_with(gateway: str, account: Account, *messages: dict[str, Any]) -> str:
    with api(gateway, account) as http:
        sid = str(http.post("/chat/sessions", json={"title": "t"}).json()["data"]["id"])
        if messages:
            assert (
                http.post(
                    f"/chat/sessions/{sid}/messages", json={"messages": list(messages)}
                ).status_code
                == 201
            )
    return sid


def stored(gateway: str, account: Account, sid: str) -> list[dict[str, Any]]:
    with api(gateway, account) as http:
        reply = http.get(f"/chat/sessions/{sid}/messages", params={"limit": "100"})
    assert reply.status_code == 200
    return list(reply.json()["data"])


def fake_prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """The fake provider's count (tests/fakes/openai_upstream.py): words + 4 a message."""
    return sum(len(str(m.get("content") or "").split()) + 4 for m in messages)


def turn(i: int) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": f"question number {i} " + "word " * 20},
        {"role": "assistant", "content": f"answer number {i} " + "word " * 20},
    ]


def test_history_is_injected_billed_and_the_turn_saved(
    gateway: str, client: openai.OpenAI, account: Account, upstreams: Upstreams
) -> None:
    history = [SYSTEM, *turn(1), *turn(2)]
    sid = session_with(gateway, account, *history)
    before = account.balance()
    answer = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "and now"}],
        extra_body={"session_id": sid},
    )
    sent = upstreams.primary.last.json
    assert sent["messages"] == [*history, {"role": "user", "content": "and now"}]
    assert "session_id" not in sent
    assert "history" not in sent
    usage = answer.usage
    assert usage is not None
    assert usage.prompt_tokens == fake_prompt_tokens(sent["messages"])
    expected = usage.prompt_tokens * INPUT_NANOS + usage.completion_tokens * OUTPUT_NANOS
    assert [amount for amount, _ in ledger_usage(account.account_id)] == [-expected]
    assert before - account.balance() == expected
    saved = stored(gateway, account, sid)
    assert [(m["role"], m["content"]) for m in saved[-2:]] == [
        ("user", "and now"),
        ("assistant", "and now"),
    ]
    assert saved[-2]["parent_id"] == saved[-3]["id"]
    assert saved[-1]["parent_id"] == saved[-2]["id"]
    assert saved[-1]["model"] == MODEL


def test_the_budget_keeps_the_system_prompt_and_the_newest_turns(
    gateway: str, client: openai.OpenAI, account: Account, upstreams: Upstreams
) -> None:
    turns = [m for i in range(1, 7) for m in turn(i)]
    sid = session_with(gateway, account, SYSTEM, *turns)
    budget = 120
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=[{"role": "user", "content": "next"}],
        extra_body={"session_id": sid, "history": {"max_tokens": budget}},
    )
    sent = upstreams.primary.last.json["messages"]
    injected = sent[:-1]
    assert injected[0] == SYSTEM
    assert sum(records.tokens_of(m) for m in injected) <= budget
    kept = injected[1:]
    assert kept  # the budget holds some turns
    assert kept == turns[-len(kept) :]  # the newest ones, in order
    # One more turn would not have fit.
    assert sum(records.tokens_of(m) for m in [SYSTEM, *turns[-len(kept) - 1 :]]) > budget
    assert int(raw.headers["x-history-messages"]) == len(injected)
    assert int(raw.headers["x-history-tokens"]) <= budget

    client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "none"}],
        extra_body={"session_id": sid, "history": {"max_tokens": 0}},
    )
    # Zero: only the system prompt, which is always kept.
    assert upstreams.primary.last.json["messages"] == [SYSTEM, {"role": "user", "content": "none"}]


def test_the_models_context_caps_the_budget(
    gateway: str, client: openai.OpenAI, account: Account, upstreams: Upstreams
) -> None:
    # test/echo: 8,192 tokens of context. Forty turns of ~3,000 tokens each would not fit.
    big = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": "lorem ipsum " * 1000}
        for i in range(40)
    ]
    sid = session_with(gateway, account, *big)
    client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "short"}],
        max_tokens=100,
        extra_body={"session_id": sid, "history": {"max_tokens": 1_000_000}},
    )
    injected = upstreams.primary.last.json["messages"][:-1]
    assert 0 < len(injected) < len(big)
    assert sum(records.tokens_of(m) for m in injected) <= 8192 - 100


def test_a_streamed_answer_is_saved_with_the_header(
    gateway: str, client: openai.OpenAI, account: Account, upstreams: Upstreams
) -> None:
    sid = session_with(gateway, account, SYSTEM)
    before = account.balance()
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "streamed words come back"}],
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"X-Session-Id": sid},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "streamed words come back"
    assert upstreams.primary.last.json["messages"][0] == SYSTEM
    saved = stored(gateway, account, sid)
    # The system prompt the session has is not saved again; the user turn and answer are.
    assert [(m["role"], m["content"]) for m in saved] == [
        ("system", SYSTEM["content"]),
        ("user", "streamed words come back"),
        ("assistant", "streamed words come back"),
    ]
    usage = chunks[-1].usage
    assert usage is not None
    assert before - account.balance() == (
        usage.prompt_tokens * INPUT_NANOS + usage.completion_tokens * OUTPUT_NANOS
    )


def test_another_accounts_session_is_a_404_before_any_charge(
    gateway: str, client: openai.OpenAI, account: Account, upstreams: Upstreams
) -> None:
    other = new_account()
    theirs = session_with(gateway, other, {"role": "user", "content": "their secret"})
    before = account.balance()
    for extra in (
        {"extra_body": {"session_id": theirs}},
        {"extra_headers": {"X-Session-Id": theirs}},
    ):
        with pytest.raises(openai.NotFoundError) as caught:
            client.chat.completions.create(
                model=MODEL,
                messages=[{"role": "user", "content": "hi"}],
                **extra,  # type: ignore[arg-type]
            )
        assert caught.value.body["param"] == "session_id"  # type: ignore[index]
        assert caught.value.body["code"] == "session_not_found"  # type: ignore[index]
    assert upstreams.primary.requests == []
    assert account.balance() == before
    assert ledger_usage(account.account_id) == []
    held = db.execute(
        "SELECT count(*) FROM credit_holds WHERE account_id = %s", (account.account_id,)
    ).fetchone()
    assert held == (0,)
    assert [m["content"] for m in stored(gateway, other, theirs)] == ["their secret"]


def test_bad_session_fields_are_400s(client: openai.OpenAI, gateway: str, account: Account) -> None:
    sid = session_with(gateway, account)
    cases = [
        ({"session_id": "not-a-uuid"}, "session_id"),
        ({"session_id": 42}, "session_id"),
        ({"session_id": sid, "history": {"max_tokens": -1}}, "history.max_tokens"),
        ({"session_id": sid, "history": {"max_tokens": "5"}}, "history.max_tokens"),
        ({"session_id": sid, "history": {"depth": 5}}, "history"),
        ({"history": {"max_tokens": 5}}, "session_id"),
    ]
    for body, param in cases:
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "hi"}], extra_body=body
            )
        assert caught.value.body["param"] == param, body  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model=MODEL, prompt="hi", extra_body={"session_id": sid})
    assert caught.value.body["param"] == "session_id"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=MODEL, input="hi", extra_headers={"X-Session-Id": sid})
    assert caught.value.body["param"] == "session_id"  # type: ignore[index]


def test_a_deleted_session_is_not_found(
    gateway: str, client: openai.OpenAI, account: Account
) -> None:
    sid = session_with(gateway, account, SYSTEM)
    with api(gateway, account) as http:
        assert http.delete(f"/chat/sessions/{sid}").status_code == 200
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"session_id": sid},
        )


def test_streamed_tool_calls_are_saved_and_replayed(
    gateway: str, client: openai.OpenAI, account: Account, upstreams: Upstreams
) -> None:
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    upstreams.primary.enqueue(Behaviour(tool_calls=[call]))
    sid = session_with(gateway, account)
    list(
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "weather in Paris"}],
            stream=True,
            extra_body={"session_id": sid},
        )
    )
    asked = stored(gateway, account, sid)[-1]
    assert asked["role"] == "assistant"
    assert asked["tool_calls"] == [call]
    result = {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
    client.chat.completions.create(model=MODEL, messages=[result], extra_body={"session_id": sid})
    sent = upstreams.primary.last.json["messages"]
    assert sent == [
        {"role": "user", "content": "weather in Paris"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        result,
    ]


def test_a_session_deleted_mid_request_still_answers_and_bills(
    gateway: str, client: openai.OpenAI, account: Account, upstreams: Upstreams
) -> None:
    sid = session_with(gateway, account, SYSTEM)
    at_provider, release = threading.Event(), threading.Event()
    upstreams.primary.enqueue(Behaviour(received=at_provider, release=release))
    answers: list[Any] = []
    slow = threading.Thread(
        target=lambda: answers.append(
            client.chat.completions.create(
                model=MODEL,
                messages=[{"role": "user", "content": "still here"}],
                extra_body={"session_id": sid},
            )
        )
    )
    before = account.balance()
    slow.start()
    try:
        assert at_provider.wait(30)
        with api(gateway, account) as http:
            assert http.delete(f"/chat/sessions/{sid}").status_code == 200
    finally:
        release.set()
        slow.join()
    (answer,) = answers
    assert answer.choices[0].message.content == "still here"
    usage = answer.usage
    assert usage is not None
    charged = usage.prompt_tokens * INPUT_NANOS + usage.completion_tokens * OUTPUT_NANOS
    assert before - account.balance() == charged
    # The save found no live session: nothing was added to it.
    count = db.execute("SELECT count(*) FROM chat_messages WHERE session_id = %s", (sid,))
    assert count.fetchone() == (1,)
