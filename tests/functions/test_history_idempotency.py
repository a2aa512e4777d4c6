"""An `Idempotency-Key` on a chat request naming a session, through the chat function's
real handler (API Gateway events, the offline `mock/echo`): a retry is replayed, charged
once and its turn saved once; the same key naming another session, or sent by another
member of the account, is not a replay of an answer made from someone else's history."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gatewayz import db
from tests.factories import new_key, new_member, new_owner
from tests.functions.events import header
from tests.functions.history_api import chat, history, new_session

pytestmark = pytest.mark.usefixtures("database_url")

HELLO = {"model": "mock/echo", "messages": [{"role": "user", "content": "hi"}]}


def usage_count(account_id: str) -> int:
    row = db.execute("SELECT count(*) FROM usage_records WHERE account_id = %s", (account_id,))
    return int(row.fetchone()[0])  # type: ignore[index]


def saved(secret: str, sid: str) -> list[Any]:
    reply = history("GET", f"/v1/chat/sessions/{sid}/messages", secret, limit="100")
    assert reply.status == 200, reply.body
    return [(m["role"], m["content"]) for m in reply.body["data"]]


def error_of(result: dict[str, Any]) -> tuple[int, str]:
    return result["statusCode"], json.loads(result["body"])["error"]["code"]


def test_a_retry_is_replayed_charged_once_and_saved_once() -> None:
    owner = new_owner(plan_id="trial")
    secret = new_key(owner).secret
    sid = new_session(secret)
    retry = {"Idempotency-Key": "turn-1", "X-Session-Id": sid}
    first, second = chat(secret, HELLO, retry), chat(secret, HELLO, retry)
    assert (first["statusCode"], second["statusCode"]) == (200, 200)
    assert header(second, "idempotent-replayed") == "true"
    assert json.loads(second["body"]) == json.loads(first["body"])
    assert usage_count(owner.account_id) == 1
    assert saved(secret, sid) == [("user", "hi"), ("assistant", "hi")]


def test_the_same_key_naming_another_session_is_not_a_replay() -> None:
    owner = new_owner(plan_id="trial")
    secret = new_key(owner).secret
    first, other = new_session(secret), new_session(secret)
    assert chat(secret, HELLO, {"Idempotency-Key": "k", "X-Session-Id": first})["statusCode"] == 200
    again = chat(secret, HELLO, {"Idempotency-Key": "k", "X-Session-Id": other})
    assert error_of(again) == (409, "idempotency_key_reused")
    assert saved(secret, other) == []
    assert usage_count(owner.account_id) == 1


def test_another_member_with_the_same_key_and_body_gets_no_replay() -> None:
    owner = new_owner(plan_id="trial")
    mine = new_key(owner).secret
    sid = new_session(mine)
    body = {**HELLO, "session_id": sid}
    assert chat(mine, body, {"Idempotency-Key": "shared"})["statusCode"] == 200
    colleague = new_key(new_member(owner, "admin")).secret
    # The first answer was made from the owner's history: the colleague must not get it.
    assert error_of(chat(colleague, body, {"Idempotency-Key": "shared"})) == (
        409,
        "idempotency_key_reused",
    )
    assert usage_count(owner.account_id) == 1
