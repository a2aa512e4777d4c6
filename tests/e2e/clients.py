"""What the client-suite tests share: the offline local gateway (no provider key, so only
the `mock/echo` and `mock/embed` models) and the billing checks each test makes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from gatewayz import db
from gatewayz.dev import local, samtemplate
from tests.conftest import reset_caches
from tests.fakes.asgi_server import serve_asgi
from tests.pg import ROOT

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.e2e.conftest import Account


@pytest.fixture(scope="module")
def offline(database_url: str) -> Iterator[str]:
    """The base URL (`.../v1`) of the local gateway, no provider key set: only the mock."""
    reset_caches()
    template = samtemplate.load(ROOT / "template.yaml")
    with serve_asgi(local.LocalGateway(template, local.load_functions(ROOT, template))) as port:
        yield f"http://127.0.0.1:{port}/v1"


def recorded_costs(account: Account) -> list[int]:
    """The cost of each request the account was billed for, oldest first."""
    rows = db.execute(
        "SELECT cost_nanos FROM usage_records WHERE account_id = %s ORDER BY created_at",
        (account.account_id,),
    )
    return [int(cost) for (cost,) in rows.fetchall()]


def nanos(dollars: float) -> int:
    return round(dollars * 1e9)
