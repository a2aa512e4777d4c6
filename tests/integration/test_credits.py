"""The money rules the schema and `credits.post` enforce."""

from __future__ import annotations

import threading
import uuid

import psycopg
import pytest

from gatewayz import db
from gatewayz.billing import credits
from tests.factories import new_owner
from tests.ledger import invariant_holds


def test_a_grant_moves_the_balance_and_writes_the_ledger(conn: psycopg.Connection) -> None:
    owner = new_owner()
    with db.transaction() as cur:
        entry = credits.post(
            cur, account_id=owner.account_id, kind="admin_grant", amount_nanos=1_500
        )
        assert credits.balance_nanos(cur, owner.account_id) == 1_500
    row = conn.execute(
        "SELECT kind, amount_nanos, balance_after_nanos FROM credit_transactions WHERE id = %s",
        (entry,),
    ).fetchone()
    assert row == ("admin_grant", 1_500, 1_500)
    assert invariant_holds(conn, owner.account_id)


def test_a_replayed_external_reference_credits_once(conn: psycopg.Connection) -> None:
    owner = new_owner()
    ref = f"stripe_event:evt_{uuid.uuid4().hex}"
    with db.transaction() as cur:
        first = credits.post(
            cur, account_id=owner.account_id, kind="purchase", amount_nanos=5_000, external_ref=ref
        )
        again = credits.post(
            cur, account_id=owner.account_id, kind="purchase", amount_nanos=5_000, external_ref=ref
        )
        assert credits.balance_nanos(cur, owner.account_id) == 5_000
    assert first is not None
    assert again is None
    assert invariant_holds(conn, owner.account_id)


def test_concurrent_replays_of_one_reference_credit_once(
    database_url: str, conn: psycopg.Connection
) -> None:
    owner = new_owner()
    ref = f"checkout:cs_{uuid.uuid4().hex}"
    start = threading.Barrier(8)
    results: list[int | None] = []

    def post() -> None:
        with db.connect(database_url) as own, own.cursor() as cur:
            start.wait()
            results.append(
                credits.post(
                    cur,
                    account_id=owner.account_id,
                    kind="purchase",
                    amount_nanos=7,
                    external_ref=ref,
                )
            )

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r is not None for r in results) == 1
    balance = conn.execute("SELECT balance_nanos FROM accounts WHERE id = %s", (owner.account_id,))
    assert balance.fetchone() == (7,)
    assert invariant_holds(conn, owner.account_id)


def test_the_table_itself_rejects_a_duplicate_external_reference(conn: psycopg.Connection) -> None:
    owner = new_owner()
    sql = """INSERT INTO credit_transactions (account_id, kind, amount_nanos, balance_after_nanos,
                                              external_ref) VALUES (%s, 'coupon', 1, 1, %s)"""
    ref = "coupon_redemption:x-" + owner.account_id
    # In one transaction, rolled back by the violation: the ledger stays as it was.
    with pytest.raises(psycopg.errors.UniqueViolation), conn.transaction():  # noqa: PT012
        conn.execute(sql, (owner.account_id, ref))
        conn.execute(sql, (owner.account_id, ref))


def test_a_negative_hold_is_rejected(conn: psycopg.Connection) -> None:
    owner = new_owner()
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            """INSERT INTO credit_holds (account_id, request_id, amount_nanos, expires_at)
               VALUES (%s, %s, -1, now() + interval '5 minutes')""",
            (owner.account_id, f"req_{uuid.uuid4().hex}"),
        )


def test_a_debit_beyond_the_balance_is_refused_and_changes_nothing(
    conn: psycopg.Connection,
) -> None:
    owner = new_owner()
    with db.transaction() as cur:
        credits.post(cur, account_id=owner.account_id, kind="admin_grant", amount_nanos=100)
    with pytest.raises(credits.InsufficientFunds), db.transaction() as cur:
        credits.post(cur, account_id=owner.account_id, kind="admin_debit", amount_nanos=-101)
    with db.transaction() as cur:
        assert credits.balance_nanos(cur, owner.account_id) == 100
        # A dispute is recorded even when the money is already spent.
        credits.post(
            cur, account_id=owner.account_id, kind="dispute", amount_nanos=-150, allow_negative=True
        )
        assert credits.balance_nanos(cur, owner.account_id) == -50
    assert invariant_holds(conn, owner.account_id)


@pytest.mark.parametrize(("kind", "amount"), [("purchase", -1), ("usage", 5), ("admin_grant", 0)])
def test_the_sign_must_fit_the_kind(database_url: str, kind: str, amount: int) -> None:
    with pytest.raises(ValueError, match="cannot be"), db.transaction() as cur:
        credits.post(cur, account_id=str(uuid.uuid4()), kind=kind, amount_nanos=amount)


def test_the_ledger_is_append_only(conn: psycopg.Connection) -> None:
    owner = new_owner()
    with db.transaction() as cur:
        entry = credits.post(cur, account_id=owner.account_id, kind="admin_grant", amount_nanos=9)
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        conn.execute("UPDATE credit_transactions SET amount_nanos = 90 WHERE id = %s", (entry,))
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        conn.execute("DELETE FROM credit_transactions WHERE id = %s", (entry,))


def test_a_trial_account_starts_with_the_trial_credit_once(conn: psycopg.Connection) -> None:
    from gatewayz.identity import accounts

    owner = new_owner(plan_id="trial")
    with db.transaction() as cur:
        assert credits.balance_nanos(cur, owner.account_id) == 10_000_000_000
        assert accounts.start_trial(cur, owner.account_id) is False
        assert credits.balance_nanos(cur, owner.account_id) == 10_000_000_000
    row = conn.execute(
        "SELECT trial_ends_at - trial_started_at FROM accounts WHERE id = %s", (owner.account_id,)
    ).fetchone()
    assert row is not None
    assert row[0].days == 3
    assert invariant_holds(conn, owner.account_id)
