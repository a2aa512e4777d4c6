"""The keys function: API keys, the calling key, accounts, teams, audit logs and user
admin (DESIGN §2).

Paths of this group that are not served yet are routed here by template.yaml and answer
404 in the error envelope.
"""

from typing import Annotated, Any

from fastapi import Body, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from gatewayz.http import create_app, lambda_handler
from gatewayz.identity import accounts, principal, signup

app = create_app("keys")
handler = lambda_handler(app)


# --- /v1/account: sign-up with a Supabase session, the profile, closing the account ---


class AccountCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    display_name: str | None = Field(default=None, min_length=1, max_length=200)


class AccountUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    display_name: str | None = Field(default=None, max_length=200)
    name: str | None = Field(default=None, max_length=200)


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
