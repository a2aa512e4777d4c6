"""The referral routes with a Supabase session as the bearer: a user who just signed up
applies a friend's code and sees their own referrals, as with a key."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

from tests.functions.events import function
from tests.functions.test_account import Person, client, error_of, fake, sign_up

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from tests.fakes.supabase_auth import FakeAuth

__all__ = ["client", "fake"]  # the fixtures, shared with the account routes' tests
pytestmark = pytest.mark.usefixtures("database_url")


@pytest.fixture
async def referrals(fake: FakeAuth) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=function("referrals").app, client=("198.51.100.9", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://referrals.local") as c:
        yield c


async def test_a_signed_in_user_applies_a_friends_code(
    client: httpx.AsyncClient, referrals: httpx.AsyncClient, fake: FakeAuth
) -> None:
    friend, newcomer = Person(fake), Person(fake)
    await sign_up(client, friend)
    await sign_up(client, newcomer)
    code = (await referrals.get("/v1/referrals", headers=friend.headers())).json()["code"]
    applied = await referrals.post(
        "/v1/referrals/apply", json={"code": code.lower()}, headers=newcomer.headers()
    )
    assert applied.status_code == 201, applied.text
    again = await referrals.post(
        "/v1/referrals/apply", json={"code": code}, headers=newcomer.headers()
    )
    error_of(again, 409, "referral_already_applied")
    mine = (await referrals.get("/v1/referrals", headers=friend.headers())).json()
    assert mine["sign_ups"] == 1
    assert mine["data"][0]["email"] == newcomer.email[0] + "***@e***.com"
    error_of(
        await referrals.post("/v1/referrals/apply", json={"code": code}, headers=friend.headers()),
        400,
        "invalid_referral_code",
    )
