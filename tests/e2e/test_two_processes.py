"""A requests-per-minute limit of N lets exactly N through across two gateway processes
that share Redis."""

from __future__ import annotations

import httpx

from tests.e2e.conftest import MODEL, new_account

LIMIT = 5


def test_a_limit_of_n_lets_exactly_n_through_across_two_processes(
    redis_gateways: list[str],
) -> None:
    account = new_account(requests_per_minute=LIMIT)
    headers = {"authorization": f"Bearer {account.secret}"}
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    statuses = [
        httpx.post(
            f"{redis_gateways[i % 2]}/chat/completions", json=body, headers=headers, timeout=30
        ).status_code
        for i in range(2 * LIMIT)
    ]
    assert statuses.count(200) == LIMIT
    assert statuses.count(429) == LIMIT
    # Both processes served some and refused some: the count really was shared.
    assert {statuses[i] for i in range(0, 2 * LIMIT, 2)} | {
        statuses[i] for i in range(1, 2 * LIMIT, 2)
    } == {200, 429}
