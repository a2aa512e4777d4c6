"""The keys function: API keys, the calling key, accounts, teams, audit logs and user
admin (DESIGN §2).

Until its issue lands this function serves only `GET /health`; its other paths are
routed here by template.yaml and answer 404 in the error envelope.
"""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from gatewayz.http import create_app, lambda_handler

# --- /v1/provider-keys: the account's own provider keys (bring-your-own-key) ---------
provider_keys_router = APIRouter()


@provider_keys_router.post("/v1/provider-keys")
async def store_provider_key(request: Request) -> JSONResponse:
    from gatewayz.identity import principal, provider_keys

    owner = principal.from_request(request, provider_keys.WRITE_SCOPES)
    body = provider_keys.parse(await request.body())
    stored, created = provider_keys.store(owner, body, request)
    return JSONResponse({"data": stored.public()}, status_code=201 if created else 200)


@provider_keys_router.get("/v1/provider-keys")
async def list_provider_keys(
    request: Request, limit: str | None = None, cursor: str | None = None
) -> JSONResponse:
    from gatewayz.identity import principal, provider_keys

    owner = principal.from_request(request, provider_keys.READ_SCOPES)
    return JSONResponse(provider_keys.list_page(owner, limit=limit, cursor=cursor))


@provider_keys_router.delete("/v1/provider-keys/{ref}")
async def delete_provider_key(request: Request, ref: str) -> JSONResponse:
    from gatewayz.identity import principal, provider_keys

    owner = principal.from_request(request, provider_keys.WRITE_SCOPES)
    gone = provider_keys.delete(owner, ref, request)
    return JSONResponse({"data": {**gone.public(), "deleted": True}})


# --- end /v1/provider-keys ------------------------------------------------------------

app = create_app("keys", [provider_keys_router])
handler = lambda_handler(app)
