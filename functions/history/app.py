"""The history function: chat sessions and their messages, with search (docs/api.md, chat
history). Routes only: each authenticates with the `history` scope, calls
`gatewayz.history`, and shapes the answer. The package is imported on first use: psycopg
is not loaded at import (cold start).
"""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from gatewayz import jsonbody
from gatewayz.http import create_app, lambda_handler
from gatewayz.lazy import module

principal = module("gatewayz.identity.principal")  # loaded by the first request (cold start)

router = APIRouter()
SCOPES = ("history",)


def _body(raw: bytes) -> object:
    return jsonbody.loads(raw) if raw.strip() else None


@router.post("/v1/chat/sessions")
async def create_session(request: Request) -> JSONResponse:
    from gatewayz.history import sessions

    owner = principal.from_request(request, SCOPES)
    created = sessions.create(owner, _body(await request.body()))
    return JSONResponse({"data": created}, status_code=201)


@router.get("/v1/chat/sessions")
async def list_sessions(
    request: Request, limit: str | None = None, cursor: str | None = None
) -> JSONResponse:
    from gatewayz.history import sessions

    owner = principal.from_request(request, SCOPES)
    return JSONResponse(sessions.list_page(owner, limit, cursor))


# Before `/{session_id}`, which would take `search` for an id.
@router.get("/v1/chat/sessions/search")
async def search_sessions(
    request: Request, q: str | None = None, limit: str | None = None, cursor: str | None = None
) -> JSONResponse:
    from gatewayz.history import search

    owner = principal.from_request(request, SCOPES)
    return JSONResponse(search.search(owner, q, limit, cursor))


@router.get("/v1/chat/sessions/{session_id}")
async def get_session(request: Request, session_id: str, limit: str | None = None) -> JSONResponse:
    from gatewayz.history import messages, sessions

    owner = principal.from_request(request, SCOPES)
    found = sessions.get(owner, session_id)
    page = messages.list_page(owner, found["id"], limit, None, None)
    found["messages"], found["messages_next_cursor"] = page["data"], page["next_cursor"]
    return JSONResponse({"data": found})


@router.patch("/v1/chat/sessions/{session_id}")
async def update_session(request: Request, session_id: str) -> JSONResponse:
    from gatewayz.history import sessions

    owner = principal.from_request(request, SCOPES)
    body = _body(await request.body())
    updated = sessions.update(owner, session_id, {} if body is None else body)
    return JSONResponse({"data": updated})


@router.delete("/v1/chat/sessions/{session_id}")
async def delete_session(request: Request, session_id: str) -> JSONResponse:
    from gatewayz.history import sessions

    owner = principal.from_request(request, SCOPES)
    return JSONResponse({"data": sessions.delete(owner, session_id)})


@router.post("/v1/chat/sessions/{session_id}/messages")
async def append_messages(request: Request, session_id: str) -> JSONResponse:
    from gatewayz.history import messages

    owner = principal.from_request(request, SCOPES)
    added = messages.append(owner, session_id, await request.body())
    return JSONResponse({"data": added}, status_code=201)


@router.get("/v1/chat/sessions/{session_id}/messages")
async def list_messages(
    request: Request,
    session_id: str,
    limit: str | None = None,
    cursor: str | None = None,
    order: str | None = None,
) -> JSONResponse:
    from gatewayz.history import messages

    owner = principal.from_request(request, SCOPES)
    return JSONResponse(messages.list_page(owner, session_id, limit, cursor, order))


app = create_app("history", [router])
handler = lambda_handler(app)
