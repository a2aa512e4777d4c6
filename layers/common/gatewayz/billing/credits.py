"""Credits (docs/architecture.md, money): every balance change is one atomic SQL step
with a ledger entry.

Grants and debits go through the `ledger_post` SQL function (infra/migrations/0003),
which moves the balance and appends the entry together, and refuses a second entry
for the same external reference. A request holds credits before the provider is called
(`reserve`) and settles after (`settle`), each one SQL function call (0010, 0011) built as
a `db.Query`, which the request path awaits (gatewayz/adb.py); one
refused before the provider was called gives its hold back whole (`release`).
Settling never takes a balance below zero: a cost beyond the hold and the balance is
recorded as uncollected (and must stay 0). A long stream records its progress on its
hold (`record_progress`), so the sweeper charges what a dead function delivered.
"""

from __future__ import annotations

from dataclasses import field
from typing import TYPE_CHECKING, Any

from gatewayz.billing.pricing import Usage
from gatewayz.record import record

if TYPE_CHECKING:
    import psycopg

    from gatewayz.db import Query

GRANT_KINDS = frozenset({"trial", "purchase", "subscription", "coupon", "referral", "admin_grant"})
DEBIT_KINDS = frozenset({"usage", "refund", "dispute", "admin_debit", "trial_expiry"})
INSUFFICIENT_FUNDS = "GW402"  # the SQLSTATE ledger_post raises


class InsufficientFunds(Exception):
    """A debit would take the balance below zero."""


def post(
    cur: psycopg.Cursor[Any],
    *,
    account_id: str,
    kind: str,
    amount_nanos: int,
    external_ref: str | None = None,
    idempotency_key: str | None = None,
    description: str = "",
    metadata: dict[str, Any] | None = None,
    actor_user_id: str | None = None,
    allow_negative: bool = False,
) -> int | None:
    """Post a ledger entry (positive for grants, negative for debits).

    Returns the entry id, or None when `external_ref` was already posted (a replay).

    Raises:
        ValueError: the sign does not fit the kind.
        InsufficientFunds: a debit exceeds the balance (the transaction is aborted).
    """
    if (kind in GRANT_KINDS and amount_nanos <= 0) or (kind in DEBIT_KINDS and amount_nanos >= 0):
        raise ValueError(f"a {kind} entry cannot be {amount_nanos} nanos")
    if kind not in GRANT_KINDS | DEBIT_KINDS:
        raise ValueError(f"unknown ledger kind {kind!r}")
    import psycopg
    from psycopg.types.json import Jsonb

    params = (
        account_id,
        kind,
        amount_nanos,
        external_ref,
        idempotency_key,
        description,
        Jsonb(metadata or {}),
        actor_user_id,
        allow_negative,
    )
    try:
        row = cur.execute(
            "SELECT ledger_post(%s, %s, %s, %s, %s, %s, %s, %s, %s)", params
        ).fetchone()
    except psycopg.Error as exc:
        if exc.sqlstate == INSUFFICIENT_FUNDS:
            raise InsufficientFunds(f"{account_id} cannot cover {-amount_nanos} nanos") from None
        raise
    return None if row is None or row[0] is None else int(row[0])


def balance_nanos(cur: psycopg.Cursor[Any], account_id: str) -> int:
    """The spendable balance (holds excluded)."""
    row = cur.execute("SELECT balance_nanos FROM accounts WHERE id = %s", (account_id,)).fetchone()
    if row is None:
        raise LookupError(f"no account {account_id}")
    return int(row[0])


@record
class Hold:
    """Credits held for one request in flight."""

    request_id: str
    account_id: str
    api_key_id: str | None
    amount_nanos: int


@record
class Refusal:
    """Why a hold was refused: a `reserve_credits` reason (see infra/migrations/0010)."""

    reason: str


@record
class Settlement:
    """What settling recorded: the charge, and what the balance could not cover."""

    usage_record_id: str
    balance_after_nanos: int
    charged_nanos: int
    uncollected_nanos: int
    also: Any = None  # what `settle(also=...)`'s expression returned


@record
class UsageRecord:
    """Everything a usage row says about one request, besides who made it."""

    endpoint: str
    model: str
    status: int
    cost_nanos: int = 0  # tokens and fees
    fee_nanos: int = 0  # the part of cost_nanos for fee-bearing features
    provider: str | None = None
    provider_model: str | None = None
    upstream_id: str | None = None
    usage: Usage = field(default_factory=Usage)
    latency_ms: int | None = None
    upstream_latency_ms: int | None = None
    ttft_ms: int | None = None
    finish_reason: str | None = None
    error_code: str | None = None
    streamed: bool = False
    usage_estimated: bool = False
    # Served with the account's own provider key: cost_nanos is the gateway's fee, and the
    # provider billed the key `upstream_cost_nanos` (at the catalog's price).
    upstream_cost_nanos: int | None = None

    @property
    def byok(self) -> bool:
        """Whether the account's own provider key served the request."""
        return self.upstream_cost_nanos is not None


_RESERVE = "SELECT hold_nanos, refusal FROM reserve_credits(%s, %s, %s, %s, %s, %s, %s, %s)"
# The account row first, as `reserve_credits` and `settle_usage` lock it.
_RELEASE = (
    "WITH account AS (SELECT id FROM accounts WHERE id = %(account)s FOR UPDATE),"
    " gone AS (DELETE FROM credit_holds h USING account"
    "  WHERE h.request_id = %(request)s AND h.account_id = account.id"
    "  RETURNING h.amount_nanos)"
    " UPDATE accounts a SET balance_nanos = a.balance_nanos + gone.amount_nanos"
    " FROM gone WHERE a.id = %(account)s RETURNING a.balance_nanos"
)


