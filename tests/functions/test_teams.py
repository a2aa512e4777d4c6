"""`/v1/teams` through the keys function's real app: creating, listing, reading and renaming
teams, the role rules for members, removing a member (their keys stop at once), and a
team that is invisible (404, nothing changed) to anyone outside it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.factories import fund
from tests.functions.events import function
from tests.functions.test_account import (
    Person,
    bearer,
    client,
    error_of,
    fake,
    owner_id,
    sign_up,
)

if TYPE_CHECKING:
    import psycopg

    from tests.fakes.supabase_auth import FakeAuth

__all__ = ["client", "fake"]  # the fixtures, shared with the account routes' tests
pytestmark = pytest.mark.usefixtures("database_url")
JSON = {"Content-Type": "application/json"}


async def new_team(client: httpx.AsyncClient, owner: Person, name: str = "Crew") -> dict[str, Any]:
    """A team created by `owner` (signed up on the way if needed)."""
    await client.post("/v1/account", headers=owner.headers())
    created = await client.post("/v1/teams", json={"name": name}, headers=owner.headers())
    assert created.status_code == 201, created.text
    team: dict[str, Any] = created.json()["data"]
    return team


async def invite(
    client: httpx.AsyncClient, by: Person, team_id: str, email: str, role: str = "member"
) -> tuple[dict[str, Any], str]:
    """An invitation sent by `by`, and its token."""
    sent = await client.post(f"/v1/teams/{team_id}/invitations",
                             json={"email": email, "role": role}, headers=by.headers())  # fmt: skip
    assert sent.status_code == 201, sent.text
    return sent.json()["data"], sent.json()["token"]


async def join(
    client: httpx.AsyncClient, owner: Person, team_id: str, role: str = "member"
) -> Person:
    """A new person who accepted the owner's invitation to the team as `role`."""
    person = Person(owner.fake)
    _, token = await invite(client, owner, team_id, person.email, role)
    accepted = await client.post(f"/v1/invitations/{token}/accept", headers=person.headers())
    assert accepted.status_code == 200, accepted.text
    return person


async def crew(
    client: httpx.AsyncClient, fake: FakeAuth, *roles: str
) -> tuple[Person, str, list[Person]]:
    """A new team's owner, its id, and a person who joined it for each of `roles`."""
    owner = Person(fake)
    team: str = (await new_team(client, owner))["id"]
    return owner, team, [await join(client, owner, team, role) for role in roles]


async def team_key(client: httpx.AsyncClient, person: Person, team_id: str) -> str:
    """A new key of `person` in the team, made with their session acting there."""
    made = await client.post("/v1/keys", json={"name": "team", "scopes": ["chat", "keys:read"]},
                             headers=person.headers(team_id))  # fmt: skip
    assert made.status_code == 201, made.text
    secret: str = made.json()["key"]
    return secret


