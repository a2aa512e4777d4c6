"""Operators' credit adjustments racing with the same idempotency key: exactly one
ledger entry, and every request answers it."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest

from gatewayz import db
from gatewayz.billing import adjustments
from tests import ledger
from tests.factories import new_owner

if TYPE_CHECKING:
    import psycopg

pytestmark = pytest.mark.usefixtures("database_url")


def test_concurrent_requests_with_one_key_post_one_entry(conn: psycopg.Connection) -> None:
    account = new_owner().account_id
    key = f"race-{uuid.uuid4()}"

    def grant(_: int) -> adjustments.Adjustment:
        try:
            return adjustments.adjust(account, "1.5", "race", actor=None, idempotency_key=key)
        finally:
            db.close()  # each worker thread has its own connection

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(grant, range(12)))
    assert len({r.data["id"] for r in results}) == 1
    assert sum(not r.replayed for r in results) == 1
    count = conn.execute(
        "SELECT count(*) FROM credit_transactions WHERE account_id = %s", (account,)
    ).fetchone()
    assert count == (1,)
    assert ledger.invariant_holds(conn, account)
