"""`/v1/chat/sessions` and `/v1/chat/sessions/{id}/messages` through the history function's
real handler (API Gateway events): CRUD, threads and branches, pagination, and that
another account's or another member's session is a 404 for every route."""

from __future__ import annotations

import uuid

import pytest

from tests.factories import new_member, new_owner
from tests.functions.history_api import append, history, key_of, new_session

pytestmark = pytest.mark.usefixtures("database_url")


def test_create_get_rename_delete() -> None:
    secret = key_of(new_owner())
    created = history("POST", "/v1/chat/sessions", secret, {"title": "Trip", "model": "m/x"})
    assert created.status == 201
    session = created.body["data"]
    assert (session["title"], session["model"], session["object"]) == (
        "Trip",
        "m/x",
        "chat.session",
    )
    sid = session["id"]
    append(
        secret, sid, {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}
    )

    got = history("GET", f"/v1/chat/sessions/{sid}", secret)
    assert got.status == 200
    assert [(m["role"], m["content"]) for m in got.body["data"]["messages"]] == [
        ("system", "Be brief."),
        ("user", "Hi"),
    ]
    renamed = history("PATCH", f"/v1/chat/sessions/{sid}", secret, {"title": "Paris trip"})
    assert renamed.status == 200
    assert renamed.body["data"]["title"] == "Paris trip"

    deleted = history("DELETE", f"/v1/chat/sessions/{sid}", secret)
    assert deleted.status == 200
    assert deleted.body["data"]["deleted"] is True
    for method, path in [
        ("GET", f"/v1/chat/sessions/{sid}"),
        ("GET", f"/v1/chat/sessions/{sid}/messages"),
        ("DELETE", f"/v1/chat/sessions/{sid}"),
    ]:
        assert history(method, path, secret).code == "session_not_found"
    assert history("GET", "/v1/chat/sessions", secret).body["data"] == []


def test_bad_input_is_a_400_naming_the_field() -> None:
    secret = key_of(new_owner())
    assert (
        history("POST", "/v1/chat/sessions", secret, {"title": 5}).body["error"]["param"] == "title"
    )
    assert history("POST", "/v1/chat/sessions", secret, {"colour": "red"}).status == 400
    sid = new_session(secret)
    bad = history(
        "POST", f"/v1/chat/sessions/{sid}/messages", secret, {"role": "wizard", "content": "x"}
    )
    assert bad.status == 400
    assert bad.body["error"]["param"].startswith("messages[0].role")
    audio = history(
        "POST",
        f"/v1/chat/sessions/{sid}/messages",
        secret,
        {"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]},
    )
    assert audio.status == 400
    assert audio.body["error"]["param"] == "messages[0].content[0].type"
    assert history("GET", "/v1/chat/sessions", secret, limit="0").body["error"]["param"] == "limit"
    assert (
        history("GET", "/v1/chat/sessions", secret, cursor="nope").body["error"]["param"]
        == "cursor"
    )


def test_another_accounts_or_members_session_is_not_found() -> None:
    owner = new_owner()
    mine = key_of(owner)
    sid = new_session(mine)
    append(mine, sid, {"role": "user", "content": "secret plans"})
    strangers = [key_of(new_owner()), key_of(new_member(owner, "admin"))]
    for secret in strangers:
        for method, path, body in [
            ("GET", f"/v1/chat/sessions/{sid}", None),
            ("PATCH", f"/v1/chat/sessions/{sid}", {"title": "mine now"}),
            ("DELETE", f"/v1/chat/sessions/{sid}", None),
            ("GET", f"/v1/chat/sessions/{sid}/messages", None),
            ("POST", f"/v1/chat/sessions/{sid}/messages", {"role": "user", "content": "hi"}),
        ]:
            reply = history(method, path, secret, body)
            assert (reply.status, reply.code) == (404, "session_not_found"), (method, path)
        assert history("GET", "/v1/chat/sessions", secret).body["data"] == []
    # Unknown and malformed ids answer alike.
    assert history("GET", f"/v1/chat/sessions/{uuid.uuid4()}", mine).status == 404
    assert history("GET", "/v1/chat/sessions/not-a-uuid", mine).status == 404
    got = history("GET", f"/v1/chat/sessions/{sid}", mine)
    assert got.body["data"]["title"] == "New chat"
    assert [m["content"] for m in got.body["data"]["messages"]] == ["secret plans"]


def test_scope_history_is_required() -> None:
    secret = key_of(new_owner(), scopes=("chat",))
    reply = history("GET", "/v1/chat/sessions", secret)
    assert reply.status == 403


def test_threads_and_branches() -> None:
    secret = key_of(new_owner())
    sid = new_session(secret)
    first, answer = append(
        secret,
        sid,
        {"role": "user", "content": "Name a colour"},
        {"role": "assistant", "content": "Red"},
    )
    assert answer["parent_id"] == first["id"]
    assert first["parent_id"] is None
    (follow,) = append(secret, sid, {"role": "user", "content": "Another"})
    assert follow["parent_id"] == answer["id"]  # no parent named: after the newest
    (branch,) = append(secret, sid, {"role": "assistant", "content": "Blue"}, parent_id=first["id"])
    assert branch["parent_id"] == first["id"]
    single = history(
        "POST",
        f"/v1/chat/sessions/{sid}/messages",
        secret,
        {"role": "user", "content": "Why blue?", "parent_id": branch["id"]},
    )
    assert single.status == 201
    assert single.body["data"][0]["parent_id"] == branch["id"]

    other = new_session(secret)
    (foreign,) = append(secret, other, {"role": "user", "content": "elsewhere"})
    wrong = history(
        "POST",
        f"/v1/chat/sessions/{sid}/messages",
        secret,
        {"role": "user", "content": "x", "parent_id": foreign["id"]},
    )
    assert (wrong.status, wrong.code, wrong.body["error"]["param"]) == (
        404,
        "message_not_found",
        "parent_id",
    )


def test_pagination_of_sessions_and_messages() -> None:
    secret = key_of(new_owner())
    sids = [new_session(secret, title=f"s{i}") for i in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = history("GET", "/v1/chat/sessions", secret, **query).body
        seen += [s["id"] for s in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(sids))  # most recently active first

    # Activity moves a session to the front.
    append(secret, sids[0], {"role": "user", "content": "back again"})
    assert history("GET", "/v1/chat/sessions", secret, limit="1").body["data"][0]["id"] == sids[0]

    sid = sids[1]
    append(secret, sid, *({"role": "user", "content": f"m{i}"} for i in range(7)))
    contents: list[str] = []
    cursor = None
    while True:
        query = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        page = history("GET", f"/v1/chat/sessions/{sid}/messages", secret, **query).body
        contents += [m["content"] for m in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert contents == [f"m{i}" for i in range(7)]
    newest = history("GET", f"/v1/chat/sessions/{sid}/messages", secret, order="desc", limit="2")
    assert [m["content"] for m in newest.body["data"]] == ["m6", "m5"]
    assert history("GET", f"/v1/chat/sessions/{sid}/messages", secret, order="up").status == 400
