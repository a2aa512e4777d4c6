"""When providers fail: fail over before the first byte, an
in-band error after it, and the money right either way."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import httpx
import openai
import pytest

from gatewayz import db
from tests.e2e.conftest import INPUT_NANOS, MODEL, OUTPUT_NANOS
from tests.fakes.openai_upstream import SECRET, Behaviour

if TYPE_CHECKING:
    from tests.e2e.conftest import Account, Upstreams

HELLO = [{"role": "user", "content": "one two three four five six seven eight"}]


def records(account: Account) -> list[tuple[object, ...]]:
    return db.execute(
        """SELECT provider, status, cost_nanos, error_code, input_tokens, output_tokens,
                  usage_estimated
             FROM usage_records WHERE account_id = %s ORDER BY created_at""",
        (account.account_id,),
    ).fetchall()


def no_hold_left(account: Account) -> bool:
    row = db.execute(
        "SELECT count(*) FROM credit_holds WHERE account_id = %s", (account.account_id,)
    )
    return row.fetchone() == (0,)


@pytest.mark.parametrize("status", [500, 502, 503, 429, 408])
def test_a_failing_provider_falls_back_to_the_next(
    client: openai.OpenAI, account: Account, upstreams: Upstreams, status: int
) -> None:
    upstreams.primary.enqueue(Behaviour(status=status))
    answer = client.chat.completions.create(model=MODEL, messages=HELLO)  # type: ignore[arg-type]
    assert answer.choices[0].message.content == HELLO[0]["content"]
    assert answer.provider == "featherless"  # type: ignore[attr-defined]
    assert len(upstreams.primary.requests) == 1
    assert len(upstreams.secondary.requests) == 1
    assert [r[0] for r in records(account)] == ["featherless"]


def test_a_stream_falls_back_too_when_the_first_provider_fails_before_its_first_byte(
    client: openai.OpenAI, account: Account, upstreams: Upstreams
) -> None:
    upstreams.primary.enqueue(Behaviour(cut_after=0))
    chunks = list(client.chat.completions.create(model=MODEL, messages=HELLO, stream=True))  # type: ignore[arg-type]
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        == HELLO[0]["content"]
    )
    assert [r[0] for r in records(account)] == ["featherless"]


@pytest.mark.parametrize("stream", [False, True])
def test_a_dropped_connection_falls_back_to_the_next(
    client: openai.OpenAI, account: Account, upstreams: Upstreams, stream: bool
) -> None:
    # The provider closes the socket before any status line: a connection error.
    upstreams.primary.enqueue(Behaviour(drop_connection=True))
    before = account.balance()
    if stream:
        chunks = list(client.chat.completions.create(model=MODEL, messages=HELLO, stream=True))  # type: ignore[arg-type]
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        answer = client.chat.completions.create(model=MODEL, messages=HELLO)  # type: ignore[arg-type]
        text = answer.choices[0].message.content or ""
        assert answer.provider == "featherless"  # type: ignore[attr-defined]
    assert text == HELLO[0]["content"]
    assert (len(upstreams.primary.requests), len(upstreams.secondary.requests)) == (1, 1)
    ((provider, status, cost, error, prompt, output, _),) = records(account)
    assert (provider, status, error) == ("featherless", 200, None)
    assert cost == prompt * INPUT_NANOS + output * OUTPUT_NANOS
    assert before - account.balance() == cost
    assert no_hold_left(account)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("status", [401, 403, 404])
def test_a_provider_refusing_us_is_a_502_without_fallback(
    gateway: str, account: Account, upstreams: Upstreams, status: int, stream: bool
) -> None:
    # Our key or the model id is wrong at that provider: another try cannot fix it.
    upstreams.primary.enqueue(Behaviour(status=status))
    before = account.balance()
    response = httpx.post(
        f"{gateway}/chat/completions",
        json={"model": MODEL, "messages": HELLO, "stream": stream},
        headers={"authorization": f"Bearer {account.secret}"},
    )
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_error"
    assert SECRET not in response.text
    assert len(upstreams.primary.requests) == 1
    assert upstreams.secondary.requests == []
    assert account.balance() == before
    assert no_hold_left(account)
    assert records(account) == [("openrouter", 502, 0, "upstream_error", 0, 0, False)]


def test_a_client_error_is_final_and_passed_on_without_fallback(
    client: openai.OpenAI, account: Account, upstreams: Upstreams
) -> None:
    upstreams.primary.enqueue(
        Behaviour(
            status=400,
            error_body={
                "error": {"message": "tools[0] is malformed", "type": "invalid_request_error"}
            },
        )
    )
    before = account.balance()
    with pytest.raises(openai.BadRequestError, match="tools\\[0\\] is malformed"):
        client.chat.completions.create(model=MODEL, messages=HELLO)  # type: ignore[arg-type]
    assert upstreams.secondary.requests == []
    assert account.balance() == before
    assert records(account) == [("openrouter", 400, 0, "invalid_request_error", 0, 0, False)]


def test_every_provider_down_is_a_502_that_leaks_nothing_and_charges_nothing(
    gateway: str, account: Account, upstreams: Upstreams
) -> None:
    upstreams.primary.enqueue(Behaviour(status=500))
    upstreams.secondary.enqueue(Behaviour(status=503))
    before = account.balance()
    response = httpx.post(
        f"{gateway}/chat/completions",
        json={"model": MODEL, "messages": HELLO},
        headers={"authorization": f"Bearer {account.secret}"},
    )
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_error"
    assert SECRET not in response.text
    assert account.balance() == before
    assert no_hold_left(account)
    assert records(account)[0][1:4] == (502, 0, "upstream_error")


def test_a_timeout_is_a_504_and_charges_nothing(
    client: openai.OpenAI, account: Account, upstreams: Upstreams
) -> None:
    # UPSTREAM_TIMEOUT_S is 2 in these tests.
    upstreams.primary.enqueue(Behaviour(delay_s=3))
    upstreams.secondary.enqueue(Behaviour(delay_s=3))
    before = account.balance()
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model=MODEL, messages=HELLO)  # type: ignore[arg-type]
    assert caught.value.status_code == 504
    assert caught.value.code == "upstream_timeout"
    assert account.balance() == before
    assert no_hold_left(account)
    assert records(account)[0][1:4] == (504, 0, "upstream_timeout")


def test_a_stream_cut_midway_ends_in_band_and_charges_only_the_reported_usage(
    client: openai.OpenAI, account: Account, upstreams: Upstreams
) -> None:
    upstreams.primary.enqueue(Behaviour(cut_after=3, usage_every_chunk=True))
    before = account.balance()
    received: list[str] = []
    with pytest.raises(openai.APIError, match="broke off"):  # noqa: PT012 - it raises mid-iteration
        for chunk in client.chat.completions.create(model=MODEL, messages=HELLO, stream=True):  # type: ignore[arg-type]
            if chunk.choices:
                received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "one two three"
    # No fallback once the client has bytes.
    assert upstreams.secondary.requests == []
    (provider, _, cost, error, prompt, output, estimated) = records(account)[0]
    assert (provider, error, output, estimated) == ("openrouter", "upstream_error", 3, False)
    assert cost == prompt * INPUT_NANOS + output * OUTPUT_NANOS
    assert before - account.balance() == cost
    assert no_hold_left(account)


def test_an_error_the_provider_sends_mid_stream_is_relayed_as_ours(
    client: openai.OpenAI, account: Account, upstreams: Upstreams
) -> None:
    # Spaced out, so the client has content before the error arrives (before it, the
    # gateway would rightly fail over instead).
    late_error = {"message": SECRET, "code": 500}
    upstreams.primary.enqueue(
        Behaviour(mid_stream_error=late_error, usage_every_chunk=True, chunk_delay_s=0.05)
    )
    with pytest.raises(openai.APIError) as caught:
        list(client.chat.completions.create(model=MODEL, messages=HELLO, stream=True))  # type: ignore[arg-type]
    assert SECRET not in str(caught.value)
    assert caught.value.code == "upstream_error"  # type: ignore[attr-defined]
    assert records(account)[0][3] == "upstream_error"


def test_a_client_that_disconnects_is_still_charged_what_the_provider_reports(
    gateway: str, account: Account, upstreams: Upstreams
) -> None:
    words = " ".join(f"w{i}" for i in range(30))
    upstreams.primary.enqueue(Behaviour(content=words, chunk_delay_s=0.05))
    before = account.balance()
    body = {"model": MODEL, "messages": HELLO, "stream": True}
    with httpx.stream(
        "POST",
        f"{gateway}/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {account.secret}"},
    ) as response:
        lines = response.iter_lines()
        seen = [next(lines) for _ in range(6)]  # a few events, then hang up
    assert any("w0" in line for line in seen)
    deadline = time.monotonic() + 10
    while not records(account) and time.monotonic() < deadline:
        time.sleep(0.05)
    (_, _, cost, _, prompt, output, estimated) = records(account)[0]
    # The gateway kept reading to the provider's final usage: all 30 words, not the 3 seen.
    assert (output, estimated) == (30, False)
    assert cost == prompt * INPUT_NANOS + output * OUTPUT_NANOS
    assert before - account.balance() == cost
    assert no_hold_left(account)


def test_the_models_list_is_the_next_fallback(
    client: openai.OpenAI, account: Account, upstreams: Upstreams
) -> None:
    # test/echo fails on both its providers; the next model in `models` answers.
    upstreams.primary.enqueue(Behaviour(status=500), Behaviour())
    upstreams.secondary.enqueue(Behaviour(status=500))
    answer = client.chat.completions.create(
        model=MODEL,
        messages=HELLO,
        extra_body={"models": ["openai/gpt-4o-mini"]},  # type: ignore[arg-type]
    )
    assert answer.provider == "openrouter"  # type: ignore[attr-defined]
    assert upstreams.primary.last.json["model"] == "openai/gpt-4o-mini"
    assert "models" not in upstreams.primary.last.json
    (record,) = db.execute(
        "SELECT model, cost_nanos FROM usage_records WHERE account_id = %s", (account.account_id,)
    ).fetchall()
    assert record[0] == "openai/gpt-4o-mini"
    usage = answer.usage
    assert usage is not None
    # Billed at gpt-4o-mini's price, not test/echo's: $0.15 and $0.60 per million.
    assert record[1] == usage.prompt_tokens * 150 + usage.completion_tokens * 600


def test_output_a_provider_never_counted_is_billed_as_an_estimate_not_free(
    client: openai.OpenAI, account: Account, upstreams: Upstreams
) -> None:
    upstreams.primary.enqueue(Behaviour(usage_in_stream=False))
    before = account.balance()
    chunks = list(client.chat.completions.create(model=MODEL, messages=HELLO, stream=True))  # type: ignore[arg-type]
    assert chunks[-1].choices[0].finish_reason == "stop"
    (_, status, cost, error, prompt, output, estimated) = records(account)[0]
    assert (status, error, estimated) == (200, None, True)
    # About four bytes a token of what was delivered, rounded up: 39 bytes in 8 pieces.
    assert len(HELLO[0]["content"]) == 39
    assert output == 10
    assert cost == prompt * INPUT_NANOS + output * OUTPUT_NANOS > 0
    assert before - account.balance() == cost
