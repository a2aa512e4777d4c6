"""A session's messages (docs/api.md, chat history): append and list.

A message follows its parent: the one named by `parent_id`, else the session's newest
message, so a session is a tree: appending after an older message starts a branch, and a
thread is a message with its ancestors. Appending is one call of the
`chat_messages_append` SQL function (infra/migrations/0024), which checks the session's
owner and the parent and chains the new messages in one statement.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gatewayz import db, errors, jsonbody, pagination
from gatewayz.history import records
from gatewayz.history.exceptions import MessageNotFound, session_not_found

if TYPE_CHECKING:
    from gatewayz.history.types import Owner

NOT_FOUND = "GW404"  # chat_messages_append: not the owner's session
BAD_PARENT = "GW400"  # chat_messages_append: the parent is not in the session
_COLUMNS = "id, parent_id, role, content, extra, model, request_id, tokens, created_at"
_LIST = f"""
SELECT {_COLUMNS}
  FROM chat_messages
 WHERE session_id = (SELECT id FROM chat_sessions
                      WHERE id = %s AND account_id = %s AND user_id = %s AND deleted_at IS NULL)
   {{after}}
 ORDER BY id {{order}}
 LIMIT %s
"""


def append(owner: Owner, session_id: str, raw: bytes) -> list[dict[str, Any]]:
    """Append the body's message(s) to the owner's session; the messages as stored.

    Raises:
        SessionNotFound: not the owner's session.
        MessageNotFound: `parent_id` is not a message of the session.
        InvalidRequest: a bad field (named).
    """
    import psycopg
    from psycopg.types.json import Jsonb

    found = records.session_uuid(session_id)
    if found is None:
        raise session_not_found(session_id)
    messages, parent = records.parse_append(jsonbody.loads(raw))
    stored = [records.stored(m) for m in messages]
    try:
        row = db.execute(
            "SELECT chat_messages_append(%s, %s, %s, %s, %s)",
            (found, owner.account_id, owner.user_id, parent, Jsonb(stored)),
        ).fetchone()
    except psycopg.Error as exc:
        if exc.sqlstate == NOT_FOUND:
            raise session_not_found(session_id) from None
        if exc.sqlstate == BAD_PARENT:
            raise MessageNotFound(
                f"No message {parent} in this session.", param="parent_id"
            ) from None
        raise
    assert row is not None
    ids: list[int] = row[0]
    return list_by_ids(ids)


def list_by_ids(ids: list[int]) -> list[dict[str, Any]]:
    """Messages by id (ids the caller just got from its own session), in that order."""
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM chat_messages WHERE id = ANY(%s) ORDER BY id", (ids,)
    ).fetchall()
    return [shape(row) for row in rows]


def list_page(
    owner: Owner, session_id: str, limit: str | None, cursor: str | None, order: str | None
) -> dict[str, Any]:
    """A page of the session's messages, oldest first (`order=desc`: newest first).

    Raises:
        SessionNotFound: not the owner's session.
        InvalidRequest: `limit`, `cursor` or `order` is not valid.
    """
    if order not in (None, "asc", "desc"):
        raise errors.InvalidRequest("order must be `asc` or `desc`.", param="order")
    found = records.session_uuid(session_id)
    if found is None or not exists(owner, found):
        raise session_not_found(session_id)
    return page_of(found, owner, pagination.parse(limit, cursor, width=1), order or "asc")


def page_of(
    session_id: str, owner: Owner, page: pagination.Page, order: str = "asc"
) -> dict[str, Any]:
    """One page of an owned session's messages (the owner is checked again by the query)."""
    after = ""
    params: list[Any] = [session_id, owner.account_id, owner.user_id]
    if page.after is not None:
        if not isinstance(page.after[0], int):
            raise errors.InvalidRequest("cursor is not valid for this list.", param="cursor")
        after = "AND id > %s" if order == "asc" else "AND id < %s"
        params.append(page.after[0])
    query = _LIST.format(after=after, order="ASC" if order == "asc" else "DESC")
    rows = db.execute(query, (*params, page.limit + 1)).fetchall()
    return pagination.respond(rows, page, key=lambda row: (int(row[0]),), shape=shape)


def exists(owner: Owner, session_id: str) -> bool:
    row = db.execute(
        "SELECT 1 FROM chat_sessions"
        " WHERE id = %s AND account_id = %s AND user_id = %s AND deleted_at IS NULL",
        (session_id, owner.account_id, owner.user_id),
    ).fetchone()
    return row is not None


def shape(row: tuple[Any, ...]) -> dict[str, Any]:
    message_id, parent_id, role, content, extra, model, request_id, tokens, created_at = row
    return {
        "id": int(message_id),
        "object": "chat.message",
        "parent_id": None if parent_id is None else int(parent_id),
        **records.replayed(role, content, extra),
        "model": model,
        "request_id": request_id,
        "tokens": tokens,
        "created_at": created_at.isoformat(),
    }
