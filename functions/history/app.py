"""The history function: chat sessions and their messages, with search (docs/api.md, chat
history). Routes only: each authenticates with the `history` scope, calls
`gatewayz.history`, and shapes the answer. The package is imported on first use: psycopg
is not loaded at import (cold start).
"""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from gatewayz import jsonbody, openapi
from gatewayz.http import create_app, lambda_handler
from gatewayz.lazy import module

principal = module("gatewayz.identity.principal")  # loaded by the first request (cold start)

router = APIRouter()
SCOPES = ("history",)
# The routes read their parameters from the Request: FastAPI would import pydantic.v1 at
# cold start to build a route with parameters of its own (bench/README.md, cold import).
SESSION = openapi.parameter("session_id", "path", "the session's id")


def _body(raw: bytes) -> object:
    return jsonbody.loads(raw) if raw.strip() else None


@router.post("/v1/chat/sessions")
async def create_session(request: Request) -> JSONResponse:
    from gatewayz.history import sessions

    owner = principal.from_request(request, SCOPES)
    created = sessions.create(owner, _body(await request.body()))
    return JSONResponse({"data": created}, status_code=201)


@router.get("/v1/chat/sessions", openapi_extra=openapi.parameters(openapi.LIMIT, openapi.CURSOR))
async def list_sessions(request: Request) -> JSONResponse:
    from gatewayz.history import sessions

    owner = principal.from_request(request, SCOPES)
    query = request.query_params
    return JSONResponse(sessions.list_page(owner, query.get("limit"), query.get("cursor")))


# Before `/{session_id}`, which would take `search` for an id.
@router.get(
    "/v1/chat/sessions/search",
    openapi_extra=openapi.parameters(
        openapi.parameter("q", "query", "the words to find"), openapi.LIMIT, openapi.CURSOR
    ),
)
async def search_sessions(request: Request) -> JSONResponse:
    from gatewayz.history import search

    owner = principal.from_request(request, SCOPES)
    query = request.query_params
    found = search.search(owner, query.get("q"), query.get("limit"), query.get("cursor"))
    return JSONResponse(found)


@router.get(
    "/v1/chat/sessions/{session_id}", openapi_extra=openapi.parameters(SESSION, openapi.LIMIT)
)
async def get_session(request: Request) -> JSONResponse:
    from gatewayz.history import messages, sessions

    owner = principal.from_request(request, SCOPES)
    found = sessions.get(owner, request.path_params["session_id"])
    page = messages.list_page(owner, found["id"], request.query_params.get("limit"), None, None)
    found["messages"], found["messages_next_cursor"] = page["data"], page["next_cursor"]
    return JSONResponse({"data": found})


@router.patch("/v1/chat/sessions/{session_id}", openapi_extra=openapi.parameters(SESSION))
async def update_session(request: Request) -> JSONResponse:
    from gatewayz.history import sessions

    owner = principal.from_request(request, SCOPES)
    body = _body(await request.body())
    session_id = request.path_params["session_id"]
    updated = sessions.update(owner, session_id, {} if body is None else body)
    return JSONResponse({"data": updated})


@router.delete("/v1/chat/sessions/{session_id}", openapi_extra=openapi.parameters(SESSION))
async def delete_session(request: Request) -> JSONResponse:
    from gatewayz.history import sessions

    owner = principal.from_request(request, SCOPES)
    return JSONResponse({"data": sessions.delete(owner, request.path_params["session_id"])})


@router.post("/v1/chat/sessions/{session_id}/messages", openapi_extra=openapi.parameters(SESSION))
async def append_messages(request: Request) -> JSONResponse:
    from gatewayz.history import messages

    owner = principal.from_request(request, SCOPES)
    added = messages.append(owner, request.path_params["session_id"], await request.body())
    return JSONResponse({"data": added}, status_code=201)


@router.get(
    "/v1/chat/sessions/{session_id}/messages",
    openapi_extra=openapi.parameters(
        SESSION,
        openapi.LIMIT,
        openapi.CURSOR,
        openapi.parameter("order", "query", "`asc` (default) or `desc`"),
    ),
)
async def list_messages(request: Request) -> JSONResponse:
    from gatewayz.history import messages

    owner = principal.from_request(request, SCOPES)
    query, session_id = request.query_params, request.path_params["session_id"]
    page = messages.list_page(
        owner, session_id, query.get("limit"), query.get("cursor"), query.get("order")
    )
    return JSONResponse(page)


app = create_app("history", [router])
handler = lambda_handler(app)
