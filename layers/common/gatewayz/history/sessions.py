"""Chat sessions (docs/api.md, chat history): create, list, get, rename, delete.

Every statement selects by the owner's account AND user as well as the id, so another
account's or another member's session, a deleted one and an id that never existed all
answer the same 404. Deleting is soft (`deleted_at`): a deleted session is gone for every
read, search and injection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gatewayz import db, errors, pagination
from gatewayz.chat import request as chat_request
from gatewayz.history import records
from gatewayz.history.exceptions import session_not_found

if TYPE_CHECKING:
    from gatewayz.history.types import Owner

SCOPES = ("history",)
MAX_TITLE = 500
_COLUMNS = "id, title, model, metadata, created_at, updated_at"
_OWNED = "account_id = %s AND user_id = %s AND deleted_at IS NULL"
_ONE = f"id = %s AND {_OWNED}"


class SessionCreate(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    title: str = Field(default="New chat", max_length=MAX_TITLE)
    model: str | None = Field(default=None, max_length=200)
    metadata: dict[str, str] | None = None


class SessionUpdate(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    title: str | None = Field(default=None, max_length=MAX_TITLE)
    metadata: dict[str, str] | None = None


def create(owner: Owner, body: object) -> dict[str, Any]:
    """A new session of the owner.

    Raises:
        InvalidRequest: a bad field (named).
    """
    fields = _validate(SessionCreate, body if body is not None else {})
    row = db.execute(
        f"INSERT INTO chat_sessions (account_id, user_id, title, model, metadata)"
        f" VALUES (%s, %s, %s, %s, %s) RETURNING {_COLUMNS}",
        (owner.account_id, owner.user_id, fields.title, fields.model, Jsonb(fields.metadata or {})),
    ).fetchone()
    assert row is not None
    return shape(row)


def list_page(owner: Owner, limit: str | None, cursor: str | None) -> dict[str, Any]:
    """The owner's sessions, the most recently active first.

    Raises:
        InvalidRequest: `limit` or `cursor` is not valid.
    """
    page = pagination.parse(limit, cursor, width=2)
    after, params = "", [owner.account_id, owner.user_id]
    if page.after is not None:
        updated, last_id = page.after
        if not isinstance(updated, str) or records.session_uuid(str(last_id)) is None:
            raise _bad_cursor()
        after = " AND (updated_at, id) < (%s::timestamptz, %s::uuid)"
        params += [updated, last_id]
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM chat_sessions WHERE {_OWNED}{after}"
        " ORDER BY updated_at DESC, id DESC LIMIT %s",
        (*params, page.limit + 1),
    ).fetchall()
    return pagination.respond(
        rows, page, key=lambda row: (row[5].isoformat(), str(row[0])), shape=shape
    )


def get(owner: Owner, session_id: str) -> dict[str, Any]:
    """The owner's session `session_id`.

    Raises:
        SessionNotFound: not the owner's (or deleted, or no such id).
    """
    return shape(_owned(owner, session_id, f"SELECT {_COLUMNS} FROM chat_sessions WHERE {_ONE}"))


def update(owner: Owner, session_id: str, body: object) -> dict[str, Any]:
    """Rename the session (`title`) or replace its `metadata`.

    Raises:
        SessionNotFound: not the owner's.
        InvalidRequest: a bad field (named).
    """
    fields = _validate(SessionUpdate, body)
    metadata = None if fields.metadata is None else Jsonb(fields.metadata)
    statement = (
        "UPDATE chat_sessions SET title = COALESCE(%s, title),"
        f" metadata = COALESCE(%s, metadata), updated_at = now() WHERE {_ONE}"
        f" RETURNING {_COLUMNS}"
    )
    return shape(_owned(owner, session_id, statement, fields.title, metadata))


def delete(owner: Owner, session_id: str) -> dict[str, Any]:
    """Delete the session (soft: it disappears from every read, search and injection).

    Raises:
        SessionNotFound: not the owner's.
    """
    statement = f"UPDATE chat_sessions SET deleted_at = now() WHERE {_ONE} RETURNING id"
    row = _owned(owner, session_id, statement)
    return {"id": str(row[0]), "object": "chat.session", "deleted": True}


def _owned(owner: Owner, session_id: str, statement: str, *leading: Any) -> tuple[Any, ...]:
    """The row `statement` (its last condition `_ONE`) gives for the owner's session.

    Raises:
        SessionNotFound: no such session of the owner's (a malformed id included).
    """
    found = records.session_uuid(session_id)
    row = None
    if found is not None:
        params = (*leading, found, owner.account_id, owner.user_id)
        row = db.execute(statement, params).fetchone()
    if row is None:
        raise session_not_found(session_id)
    return tuple(row)


def shape(row: tuple[Any, ...]) -> dict[str, Any]:
    session_id, title, model, metadata, created_at, updated_at = row
    return {
        "id": str(session_id),
        "object": "chat.session",
        "title": title,
        "model": model,
        "metadata": metadata,
        "created_at": created_at.isoformat(),
        "updated_at": updated_at.isoformat(),
    }


def _validate[M: BaseModel](model: type[M], body: object) -> M:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise chat_request.invalid(exc) from None


def _bad_cursor() -> errors.InvalidRequest:
    return errors.InvalidRequest("cursor is not valid for this list.", param="cursor")
