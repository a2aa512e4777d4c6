"""Calling the referrals function as API Gateway does, and arranging referrals: users who
applied a code, purchases paid through the Stripe fake."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gatewayz import db
from tests.factories import new_key, new_owner
from tests.functions import keys_api

if TYPE_CHECKING:
    from gatewayz.identity.accounts import Owner
    from gatewayz.identity.keys import NewKey
    from tests.fakes.stripe import FakeStripe
    from tests.functions.keys_api import Reply

call = functools.partial(keys_api.call, group="referrals")

REFERRER_REWARD = 3_000_000_000  # REFERRAL_REFERRER_REWARD_USD=3
REFERRED_REWARD = 2_000_000_000  # REFERRAL_REFERRED_REWARD_USD=2
SETTINGS = {
    "REFERRAL_REFERRER_REWARD_USD": "3",
    "REFERRAL_REFERRED_REWARD_USD": "2",
    "REFERRAL_MIN_PURCHASE_USD": "10",
}


@dataclass(frozen=True)
class Person:
    """A user with a personal account and a key of theirs."""

    owner: Owner
    key: NewKey

    @property
    def account_id(self) -> str:
        return self.owner.account_id

    @property
    def code(self) -> str:
        return code_of(self.owner.user_id)


def person() -> Person:
    owner = new_owner()
    return Person(owner, new_key(owner))


def code_of(user_id: str) -> str:
    row = db.execute("SELECT referral_code FROM users WHERE id = %s", (user_id,)).fetchone()
    assert row is not None
    return str(row[0])


def apply(secret: str, code: Any) -> Reply:
    return call("POST", "/v1/referrals/apply", secret, {"code": code})


def overview(secret: str, **query: str) -> Reply:
    return call("GET", "/v1/referrals", secret, query=query or None)


def referred_by(referrer: Person) -> Person:
    """A new user who applied the referrer's code."""
    referred = person()
    reply = apply(referred.key.secret, referrer.code)
    assert reply.status == 201, reply.raw
    return referred


def buy(fake: FakeStripe, buyer: Person, usd: float, card_number: str | None = None) -> str:
    """A credit purchase of `usd` checked out through the billing function and paid on the
    fake (its events reach the webhooks function): the checkout session id."""
    reply = keys_api.call(
        "POST", "/v1/billing/checkout", buyer.key.secret, {"amount": usd}, group="billing"
    )
    assert reply.status == 201, reply.raw
    session_id = str(reply.body["data"]["id"])
    paid = fake.pay(session_id, card_number=card_number)
    assert paid.status_code == 200, paid.text
    return session_id


def referral(referred: Person) -> tuple[Any, ...]:
    """(status, void_reason, reward_nanos, referred_reward_nanos) of the user's referral."""
    row = db.execute(
        """SELECT status, void_reason, reward_nanos, referred_reward_nanos FROM referrals
            WHERE referred_user_id = %s""",
        (referred.owner.user_id,),
    ).fetchone()
    assert row is not None
    return tuple(row)


def rewards(account_id: str) -> list[int]:
    """The amounts of the account's `referral` ledger entries."""
    rows = db.execute(
        """SELECT amount_nanos FROM credit_transactions
            WHERE account_id = %s AND kind = 'referral' ORDER BY id""",
        (account_id,),
    ).fetchall()
    return [int(row[0]) for row in rows]


def error(reply: Reply) -> tuple[int, str, str | None]:
    """(status, error code, param) of an error reply."""
    return reply.status, reply.body["error"]["code"], reply.body["error"]["param"]
