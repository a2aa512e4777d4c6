"""Automatic history injection (docs/api.md, chat history): a chat request naming a
session (`session_id` in the body, or the `X-Session-Id` header) gets the session's
history put in front of its messages, within a token budget.

The budget is `history.max_tokens` from the body, else `HISTORY_MAX_TOKENS`, and never
more than every model that may serve the request leaves free: its context, less the
request's own prompt (typical count) and its output (the client's `max_tokens`, else a
quarter of the context at most). Inside it: the session's system prompt (its first
message, when a system or developer message; kept even past the budget, unless the
request brings its own), then the newest turns of the current thread (the newest
message and its ancestors) that fit, oldest first. A tool result whose call was left out
is left out too. Injected messages are prompt tokens like any others: they are in the
prompt estimate, the hold, and the bill the provider's usage makes.

Reading the history is one round trip, only for a request naming a session; it happens
before any credit is held, so another account's or user's session is a 404
(`param: session_id`) that costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gatewayz import adb, errors, http
from gatewayz.chat import request as chat_request
from gatewayz.db import Query
from gatewayz.history import records
from gatewayz.history.exceptions import session_not_found
from gatewayz.history.transcript import Transcript
from gatewayz.record import record

if TYPE_CHECKING:
    from starlette.requests import Request

    from gatewayz.chat.budget import Budget
    from gatewayz.chat.request import CompletionRequest
    from gatewayz.history.types import Owner

HEADER = "x-session-id"
MAX_DEPTH = 1000  # messages read back through a thread, at most
_THREAD = """
WITH RECURSIVE
owned AS (
    SELECT id FROM chat_sessions
     WHERE id = %s AND account_id = %s AND user_id = %s AND deleted_at IS NULL
),
-- The session's first and newest messages, found with the session id itself, which the
-- planner weighs by its own statistics: through a join (or a subquery's value, unknown
-- when planning), it judged every session's messages alike and walked the primary key
-- through every newer message of every session until it met one of this session's.
-- (Nothing read here leaves the statement unless `owned` has the row.)
first AS (
    SELECT m.id, m.role, m.content, m.extra, m.tokens FROM chat_messages m
     WHERE m.session_id = %s ORDER BY m.id LIMIT 1
),
head AS (
    SELECT m.id FROM chat_messages m WHERE m.session_id = %s ORDER BY m.id DESC LIMIT 1
),
thread AS (
    SELECT m.id, m.parent_id, m.role, m.content, m.extra, m.tokens, m.tokens AS total, 1 AS depth
      FROM chat_messages m JOIN head h ON m.id = h.id
    UNION ALL
    SELECT p.id, p.parent_id, p.role, p.content, p.extra, p.tokens, t.total + p.tokens, t.depth + 1
      FROM thread t JOIN chat_messages p ON p.id = t.parent_id
     WHERE t.total <= %s AND t.depth < %s
)
-- One row (none: not the owner's session): the messages as JSON arrays of
-- [id, role, content, extra, tokens], the thread's newest first.
SELECT (SELECT id FROM head),
       (SELECT jsonb_build_array(id, role, content, extra, tokens)
          FROM first WHERE role IN ('system', 'developer')),
       (SELECT jsonb_agg(jsonb_build_array(id, role, content, extra, tokens) ORDER BY depth)
          FROM thread)
  FROM owned
"""


@record
class Ask:
    """A request's wish for history: its session, and its own budget (None: the default)."""

    session_id: str
    max_tokens: int | None


def asked(request: Request, parsed: CompletionRequest, *, chat: bool) -> Ask | None:
    """The session a request names, if any (no work at all for one that names none).

    Raises:
        InvalidRequest: `session_id` or `history` is not valid, or named on a route
            that does not take it.
    """
    fields = parsed.history or {}
    header = http.request_headers(request.scope).get(HEADER)
    if not fields and header is None:
        return None
    if not chat:
        raise errors.InvalidRequest(
            "Chat history works with POST /v1/chat/completions only.",
            param="session_id" if "session_id" in fields or header else "history",
        )
    value = fields.get("session_id", header)
    if value is None:
        raise errors.InvalidRequest("`history` needs a `session_id`.", param="session_id")
    session_id = records.session_uuid(value) if isinstance(value, str) else None
    if session_id is None:
        raise errors.InvalidRequest(
            "`session_id` must be the id of a chat session (a UUID).", param="session_id"
        )
    return Ask(session_id, _max_tokens(fields.get("history")))


async def inject(
    owner: Owner,
    ask: Ask,
    parsed: CompletionRequest,
    plan: Budget,
    default_tokens: int,
    request_id: str,
) -> tuple[CompletionRequest, Transcript]:
    """`parsed` with the session's history in front of its messages, and the transcript
    that will save the new turn.

    Raises:
        SessionNotFound: not the caller's session (param `session_id`).
        InvalidRequest / ContextLengthExceeded: as for any chat request.
    """
    budget = min(default_tokens if ask.max_tokens is None else ask.max_tokens, _room(parsed, plan))
    thread = await adb.run(_read(owner, ask.session_id, budget))
    own = parsed.body["messages"]
    lead = 0  # the request's own leading system messages stay first
    while lead < len(own) and own[lead].get("role") in records.SYSTEM_ROLES:
        lead += 1
    prefix: list[dict[str, Any]] = []
    used = 0
    system = thread.system
    if system is not None and not lead:
        prefix, used = [records.replayed(system[1], system[2], system[3])], system[4] or 0
    picked, fitted = _fit(thread.turns, budget - used, skip=system[0] if system else None)
    history = prefix + picked
    body = {**parsed.body, "messages": [*own[:lead], *history, *own[lead:]]}
    # The session keeps its system prompt: a request's own is not saved over it.
    new = own[lead:] if system is not None else own
    transcript = Transcript(
        session_id=ask.session_id,
        account_id=owner.account_id,
        user_id=owner.user_id,
        parent_id=thread.head,
        new_messages=[m for m in new if m.get("role") in records.ROLES],
        request_id=request_id,
        injected_messages=len(history),
        injected_tokens=used + fitted,
    )
    return chat_request.parse(body, chat=True), transcript


@record
class _Thread:
    """What one read of a session returns: its newest message, its system prompt, and
    the current thread's messages, newest first, as far as the budget may reach (each
    message `[id, role, content, extra, tokens]`)."""

    head: int | None
    system: list[Any] | None
    turns: list[list[Any]]


def _read(owner: Owner, session_id: str, budget: int) -> Query[_Thread]:
    """One round trip: the session, if the owner's, and its thread.

    Raises (when run):
        SessionNotFound: not the owner's session (or deleted, or none).
    """
    params = (
        session_id,
        owner.account_id,
        owner.user_id,
        session_id,
        session_id,
        budget,
        MAX_DEPTH,
    )

    def thread(row: tuple[Any, ...] | None) -> _Thread:
        if row is None:
            raise session_not_found(session_id, param="session_id")
        return _Thread(head=row[0], system=row[1], turns=row[2] or [])

    return Query(((_THREAD, params),), thread)


def _fit(
    turns: list[list[Any]], budget: int, *, skip: int | None
) -> tuple[list[dict[str, Any]], int]:
    """The newest turns (newest first) whose tokens fit `budget`, oldest first, without
    a leading tool result (its call did not fit), and their tokens."""
    picked: list[tuple[dict[str, Any], int]] = []
    used = 0
    for message_id, role, content, extra, tokens in turns:
        if message_id == skip or used + (tokens or 0) > budget:
            break
        used += tokens or 0
        picked.append((records.replayed(role, content, extra), tokens or 0))
    picked.reverse()
    while picked and picked[0][0]["role"] == "tool":
        used -= picked.pop(0)[1]
    return [message for message, _ in picked], used


def headers(transcript: Transcript) -> dict[str, str]:
    """What the answer tells about the injection: how many messages, how many tokens."""
    return {
        "x-history-messages": str(transcript.injected_messages),
        "x-history-tokens": str(transcript.injected_tokens),
    }


def _room(parsed: CompletionRequest, plan: Budget) -> int:
    """The tokens every model that may serve the request leaves for history: its context,
    less the request's prompt and its output."""
    room = None
    for route in plan.routes:
        model, offer = route.attempt.model, route.attempt.offer
        context = offer.context_length or model.context_length
        limit = offer.max_output_tokens or model.max_output_tokens or context
        output = parsed.max_output_tokens or min(limit, context // 4)
        free = context - route.typical_prompt_tokens - output
        room = free if room is None else min(room, free)
    return max(0, room or 0)


def _max_tokens(history: object) -> int | None:
    """`history.max_tokens`: a whole number of tokens, 0 for none."""
    if history is None:
        return None
    if not isinstance(history, dict) or set(history) - {"max_tokens"}:
        raise errors.InvalidRequest(
            "`history` must be an object with `max_tokens`.", param="history"
        )
    value = history.get("max_tokens")
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise errors.InvalidRequest(
            "`history.max_tokens` must be a whole number of tokens (0 or more).",
            param="history.max_tokens",
        )
    return value
