"""The hold bounds what the provider can produce, end to end with
accounts funded with exactly the hold: every request goes upstream with an integer
output cap the hold covers, prompts carry a margin, outputs multiply, images count at the
model's rule, fees are held and charged. Afterwards the balance is never below zero,
nothing is uncollected and `balance + holds == sum(ledger)` (checked at session end)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import openai
import pytest

from gatewayz import db
from gatewayz.chat import catalog
from tests.e2e.conftest import INPUT_NANOS, MODEL, OUTPUT_NANOS, new_account, prompt_bound
from tests.fakes.openai_upstream import Behaviour

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.e2e.conftest import Account, Upstreams

HELLO = [{"role": "user", "content": "hello there"}]
LIMIT = 1_024  # test/echo's output limit
PREAMBLE = 64  # the hold's allowance for a template's own tokens


def usage_rows(account: Account) -> list[tuple[Any, ...]]:
    return db.execute(
        """SELECT status, input_tokens, output_tokens, cost_nanos, uncollected_nanos,
                  fee_nanos, usage_estimated, provider, held_nanos
             FROM usage_records WHERE account_id = %s ORDER BY created_at""",
        (account.account_id,),
    ).fetchall()


def charged(account: Account) -> int:
    row = db.execute(
        "SELECT -COALESCE(sum(amount_nanos), 0) FROM credit_transactions"
        " WHERE account_id = %s AND kind = 'usage'",
        (account.account_id,),
    ).fetchone()
    return int(row[0])  # type: ignore[index]


def client_for(gateway: str, account: Account) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway, api_key=account.secret, max_retries=0)


def test_without_max_tokens_the_provider_gets_the_cap_the_hold_paid_for(
    gateway: str, upstreams: Upstreams
) -> None:
    hold = prompt_bound(HELLO) * INPUT_NANOS + LIMIT * OUTPUT_NANOS
    account = new_account(credit_nanos=hold)
    upstreams.primary.enqueue(Behaviour(content=" ".join(["word"] * 3_000)))
    answer = client_for(gateway, account).chat.completions.create(model=MODEL, messages=HELLO)  # type: ignore[arg-type]
    sent = upstreams.primary.last.json
    assert sent["max_tokens"] == LIMIT
    assert type(sent["max_tokens"]) is int
    assert answer.choices[0].finish_reason == "length"
    assert answer.usage is not None
    assert answer.usage.completion_tokens == LIMIT
    cost = answer.usage.prompt_tokens * INPUT_NANOS + LIMIT * OUTPUT_NANOS
    assert charged(account) == cost <= hold
    assert account.balance() == hold - cost >= 0


def test_a_long_prompt_is_planned_from_the_models_output_limit(
    gateway: str, account: Account, upstreams: Upstreams
) -> None:
    # 20,000 bytes: more than the context by the hold's bound, not by a typical count.
    long = [{"role": "user", "content": "word " * 4_000}]
    client_for(gateway, account).chat.completions.create(model=MODEL, messages=long)  # type: ignore[arg-type]
    assert upstreams.primary.last.json["max_tokens"] == LIMIT


def test_the_cap_goes_in_the_one_field_the_provider_reads(
    gateway: str, account: Account, upstreams: Upstreams
) -> None:
    client = client_for(gateway, account)
    client.chat.completions.create(model=MODEL, messages=HELLO, max_completion_tokens=7)  # type: ignore[arg-type]
    sent = upstreams.primary.last.json  # OpenRouter reads `max_tokens`
    assert sent["max_tokens"] == 7
    assert "max_completion_tokens" not in sent
    client.completions.create(model=MODEL, prompt="hello")
    assert upstreams.primary.last.json["max_tokens"] == LIMIT


def test_a_reasoning_budget_stays_under_the_cap_the_hold_paid_for(
    gateway: str, account: Account, upstreams: Upstreams
) -> None:
    # OpenRouter raises max_tokens above a larger reasoning budget; the budget comes down.
    client = client_for(gateway, account)
    client.chat.completions.create(
        model=MODEL,
        messages=HELLO,  # type: ignore[arg-type]
        max_tokens=200,
        extra_body={"reasoning": {"max_tokens": 5_000, "exclude": True}},
    )
    sent = upstreams.primary.last.json
    assert (sent["max_tokens"], sent["reasoning"]) == (200, {"max_tokens": 199, "exclude": True})
    client.chat.completions.create(
        model=MODEL,
        messages=HELLO,  # type: ignore[arg-type]
        extra_body={"reasoning": {"max_tokens": 300}},
    )
    assert upstreams.primary.last.json["reasoning"] == {"max_tokens": 300}


@pytest.fixture
def roomy_fallback() -> Iterator[int]:
    """test/echo's second offer (featherless) with an output limit of its own: 3,000."""
    db.execute(
        "UPDATE model_offers SET max_output_tokens = 3000 WHERE model_id = %s AND provider = %s",
        (MODEL, "featherless"),
    )
    catalog.refresh()
    try:
        yield 3_000
    finally:
        db.execute(
            "UPDATE model_offers SET max_output_tokens = NULL"
            " WHERE model_id = %s AND provider = %s",
            (MODEL, "featherless"),
        )
        catalog.refresh()


