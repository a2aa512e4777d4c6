"""Money under concurrency (DESIGN §4): 100 requests at once on a balance that covers
exactly 40. Each is served and charged, or refused and uncharged; the balance never goes
below zero; balance + holds == sum(ledger) afterwards."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

import httpx

from gatewayz import db
from tests.e2e.conftest import (
    INPUT_NANOS,
    MODEL,
    OUTPUT_NANOS,
    ledger_usage,
    new_account,
    prompt_bound,
)
from tests.fakes.openai_upstream import Behaviour
from tests.ledger import broken_accounts

if TYPE_CHECKING:
    from tests.e2e.conftest import Upstreams

MAX_TOKENS = 50
BODY = {
    "model": MODEL,
    "messages": [{"role": "user", "content": "count the coins"}],
    "max_tokens": MAX_TOKENS,
}


def test_100_requests_on_credit_for_exactly_40(gateway: str, upstreams: Upstreams) -> None:
    prompt = prompt_bound(BODY["messages"])  # type: ignore[arg-type]
    # The provider reports exactly what the gateway held for, so each answer costs its hold.
    cost = prompt * INPUT_NANOS + MAX_TOKENS * OUTPUT_NANOS
    upstreams.primary.default = Behaviour(
        delay_s=0.05, usage={"prompt_tokens": prompt, "completion_tokens": MAX_TOKENS}
    )
    account = new_account(
        credit_nanos=40 * cost,
        limits_set_by_admin=True,
        concurrent_requests=500,
        requests_per_minute=10_000,
    )
    lowest = _watch_balance(account.account_id)

    async def run() -> list[httpx.Response]:
        headers = {"authorization": f"Bearer {account.secret}"}
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(
            base_url=gateway, headers=headers, limits=limits, timeout=60
        ) as client:
            return await asyncio.gather(
                *(client.post("/chat/completions", json=BODY) for _ in range(100))
            )

    responses = asyncio.run(run())
    lowest.stop()

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 40 + [402] * 60
    for refused in (r for r in responses if r.status_code == 402):
        assert refused.json()["error"]["metadata"]["limit_source"] in {"credits", "in_flight"}
    for served in (r for r in responses if r.status_code == 200):
        assert round(served.json()["usage"]["cost"] * 1e9) == cost
    assert account.balance() == 0
    assert lowest.value >= 0
    assert [amount for amount, _ in ledger_usage(account.account_id)] == [-cost] * 40
    assert db.execute(
        "SELECT count(*) FROM credit_holds WHERE account_id = %s", (account.account_id,)
    ).fetchone() == (0,)
    with db.connect() as conn:
        assert account.account_id not in broken_accounts(conn)


class _watch_balance:
    """Sample the balance from another connection while the requests run."""

    def __init__(self, account_id: str) -> None:
        self.value = 2**63 - 1
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(account_id,), daemon=True)
        self._thread.start()

    def _run(self, account_id: str) -> None:
        with db.connect() as conn:
            while not self._stop.wait(0.002):
                row = conn.execute(
                    "SELECT balance_nanos FROM accounts WHERE id = %s", (account_id,)
                ).fetchone()
                self.value = min(self.value, row[0])  # type: ignore[index]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
