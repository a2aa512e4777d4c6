"""What the client-suite tests share: the backends they run against (the `backend` fixture
of tests/e2e/conftest.py) and the billing checks each test makes.

Every cost is checked against the catalog's own prices, as `GET /v1/models/{id}` lists
them (USD per token): ceil(tokens * price * 1e9) nanos per token class."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

import httpx

from gatewayz import db
from gatewayz.chat import catalog
from gatewayz.chat.providers import mock_embeddings
from tests.fakes.openai_upstream import embedding

if TYPE_CHECKING:
    from tests.e2e.conftest import Account

# The embeddings model the fake providers serve: $0.5 per million input tokens (500 nanos a
# token), from `openrouter` (tried first) and `featherless`, as `test/echo` is.
UPSTREAM_EMBED = "test/clients-embed"


@dataclass(frozen=True)
class Backend:
    """A gateway the clients call, and the models they ask it for."""

    name: str  # "offline" (the mock provider) or "upstream" (the fake providers)
    base_url: str
    chat_model: str
    embed_model: str


@dataclass(frozen=True)
class Billed:
    """One request as the gateway recorded it."""

    model: str
    provider: str
    input_tokens: int
    output_tokens: int
    cost_nanos: int


@dataclass(frozen=True)
class Prices:
    """A model's prices per token in USD, as the catalog lists them, per provider."""

    by_provider: dict[str, tuple[Decimal, Decimal]]

    def cost(self, provider: str, input_tokens: int, output_tokens: int) -> int:
        """What those tokens cost in nanos, as documented: each class rounded up."""
        prompt, completion = self.by_provider[provider]
        return math.ceil(input_tokens * prompt * 10**9) + math.ceil(
            output_tokens * completion * 10**9
        )


def add_upstream_embed_model() -> str:
    """Put UPSTREAM_EMBED in the catalog (once); its id."""
    with db.transaction() as cur:
        cur.execute(
            """INSERT INTO models (id, name, context_length, output_modalities)
               VALUES (%s, 'Test: Clients Embed', 512, '{embeddings}')
               ON CONFLICT (id) DO NOTHING""",
            (UPSTREAM_EMBED,),
        )
        for provider, priority in (("openrouter", 10), ("featherless", 20)):
            cur.execute(
                """INSERT INTO model_offers (model_id, provider, provider_model_id, priority,
                                             input_price, output_price)
                   VALUES (%s, %s, %s, %s, 0.5, 0) ON CONFLICT (model_id, provider) DO NOTHING""",
                (UPSTREAM_EMBED, provider, f"{provider}/clients-embed", priority),
            )
    catalog.refresh()
    return UPSTREAM_EMBED


def listed_prices(backend: Backend, account: Account, model: str) -> Prices:
    """The model's prices as the gateway lists them to a client."""
    answer = httpx.get(
        f"{backend.base_url}/models/{model}",
        headers={"authorization": f"Bearer {account.secret}"},
    )
    assert answer.status_code == 200, answer.text
    return Prices(
        {
            p["name"]: (Decimal(p["pricing"]["prompt"]), Decimal(p["pricing"]["completion"]))
            for p in answer.json()["providers"]
        }
    )


def billed(account: Account) -> list[Billed]:
    """Every request the account was billed for, oldest first."""
    rows = db.execute(
        """SELECT model, provider, input_tokens, output_tokens, cost_nanos
             FROM usage_records WHERE account_id = %s ORDER BY created_at""",
        (account.account_id,),
    )
    return [Billed(str(m), str(p), int(i), int(o), int(c)) for m, p, i, o, c in rows.fetchall()]


def check_billing(backend: Backend, account: Account, before: int) -> list[Billed]:
    """Check every recorded request cost exactly its tokens at the catalog's prices and
    the balance dropped by exactly their sum; return the records."""
    records = billed(account)
    prices = {m: listed_prices(backend, account, m) for m in {r.model for r in records}}
    for r in records:
        assert r.provider == ("mock" if backend.name == "offline" else "openrouter"), r
        expected = prices[r.model].cost(r.provider, r.input_tokens, r.output_tokens)
        assert r.cost_nanos == expected > 0, r
    assert before - account.balance() == sum(r.cost_nanos for r in records)
    return records


def expected_embedding(backend: Backend, text: str, index: int) -> list[float]:
    """The vector the backend's embeddings model gives `text` at `index` of the input."""
    if backend.name == "offline":
        return mock_embeddings.vector(text)
    return embedding(text, index)


def nanos(dollars: float) -> int:
    return round(dollars * 1e9)