def test_a_fallback_is_sent_its_own_cap_and_the_hold_covers_it(
    gateway: str, upstreams: Upstreams, roomy_fallback: int
) -> None:
    hold = prompt_bound(HELLO) * INPUT_NANOS + roomy_fallback * OUTPUT_NANOS
    account = new_account(credit_nanos=hold)
    upstreams.primary.enqueue(Behaviour(status=503))
    upstreams.secondary.enqueue(Behaviour(content=" ".join(["word"] * 5_000)))
    answer = client_for(gateway, account).chat.completions.create(model=MODEL, messages=HELLO)  # type: ignore[arg-type]
    assert upstreams.primary.last.json["max_tokens"] == LIMIT
    assert upstreams.secondary.last.json["max_tokens"] == roomy_fallback
    assert answer.usage is not None
    assert answer.usage.completion_tokens == roomy_fallback
    assert account.balance() >= 0
    assert usage_rows(account)[0][4] == 0  # nothing uncollected


def test_token_id_prompts_carry_a_margin(gateway: str, upstreams: Upstreams) -> None:
    ids = list(range(1, 801))
    # 800 ids: 800 + 100 (one in eight) + the preamble, and 10 output tokens.
    hold = (800 + 100 + PREAMBLE) * INPUT_NANOS + 10 * OUTPUT_NANOS
    account = new_account(credit_nanos=hold)
    # The provider adds its own tokens (BOS, a template) to the ids it was sent.
    upstreams.primary.enqueue(Behaviour(usage={"prompt_tokens": 830, "completion_tokens": 10}))
    answer = client_for(gateway, account).completions.create(model=MODEL, prompt=ids, max_tokens=10)
    assert answer.usage is not None
    assert charged(account) == 830 * INPUT_NANOS + 10 * OUTPUT_NANOS <= hold
    assert usage_rows(account)[0][4] == 0


@pytest.mark.parametrize(
    ("fields", "outputs"),
    [
        ({"prompt": ["one two", "three four", "five six"]}, 3),
        ({"prompt": "one two", "best_of": 4, "n": 1}, 4),
        ({"prompt": ["one two", "three"], "n": 2}, 4),
    ],
)
def test_list_prompts_best_of_and_n_multiply_the_hold(
    gateway: str, upstreams: Upstreams, fields: dict[str, Any], outputs: int
) -> None:
    prompts = fields["prompt"] if isinstance(fields["prompt"], list) else [fields["prompt"]]
    bound = sum(len(p) + PREAMBLE for p in prompts)
    hold = bound * INPUT_NANOS + outputs * 5 * OUTPUT_NANOS
    account = new_account(credit_nanos=hold)
    # Every output generated is billed, whatever the provider returns.
    prompt_tokens = sum(len(p.split()) + 4 for p in prompts)
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": outputs * 5}
    upstreams.primary.enqueue(Behaviour(usage=usage))
    response = httpx.post(
        f"{gateway}/completions",
        json={"model": MODEL, "max_tokens": 5, **fields},
        headers={"authorization": f"Bearer {account.secret}"},
    )
    assert response.status_code == 200, response.text
    cost = prompt_tokens * INPUT_NANOS + outputs * 5 * OUTPUT_NANOS
    assert charged(account) == cost <= hold
    assert account.balance() == hold - cost
    # The request held all of it: every output at its cap.
    assert usage_rows(account)[0][8] == hold


@pytest.fixture(scope="module")
def vision_model(gateway: str) -> str:
    """A model that sees, with GPT-4o mini's per-image rule (48,169 tokens at most)."""
    with db.transaction() as cur:
        cur.execute(
            """INSERT INTO models (id, name, context_length, max_output_tokens,
                                   input_modalities, max_image_tokens)
               VALUES ('test/vision', 'Test: Vision', 128000, 100, '{text,image}', 48169)
               ON CONFLICT (id) DO NOTHING"""
        )
        cur.execute(
            """INSERT INTO model_offers (model_id, provider, provider_model_id, priority,
                                         input_price, output_price)
               VALUES ('test/vision', 'openrouter', 'openrouter/vision', 10, 1, 2)
               ON CONFLICT (model_id, provider) DO NOTHING"""
        )
    catalog.refresh()
    return "test/vision"


