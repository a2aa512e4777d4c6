"""`GET /v1/chat/sessions/search` through the history function's real handler: ranked
full-text matches with snippets, over the caller's own live sessions only, with `%`, `_`
and query syntax taken as plain text."""

from __future__ import annotations

import pytest

from tests.factories import new_member, new_owner
from tests.functions.history_api import append, history, key_of, new_session

pytestmark = pytest.mark.usefixtures("database_url")


def search(secret: str, q: str, **query: str) -> list[dict[str, object]]:
    reply = history("GET", "/v1/chat/sessions/search", secret, q=q, **query)
    assert reply.status == 200, reply.body
    return list(reply.body["data"])


def test_finds_ranks_and_shows_snippets() -> None:
    secret = key_of(new_owner())
    sid = new_session(secret, title="Garden")
    once, _, twice = append(
        secret,
        sid,
        {"role": "user", "content": "How deep should tomato roots go in clay soil?"},
        {"role": "assistant", "content": "About a foot."},
        {"role": "user", "content": "Tomato plants, tomato cages and tomato soil mixes"},
    )
    hits = search(secret, "tomato soil")
    assert [h["message_id"] for h in hits] == [twice["id"], once["id"]]  # more matches first
    assert hits[0]["session_id"] == sid
    assert hits[0]["session_title"] == "Garden"
    assert "**tomato**" in str(hits[0]["snippet"]).lower()
    assert search(secret, "cucumber") == []


def test_never_another_accounts_or_members_or_deleted_messages() -> None:
    owner = new_owner()
    mine = key_of(owner)
    colleague = key_of(new_member(owner, "member"))
    stranger = key_of(new_owner())
    for secret in (mine, colleague, stranger):
        append(secret, new_session(secret), {"role": "user", "content": "zebra migration notes"})
    gone = new_session(mine)
    append(mine, gone, {"role": "user", "content": "zebra stripes"})
    assert history("DELETE", f"/v1/chat/sessions/{gone}", mine).status == 200
    for secret in (mine, colleague, stranger):
        hits = search(secret, "zebra")
        assert len(hits) == 1
        assert hits[0]["snippet"] == "**zebra** migration notes"
    own_ids = {h["session_id"] for h in search(mine, "zebra")}
    assert gone not in own_ids


def test_wildcards_and_query_syntax_are_plain_text() -> None:
    secret = key_of(new_owner())
    sid = new_session(secret)
    append(
        secret,
        sid,
        {"role": "user", "content": "apples and pears"},
        {"role": "user", "content": "applesauce recipe"},
        {"role": "user", "content": "100% sure"},
    )
    for q in ["%", "_", "%%", "&", "|", "!", "()", ":*"]:
        assert search(secret, q) == [], q
    assert search(secret, "a%") == []  # no LIKE pattern
    assert [h["snippet"] for h in search(secret, "apples:*")] == [
        "**apples** and pears"
    ]  # no prefix
    assert search(secret, "apples | recipe") == []  # every word required, `|` no operator
    assert search(secret, "!pears") != []  # `!` no negation
    assert len(search(secret, "100%")) == 1
    assert history("GET", "/v1/chat/sessions/search", secret).body["error"]["param"] == "q"
    assert history("GET", "/v1/chat/sessions/search", secret, q=" ").status == 400


def test_paginates_in_rank_order() -> None:
    secret = key_of(new_owner())
    sid = new_session(secret)
    append(secret, sid, *({"role": "user", "content": "kiwi " * (i + 1)} for i in range(5)))
    everything = search(secret, "kiwi", limit="100")
    assert len(everything) == 5
    seen: list[object] = []
    cursor = None
    while True:
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        reply = history("GET", "/v1/chat/sessions/search", secret, q="kiwi", **query)
        seen += [h["message_id"] for h in reply.body["data"]]
        cursor = reply.body["next_cursor"]
        if cursor is None:
            break
    assert seen == [h["message_id"] for h in everything]
    scores = [h["score"] for h in everything]
    assert scores == sorted(scores, reverse=True)
