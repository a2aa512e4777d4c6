"""The keys function: API keys, the calling key, accounts, teams, audit logs and user
admin (docs/api.md, keys, account, teams). Routes only: each parses, calls the
`gatewayz.identity` (or `gatewayz.billing`) function that does the work, and shapes the
answer.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from gatewayz import errors
from gatewayz.http import create_app, lambda_handler
from gatewayz.lazy import module

# Loaded by the first route that uses them: settings, the database layer and pricing come
# with them, which importing the function need not pay (bench/coldstart.py).
accounts = module("gatewayz.identity.accounts")
invitations = module("gatewayz.identity.invitations")
principal = module("gatewayz.identity.principal")
signup = module("gatewayz.identity.signup")
team_members = module("gatewayz.identity.team_members")
teams = module("gatewayz.identity.teams")

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
app = create_app("keys", [keys_router, provider_keys_router])
handler = lambda_handler(app)


# --- /v1/account: sign-up with a Supabase session, the profile, closing the account ---


class AccountCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    display_name: str | None = Field(default=None, min_length=1, max_length=200)


class AccountUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    display_name: str | None = Field(default=None, max_length=200)
    name: str | None = Field(default=None, max_length=200)
    # Optional notices on (true) or off (false): {"low_balance": false}. Checked by
    # accounts.update, which names the offending notice.
    email_preferences: dict[str, Any] | None = None


@app.post("/v1/account", status_code=201)
def create_account(
    request: Request, response: Response, body: Annotated[AccountCreate | None, Body()] = None
) -> dict[str, Any]:
    session = principal.session_of(request)
    if session is None:  # a key: its account exists already
        caller = principal.from_request(request, accounts.READ_SCOPES)
        response.status_code = 200
        return {"data": accounts.profile(caller)}
    result = signup.sign_up(session, display_name=body and body.display_name, request=request)
    if not result.created:
        response.status_code = 200
        return {"data": result.profile}
    assert result.key is not None
    return {"data": result.profile, "key": result.key.secret}


@app.get("/v1/account")
def get_account(request: Request) -> dict[str, Any]:
    return {"data": accounts.profile(principal.from_request(request, accounts.READ_SCOPES))}


@app.patch("/v1/account")
def update_account(request: Request, body: AccountUpdate) -> dict[str, Any]:
    caller = principal.from_request(request, accounts.WRITE_SCOPES)
    changes = body.model_dump(exclude_unset=True)
    return {"data": accounts.update(caller, changes, request=request)}


@app.delete("/v1/account")
def delete_account(request: Request) -> dict[str, Any]:
    caller = principal.from_request(request, accounts.CLOSE_SCOPES)
    return {"data": accounts.close(caller, request=request)}


# --- end of /v1/account ---


# --- /v1/teams and /v1/invitations: team accounts, members, invitations ---------------


# Required fields are checked after the caller is (a request without a bearer is a 401).
class TeamCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=200, description="required")


class MemberUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: str | None = Field(default=None, description="required: owner, admin or member")


class InvitationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str | None = Field(default=None, max_length=320, description="required")
    role: str = "member"


@app.post("/v1/teams", status_code=201)
def create_team(request: Request, body: TeamCreate) -> dict[str, Any]:
    caller = principal.from_request(request, teams.WRITE_SCOPES)
    return teams.create(caller, body.name, request=request)


@app.get("/v1/teams")
def list_teams(request: Request, limit: str | None = None, cursor: str | None = None) -> Any:
    caller = principal.from_request(request, teams.READ_SCOPES)
    return teams.list_teams(caller, limit, cursor)


@app.get("/v1/teams/{team_id}")
def get_team(request: Request, team_id: str) -> dict[str, Any]:
    return teams.get(principal.from_request(request, teams.READ_SCOPES), team_id)


@app.patch("/v1/teams/{team_id}")
def update_team(request: Request, team_id: str, body: TeamCreate) -> dict[str, Any]:
    caller = principal.from_request(request, teams.WRITE_SCOPES)
    return teams.update(caller, team_id, body.name, request=request)


@app.get("/v1/teams/{team_id}/members")
def list_team_members(
    request: Request, team_id: str, limit: str | None = None, cursor: str | None = None
) -> dict[str, Any]:
    caller = principal.from_request(request, teams.READ_SCOPES)
    return team_members.list_members(caller, team_id, limit, cursor)


@app.patch("/v1/teams/{team_id}/members/{user_id}")
def update_team_member(
    request: Request, team_id: str, user_id: str, body: MemberUpdate
) -> dict[str, Any]:
    caller = principal.from_request(request, teams.WRITE_SCOPES)
    return team_members.set_role(caller, team_id, user_id, body.role, request=request)


@app.delete("/v1/teams/{team_id}/members/{user_id}")
def remove_team_member(request: Request, team_id: str, user_id: str) -> dict[str, Any]:
    caller = principal.from_request(request, teams.WRITE_SCOPES)
    return team_members.remove(caller, team_id, user_id, request=request)


@app.post("/v1/teams/{team_id}/invitations", status_code=201)
def create_invitation(request: Request, team_id: str, body: InvitationCreate) -> dict[str, Any]:
    caller = principal.from_request(request, teams.WRITE_SCOPES)
    return invitations.create(caller, team_id, body.email, body.role, request=request)


@app.get("/v1/teams/{team_id}/invitations")
def list_invitations(
    request: Request, team_id: str, limit: str | None = None, cursor: str | None = None
) -> dict[str, Any]:
    caller = principal.from_request(request, teams.READ_SCOPES)
    return invitations.list_invitations(caller, team_id, limit, cursor)


@app.delete("/v1/teams/{team_id}/invitations/{invitation_id}")
def revoke_invitation(request: Request, team_id: str, invitation_id: str) -> dict[str, Any]:
    caller = principal.from_request(request, teams.WRITE_SCOPES)
    return invitations.revoke(caller, team_id, invitation_id, request=request)


@app.post("/v1/invitations/{token}/accept")
def accept_invitation(request: Request, token: str) -> dict[str, Any]:
    from gatewayz.identity import invitations

    session = principal.session_of(request)
    if session is None:
        raise errors.InvalidSession("Accept an invitation signed in (a session), not with a key.")
    return invitations.accept(session, token, request=request)


# --- end of /v1/teams ---


# --- /v1/audit-logs and the operators' /admin/* routes ---------------------------------
AUDIT_READ = ("keys:read",)


@app.get("/v1/audit-logs")
def list_audit_logs(request: Request) -> dict[str, Any]:
    from gatewayz.identity import audit_log

    caller = principal.from_request(request, AUDIT_READ)
    principal.require_manager(caller)
    return audit_log.list_page(audit_log.parse(request.query_params, account_id=caller.account_id))


@app.get("/admin/audit-logs")
def list_all_audit_logs(request: Request) -> dict[str, Any]:
    from gatewayz.identity import admin, audit_log

    admin.operator(request)
    return audit_log.list_page(audit_log.parse(request.query_params, account_id=None))


@app.post("/admin/users", status_code=201)
async def create_user(request: Request) -> dict[str, Any]:
    from gatewayz.identity import admin

    actor = admin.operator(request)
    body = admin.object_body(await request.body())
    created, key = admin.create_user(body.get("email"), actor=actor, request=request)
    return {"data": created, "key": key.secret}


@app.get("/admin/users")
def list_users(
    request: Request, q: str | None = None, limit: str | None = None, cursor: str | None = None
) -> dict[str, Any]:
    from gatewayz.identity import admin

    admin.operator(request)
    return admin.list_users(q, limit, cursor)


@app.get("/admin/users/{user_id}")
def get_user(request: Request, user_id: str) -> dict[str, Any]:
    from gatewayz.identity import admin

    admin.operator(request)
    return {"data": admin.get_user(user_id)}


@app.patch("/admin/users/{user_id}")
async def update_user(request: Request, user_id: str) -> dict[str, Any]:
    from gatewayz.identity import admin

    actor = admin.operator(request)
    body = admin.object_body(await request.body())
    return {"data": admin.update_user(user_id, body, actor=actor, request=request)}


@app.post("/admin/credits", status_code=201)
async def adjust_credits(request: Request) -> JSONResponse:
    from gatewayz.billing import adjustments
    from gatewayz.identity import admin

    actor = admin.operator(request)
    body = admin.object_body(await request.body())
    done = adjustments.adjust(
        body.get("account_id"), body.get("amount"), body.get("reason"), actor=actor,
        idempotency_key=request.headers.get("idempotency-key"), request=request,
    )  # fmt: skip
    replayed = {"Idempotent-Replayed": "true"} if done.replayed else {}
    return JSONResponse({"data": done.data}, status_code=201, headers=replayed)


# --- end of /v1/audit-logs and /admin/* ---
