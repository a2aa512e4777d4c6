"""The keys function: API keys, the calling key, accounts, teams, audit logs and user
admin (docs/api.md, keys, account, teams). Routes only: each parses, calls the
`gatewayz.identity` (or `gatewayz.billing`) function that does the work, and shapes the
answer.
"""

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from gatewayz import errors, openapi
from gatewayz.http import create_app, lambda_handler
from gatewayz.lazy import module

# Loaded by the first route that uses them: settings, the database layer and pricing come
# with them, which importing the function need not pay (bench/coldstart.py).
accounts = module("gatewayz.identity.accounts")
bodies = module("gatewayz.identity.bodies")
invitations = module("gatewayz.identity.invitations")
key_fields = module("gatewayz.identity.key_fields")
key_management = module("gatewayz.identity.key_management")
principal = module("gatewayz.identity.principal")
signup = module("gatewayz.identity.signup")
team_members = module("gatewayz.identity.team_members")
teams = module("gatewayz.identity.teams")

# No parameters, bodies or response models of FastAPI's own: it would import pydantic.v1
# at cold start to build them (bench/README.md, cold import). The routes read them from
# the Request; these describe them in the OpenAPI document.
KEY = openapi.parameter("key_id", "path", "the key's id")

# API keys: /v1/keys*, /v1/key.
keys_router = APIRouter()


@keys_router.post(
    "/v1/keys",
    status_code=201,
    openapi_extra=openapi.body(
        "KeyCreate",
        "gatewayz.identity.key_fields:KeyCreate",
        "The key's name (required), scopes, limits and restrictions.",
    ),
)
async def create_key(request: Request) -> JSONResponse:
    return JSONResponse(key_management.create(request, await request.body()), status_code=201)


@keys_router.get(
    "/v1/keys",
    openapi_extra=openapi.parameters(
        openapi.LIMIT,
        openapi.CURSOR,
        openapi.parameter("include_revoked", "query", "`true` to list them too"),
    ),
)
async def list_keys(request: Request) -> JSONResponse:
    query = request.query_params
    found = key_management.list_keys(
        request, query.get("limit"), query.get("cursor"), query.get("include_revoked")
    )
    return JSONResponse(found)


@keys_router.get("/v1/keys/{key_id}", openapi_extra=openapi.parameters(KEY))
async def get_key(request: Request) -> JSONResponse:
    return JSONResponse(key_management.get(request, request.path_params["key_id"]))


@keys_router.patch(
    "/v1/keys/{key_id}",
    openapi_extra=openapi.parameters(KEY)
    | openapi.body(
        "KeyUpdate", "gatewayz.identity.key_fields:KeyUpdate", "The settings to change."
    ),
)
async def update_key(request: Request) -> JSONResponse:
    key_id = request.path_params["key_id"]
    return JSONResponse(key_management.update(request, key_id, await request.body()))


@keys_router.delete("/v1/keys/{key_id}", openapi_extra=openapi.parameters(KEY))
async def revoke_key(request: Request) -> JSONResponse:
    return JSONResponse(key_management.revoke(request, request.path_params["key_id"]))


@keys_router.post(
    "/v1/keys/{key_id}/rotate",
    openapi_extra=openapi.parameters(KEY)
    | openapi.body(
        "KeyRotate",
        "gatewayz.identity.key_fields:KeyRotate",
        "How long the old secret keeps working (optional).",
        required=False,
    ),
)
async def rotate_key(request: Request) -> JSONResponse:
    key_id = request.path_params["key_id"]
    return JSONResponse(key_management.rotate(request, key_id, await request.body()))


@keys_router.get("/v1/key")
async def current_key(request: Request) -> JSONResponse:
    return JSONResponse(key_management.current(request))


# --- /v1/provider-keys: the account's own provider keys (bring-your-own-key) ---------
provider_keys_router = APIRouter()


