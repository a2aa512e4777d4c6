"""Arranging rows for tests through the package's own functions."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from gatewayz import db
from gatewayz.billing import credits
from gatewayz.identity import accounts, keys

if TYPE_CHECKING:
    from collections.abc import Sequence


def new_owner(plan_id: str = "payg") -> accounts.Owner:
    """A fresh user with a personal account (a trial plan grants the trial credit)."""
    with db.transaction() as cur:
        return accounts.create_personal(
            cur, email=f"user-{uuid.uuid4().hex[:10]}@example.com", plan_id=plan_id
        )


def new_member(owner: accounts.Owner, role: str) -> accounts.Owner:
    """A new user who is a `role` (owner's account already has its owner: `admin` or
    `member`) of the owner's account: that user and the account."""
    with db.transaction() as cur:
        row = cur.execute(
            "INSERT INTO users (email) VALUES (%s) RETURNING id",
            (f"{role}-{uuid.uuid4().hex[:10]}@example.com",),
        ).fetchone()
        assert row is not None
        cur.execute(
            "INSERT INTO memberships (account_id, user_id, role) VALUES (%s, %s, %s)",
            (owner.account_id, row[0], role),
        )
    return accounts.Owner(user_id=str(row[0]), account_id=owner.account_id)


def fund(account_id: str, nanos: int) -> None:
    """Grant `nanos` to an account through the ledger (an admin grant)."""
    with db.transaction() as cur:
        credits.post(cur, account_id=account_id, kind="admin_grant", amount_nanos=nanos)


def new_key(
    owner: accounts.Owner, *, scopes: Sequence[str] = keys.DEFAULT_SCOPES, **columns: object
) -> keys.NewKey:
    """A key of the owner's account made by `keys.create`, then given `columns` of
    `api_keys` (limits, dates) as an admin or the keys route would set them."""
    from psycopg import sql

    from gatewayz import config

    with db.transaction() as cur:
        key = keys.create(
            cur,
            account_id=owner.account_id,
            user_id=owner.user_id,
            name="test key",
            pepper=config.key_hash_secret(),
            scopes=scopes,
        )
        if columns:
            assignments = sql.SQL(", ").join(
                sql.SQL("{} = %s").format(sql.Identifier(name)) for name in columns
            )
            cur.execute(
                sql.SQL("UPDATE api_keys SET {} WHERE id = %s").format(assignments),
                (*columns.values(), key.id),
            )
    return key


def expire_hold(request_id: str) -> None:
    """Move a hold's life into the past, as if its function crashed an hour ago.

    Only the dates change, so the money invariant is untouched."""
    db.execute(
        """UPDATE credit_holds SET created_at = now() - interval '2 hours',
                                   expires_at = now() - interval '1 hour'
            WHERE request_id = %s""",
        (request_id,),
    )


def add_echo_model() -> str:
    """`test/echo`: 8,192 tokens of context, 1,024 of output, at $1 / $2 per million tokens
    from `openrouter` (tried first) and `featherless`, as the fake providers serve it."""
    from decimal import Decimal

    from gatewayz.chat import catalog

    with db.transaction() as cur:
        cur.execute(
            """INSERT INTO models (id, name, context_length, max_output_tokens)
               VALUES ('test/echo', 'Test: Echo', 8192, 1024) ON CONFLICT (id) DO NOTHING"""
        )
        for provider, priority in (("openrouter", 10), ("featherless", 20)):
            cur.execute(
                """INSERT INTO model_offers (model_id, provider, provider_model_id, priority,
                                             input_price, output_price)
                   VALUES ('test/echo', %s, %s, %s, %s, %s)
                   ON CONFLICT (model_id, provider) DO NOTHING""",
                (provider, f"{provider}/echo", priority, Decimal(1), Decimal(2)),
            )
    catalog.refresh()
    return "test/echo"


def new_hold(account_id: str, nanos: int, *, key_id: str | None = None) -> credits.Hold:
    """Credits held for a fresh request id: exactly `nanos`, no limits in the way."""
    result = db.run(
        credits.reserve(
            account_id=account_id,
            api_key_id=key_id,
            request_id=f"req_{uuid.uuid4().hex}",
            max_nanos=nanos,
            min_nanos=nanos,
            ttl_s=300,
            concurrency=None,
            key_concurrency=None,
        )
    )
    assert isinstance(result, credits.Hold), result
    return result
