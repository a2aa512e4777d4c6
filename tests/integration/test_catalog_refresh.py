"""`catalog_refresh` against the fake upstream's `GET /v1/models` (OpenRouter's shape):
new models and offers, markup, retirement, price history, idempotency, and failures that
leave the catalog as it was.

Each test refreshes a provider of its own (a name no other test uses), so the shared
catalog's seeded offers are never touched."""

from __future__ import annotations

import secrets
from decimal import ROUND_CEILING, Decimal
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

from gatewayz.chat import catalog, catalog_refresh
from gatewayz.chat.providers import Provider, Upstream
from tests.conftest import reset_caches
from tests.fakes.openai_upstream import openrouter_model, serve

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.fakes.openai_upstream import FakeUpstream

pytestmark = pytest.mark.usefixtures("database_url")

MILLION = Decimal(1_000_000)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with serve() as upstream:
        yield upstream


@pytest.fixture
def upstream(fake: FakeUpstream, conn: psycopg.Connection) -> Iterator[Upstream]:
    """A provider of this test's own, listing what `fake.model_list` holds; its models
    (all named `<provider>/...`), offers and history are gone after the test."""
    fake.reset()
    own = own_provider(fake.base_url)
    yield own
    conn.execute("DELETE FROM model_offers WHERE provider = %s", (own.name,))
    conn.execute("DELETE FROM models WHERE starts_with(id, %s)", (f"{own.name}/",))
    conn.execute("DELETE FROM model_price_changes WHERE provider = %s", (own.name,))
    catalog.refresh()


def own_provider(base_url: str) -> Upstream:
    name = f"rf{secrets.token_hex(4)}"
    provider = type("TestProvider", (Provider,), {"name": name, "default_base_url": base_url})()
    return Upstream(provider, base_url, "test-key")


def refresh(*upstreams: Upstream, markup: str = "0") -> dict[str, Any]:
    return catalog_refresh.refresh({u.name: u for u in upstreams}, markup_percent=Decimal(markup))


def offers(conn: psycopg.Connection, provider: str) -> dict[str, tuple[Any, ...]]:
    """model id -> (active, input, cached input, output, reasoning, provider's id)."""
    rows = conn.execute(
        """SELECT model_id, is_active, input_price, cached_input_price, output_price,
                  reasoning_price, provider_model_id
             FROM model_offers WHERE provider = %s""",
        (provider,),
    ).fetchall()
    return {row[0]: tuple(row[1:]) for row in rows}


def history(conn: psycopg.Connection, provider: str) -> list[tuple[Any, ...]]:
    return conn.execute(
        """SELECT model_id, price, old_price, new_price, source FROM model_price_changes
            WHERE provider = %s ORDER BY id""",
        (provider,),
    ).fetchall()


def snapshot(conn: psycopg.Connection, provider: str) -> list[tuple[Any, ...]]:
    """Every column of the provider's offers and their models, and the price history."""
    rows = conn.execute(
        """SELECT o.*, m.* FROM model_offers o JOIN models m ON m.id = o.model_id
            WHERE o.provider = %s ORDER BY o.model_id""",
        (provider,),
    ).fetchall()
    return [*rows, *history(conn, provider)]


def per_million(per_token: str, markup: str = "0") -> Decimal:
    """The catalog price of a per-token price: USD per million tokens plus the markup,
    rounded up to the nano-dollar."""
    return with_markup(Decimal(per_token) * MILLION, markup)


def with_markup(usd: Decimal, markup: str) -> Decimal:
    exact = usd * (100 + Decimal(markup)) / 100
    return exact.quantize(Decimal("0.000000001"), rounding=ROUND_CEILING)


