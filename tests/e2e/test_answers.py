"""Answers that look like OpenAI's, whoever served them (docs/api.md, answers): the catalog
model id, OpenAI's finish reasons, the usage chunk when asked (and no usage when not),
keep-alive comments while the provider is silent, and the `models` failover list."""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

import httpx
import openai
import pytest

from gatewayz import db
from tests.conftest import reset_caches
from tests.e2e.conftest import INPUT_NANOS, MODEL, OUTPUT_NANOS, new_account
from tests.fakes.openai_upstream import Behaviour

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.e2e.conftest import Account, Upstreams

HELLO = [{"role": "user", "content": "hello there world"}]


def sse(gateway: str, account: Account, path: str, body: dict[str, Any]) -> list[bytes]:
    """The raw lines of a streamed answer (empty lines dropped)."""
    headers = {"authorization": f"Bearer {account.secret}"}
    with httpx.stream("POST", f"{gateway}{path}", json=body, headers=headers) as response:
        assert response.status_code == 200
        return [line.encode() for line in response.iter_lines() if line]


def chunks(lines: list[bytes]) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in lines if line.startswith(b"data: {")]


def recorded(account: Account) -> list[tuple[object, ...]]:
    return db.execute(
        "SELECT model, finish_reason, usage_estimated, cost_nanos FROM usage_records"
        " WHERE account_id = %s",
        (account.account_id,),
    ).fetchall()


def test_an_answer_names_the_catalog_model_and_openais_finish_reason(
    client: openai.OpenAI, account: Account, upstreams: Upstreams
) -> None:
    upstreams.primary.enqueue(Behaviour(model="@openrouter/echo-2024-01", finish_reason="end_turn"))
    answer = client.chat.completions.create(model=MODEL, messages=HELLO)  # type: ignore[arg-type]
    assert answer.model == MODEL
    assert answer.provider == "openrouter"  # type: ignore[attr-defined]
    choice = answer.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.native_finish_reason == "end_turn"  # type: ignore[attr-defined]
    assert recorded(account)[0][:2] == (MODEL, "stop")


def test_an_openai_finish_reason_has_no_native_one(
    client: openai.OpenAI, upstreams: Upstreams
) -> None:
    answer = client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=2)  # type: ignore[arg-type]
    assert answer.choices[0].finish_reason == "length"
    assert "native_finish_reason" not in answer.choices[0].model_dump()


def test_an_answer_without_the_providers_usage_says_its_usage_is_estimated(
    client: openai.OpenAI, account: Account, upstreams: Upstreams
) -> None:
    upstreams.primary.enqueue(Behaviour(usage_in_answer=False))
    before = account.balance()
    answer = client.chat.completions.create(model=MODEL, messages=HELLO)  # type: ignore[arg-type]
    assert answer.usage is not None
    assert answer.usage.estimated is True  # type: ignore[attr-defined]
    assert before - account.balance() == round(answer.usage.cost * 1e9)  # type: ignore[attr-defined]
    assert recorded(account)[0][2] is True


