"""Searching the caller's chat history (docs/api.md, chat history): PostgreSQL full-text
search over the `search` column (infra/migrations/0005, a GIN index), ranked, with
snippets.

The query is the caller's words, never query syntax: `plainto_tsquery` keeps only the
words (every one required), so `&`, `|`, `!`, `:*`, quotes, `%` and `_` are no operators
or wildcards. Only messages of the caller's own (account AND user) live sessions match.
Results are ranked (`ts_rank`, as an integer score so the cursor stays exact), then
newest first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gatewayz import db, errors, pagination

if TYPE_CHECKING:
    from gatewayz.history.types import Owner

MAX_QUERY = 500
SNIPPET = "StartSel=**, StopSel=**, MaxWords=24, MinWords=8, MaxFragments=2"
_SEARCH = """
WITH q AS (SELECT plainto_tsquery('simple', %(q)s) AS query),
hits AS (
    SELECT m.id, m.session_id, s.title, m.role, m.content_text, m.created_at,
           round(ts_rank(m.search, q.query) * 1000000)::bigint AS score
      FROM q, chat_messages m
      JOIN chat_sessions s ON s.id = m.session_id
     WHERE m.search @@ q.query
       AND s.account_id = %(account)s AND s.user_id = %(user)s AND s.deleted_at IS NULL
)
SELECT id, session_id, title, role, score, created_at,
       ts_headline('simple', content_text, (SELECT query FROM q), %(snippet)s)
  FROM hits
 WHERE %(score)s::bigint IS NULL OR (score, id) < (%(score)s::bigint, %(id)s::bigint)
 ORDER BY score DESC, id DESC
 LIMIT %(limit)s
"""


def search(owner: Owner, q: str | None, limit: str | None, cursor: str | None) -> dict[str, Any]:
    """The owner's messages matching every word of `q`, best first.

    Raises:
        InvalidRequest: `q` missing, empty or too long; `limit` or `cursor` not valid.
    """
    if q is None or not q.strip() or len(q) > MAX_QUERY:
        raise errors.InvalidRequest(
            f"q must be 1 to {MAX_QUERY} characters of text to search for.", param="q"
        )
    page = pagination.parse(limit, cursor, width=2)
    score = last = None
    if page.after is not None:
        score, last = page.after
        if not isinstance(score, int) or not isinstance(last, int):
            raise errors.InvalidRequest("cursor is not valid for this list.", param="cursor")
    rows = db.execute(
        _SEARCH,
        {
            "q": q.replace("\x00", " "),
            "account": owner.account_id,
            "user": owner.user_id,
            "snippet": SNIPPET,
            "score": score,
            "id": last,
            "limit": page.limit + 1,
        },
    ).fetchall()
    return pagination.respond(rows, page, key=lambda row: (int(row[4]), int(row[0])), shape=_shape)


def _shape(row: tuple[Any, ...]) -> dict[str, Any]:
    message_id, session_id, title, role, score, created_at, snippet = row
    return {
        "object": "chat.search_result",
        "session_id": str(session_id),
        "session_title": title,
        "message_id": int(message_id),
        "role": role,
        "snippet": snippet,
        "score": score / 1e6,
        "created_at": created_at.isoformat(),
    }
