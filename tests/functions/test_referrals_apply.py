"""POST /v1/referrals/apply and GET /v1/referrals through the referrals function's real
handler: who may apply which code when, and what a user sees of their referrals."""

from __future__ import annotations

import re

import pytest

from gatewayz import db
from tests.conftest import reset_caches
from tests.factories import new_key, new_member
from tests.functions import referrals_api as api

pytestmark = pytest.mark.usefixtures("database_url")
CODE = re.compile(r"[23456789ABCDEFGHJKMNPQRSTVWXYZ]{8}")


def referrals_of(person: api.Person) -> int:
    row = db.execute(
        "SELECT count(*) FROM referrals WHERE referred_user_id = %s", (person.owner.user_id,)
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_every_user_has_a_distinct_code_without_look_alikes() -> None:
    people = [api.person() for _ in range(20)]
    found = [p.code for p in people]
    assert all(CODE.fullmatch(code) for code in found)
    assert len(set(found)) == len(found)


def test_a_code_applies_in_any_case_with_spaces_and_dashes() -> None:
    referrer = api.person()
    referred = api.person()
    typed = f" {referrer.code[:4].lower()}-{referrer.code[4:].lower()} "
    reply = api.apply(referred.key.secret, typed)
    assert reply.status == 201, reply.raw
    assert (reply.body["data"]["code"], reply.body["data"]["status"]) == (
        referrer.code,
        "pending",
    )
    assert api.referral(referred) == ("pending", None, 0, 0)
    audit = db.execute(
        "SELECT action FROM audit_log WHERE target_id = %s", (reply.body["data"]["id"],)
    ).fetchall()
    assert audit == [("referral.apply",)]


def test_the_own_code_is_refused_and_nothing_recorded() -> None:
    me = api.person()
    reply = api.apply(me.key.secret, me.code)
    assert api.error(reply) == (400, "invalid_referral_code", "code")
    assert referrals_of(me) == 0


def test_a_teammates_code_is_refused() -> None:
    referrer = api.person()
    teammate = new_member(referrer.owner, "member")
    # The teammate's own personal account, and a key of it.
    with db.transaction() as cur:
        from gatewayz.identity import accounts

        own = accounts.open_personal(cur, teammate.user_id, name="mate", plan_id="payg")
    reply = api.apply(new_key(own).secret, referrer.code)
    assert api.error(reply) == (400, "invalid_referral_code", "code")


def test_a_referred_user_cannot_refer_their_referrer_back() -> None:
    referrer = api.person()
    referred = api.referred_by(referrer)
    assert api.error(api.apply(referrer.key.secret, referred.code)) == (
        400,
        "invalid_referral_code",
        "code",
    )


def test_a_second_code_is_refused_and_the_first_stays() -> None:
    first, second = api.person(), api.person()
    referred = api.referred_by(first)
    reply = api.apply(referred.key.secret, second.code)
    assert api.error(reply) == (409, "referral_already_applied", None)
    row = db.execute(
        "SELECT referrer_user_id FROM referrals WHERE referred_user_id = %s",
        (referred.owner.user_id,),
    ).fetchone()
    assert row is not None
    assert str(row[0]) == first.owner.user_id


def test_applying_after_the_window_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    referrer, late = api.person(), api.person()
    db.execute(
        "UPDATE users SET created_at = now() - interval '8 days' WHERE id = %s",
        (late.owner.user_id,),
    )
    assert api.error(api.apply(late.key.secret, referrer.code)) == (
        400,
        "referral_window_closed",
        "code",
    )
    # A longer window (REFERRAL_APPLY_DAYS) lets the same user apply.
    monkeypatch.setenv("REFERRAL_APPLY_DAYS", "9")
    reset_caches()
    assert api.apply(late.key.secret, referrer.code).status == 201


def test_applying_after_a_paid_purchase_is_refused() -> None:
    referrer, buyer = api.person(), api.person()
    db.execute(
        """INSERT INTO payments (account_id, kind, amount_cents, credit_nanos, status,
                                 stripe_checkout_session_id, paid_at)
           VALUES (%s, 'credit_purchase', 1000, 0, 'succeeded', 'cs_test_paid_before', now())""",
        (buyer.account_id,),
    )
    assert api.error(api.apply(buyer.key.secret, referrer.code)) == (
        400,
        "referral_window_closed",
        "code",
    )


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({"code": "NOPE"}, "invalid_referral_code", "code"),
        ({"code": "ABCDEFGH"}, "invalid_referral_code", "code"),  # well formed, nobody's
        ({"code": "ABCDEFG0"}, "invalid_referral_code", "code"),  # a look-alike
        ({"code": 12345678}, "invalid_request_error", "code"),
        ({"code": None}, "invalid_request_error", "code"),
        ({}, "invalid_request_error", "code"),
        ({"code": "ABCDEFGH", "bonus": 5}, "invalid_request_error", "bonus"),
        ([], "invalid_request_error", "code"),
        ("not json", "invalid_json", None),
    ],
)
def test_bad_bodies_are_400s(body: object, code: str, param: str | None) -> None:
    me = api.person()
    reply = api.call("POST", "/v1/referrals/apply", me.key.secret, body)
    assert reply.status == 400, reply.raw
    assert reply.body["error"]["code"] == code
    assert reply.body["error"]["param"] == param
    assert referrals_of(me) == 0


