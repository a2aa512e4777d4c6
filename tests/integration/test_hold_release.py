"""`credits.release`: a hold given back whole, for a request refused before any provider
was called: the balance regains it, no ledger entry, no usage row, and only once."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from gatewayz import db
from gatewayz.billing import credits
from tests import ledger
from tests.conftest import reset_caches
from tests.factories import fund, new_hold, new_owner
from tests.integration.test_latency_proxy import latency_proxy

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.usefixtures("database_url")
USD = 1_000_000_000


def state(account_id: str) -> ledger.Footprint:
    return ledger.footprint(db.connection(), account_id)


def test_a_released_hold_is_back_in_the_balance_without_a_ledger_entry() -> None:
    owner = new_owner()
    fund(owner.account_id, 2 * USD)
    before = state(owner.account_id)
    kept = new_hold(owner.account_id, USD // 4)
    hold = new_hold(owner.account_id, USD // 2)
    assert state(owner.account_id)[:2] == (before[0] - USD // 4 - USD // 2, 2)
    assert credits.release(hold)
    assert state(owner.account_id) == (before[0] - USD // 4, 1, before[2], before[3])
    assert ledger.invariant_holds(db.connection(), owner.account_id)
    # Once only: a second release (or one after settling) changes nothing.
    assert not credits.release(hold)
    assert state(owner.account_id) == (before[0] - USD // 4, 1, before[2], before[3])
    assert credits.release(kept)
    assert state(owner.account_id) == before


def test_releasing_another_accounts_hold_by_its_request_id_does_nothing() -> None:
    owner, other = new_owner(), new_owner()
    fund(owner.account_id, USD)
    hold = new_hold(owner.account_id, USD // 2)
    forged = credits.Hold(hold.request_id, other.account_id, None, hold.amount_nanos)
    assert not credits.release(forged)
    assert state(owner.account_id)[:2] == (USD // 2, 1)
    assert state(other.account_id)[0] == 0
    assert credits.release(hold)


def again(
    hold: credits.Hold, max_nanos: int, **limits: int | None
) -> credits.Hold | credits.Refusal:
    """The request of `hold` held again, as after its key changed."""
    return db.run(
        credits.reserve(
            account_id=hold.account_id,
            api_key_id=hold.api_key_id,
            request_id=hold.request_id,
            max_nanos=max_nanos,
            min_nanos=1,
            ttl_s=300,
            concurrency=limits.get("concurrency"),
            key_concurrency=limits.get("key_concurrency"),
            replacing=hold,
        )
    )


def test_a_hold_taken_again_replaces_the_old_one_in_one_transaction() -> None:
    owner = new_owner()
    fund(owner.account_id, USD)
    hold = new_hold(owner.account_id, USD // 2)
    smaller = again(hold, USD // 5)
    assert smaller == credits.Hold(hold.request_id, owner.account_id, None, USD // 5)
    assert state(owner.account_id)[:2] == (USD - USD // 5, 1)
    assert ledger.invariant_holds(db.connection(), owner.account_id)
    assert credits.release(smaller)
    assert state(owner.account_id)[:2] == (USD, 0)


def test_a_hold_refused_when_taken_again_leaves_the_old_one_returned() -> None:
    owner = new_owner()
    fund(owner.account_id, USD)
    other = new_hold(owner.account_id, USD // 10)
    hold = new_hold(owner.account_id, USD // 2)
    # Now one request in flight at most: the other one is.
    assert again(hold, USD // 2, concurrency=1) == credits.Refusal("concurrency")
    assert state(owner.account_id)[:2] == (USD - USD // 10, 1)
    assert ledger.invariant_holds(db.connection(), owner.account_id)
    assert credits.release(other)


@pytest.fixture
def counted_trips(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[object]:
    """The code under test talking to PostgreSQL through the latency proxy (no delay
    added), which counts its round trips."""
    params = conninfo_to_dict(database_url)
    if str(params.get("host", "")).startswith("/"):
        pytest.skip("PostgreSQL on a Unix socket: the proxy forwards TCP")
    port = int(params.get("port") or 5432)
    proxy = latency_proxy.Proxy(0.0, forward={"postgres": port}, watch={})
    through = make_conninfo(database_url, host="127.0.0.1", port=proxy.ports["postgres"])
    monkeypatch.setenv("DATABASE_URL", through)
    reset_caches()
    db.ping()  # the connection and its start-up, before counting
    yield proxy
    monkeypatch.undo()
    reset_caches()
    proxy.stop()


def test_taking_a_hold_again_is_one_round_trip(counted_trips: latency_proxy.Proxy) -> None:
    owner = new_owner()
    fund(owner.account_id, USD)
    hold = new_hold(owner.account_id, USD // 2)
    counted_trips.reset()
    assert isinstance(again(hold, USD // 4), credits.Hold)
    assert len(counted_trips.stats()["trips"]) == 1  # type: ignore[arg-type]
    assert state(owner.account_id)[:2] == (USD - USD // 4, 1)
    assert credits.release(credits.Hold(hold.request_id, owner.account_id, None, USD // 4))