@provider_keys_router.post(
    "/v1/provider-keys",
    openapi_extra=openapi.body(
        "ProviderKeyCreate",
        "gatewayz.identity.provider_keys:ProviderKeyCreate",
        "The provider and the account's own key for it.",
    ),
)
async def store_provider_key(request: Request) -> JSONResponse:
    from gatewayz.identity import principal, provider_keys

    owner = principal.from_request(request, provider_keys.WRITE_SCOPES)
    body = provider_keys.parse(await request.body())
    stored, created = provider_keys.store(owner, body, request)
    return JSONResponse({"data": stored.public()}, status_code=201 if created else 200)


@provider_keys_router.get(
    "/v1/provider-keys", openapi_extra=openapi.parameters(openapi.LIMIT, openapi.CURSOR)
)
async def list_provider_keys(request: Request) -> JSONResponse:
    from gatewayz.identity import principal, provider_keys

    owner = principal.from_request(request, provider_keys.READ_SCOPES)
    query = request.query_params
    page = provider_keys.list_page(owner, limit=query.get("limit"), cursor=query.get("cursor"))
    return JSONResponse(page)


@provider_keys_router.delete(
    "/v1/provider-keys/{ref}",
    openapi_extra=openapi.parameters(
        openapi.parameter("ref", "path", "the stored key's id or its provider's name")
    ),
)
async def delete_provider_key(request: Request) -> JSONResponse:
    from gatewayz.identity import principal, provider_keys

    owner = principal.from_request(request, provider_keys.WRITE_SCOPES)
    gone = provider_keys.delete(owner, request.path_params["ref"], request)
    return JSONResponse({"data": {**gone.public(), "deleted": True}})


# --- end /v1/provider-keys ------------------------------------------------------------
app = create_app("keys", [keys_router, provider_keys_router])
handler = lambda_handler(app)


# --- /v1/account: sign-up with a Supabase session, the profile, closing the account ---
ACCOUNT_CREATE = openapi.body(
    "AccountCreate",
    "gatewayz.identity.bodies:AccountCreate",
    "Optional, with a session: the new user's display name.",
    required=False,
)


@app.post("/v1/account", status_code=201, response_model=None, openapi_extra=ACCOUNT_CREATE)
async def create_account(request: Request, response: Response) -> dict[str, Any]:
    session = principal.session_of(request)
    # A key's account exists already: the answer is its profile.
    caller = None if session else principal.from_request(request, accounts.READ_SCOPES)
    body = key_fields.parse(bodies.AccountCreate, await request.body())
    if session is None:
        response.status_code = 200
        return {"data": accounts.profile(caller)}
    result = signup.sign_up(session, display_name=body.display_name, request=request)
    if not result.created:
        response.status_code = 200
        return {"data": result.profile}
    assert result.key is not None
    return {"data": result.profile, "key": result.key.secret}


@app.get("/v1/account", response_model=None)
def get_account(request: Request) -> dict[str, Any]:
    return {"data": accounts.profile(principal.from_request(request, accounts.READ_SCOPES))}


@app.patch(
    "/v1/account",
    response_model=None,
    openapi_extra=openapi.body(
        "AccountUpdate",
        "gatewayz.identity.bodies:AccountUpdate",
        "The fields to change; `name` and `email_preferences` need the owner or an admin.",
    ),
)
async def update_account(request: Request) -> dict[str, Any]:
    caller = principal.from_request(request, accounts.WRITE_SCOPES)
    body = key_fields.parse(bodies.AccountUpdate, await request.body())
    changes = body.model_dump(exclude_unset=True)
    return {"data": accounts.update(caller, changes, request=request)}


@app.delete("/v1/account", response_model=None)
def delete_account(request: Request) -> dict[str, Any]:
    caller = principal.from_request(request, accounts.CLOSE_SCOPES)
    return {"data": accounts.close(caller, request=request)}


# --- end of /v1/account ---