def test_a_stream_asking_usage_ends_with_an_estimated_one_when_the_provider_sent_none(
    client: openai.OpenAI, account: Account, upstreams: Upstreams
) -> None:
    upstreams.primary.enqueue(
        Behaviour(model="openrouter/echo:free", finish_reason="MAX_TOKENS", usage_in_stream=False)
    )
    before = account.balance()
    stream = client.chat.completions.create(
        model=MODEL,
        messages=HELLO,
        stream=True,
        stream_options={"include_usage": True},  # type: ignore[arg-type]
    )
    got = list(stream)
    assert {c.model for c in got} == {MODEL}
    assert (
        "".join(c.choices[0].delta.content or "" for c in got if c.choices) == HELLO[0]["content"]
    )
    finish = next(c.choices[0] for c in got if c.choices and c.choices[0].finish_reason)
    assert finish.finish_reason == "length"
    assert finish.native_finish_reason == "MAX_TOKENS"  # type: ignore[attr-defined]
    last = got[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.estimated is True  # type: ignore[attr-defined]
    assert last.usage.completion_tokens > 0
    cost = round(last.usage.cost * 1e9)  # type: ignore[attr-defined]
    assert cost == (
        last.usage.prompt_tokens * INPUT_NANOS + last.usage.completion_tokens * OUTPUT_NANOS
    )
    assert before - account.balance() == cost
    assert recorded(account) == [(MODEL, "length", True, cost)]


def test_a_stream_not_asking_usage_carries_no_usage_field_but_is_billed(
    gateway: str, account: Account, upstreams: Upstreams
) -> None:
    before = account.balance()
    body = {"model": MODEL, "messages": HELLO, "stream": True}
    lines = sse(gateway, account, "/chat/completions", body)
    assert lines[-1] == b"data: [DONE]"
    got = chunks(lines)
    # The provider was asked for usage (to bill it) and sent `"usage": null` on each chunk.
    assert upstreams.primary.last.json["stream_options"] == {"include_usage": True}
    assert got
    assert all("usage" not in c for c in got)
    assert {c["model"] for c in got} == {MODEL}
    assert before - account.balance() == recorded(account)[0][3] > 0


def test_legacy_completions_look_like_openais_too(
    client: openai.OpenAI, gateway: str, account: Account, upstreams: Upstreams
) -> None:
    upstreams.primary.enqueue(Behaviour(finish_reason="eos"), Behaviour(finish_reason="eos"))
    answer = client.completions.create(model=MODEL, prompt="say it back")
    assert (answer.model, answer.choices[0].finish_reason) == (MODEL, "stop")
    assert answer.choices[0].native_finish_reason == "eos"  # type: ignore[attr-defined]
    got = list(
        client.completions.create(
            model=MODEL,
            prompt="say it back",
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert {c.model for c in got} == {MODEL}
    assert "".join(c.choices[0].text for c in got if c.choices) == "say it back"
    ends = [c.choices[0] for c in got if c.choices and c.choices[0].finish_reason]
    assert [(e.finish_reason, e.native_finish_reason) for e in ends] == [("stop", "eos")]  # type: ignore[attr-defined]
    assert got[-1].choices == []
    assert got[-1].usage is not None


def test_a_fallback_model_answers_under_its_own_catalog_id(
    client: openai.OpenAI, upstreams: Upstreams
) -> None:
    upstreams.primary.enqueue(
        Behaviour(status=500), Behaviour(model="@openai/gpt-4o-mini-2024-07-18")
    )
    upstreams.secondary.enqueue(Behaviour(status=500))
    got = list(
        client.chat.completions.create(
            model=MODEL,
            messages=HELLO,  # type: ignore[arg-type]
            stream=True,
            extra_body={"models": ["openai/gpt-4o-mini"]},
        )
    )
    assert {c.model for c in got} == {"openai/gpt-4o-mini"}


def test_the_models_list_serves_when_model_is_unknown_or_not_allowed(
    gateway: str, client: openai.OpenAI, upstreams: Upstreams
) -> None:
    answer = client.chat.completions.create(
        model="nobody/unknown",
        messages=HELLO,  # type: ignore[arg-type]
        extra_body={"models": ["also/unknown", MODEL]},
    )
    assert answer.model == MODEL
    narrow = new_account(allowed_models=["test/*"])
    limited = openai.OpenAI(base_url=gateway, api_key=narrow.secret, max_retries=0)
    answer = limited.chat.completions.create(
        model="openai/gpt-4o-mini",
        messages=HELLO,  # type: ignore[arg-type]
        extra_body={"models": [MODEL]},
    )
    assert answer.model == MODEL
    with pytest.raises(openai.PermissionDeniedError):  # none it may use: about `model`
        limited.chat.completions.create(
            model="openai/gpt-4o-mini",
            messages=HELLO,  # type: ignore[arg-type]
            extra_body={"models": ["openai/gpt-4o"]},
        )
    with pytest.raises(openai.NotFoundError) as caught:  # none exists: about `model`
        client.chat.completions.create(
            model="nobody/unknown",
            messages=HELLO,  # type: ignore[arg-type]
            extra_body={"models": ["also/unknown"]},
        )
    assert "nobody/unknown" in caught.value.message


@pytest.fixture
def quick_keepalive(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("STREAM_KEEPALIVE_S", "0.05")
    reset_caches()
    yield
    monkeypatch.delenv("STREAM_KEEPALIVE_S")
    reset_caches()


def heard(gateway: str, account: Account, speak: threading.Event) -> list[str]:
    """A stream's lines; the provider speaks only once the client heard a keep-alive."""
    body = {"model": MODEL, "messages": HELLO, "stream": True}
    headers = {"authorization": f"Bearer {account.secret}"}
    lines: list[str] = []
    with httpx.stream("POST", f"{gateway}/chat/completions", json=body, headers=headers) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line == ": keep-alive":
                speak.set()
            if line:
                lines.append(line)
    return lines


@pytest.mark.usefixtures("quick_keepalive")
def test_a_silent_provider_gets_keep_alive_comments_until_its_first_token(
    gateway: str, account: Account, upstreams: Upstreams
) -> None:
    speak = threading.Event()
    upstreams.primary.enqueue(Behaviour(first_chunk=speak))
    lines = heard(gateway, account, speak)
    first_data = next(i for i, line in enumerate(lines) if line.startswith("data:"))
    assert first_data > 0
    assert set(lines[:first_data]) == {": keep-alive"}
    assert ": keep-alive" not in lines[first_data:]  # only before the first token
    text = "".join(
        c["choices"][0]["delta"].get("content") or ""
        for c in chunks([line.encode() for line in lines])
        if c["choices"]
    )
    assert text == HELLO[0]["content"]
    assert lines[-1] == "data: [DONE]"


@pytest.mark.usefixtures("quick_keepalive")
def test_a_provider_failing_after_keep_alives_ends_the_stream_in_band_and_charges_nothing(
    gateway: str, account: Account, upstreams: Upstreams
) -> None:
    speak = threading.Event()
    upstreams.primary.enqueue(Behaviour(first_chunk=speak, cut_after=0))
    before = account.balance()
    lines = heard(gateway, account, speak)
    assert lines[0] == ": keep-alive"
    # The client has its 200 already: no failover, one in-band error, then [DONE].
    assert upstreams.secondary.requests == []
    (error,) = [c for c in chunks([line.encode() for line in lines]) if "error" in c]
    assert error["model"] == MODEL
    assert error["choices"][0]["finish_reason"] == "error"
    assert lines[-1] == "data: [DONE]"
    assert account.balance() == before