def test_a_priced_list_adds_models_and_offers_at_its_prices(
    conn: psycopg.Connection, fake: FakeUpstream, upstream: Upstream
) -> None:
    org = upstream.name
    fake.model_list = [
        openrouter_model(
            f"{org}/vision", prompt="0.0000025", completion="0.00001",
            input_cache_read="0.00000125", internal_reasoning="0", context_length=128_000,
            max_completion_tokens=16_384, input_modalities=("text", "image"),
            supported_parameters=("tools", "response_format", "max_tokens"),
        ),
        openrouter_model(f"{org}/thinker", prompt="0.00000055", completion="0.00000219",
                         internal_reasoning="0.00000219"),
        openrouter_model(f"{org}/free", prompt="0", completion="0"),
        openrouter_model(f"{org}/unpriced"),  # no pricing at all
        openrouter_model(f"{org}/varies", prompt="-1", completion="-1"),  # openrouter/auto
        openrouter_model(f"{org}/per-request", prompt="0.000001", completion="0.000001",
                         request="0.005"),
        openrouter_model("Not A Model Id", prompt="0.000001", completion="0.000001"),
    ]  # fmt: skip
    report = refresh(upstream)
    assert "status" not in report  # the job adds `ok`; a failure says `failed`
    assert (report["listed"], report["models_added"], report["offers_added"]) == (7, 3, 3)
    assert (report["unpriced"], report["skipped"], report["offers_retired"]) == (3, 1, 0)
    added = offers(conn, upstream.name)
    assert set(added) == {f"{org}/vision", f"{org}/thinker", f"{org}/free"}
    assert added[f"{org}/vision"] == (
        True, per_million("0.0000025"), per_million("0.00000125"), per_million("0.00001"),
        None, f"{org}/vision",
    )  # fmt: skip
    # Reasoning priced on its own where the list prices it; "0" means "as output".
    assert added[f"{org}/thinker"][4] == per_million("0.00000219")
    model = conn.execute(
        """SELECT name, context_length, max_output_tokens, input_modalities,
                  supported_parameters, listed_by FROM models WHERE id = %s""",
        (f"{org}/vision",),
    ).fetchone()
    assert model == (
        f"Fake: {org}/vision", 128_000, 16_384, ["text", "image"],
        ["tools", "response_format", "max_tokens"], upstream.name,
    )  # fmt: skip
    # The chat path serves them at once, from the provider's list.
    served = catalog.models({upstream.name: upstream})
    assert served[f"{org}/vision"].offers[0].price.input == per_million("0.0000025")
    assert served[f"{org}/vision"].offers[0].max_output_tokens == 16_384
    assert f"{org}/unpriced" not in served


def test_the_markup_is_added_and_rounded_up_never_below_cost(
    conn: psycopg.Connection, fake: FakeUpstream, upstream: Upstream
) -> None:
    org = upstream.name
    odd = "0.000000123456789123"  # 0.123456789123 per million: beyond the catalog's scale
    fake.model_list = [
        openrouter_model(f"{org}/a", prompt="0.00000015", completion="0.0000006",
                         web_search="0.01"),
        openrouter_model(f"{org}/odd", prompt=odd, completion=odd),
    ]  # fmt: skip
    refresh(upstream, markup="7.5")
    rows = offers(conn, upstream.name)
    assert rows[f"{org}/a"][1] == per_million("0.00000015", "7.5")
    assert rows[f"{org}/a"][3] == per_million("0.0000006", "7.5")
    assert rows[f"{org}/odd"][1] == per_million(odd, "7.5")
    for model_id, upstream_price in ((f"{org}/a", "0.00000015"), (f"{org}/odd", odd)):
        assert rows[model_id][1] > Decimal(upstream_price) * MILLION
    # Without a markup, a price beyond the scale still rounds up, never down.
    fake.model_list = [openrouter_model(f"{org}/odd", prompt=odd, completion=odd)]
    refresh(upstream)
    assert offers(conn, upstream.name)[f"{org}/odd"][1] >= Decimal(odd) * MILLION
    fees = conn.execute(
        "SELECT request_fees FROM model_offers WHERE model_id = %s", (f"{org}/a",)
    ).fetchone()
    # A per-request fee (USD per search) gets the same markup.
    assert fees == ({"web_search": str(with_markup(Decimal("0.01"), "7.5"))},)