# --- /v1/teams and /v1/invitations: team accounts, members, invitations ---------------
TEAM = openapi.parameter("team_id", "path", "the team's id")
MEMBER = openapi.parameter("user_id", "path", "the member's user id")
TEAM_BODY = openapi.body("TeamCreate", "gatewayz.identity.bodies:TeamCreate", "The team's name.")


@app.post("/v1/teams", status_code=201, response_model=None, openapi_extra=TEAM_BODY)
async def create_team(request: Request) -> dict[str, Any]:
    caller = principal.from_request(request, teams.WRITE_SCOPES)
    body = key_fields.parse(bodies.TeamCreate, await request.body())
    return teams.create(caller, body.name, request=request)


@app.get(
    "/v1/teams",
    response_model=None,
    openapi_extra=openapi.parameters(openapi.LIMIT, openapi.CURSOR),
)
def list_teams(request: Request) -> dict[str, Any]:
    caller = principal.from_request(request, teams.READ_SCOPES)
    query = request.query_params
    return teams.list_teams(caller, query.get("limit"), query.get("cursor"))


@app.get("/v1/teams/{team_id}", response_model=None, openapi_extra=openapi.parameters(TEAM))
def get_team(request: Request) -> dict[str, Any]:
    caller = principal.from_request(request, teams.READ_SCOPES)
    return teams.get(caller, request.path_params["team_id"])


@app.patch(
    "/v1/teams/{team_id}", response_model=None, openapi_extra=openapi.parameters(TEAM) | TEAM_BODY
)
async def update_team(request: Request) -> dict[str, Any]:
    caller = principal.from_request(request, teams.WRITE_SCOPES)
    body = key_fields.parse(bodies.TeamCreate, await request.body())
    return teams.update(caller, request.path_params["team_id"], body.name, request=request)


@app.get(
    "/v1/teams/{team_id}/members",
    response_model=None,
    openapi_extra=openapi.parameters(TEAM, openapi.LIMIT, openapi.CURSOR),
)
def list_team_members(request: Request) -> dict[str, Any]:
    caller = principal.from_request(request, teams.READ_SCOPES)
    query, team_id = request.query_params, request.path_params["team_id"]
    return team_members.list_members(caller, team_id, query.get("limit"), query.get("cursor"))


@app.patch(
    "/v1/teams/{team_id}/members/{user_id}",
    response_model=None,
    openapi_extra=openapi.parameters(TEAM, MEMBER)
    | openapi.body("MemberUpdate", "gatewayz.identity.bodies:MemberUpdate", "The new role."),
)
async def update_team_member(request: Request) -> dict[str, Any]:
    caller = principal.from_request(request, teams.WRITE_SCOPES)
    role = key_fields.parse(bodies.MemberUpdate, await request.body()).role
    team_id, user_id = request.path_params["team_id"], request.path_params["user_id"]
    return team_members.set_role(caller, team_id, user_id, role, request=request)


@app.delete(
    "/v1/teams/{team_id}/members/{user_id}",
    response_model=None,
    openapi_extra=openapi.parameters(TEAM, MEMBER),
)
def remove_team_member(request: Request) -> dict[str, Any]:
    caller = principal.from_request(request, teams.WRITE_SCOPES)
    team_id, user_id = request.path_params["team_id"], request.path_params["user_id"]
    return team_members.remove(caller, team_id, user_id, request=request)


@app.post(
    "/v1/teams/{team_id}/invitations",
    status_code=201,
    response_model=None,
    openapi_extra=openapi.parameters(TEAM)
    | openapi.body(
        "InvitationCreate",
        "gatewayz.identity.bodies:InvitationCreate",
        "Whom to invite (an e-mail address) and as what (`member` unless said).",
    ),
)
async def create_invitation(request: Request) -> dict[str, Any]:
    caller = principal.from_request(request, teams.WRITE_SCOPES)
    body = key_fields.parse(bodies.InvitationCreate, await request.body())
    team_id = request.path_params["team_id"]
    return invitations.create(caller, team_id, body.email, body.role, request=request)