def test_images_are_held_at_the_models_published_rule(
    gateway: str, upstreams: Upstreams, vision_model: str
) -> None:
    content = [
        {"type": "text", "text": "what is it"},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "high"}},
    ]
    messages = [{"role": "user", "content": content}]
    text_only = [{"role": "user", "content": content[:1]}]
    hold = (prompt_bound(text_only) + 48_169) * INPUT_NANOS + 100 * OUTPUT_NANOS
    account = new_account(credit_nanos=hold)
    # A 2048 x 768 high-detail image on GPT-4o mini: 2,833 + 8 x 5,667 tokens.
    upstreams.primary.enqueue(
        Behaviour(content="a cat", usage={"prompt_tokens": 48_180, "completion_tokens": 2})
    )
    client_for(gateway, account).chat.completions.create(model=vision_model, messages=messages)  # type: ignore[arg-type]
    assert charged(account) == 48_180 * INPUT_NANOS + 2 * OUTPUT_NANOS <= hold
    assert usage_rows(account)[0][4] == 0


@pytest.fixture
def priced_search() -> Iterator[int]:
    """featherless prices web search for test/echo at $0.02 a request; openrouter does not."""
    db.execute(
        """UPDATE model_offers SET request_fees = '{"web_search": "0.02"}'
            WHERE model_id = %s AND provider = 'featherless'""",
        (MODEL,),
    )
    catalog.refresh()
    try:
        yield 20_000_000
    finally:
        db.execute("UPDATE model_offers SET request_fees = '{}' WHERE model_id = %s", (MODEL,))
        catalog.refresh()


def test_a_priced_fee_is_held_and_charged_and_only_an_offer_pricing_it_serves(
    gateway: str, upstreams: Upstreams, priced_search: int
) -> None:
    hold = prompt_bound(HELLO) * INPUT_NANOS + 10 * OUTPUT_NANOS + priced_search
    account = new_account(credit_nanos=hold)
    plugins = [{"id": "web", "max_results": 3}]
    answer = client_for(gateway, account).chat.completions.create(
        model=MODEL,
        messages=HELLO,  # type: ignore[arg-type]
        max_tokens=10,
        extra_body={"plugins": plugins},
    )
    assert upstreams.primary.requests == []  # openrouter does not price it here
    assert upstreams.secondary.last.json["plugins"] == plugins
    assert answer.usage is not None
    tokens = (
        answer.usage.prompt_tokens * INPUT_NANOS + answer.usage.completion_tokens * OUTPUT_NANOS
    )
    assert round(answer.usage.cost * 1e9) == tokens + priced_search  # type: ignore[attr-defined]
    (row,) = usage_rows(account)
    assert (row[3], row[4], row[5], row[7]) == (
        tokens + priced_search,
        0,
        priced_search,
        "featherless",
    )
    assert charged(account) == tokens + priced_search <= hold


def test_an_answer_without_usage_is_billed_as_an_estimate(
    gateway: str, account: Account, upstreams: Upstreams
) -> None:
    upstreams.primary.enqueue(
        Behaviour(content="abcdefghijkl", usage_in_answer=False, reasoning="thinking hard")
    )
    answer = client_for(gateway, account).chat.completions.create(model=MODEL, messages=HELLO)  # type: ignore[arg-type]
    (row,) = usage_rows(account)
    # 12 bytes of content and 13 of reasoning: ceil(25 / 4) = 7 tokens; the prompt's
    # typical count is its 44 bytes of JSON at four a token, plus 8 for the message.
    assert (row[1], row[2], row[6]) == (11 + 8, 7, True)
    assert row[3] == 19 * INPUT_NANOS + 7 * OUTPUT_NANOS
    assert answer.usage is not None
    assert round(answer.usage.cost * 1e9) == row[3]


def test_a_stream_without_usage_counts_reasoning_and_tool_calls_too(
    client: openai.OpenAI, account: Account, upstreams: Upstreams
) -> None:
    call = {
        "id": "c1",
        "type": "function",
        "function": {"name": "lookup", "arguments": '{"q": "x"}'},
    }
    upstreams.primary.enqueue(
        Behaviour(reasoning="a b c d e f", tool_calls=[call], usage_in_stream=False)
    )
    list(client.chat.completions.create(model=MODEL, messages=HELLO, stream=True))  # type: ignore[arg-type]
    (row,) = usage_rows(account)
    # Pieces: 6 reasoning words, the call's name, 2 argument fragments (8 characters each):
    # 9 pieces of 11 + 6 + 10 = 27 bytes, so 9 tokens (never fewer than the pieces).
    assert (row[2], row[6]) == (9, True)
    assert row[3] == 19 * INPUT_NANOS + 9 * OUTPUT_NANOS


def test_an_answer_with_an_unpaired_surrogate_passes_on_charged_not_a_500(
    gateway: str, account: Account, upstreams: Upstreams
) -> None:
    upstreams.primary.enqueue(Behaviour(content="odd \ud800 text"))
    response = httpx.post(
        f"{gateway}/chat/completions",
        json={"model": MODEL, "messages": HELLO},
        headers={"authorization": f"Bearer {account.secret}"},
    )
    assert response.status_code == 200, response.text
    assert "\\ud800" in response.text  # kept as the provider escaped it
    (row,) = usage_rows(account)
    assert row[3] > 0
    assert round(response.json()["usage"]["cost"] * 1e9) == row[3]