async def chat(secret: str) -> httpx.Response:
    """One `mock/echo` completion through the chat function's app (its ASGI app, as the
    Lambda Web Adapter serves it)."""
    transport = httpx.ASGITransport(app=function("chat").app, client=("198.51.100.9", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://chat.local") as c:
        return await c.post("/v1/chat/completions", headers=bearer(secret), json={
            "model": "mock/echo", "messages": [{"role": "user", "content": "hi"}]})  # fmt: skip


def audit_actions(conn: psycopg.Connection, team_id: str) -> list[str]:
    rows = conn.execute(
        "SELECT action FROM audit_log WHERE account_id = %s ORDER BY id", (team_id,)
    ).fetchall()
    return [row[0] for row in rows]


def team_state(conn: psycopg.Connection, team: str, invitation_id: str) -> Any:
    """What an outsider's request must not change: name, roles, an invitation, audit rows."""
    return conn.execute(
        "SELECT (SELECT name FROM accounts WHERE id = %(t)s),"
        " (SELECT array_agg(role ORDER BY role) FROM memberships WHERE account_id = %(t)s),"
        " (SELECT revoked_at FROM team_invitations WHERE id = %(i)s),"
        " (SELECT count(*) FROM audit_log WHERE account_id = %(t)s)",
        {"t": team, "i": invitation_id},
    ).fetchone()


async def test_a_team_is_created_listed_read_and_renamed(
    client: httpx.AsyncClient, fake: FakeAuth, conn: psycopg.Connection
) -> None:
    owner = Person(fake)
    first_key = (await sign_up(client, owner))["key"]
    team = await new_team(client, owner, "Research")
    assert (team["name"], team["plan"], team["status"]) == ("Research", "free", "active")
    assert (team["balance"], team["role"], team["members"]) == (0, "owner", 1)
    # No trial credit for a team: its ledger is empty.
    assert conn.execute("SELECT count(*) FROM credit_transactions WHERE account_id = %s",
                        (team["id"],)).fetchone() == (0,)  # fmt: skip
    # A key with keys:write creates one too, owned by the key's user.
    by_key = await client.post("/v1/teams", json={"name": "Ops"}, headers=bearer(first_key))
    assert by_key.status_code == 201, by_key.text

    page = await client.get("/v1/teams", params={"limit": "1"}, headers=owner.headers())
    assert [t["name"] for t in page.json()["data"]] == ["Ops"]  # newest first, no personal
    rest = await client.get("/v1/teams", params={"cursor": page.json()["next_cursor"]},
                            headers=owner.headers())  # fmt: skip
    assert [t["name"] for t in rest.json()["data"]] == ["Research"]
    assert rest.json()["next_cursor"] is None

    read = await client.get(f"/v1/teams/{team['id']}", headers=owner.headers())
    assert read.json()["data"] == team
    renamed = await client.patch(f"/v1/teams/{team['id']}", json={"name": "Lab"},
                                 headers=owner.headers())  # fmt: skip
    assert renamed.json()["data"]["name"] == "Lab"
    assert audit_actions(conn, team["id"]) == ["team.create", "team.update"]
    sent = owner.headers() | JSON
    for body in ({"name": " "}, {}, {"name": "x" * 201}, None):
        for method, url in (("PATCH", f"/v1/teams/{team['id']}"), ("POST", "/v1/teams")):
            content = b"" if body is None else json.dumps(body).encode()
            bad = await client.request(method, url, content=content, headers=sent)
            assert error_of(bad, 400, "invalid_request_error")["param"] == "name", body
    for raw, param in ((b"[]", None), (b"null", None), (b'{"name": "A", "x": 1}', "x")):
        bad = await client.post("/v1/teams", content=raw, headers=sent)
        assert error_of(bad, 400, "invalid_request_error")["param"] == param, raw
    error_of(await client.post("/v1/teams", content=b"{", headers=sent), 400, "invalid_json")
    # The caller is checked before the body: no bearer, whatever the body, is a 401.
    for raw in (b"[]", b'{"x": 1}', b"{"):
        error_of(await client.post("/v1/teams", content=raw, headers=JSON), 401, "invalid_api_key")


async def test_a_key_without_keys_write_cannot_create_a_team(
    client: httpx.AsyncClient, fake: FakeAuth, conn: psycopg.Connection
) -> None:
    owner = Person(fake)
    await sign_up(client, owner)
    made = await client.post("/v1/keys", json={"name": "c", "scopes": ["chat", "keys:read"]},
                             headers=owner.headers())  # fmt: skip
    refused = await client.post("/v1/teams", json={"name": "X"},
                                headers=bearer(made.json()["key"]))  # fmt: skip
    error_of(refused, 403, "scope_denied")
    assert conn.execute("SELECT count(*) FROM accounts WHERE kind = 'team' AND name = 'X'")\
        .fetchone() == (0,)  # fmt: skip


async def test_role_rules(
    client: httpx.AsyncClient, fake: FakeAuth, conn: psycopg.Connection
) -> None:
    owner, team, (admin, member, other) = await crew(client, fake, "admin", "member", "member")
    ids = {person.sub: owner_id(conn, person) for person in (owner, admin, member, other)}
    first = await client.get(f"/v1/teams/{team}/members", params={"limit": "3"},
                             headers=member.headers())  # fmt: skip
    rest = await client.get(f"/v1/teams/{team}/members", headers=member.headers(),
                            params={"cursor": first.json()["next_cursor"]})  # fmt: skip
    paged = [m["user_id"] for m in first.json()["data"] + rest.json()["data"]]
    assert paged == [ids[p.sub] for p in (owner, admin, member, other)]  # oldest first
    assert rest.json()["next_cursor"] is None

    def path(person: Person) -> str:
        return f"/v1/teams/{team}/members/{ids[person.sub]}"

    async def set_role(by: Person, target: Person, role: str) -> httpx.Response:
        return await client.patch(path(target), json={"role": role}, headers=by.headers())

    error_of(await set_role(member, other, "admin"), 403, "role_denied")
    error_of(await client.patch(f"/v1/teams/{team}", json={"name": "M"},
                                headers=member.headers()), 403, "role_denied")  # fmt: skip
    error_of(await set_role(admin, member, "admin"), 403, "role_denied")  # only the owner
    error_of(await set_role(admin, owner, "member"), 403, "role_denied")
    error_of(await set_role(admin, member, "owner"), 403, "role_denied")
    error_of(await client.delete(path(admin), headers=member.headers()), 403, "role_denied")
    error_of(await set_role(owner, member, "boss"), 400, "invalid_request_error")
    error_of(await client.delete(path(owner), headers=admin.headers()), 403, "role_denied")
    error_of(await client.delete(path(owner), headers=owner.headers()), 403, "role_denied")
    error_of(await client.delete(path(other), headers=member.headers()), 403, "role_denied")

    made = await set_role(owner, member, "admin")
    assert made.json()["data"]["role"] == "admin", made.text
    unmade = await set_role(owner, member, "member")
    assert unmade.json()["data"]["role"] == "member"
    # Ownership moves: the new owner is the only one, the old one an admin.
    moved = await set_role(owner, admin, "owner")
    assert moved.json()["data"]["role"] == "owner", moved.text
    roles = dict(conn.execute("SELECT user_id::text, role FROM memberships WHERE account_id = %s",
                              (team,)).fetchall())  # fmt: skip
    assert roles == {ids[owner.sub]: "admin", ids[admin.sub]: "owner",
                     ids[member.sub]: "member", ids[other.sub]: "member"}  # fmt: skip
    error_of(await set_role(owner, member, "owner"), 403, "role_denied")  # no longer the owner

    left = await client.delete(path(other), headers=other.headers())  # a member leaves
    assert left.json()["data"]["removed"] is True, left.text
    actions = audit_actions(conn, team)
    assert actions.count("member.role") == 4  # admin, member, and the two sides of the move
    assert actions[-1] == "member.remove"


async def test_a_removed_member_s_keys_stop_at_once(
    client: httpx.AsyncClient, fake: FakeAuth, conn: psycopg.Connection
) -> None:
    owner, team, (member,) = await crew(client, fake, "member")
    fund(team, 1_000_000_000)
    secret = await team_key(client, member, team)
    assert (await chat(secret)).status_code == 200  # cached in this warm function now
    assert (await client.get("/v1/key", headers=bearer(secret))).status_code == 200

    removed = await client.delete(f"/v1/teams/{team}/members/{owner_id(conn, member)}",
                                  headers=owner.headers())  # fmt: skip
    assert removed.json()["data"]["revoked_keys"] == 1, removed.text
    error_of(await chat(secret), 401, "revoked_api_key")
    error_of(await client.get("/v1/key", headers=bearer(secret)), 401, "revoked_api_key")
    # Their session no longer reaches the team either.
    error_of(await client.get(f"/v1/teams/{team}", headers=member.headers()), 404, "not_found")
    error_of(await client.get("/v1/keys", headers=member.headers(team)), 404, "not_found")
    assert audit_actions(conn, team)[-1] == "member.remove"


async def test_outsiders_get_404_on_every_team_route_and_change_nothing(
    client: httpx.AsyncClient, fake: FakeAuth, conn: psycopg.Connection
) -> None:
    owner, team, (member,) = await crew(client, fake, "member")
    member_id = owner_id(conn, member)
    invitation, _ = await invite(client, owner, team, "later@example.com")
    outsider = Person(fake)
    outsider_team = (await new_team(client, outsider))["id"]
    before = team_state(conn, team, invitation["id"])
    base = f"/v1/teams/{team}"
    calls = [
        ("GET", base, None), ("PATCH", base, {"name": "Mine"}),
        ("GET", f"{base}/members", None),
        ("PATCH", f"{base}/members/{member_id}", {"role": "admin"}),
        ("DELETE", f"{base}/members/{member_id}", None),
        ("POST", f"{base}/invitations", {"email": "x@example.com", "role": "member"}),
        ("GET", f"{base}/invitations", None),
        ("DELETE", f"{base}/invitations/{invitation['id']}", None),
        # The outsider's own team, with this team's member and invitation ids.
        ("DELETE", f"/v1/teams/{outsider_team}/members/{member_id}", None),
        ("DELETE", f"/v1/teams/{outsider_team}/invitations/{invitation['id']}", None),
        ("GET", "/v1/teams/not-a-uuid", None),
        ("DELETE", f"/v1/teams/{outsider_team}/invitations/nope", None),
    ]  # fmt: skip
    for method, url, body in calls:
        answer = await client.request(method, url, headers=outsider.headers(), json=body)
        error_of(answer, 404, "not_found")
    listed = await client.get("/v1/teams", headers=outsider.headers())
    assert [t["id"] for t in listed.json()["data"]] == [outsider_team]
    after = team_state(conn, team, invitation["id"])
    assert after == before
    # A personal account's id is no team either, even for its owner.
    personal = (await client.get("/v1/account", headers=owner.headers())).json()["data"]
    error_of(await client.get(f"/v1/teams/{personal['account']['id']}", headers=owner.headers()),
             404, "not_found")  # fmt: skip