def reserve(
    *,
    account_id: str,
    api_key_id: str | None,
    request_id: str,
    max_nanos: int,
    min_nanos: int,
    ttl_s: int,
    concurrency: int | None,
    key_concurrency: int | None,
    replacing: Hold | None = None,
) -> Query[Hold | Refusal]:
    """Hold up to `max_nanos` (at least `min_nanos`) for a request: one statement, to run
    with `db.run` or, on the request path, `adb.run`.

    `replacing` is this request's hold taken under limits that have changed since: it is
    given back first, in the same round trip (the two statements pipelined), so the
    request never holds twice. Refused (or failing), the old hold is gone too, or, if the
    database failed first, still there for `release` to return."""
    from gatewayz.db import Query

    params = (
        account_id,
        api_key_id,
        request_id,
        max_nanos,
        min_nanos,
        ttl_s,
        concurrency,
        key_concurrency,
    )
    statements: tuple[tuple[str, Any], ...] = ((_RESERVE, params),)
    if replacing is not None:
        statements = ((_RELEASE, _released(replacing)), *statements)

    def outcome(row: tuple[Any, ...] | None) -> Hold | Refusal:
        assert row is not None
        if row[1] is not None:
            return Refusal(row[1])
        return Hold(request_id, account_id, api_key_id, int(row[0]))

    return Query(statements, outcome)


def release(hold: Hold) -> bool:
    """Give a hold back whole, for a request refused before any provider was called (a
    rate limit, a key changed meanwhile): the balance regains it, with no ledger entry
    and no usage row, as if it had never been taken. One statement. False when the hold
    was already gone (settled, or swept after expiring)."""
    from gatewayz import db

    return db.execute(_RELEASE, _released(hold)).fetchone() is not None


def _released(hold: Hold) -> dict[str, str]:
    return {"account": hold.account_id, "request": hold.request_id}


def settle(
    hold: Hold, record: UsageRecord, *, also: tuple[str, tuple[Any, ...]] | None = None
) -> Query[Settlement]:
    """Charge `record.cost_nanos` (at most the hold plus the balance), release the rest of
    the hold, and write the usage row and ledger entry: one statement, to run with
    `db.run` or `adb.run`. A cost of 0 releases the hold and charges nothing. `also` (an
    SQL expression and its parameters) runs in that same statement, after the
    settlement: one round trip and one transaction for a write that belongs with the
    charge (a chat session's new turn)."""
    from gatewayz.db import Query

    usage = record.usage
    # A request served with the account's own key settles the same way, its usage row
    # marked with what the provider billed that key (infra/migrations/0016).
    function, extra = "settle_usage", ""
    if record.byok:
        function, extra = "settle_byok_usage", ", %s"
    companion, companion_params = also or ("NULL", ())
    sql = (
        "SELECT usage_record_id::text, balance_after_nanos, charged_nanos, uncollected_nanos,"
        f" {companion} FROM {function}(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
        f" %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s{extra})"
    )
    params = (
        *companion_params,
        hold.request_id,
        hold.account_id,
        hold.api_key_id,
        record.cost_nanos,
        record.fee_nanos,
        record.endpoint,
        record.model,
        record.provider,
        record.provider_model,
        record.upstream_id,
        usage.input_tokens,
        usage.cached_input_tokens,
        usage.output_tokens,
        usage.reasoning_tokens,
        usage.images,
        record.latency_ms,
        record.upstream_latency_ms,
        record.ttft_ms,
        record.status,
        record.finish_reason,
        record.error_code,
        record.streamed,
        record.usage_estimated,
        *((record.upstream_cost_nanos,) if record.byok else ()),
    )
    return Query(((sql, params),), _settlement)


def _settlement(row: tuple[Any, ...] | None) -> Settlement:
    assert row is not None
    return Settlement(str(row[0]), int(row[1]), int(row[2]), int(row[3]), row[4])


def record_progress(hold: Hold, record: UsageRecord) -> bool:
    """Note on the hold what a stream has delivered so far and what that costs, for the
    sweeper to charge if the function dies; False when the hold is gone."""
    from gatewayz import db

    usage = record.usage
    row = db.execute(
        "SELECT record_progress(%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            hold.request_id,
            record.cost_nanos,
            record.fee_nanos,
            record.endpoint,
            record.model,
            record.provider,
            record.provider_model,
            usage.prompt_tokens,
            usage.completion_tokens,
        ),
    ).fetchone()
    return bool(row and row[0])


def release_expired_holds() -> dict[str, int]:
    """The hold_sweeper job: end holds whose request never settled, charging the
    progress a dead stream recorded and returning the rest."""
    from gatewayz import db

    row = db.execute(
        "SELECT holds, released_nanos, charged_holds, charged_nanos, uncollected_nanos"
        " FROM release_expired_holds()"
    ).fetchone()
    assert row is not None
    return {
        "holds_released": int(row[0]),
        "released_nanos": int(row[1]),
        "holds_charged": int(row[2]),
        "charged_nanos": int(row[3]),
        "uncollected_nanos": int(row[4]),
    }
