"""The chat path's database round trips with and without a chat session, counted on the
wire: libpq's protocol trace of the function's connections, the one it blocks on and the
one it awaits (each round trip ends with the server's ReadyForQuery). A request naming
no session makes exactly the round trips it made before history existed (a hold and a
settlement, warm); naming one adds one (the history read) and no more: the new turn is
saved by the settling statement."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest

from gatewayz import adb, db
from tests.factories import new_key, new_owner
from tests.functions.history_api import append, chat, history, new_session

pytestmark = pytest.mark.usefixtures("database_url")


def answered(secret: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
    result = chat(secret, body, headers)
    assert result["statusCode"] == 200, result["body"]


def round_trips(send: Any) -> int:
    """Round trips the function's database connections make while `send()` runs."""
    conns = [db.connection().pgconn, *(conn.pgconn for conn in adb.connections())]
    assert len(conns) == 2  # a warm function: its own, and the one it awaits
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trace"
        with path.open("w") as out:
            for pgconn in conns:
                pgconn.trace(out.fileno())
            try:
                send()
            finally:
                for pgconn in conns:
                    pgconn.untrace()
        lines = path.read_text().splitlines()
    return sum(1 for line in lines if "\tB\t" in line and "ReadyForQuery" in line)


def test_a_session_costs_one_round_trip_and_no_session_costs_none() -> None:
    owner = new_owner(plan_id="trial")
    secret = new_key(owner).secret
    sid = new_session(secret)
    append(secret, sid, {"role": "user", "content": "earlier"})
    plain = {"model": "mock/echo", "messages": [{"role": "user", "content": "hi"}]}
    assert (
        chat(secret, plain)["statusCode"] == 200
    )  # warm: the key and the catalog are cached from here on
    assert history("GET", "/v1/chat/sessions", secret).status == 200  # the same connection

    assert round_trips(lambda: answered(secret, plain)) == 2
    assert round_trips(lambda: answered(secret, {**plain, "session_id": sid})) == 3
    assert round_trips(lambda: answered(secret, plain, {"X-Session-Id": sid})) == 3
    assert round_trips(lambda: answered(secret, {**plain, "stream": True, "session_id": sid})) == 3
    saved = history("GET", f"/v1/chat/sessions/{sid}/messages", secret).body["data"]
    assert [m["content"] for m in saved] == ["earlier", *["hi"] * 6]


def test_a_sessions_history_read_never_walks_other_sessions_messages() -> None:
    """The read finds a session's first and newest messages through the session's index:
    a join with the owned session walked the primary key backwards through every newer
    message of every other session until it met one of this session's (2.8 ms a read
    behind 20,000 of them, and growing with the table)."""
    from psycopg.types.json import Jsonb

    from gatewayz.history import injection, records

    owner = new_owner(plan_id="trial")
    secret = new_key(owner).secret
    sid = new_session(secret)
    append(
        secret, sid, {"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}
    )
    # Newer messages, all of them another session's, and enough that no plan reads the
    # whole table instead (as it rightly would a small one).
    busy = new_session(secret)
    newer = [records.stored({"role": "user", "content": f"other {i}"}) for i in range(20_000)]
    db.execute(
        "SELECT chat_messages_append(%s, %s, %s, NULL, %s)",
        (busy, owner.account_id, owner.user_id, Jsonb(newer)),
    )
    db.execute("ANALYZE chat_messages")

    ((sql, params),) = injection._read(owner, sid, 1000).statements
    (plan,) = db.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params).fetchone()

    def rows_read(node: dict[str, Any]) -> int:
        own = 0
        if node.get("Relation Name") == "chat_messages":
            own = node["Actual Rows"] * node["Actual Loops"] + node.get("Rows Removed by Filter", 0)
        return own + sum(rows_read(child) for child in node.get("Plans", ()))

    # The session's first message, its newest, and the thread back from it: a handful.
    assert rows_read(plan[0]["Plan"]) <= 10
    thread = db.run(injection._read(owner, sid, 1000))
    assert [turn[2] for turn in thread.turns] == ["hi", "be brief"]
    assert thread.system is not None
    assert thread.system[2] == "be brief"