def test_the_markup_comes_from_the_setting(
    conn: psycopg.Connection,
    fake: FakeUpstream,
    upstream: Upstream,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake.model_list = [
        openrouter_model(f"{upstream.name}/m", prompt="0.000001", completion="0.000002")
    ]
    monkeypatch.setenv("PRICE_MARKUP_PERCENT", "25")
    reset_caches()
    try:
        report = catalog_refresh.refresh({upstream.name: upstream})
    finally:
        monkeypatch.delenv("PRICE_MARKUP_PERCENT")
        reset_caches()
    assert report["markup_percent"] == "25"
    assert offers(conn, upstream.name)[f"{upstream.name}/m"][1:4] == (
        per_million("0.000001", "25"), None, per_million("0.000002", "25"),
    )  # fmt: skip


def test_price_changes_are_kept_and_a_second_run_changes_nothing(
    conn: psycopg.Connection, fake: FakeUpstream, upstream: Upstream
) -> None:
    model = f"{upstream.name}/m"
    fake.model_list = [openrouter_model(model, prompt="0.000001", completion="0.000002")]
    refresh(upstream)
    first = snapshot(conn, upstream.name)
    again = refresh(upstream)
    assert snapshot(conn, upstream.name) == first
    assert (again["models_added"], again["offers_added"], again["prices_changed"]) == (0, 0, 0)
    fake.model_list = [openrouter_model(model, prompt="0.000003", completion="0.000002")]
    assert refresh(upstream)["prices_changed"] == 1
    refresh(upstream)  # the same list again: no second record of the change
    assert history(conn, upstream.name) == [
        (model, "input", None, per_million("0.000001"), "catalog_refresh"),
        (model, "output", None, per_million("0.000002"), "catalog_refresh"),
        (model, "input", per_million("0.000001"), per_million("0.000003"), "catalog_refresh"),
    ]
    # When a price took effect is on record, for explaining a usage row later.
    changed_at = conn.execute(
        "SELECT changed_at FROM model_price_changes WHERE provider = %s ORDER BY id DESC",
        (upstream.name,),
    ).fetchone()
    assert changed_at is not None
    assert changed_at[0] is not None


def test_an_offer_no_longer_listed_is_retired_and_comes_back(
    conn: psycopg.Connection, fake: FakeUpstream, upstream: Upstream
) -> None:
    keep, gone = f"{upstream.name}/keep", f"{upstream.name}/gone"
    both = [
        openrouter_model(keep, prompt="0.000001", completion="0.000001"),
        openrouter_model(gone, prompt="0.000001", completion="0.000001"),
    ]
    fake.model_list = both
    refresh(upstream)
    fake.model_list = both[:1]
    assert refresh(upstream)["offers_retired"] == 1
    rows = offers(conn, upstream.name)
    assert (rows[keep][0], rows[gone][0]) == (True, False)  # kept, inactive
    assert rows[gone][1] == per_million("0.000001")  # usage rows still find its price
    assert gone not in catalog.models({upstream.name: upstream})
    assert refresh(upstream)["offers_retired"] == 0  # retired once
    fake.model_list = both
    assert refresh(upstream)["offers_restored"] == 1
    assert gone in catalog.models({upstream.name: upstream})
    # An offer an operator switched off stays off, listed or not.
    conn.execute("UPDATE model_offers SET is_active = false WHERE model_id = %s", (keep,))
    refresh(upstream)
    assert offers(conn, upstream.name)[keep][0] is False


def test_a_list_without_prices_only_keeps_offers_the_catalog_prices(
    conn: psycopg.Connection, fake: FakeUpstream, upstream: Upstream
) -> None:
    model = f"{upstream.name}/curated"
    conn.execute(
        "INSERT INTO models (id, name, context_length) VALUES (%s, 'Curated', 8192)", (model,)
    )
    conn.execute(
        """INSERT INTO model_offers (model_id, provider, provider_model_id, input_price,
                                     output_price) VALUES (%s, %s, 'Org/Curated-7B', 0.4, 0.5)""",
        (model, upstream.name),
    )
    fake.model_list = [{"id": "Org/Curated-7B", "object": "model"}, {"id": "Org/New-70B"}]
    report = refresh(upstream, markup="50")
    assert (report["unpriced"], report["offers_added"], report["prices_changed"]) == (1, 0, 0)
    assert offers(conn, upstream.name) == {
        model: (True, Decimal("0.4"), None, Decimal("0.5"), None, "Org/Curated-7B")
    }
    fake.model_list = [{"id": "Org/New-70B"}]
    assert refresh(upstream)["offers_retired"] == 1
    assert offers(conn, upstream.name)[model][0] is False


def test_a_list_that_cannot_be_read_changes_nothing(
    conn: psycopg.Connection, fake: FakeUpstream, upstream: Upstream
) -> None:
    fake.model_list = [openrouter_model(f"{upstream.name}/m", prompt="0.000001", completion="0")]
    with serve() as broken:
        broken.models_status = 500
        failing = own_provider(broken.base_url)
        report = refresh(upstream, failing)
    assert report["status"] == "failed"
    assert report["provider"] == failing.name
    assert "500" in report["error"]
    assert offers(conn, upstream.name) == {}
    # A provider that does not answer at all (the fake is gone now): the same.
    report = refresh(upstream, own_provider(broken.base_url))
    assert report["status"] == "failed"
    assert offers(conn, upstream.name) == {}
    # An empty list is a glitch, not "retire everything".
    refresh(upstream)
    fake.model_list = []
    report = refresh(upstream)
    assert (report["status"], report["provider"]) == ("failed", upstream.name)
    assert offers(conn, upstream.name)[f"{upstream.name}/m"][0] is True


def test_a_failure_while_writing_leaves_the_catalog_as_it_was(
    conn: psycopg.Connection, fake: FakeUpstream, upstream: Upstream
) -> None:
    first, boom = f"{upstream.name}/first", f"{upstream.name}/zz-boom"
    fake.model_list = [openrouter_model(first, prompt="0.000001", completion="0.000001")]
    refresh(upstream)
    before = snapshot(conn, upstream.name)
    # The database refuses the last model of the next list, after the first was changed.
    conn.execute(
        f"""CREATE FUNCTION refuse_boom() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.id = '{boom}' THEN RAISE EXCEPTION 'refused'; END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER refuse_boom BEFORE INSERT ON models
                FOR EACH ROW EXECUTE FUNCTION refuse_boom();"""
    )
    try:
        fake.model_list = [
            openrouter_model(first, prompt="0.000009", completion="0.000009"),
            openrouter_model(f"{upstream.name}/new", prompt="0.000001", completion="0.000001"),
            openrouter_model(boom, prompt="0.000001", completion="0.000001"),
        ]
        with pytest.raises(psycopg.errors.RaiseException):
            refresh(upstream)
    finally:
        conn.execute("DROP TRIGGER refuse_boom ON models; DROP FUNCTION refuse_boom()")
    assert snapshot(conn, upstream.name) == before
    served = catalog.models({upstream.name: upstream})
    assert served[first].offers[0].price.input == per_million("0.000001")
    # The next run, with the database willing, applies the whole list.
    assert refresh(upstream)["offers_added"] == 2


def priced_at_one(fake: FakeUpstream, upstream: Upstream) -> tuple[str, dict[str, Upstream], float]:
    """A model of `upstream`'s at $1 per million input tokens, in the catalog this process
    loaded at the (made-up) monotonic time returned."""
    model = f"{upstream.name}/m"
    fake.model_list = [openrouter_model(model, prompt="0.000001", completion="0.000001")]
    refresh(upstream)
    upstreams = {upstream.name: upstream}
    loaded_at = 1_000_000.0
    catalog.refresh()
    assert catalog.models(upstreams, now=loaded_at)[model].offers[0].price.input == 1
    return model, upstreams, loaded_at


def test_the_chat_paths_cached_catalog_picks_up_a_change_within_its_ttl(
    conn: psycopg.Connection, fake: FakeUpstream, upstream: Upstream
) -> None:
    model, upstreams, loaded_at = priced_at_one(fake, upstream)
    # Another process (the scheduled function) changes the price.
    conn.execute("UPDATE model_offers SET input_price = 2 WHERE model_id = %s", (model,))
    assert catalog.models(upstreams, now=loaded_at + 1)[model].offers[0].price.input == 1
    # Past the TTL the request that notices is priced with the catalog it found, never
    # kept waiting for a reload: that runs behind it, and the requests after it see it.
    later = loaded_at + catalog.CATALOG_TTL_S + 1
    assert catalog.models(upstreams, now=later)[model].offers[0].price.input == 1
    catalog.reloaded()
    assert catalog.models(upstreams, now=later + 1)[model].offers[0].price.input == 2
    # A copy older than STALE_MAX_S (a function frozen that long) is read again first.
    conn.execute("UPDATE model_offers SET input_price = 3 WHERE model_id = %s", (model,))
    thawed = later + 1 + catalog.STALE_MAX_S
    assert catalog.models(upstreams, now=thawed)[model].offers[0].price.input == 3
    catalog.refresh()


def test_a_catalog_that_cannot_be_reloaded_stays_in_use_and_is_tried_again(
    conn: psycopg.Connection, fake: FakeUpstream, upstream: Upstream
) -> None:
    model, upstreams, loaded_at = priced_at_one(fake, upstream)
    conn.execute("UPDATE model_offers SET input_price = 2 WHERE model_id = %s", (model,))
    later = loaded_at + catalog.CATALOG_TTL_S + 1
    conn.execute("ALTER TABLE model_offers RENAME TO model_offers_away")
    try:
        assert catalog.models(upstreams, now=later)[model].offers[0].price.input == 1
        catalog.reloaded()  # it failed: the table is gone
    finally:
        conn.execute("ALTER TABLE model_offers_away RENAME TO model_offers")
    # Served as it was; not tried again at once (every request would start a reload)...
    assert catalog.models(upstreams, now=later + 1)[model].offers[0].price.input == 1
    catalog.reloaded()
    assert catalog.models(upstreams, now=later + 2)[model].offers[0].price.input == 1
    # ...but after RETRY_S.
    retry = later + catalog.RETRY_S + 1
    assert catalog.models(upstreams, now=retry)[model].offers[0].price.input == 1
    catalog.reloaded()
    assert catalog.models(upstreams, now=retry + 1)[model].offers[0].price.input == 2
    catalog.refresh()
