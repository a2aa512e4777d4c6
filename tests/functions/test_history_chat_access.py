"""A chat request naming a session, through the chat function's real handler (API Gateway
events, the offline `mock/echo`): only the key's own user's session in the key's own
account is read; anything else is a 404 on `session_id` before anything is held or
charged. Content the database cannot store as is (NUL) is kept, as U+FFFD."""

from __future__ import annotations

import json

import pytest

from gatewayz import db
from tests.factories import new_key, new_member, new_owner
from tests.functions.history_api import append, chat, history, new_session

pytestmark = pytest.mark.usefixtures("database_url")

HELLO = {"model": "mock/echo", "messages": [{"role": "user", "content": "hi"}]}


def usage_count(account_id: str) -> int:
    row = db.execute("SELECT count(*) FROM usage_records WHERE account_id = %s", (account_id,))
    return int(row.fetchone()[0])  # type: ignore[index]


def test_only_the_keys_own_user_reads_a_session() -> None:
    owner = new_owner(plan_id="trial")
    sid = new_session(new_key(owner).secret)
    colleague = new_member(owner, "admin")
    stranger = new_owner(plan_id="trial")
    for who in (colleague, stranger):
        secret = new_key(who).secret
        for headers, body in [(None, {**HELLO, "session_id": sid}), ({"X-Session-Id": sid}, HELLO)]:
            result = chat(secret, body, headers)
            error = json.loads(result["body"])["error"]
            assert (result["statusCode"], error["code"], error["param"]) == (
                404,
                "session_not_found",
                "session_id",
            )
        assert usage_count(who.account_id) == 0
    assert usage_count(owner.account_id) == 0
    accounts = [owner.account_id, colleague.account_id, stranger.account_id]
    held = db.execute(
        "SELECT count(*) FROM credit_holds WHERE account_id = ANY(%s::uuid[])", (accounts,)
    ).fetchone()
    assert held == (0,)


def test_nul_characters_are_stored_as_replacement_characters() -> None:
    owner = new_owner(plan_id="trial")
    secret = new_key(owner).secret
    sid = new_session(secret)
    (stored,) = append(secret, sid, {"role": "user", "content": "a\u0000b"})
    assert stored["content"] == "a\ufffdb"
    result = chat(
        secret, {**HELLO, "messages": [{"role": "user", "content": "c\u0000d"}], "session_id": sid}
    )
    assert result["statusCode"] == 200, result["body"]
    saved = history("GET", f"/v1/chat/sessions/{sid}/messages", secret).body["data"]
    assert [m["content"] for m in saved] == ["a\ufffdb", "c\ufffdd", "c\ufffdd"]
