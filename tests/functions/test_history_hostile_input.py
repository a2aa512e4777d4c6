"""Hostile input to the history function's routes, through its real handler (API Gateway
events): values PostgreSQL cannot take as sent (NUL, integers past bigint) and tampered
cursors are a 400 naming the field, or stored as U+FFFD as message content is, never a
500."""

from __future__ import annotations

import uuid

import pytest

from gatewayz import pagination
from tests.factories import new_owner
from tests.functions.history_api import append, history, key_of, new_session

pytestmark = pytest.mark.usefixtures("database_url")


def test_nul_in_a_sessions_fields_is_stored_as_a_replacement_character() -> None:
    secret = key_of(new_owner())
    created = history(
        "POST",
        "/v1/chat/sessions",
        secret,
        {"title": "a\u0000b", "model": "m\u0000", "metadata": {"k\u0000": "v\u0000"}},
    )
    assert created.status == 201, created.body
    session = created.body["data"]
    assert (session["title"], session["model"], session["metadata"]) == (
        "a\ufffdb",
        "m\ufffd",
        {"k\ufffd": "v\ufffd"},
    )
    renamed = history(
        "PATCH", f"/v1/chat/sessions/{session['id']}", secret, {"title": "\u0000", "metadata": {}}
    )
    assert renamed.status == 200, renamed.body
    assert (renamed.body["data"]["title"], renamed.body["data"]["metadata"]) == ("\ufffd", {})


def test_a_parent_id_past_bigint_is_a_400() -> None:
    secret = key_of(new_owner())
    sid = new_session(secret)
    append(secret, sid, {"role": "user", "content": "hi"})
    for parent in (2**63, 10**30):
        reply = history(
            "POST",
            f"/v1/chat/sessions/{sid}/messages",
            secret,
            {"role": "user", "content": "x", "parent_id": parent},
        )
        assert (reply.status, reply.body["error"]["param"]) == (400, "parent_id"), reply.body


@pytest.mark.parametrize(
    ("path", "query", "values"),
    [
        ("/v1/chat/sessions", {}, ("yesterday", str(uuid.uuid4()))),
        ("/v1/chat/sessions", {}, ("2026-13-45T99:00:00", str(uuid.uuid4()))),
        ("/v1/chat/sessions", {}, ("2026-01-01T00:00:00+00:00", "not-a-uuid")),
        ("/v1/chat/sessions/search", {"q": "hello"}, (10**30, 1)),
        ("/v1/chat/sessions/search", {"q": "hello"}, (1, -(10**30))),
        ("/v1/chat/sessions/search", {"q": "hello"}, ("1", 1)),
    ],
)
def test_a_tampered_cursor_is_a_400(
    path: str, query: dict[str, str], values: tuple[object, ...]
) -> None:
    secret = key_of(new_owner())
    sid = new_session(secret)
    append(secret, sid, {"role": "user", "content": "hello world"})
    reply = history("GET", path, secret, cursor=pagination.encode(*values), **query)
    assert (reply.status, reply.body["error"]["param"]) == (400, "cursor"), reply.body


def test_a_message_cursor_past_bigint_is_a_400() -> None:
    secret = key_of(new_owner())
    sid = new_session(secret)
    append(secret, sid, {"role": "user", "content": "hello world"})
    for order in ("asc", "desc"):
        reply = history(
            "GET",
            f"/v1/chat/sessions/{sid}/messages",
            secret,
            cursor=pagination.encode(10**30),
            order=order,
        )
        assert (reply.status, reply.body["error"]["param"]) == (400, "cursor"), reply.body


@pytest.mark.parametrize("body", ["[]", "false", "0", '""', "[1]", '"title"'])
def test_a_rename_that_is_not_an_object_is_a_400(body: str) -> None:
    secret = key_of(new_owner())
    sid = new_session(secret, title="kept")
    reply = history("PATCH", f"/v1/chat/sessions/{sid}", secret, body)
    assert reply.status == 400, reply.body
    assert history("GET", f"/v1/chat/sessions/{sid}", secret).body["data"]["title"] == "kept"