@app.get(
    "/v1/teams/{team_id}/invitations",
    response_model=None,
    openapi_extra=openapi.parameters(TEAM, openapi.LIMIT, openapi.CURSOR),
)
def list_invitations(request: Request) -> dict[str, Any]:
    caller = principal.from_request(request, teams.READ_SCOPES)
    query, team_id = request.query_params, request.path_params["team_id"]
    return invitations.list_invitations(caller, team_id, query.get("limit"), query.get("cursor"))


@app.delete(
    "/v1/teams/{team_id}/invitations/{invitation_id}",
    response_model=None,
    openapi_extra=openapi.parameters(
        TEAM, openapi.parameter("invitation_id", "path", "the invitation's id")
    ),
)
def revoke_invitation(request: Request) -> dict[str, Any]:
    caller = principal.from_request(request, teams.WRITE_SCOPES)
    team_id, invitation_id = request.path_params["team_id"], request.path_params["invitation_id"]
    return invitations.revoke(caller, team_id, invitation_id, request=request)


@app.post(
    "/v1/invitations/{token}/accept",
    response_model=None,
    openapi_extra=openapi.parameters(openapi.parameter("token", "path", "the invitation's token")),
)
def accept_invitation(request: Request) -> dict[str, Any]:
    session = principal.session_of(request)
    if session is None:
        raise errors.InvalidSession("Accept an invitation signed in (a session), not with a key.")
    return invitations.accept(session, request.path_params["token"], request=request)


# --- end of /v1/teams ---


# --- /v1/audit-logs and the operators' /admin/* routes ---------------------------------
AUDIT_READ = ("keys:read",)
USER = openapi.parameter("user_id", "path", "the user's id")


@app.get("/v1/audit-logs", response_model=None)
def list_audit_logs(request: Request) -> dict[str, Any]:
    from gatewayz.identity import audit_log

    caller = principal.from_request(request, AUDIT_READ)
    principal.require_manager(caller)
    return audit_log.list_page(audit_log.parse(request.query_params, account_id=caller.account_id))


@app.get("/admin/audit-logs", response_model=None)
def list_all_audit_logs(request: Request) -> dict[str, Any]:
    from gatewayz.identity import admin, audit_log

    admin.operator(request)
    return audit_log.list_page(audit_log.parse(request.query_params, account_id=None))


@app.post("/admin/users", status_code=201, response_model=None)
async def create_user(request: Request) -> dict[str, Any]:
    from gatewayz.identity import admin

    actor = admin.operator(request)
    body = admin.object_body(await request.body())
    created, key = admin.create_user(body.get("email"), actor=actor, request=request)
    return {"data": created, "key": key.secret}


@app.get(
    "/admin/users",
    response_model=None,
    openapi_extra=openapi.parameters(
        openapi.parameter("q", "query", "part of the e-mail address (any case)"),
        openapi.LIMIT,
        openapi.CURSOR,
    ),
)
def list_users(request: Request) -> dict[str, Any]:
    from gatewayz.identity import admin

    admin.operator(request)
    query = request.query_params
    return admin.list_users(query.get("q"), query.get("limit"), query.get("cursor"))


@app.get("/admin/users/{user_id}", response_model=None, openapi_extra=openapi.parameters(USER))
def get_user(request: Request) -> dict[str, Any]:
    from gatewayz.identity import admin

    admin.operator(request)
    return {"data": admin.get_user(request.path_params["user_id"])}


@app.patch("/admin/users/{user_id}", response_model=None, openapi_extra=openapi.parameters(USER))
async def update_user(request: Request) -> dict[str, Any]:
    from gatewayz.identity import admin

    actor = admin.operator(request)
    body = admin.object_body(await request.body())
    user_id = request.path_params["user_id"]
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