def test_the_referrals_scope_is_needed() -> None:
    referrer = api.person()
    referred = api.person()
    key = new_key(referred.owner, scopes=["chat"])
    assert api.apply(key.secret, referrer.code).code == "scope_denied"
    assert api.overview(key.secret).code == "scope_denied"
    assert api.call("GET", "/v1/referrals").status == 401


def test_the_overview_shows_the_own_code_and_masked_referrals() -> None:
    referrer = api.person()
    referred = [api.referred_by(referrer) for _ in range(3)]
    reply = api.overview(referrer.key.secret)
    assert reply.status == 200, reply.raw
    body = reply.body
    assert body["code"] == referrer.code
    assert (body["sign_ups"], body["conversions"], body["rewards_earned"]) == (3, 0, 0)
    assert body["share_link"] is None  # PUBLIC_URL unset
    assert body["referred_by"] is None
    emails = {
        row[0]
        for row in db.execute(
            "SELECT email FROM users WHERE id = ANY(%s::uuid[])",
            ([p.owner.user_id for p in referred],),
        ).fetchall()
    }
    shown = [item["email"] for item in body["data"]]
    assert len(shown) == 3
    for email, masked in zip(sorted(emails), sorted(shown), strict=True):
        assert masked != email
        assert masked.startswith(email[0] + "***@")
    assert all(item["status"] == "pending" for item in body["data"])
    assert not any(email in reply.raw for email in emails)
    # The referred user sees the code they applied, not the referrer's list.
    mine = api.overview(referred[0].key.secret).body
    assert mine["referred_by"]["code"] == referrer.code
    assert mine["referred_by"]["status"] == "pending"
    assert (mine["sign_ups"], mine["data"]) == (0, [])


def test_the_share_link_uses_public_url(monkeypatch: pytest.MonkeyPatch) -> None:
    me = api.person()
    monkeypatch.setenv("PUBLIC_URL", "https://app.example.com/")
    reset_caches()
    assert api.overview(me.key.secret).body["share_link"] == (
        f"https://app.example.com/?ref={me.code}"
    )


def test_referrals_page_by_cursor_without_repeats() -> None:
    referrer = api.person()
    made = {api.referred_by(referrer).owner.user_id for _ in range(5)}
    ids: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        body = api.overview(referrer.key.secret, **query).body
        ids.extend(item["id"] for item in body["data"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert len(ids) == len(set(ids)) == len(made)
    for bad in ({"limit": "0"}, {"cursor": "bm9wZQ"}, {"cursor": "WyJ4IiwieSJd"}):
        reply = api.overview(referrer.key.secret, **bad)
        assert reply.status == 400, reply.raw
        assert reply.body["error"]["param"] in ("limit", "cursor")


def test_another_accounts_referral_data_is_never_shown() -> None:
    alice, bob = api.person(), api.person()
    alices = api.referred_by(alice)
    api.referred_by(bob)
    # Neither Bob nor an admin of Alice's account (with a key there) sees Alice's.
    admin_of_alice = new_key(new_member(alice.owner, "admin"))
    for secret in (bob.key.secret, admin_of_alice.secret):
        body = api.overview(secret).body
        assert alice.code not in str(body)
        assert all(item["id"] != alices.owner.user_id for item in body["data"])
    body = api.overview(bob.key.secret).body
    assert body["sign_ups"] == 1
    alice_ids = {item["id"] for item in api.overview(alice.key.secret).body["data"]}
    assert alice_ids.isdisjoint(item["id"] for item in body["data"])
