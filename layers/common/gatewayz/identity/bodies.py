"""The request bodies of the account and team routes, read and checked at the edge.

The routes read their bodies themselves (`key_fields.parse`: strict JSON, an object, no
unknown field, a 400 naming the field at fault): FastAPI would import pydantic.v1 at
cold start to build a route with a body model of its own (bench/README.md, cold import).
Required fields are checked by the function that does the work, after the caller is, so
a request without a bearer is a 401 whatever its body.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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
