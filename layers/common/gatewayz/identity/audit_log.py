"""Reading the audit log: an account's rows for its owner and admins
(`GET /v1/audit-logs`), every account's for the platform's operators
(`GET /admin/audit-logs`).

Rows come newest first, a page at a time, narrowed by filters: `actor` (a user or key
id, or `system`/`stripe`), `action`, `target` (`type` or `type:id`), `since`/`until`
(RFC 3339) and, for operators, `account`. A filter that cannot mean anything is a 400
naming it, never an empty page.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from psycopg import sql

from gatewayz import db, errors, pagination
from gatewayz.record import record

if TYPE_CHECKING:
    from collections.abc import Mapping

# Query parameters of the two routes; the operators' adds `account`.
FILTERS = ("actor", "action", "target", "since", "until")
ACTOR_KINDS = ("system", "stripe")
TEXT_MAX = 200

_SELECT = sql.SQL(
    """SELECT id, account_id, actor_kind, actor_user_id, actor_key_id, action, target_type,
              target_id, before, after, ip, request_id, created_at
         FROM audit_log WHERE {} ORDER BY created_at DESC, id DESC LIMIT %s"""
)


@record
class Query:
    """What a list request asked for: the filters as SQL, and the page."""

    where: sql.Composed
    params: tuple[Any, ...]
    page: pagination.Page


def parse(params: Mapping[str, str | None], *, account_id: str | None) -> Query:
    """The query for `params` (the request's filters, `limit` and `cursor`), within
    `account_id`, or within the account the `account` filter names when `account_id` is
    None (operators).

    Raises:
        InvalidRequest: a filter, `limit` or `cursor` that is not valid (param named).
    """
    page = pagination.parse(params.get("limit"), params.get("cursor"), width=2)
    clauses: list[sql.Composable] = [sql.SQL("TRUE")]
    values: list[Any] = []
    account = account_id if account_id is not None else _uuid(params, "account")
    if account is not None:
        clauses.append(sql.SQL("account_id = %s"))
        values.append(account)
    actor = params.get("actor")
    if actor is not None:
        if actor in ACTOR_KINDS:
            clauses.append(sql.SQL("actor_kind = %s"))
            values.append(actor)
        else:
            found = _uuid(params, "actor", also="or one of system, stripe")
            clauses.append(sql.SQL("(actor_user_id = %s OR actor_key_id = %s)"))
            values += [found, found]
    action = _text(params, "action")
    if action is not None:
        clauses.append(sql.SQL("action = %s"))
        values.append(action)
    target = _text(params, "target")
    if target is not None:
        kind, colon, target_id = target.partition(":")
        if not kind or (colon and not target_id):
            raise errors.InvalidRequest("target must be a type or type:id.", param="target")
        clauses.append(sql.SQL("target_type = %s"))
        values.append(kind)
        if colon:
            clauses.append(sql.SQL("target_id = %s"))
            values.append(target_id)
    for name, operator in (("since", ">="), ("until", "<")):
        moment = _time(params, name)
        if moment is not None:
            clauses.append(sql.SQL(f"created_at {operator} %s"))
            values.append(moment)
    if page.after is not None:
        clauses.append(sql.SQL("(created_at, id) < (%s, %s)"))
        values += _after(page.after)
    return Query(sql.SQL(" AND ").join(clauses), tuple(values), page)


def list_page(query: Query) -> dict[str, Any]:
    """One page of the rows `query` selects, newest first."""
    rows = (
        db.connection()
        .execute(_SELECT.format(query.where), (*query.params, query.page.limit + 1))
        .fetchall()
    )
    return pagination.respond(
        rows, query.page, key=lambda row: (row[12].isoformat(), int(row[0])), shape=shape
    )


def shape(row: tuple[Any, ...]) -> dict[str, Any]:
    """An audit row as the API shows it."""
    (row_id, account_id, kind, user_id, key_id, action, target_type, target_id, before,
     after, ip, request_id, created_at) = row  # fmt: skip
    return {
        "id": str(row_id),
        "object": "audit_log",
        "account_id": None if account_id is None else str(account_id),
        "actor": {
            "kind": kind,
            "user_id": None if user_id is None else str(user_id),
            "key_id": None if key_id is None else str(key_id),
        },
        "action": action,
        "target": {"type": target_type, "id": target_id},
        "before": before,
        "after": after,
        "ip": None if ip is None else str(ip),
        "request_id": request_id,
        "created_at": created_at.isoformat(),
    }


def _after(values: tuple[Any, ...]) -> list[Any]:
    """A cursor's (created_at, id), checked: a forged one is a 400, not a database error."""
    try:
        moment = datetime.fromisoformat(str(values[0]))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None or not isinstance(values[1], int):
        raise errors.InvalidRequest("cursor is not valid for this list.", param="cursor")
    return [moment, values[1]]


def _text(params: Mapping[str, str | None], name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if not value.strip() or len(value) > TEXT_MAX or not value.isprintable():
        raise errors.InvalidRequest(
            f"{name} must be a non-blank string of at most {TEXT_MAX} characters.", param=name
        )
    return value


def _uuid(params: Mapping[str, str | None], name: str, *, also: str = "") -> str | None:
    value = params.get(name)
    if value is None:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise errors.InvalidRequest(
            f"{name} must be an id{' ' + also if also else ''}.", param=name
        ) from None


def _time(params: Mapping[str, str | None], name: str) -> datetime | None:
    value = params.get(name)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None or "T" not in value.upper():
        raise errors.InvalidRequest(
            f"{name} must be an RFC 3339 time with its offset, like 2026-01-31T12:00:00Z.",
            param=name,
        )
    return moment
