"""The keys function: API keys, the calling key, accounts, teams, audit logs and user
admin (DESIGN §2).

Paths not served yet are routed here by template.yaml and answer 404 in the error
envelope.
"""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from gatewayz.http import create_app, lambda_handler

# API keys: /v1/keys*, /v1/key. The routes import the package on first use: psycopg is
# not loaded at import (cold start).
keys_router = APIRouter()


@keys_router.post("/v1/keys")
async def create_key(request: Request) -> JSONResponse:
    from gatewayz.identity import key_management

    return JSONResponse(key_management.create(request, await request.body()), status_code=201)


@keys_router.get("/v1/keys")
async def list_keys(
    request: Request,
    limit: str | None = None,
    cursor: str | None = None,
    include_revoked: str | None = None,
) -> JSONResponse:
    from gatewayz.identity import key_management

    return JSONResponse(key_management.list_keys(request, limit, cursor, include_revoked))


@keys_router.get("/v1/keys/{key_id}")
async def get_key(request: Request, key_id: str) -> JSONResponse:
    from gatewayz.identity import key_management

    return JSONResponse(key_management.get(request, key_id))


@keys_router.patch("/v1/keys/{key_id}")
async def update_key(request: Request, key_id: str) -> JSONResponse:
    from gatewayz.identity import key_management

    return JSONResponse(key_management.update(request, key_id, await request.body()))


@keys_router.delete("/v1/keys/{key_id}")
async def revoke_key(request: Request, key_id: str) -> JSONResponse:
    from gatewayz.identity import key_management

    return JSONResponse(key_management.revoke(request, key_id))


@keys_router.post("/v1/keys/{key_id}/rotate")
async def rotate_key(request: Request, key_id: str) -> JSONResponse:
    from gatewayz.identity import key_management

    return JSONResponse(key_management.rotate(request, key_id, await request.body()))


@keys_router.get("/v1/key")
async def current_key(request: Request) -> JSONResponse:
    from gatewayz.identity import key_management

    return JSONResponse(key_management.current(request))


app = create_app("keys", [keys_router])
handler = lambda_handler(app)
