"""Team invitations through the keys function's real app (sessions from the fake Supabase
project): invite, the e-mail queued, accept once with the invited verified address, and
every way a token is refused; then a team whose members spend one shared balance."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import pytest

from tests import ledger
from tests.factories import fund
from tests.functions.test_account import Person, bearer, client, error_of, fake, sign_up
from tests.functions.test_teams import audit_actions, chat, crew, invite, new_team, team_key

if TYPE_CHECKING:
    import httpx
    import psycopg

    from tests.fakes.supabase_auth import FakeAuth

__all__ = ["client", "fake"]  # the fixtures, shared with the account routes' tests
pytestmark = pytest.mark.usefixtures("database_url")


async def test_an_invitation_is_mailed_and_accepted_once(
    client: httpx.AsyncClient, fake: FakeAuth, conn: psycopg.Connection
) -> None:
    owner = Person(fake)
    team = (await new_team(client, owner, "Crew"))["id"]
    invitee = Person(fake, f"New.Person-{owner.sub[:6]}@Example.com")
    invitation, token = await invite(client, owner, team, invitee.email.lower(), "admin")
    assert (invitation["status"], invitation["role"]) == ("pending", "admin")
    assert token.startswith("gwinv_")
    stored = conn.execute("SELECT token_hash, expires_at - created_at FROM team_invitations"
                          " WHERE id = %s", (invitation["id"],)).fetchone()  # fmt: skip
    assert stored is not None
    assert bytes(stored[0]) == hashlib.sha256(token.encode()).digest()  # only its hash
    assert stored[1].days == 7
    mails = conn.execute("SELECT to_address, template, payload, dedupe_key FROM email_outbox"
                         " WHERE account_id = %s", (team,)).fetchall()  # fmt: skip
    assert len(mails) == 1
    to, template, payload, dedupe = mails[0]
    assert (to, template, dedupe) == (invitee.email.lower(), "team_invitation",
                                      f"invitation:{invitation['id']}")  # fmt: skip
    assert (payload["token"], payload["team"], payload["role"]) == (token, "Crew", "admin")

    # The invitee has not signed up yet: accepting signs them up, then joins (the address
    # matches whatever its case).
    accepted = await client.post(f"/v1/invitations/{token}/accept", headers=invitee.headers())
    assert accepted.status_code == 200, accepted.text
    assert (accepted.json()["data"]["id"], accepted.json()["data"]["role"]) == (team, "admin")
    assert accepted.json()["data"]["members"] == 2
    again = await client.post(f"/v1/invitations/{token}/accept", headers=invitee.headers())
    error_of(again, 409, "invitation_used")
    members = await client.get(f"/v1/teams/{team}/members", headers=invitee.headers())
    assert sorted(m["role"] for m in members.json()["data"]) == ["admin", "owner"]
    listed = await client.get(f"/v1/teams/{team}/invitations", headers=owner.headers())
    assert [(i["id"], i["status"]) for i in listed.json()["data"]] == \
        [(invitation["id"], "accepted")]  # fmt: skip
    # The invitee's personal account exists, and the team shows in their list.
    teams = await client.get("/v1/teams", headers=invitee.headers())
    assert [t["id"] for t in teams.json()["data"]] == [team]
    assert audit_actions(conn, team) == ["team.create", "invitation.create", "invitation.accept"]
    error_of(await client.post(f"/v1/teams/{team}/invitations", headers=owner.headers(),
                               json={"email": invitee.email, "role": "member"}),
             409, "already_member")  # fmt: skip


async def test_a_token_is_refused_for_another_address_or_once_expired_or_revoked(
    client: httpx.AsyncClient, fake: FakeAuth, conn: psycopg.Connection
) -> None:
    owner = Person(fake)
    owner_key = (await sign_up(client, owner))["key"]
    team = (await new_team(client, owner))["id"]
    invitee = Person(fake)
    _, token = await invite(client, owner, team, invitee.email)
    accept = f"/v1/invitations/{token}/accept"

    error_of(await client.post(accept, headers=Person(fake).headers()), 403,
             "invitation_email_mismatch")  # fmt: skip
    unverified = Person(fake, invitee.email.upper(), verified=False)
    error_of(await client.post(accept, headers=unverified.headers()), 403,
             "invitation_email_mismatch")  # fmt: skip
    error_of(await client.post(accept, headers=bearer(owner_key)), 401, "invalid_session")
    error_of(await client.post("/v1/invitations/gwinv_nope/accept", headers=invitee.headers()),
             404, "not_found")  # fmt: skip

    conn.execute(
        "UPDATE team_invitations SET created_at = now() - interval '8 days',"
        " expires_at = now() - interval '1 day' WHERE account_id = %s",
        (team,),
    )
    error_of(await client.post(accept, headers=invitee.headers()), 409, "invitation_used")

    revoked_invitation, revoked_token = await invite(client, owner, team, invitee.email)
    gone = await client.delete(f"/v1/teams/{team}/invitations/{revoked_invitation['id']}",
                               headers=owner.headers())  # fmt: skip
    assert gone.json()["data"]["status"] == "revoked", gone.text
    error_of(await client.post(f"/v1/invitations/{revoked_token}/accept",
                               headers=invitee.headers()), 409, "invitation_used")  # fmt: skip
    assert conn.execute("SELECT count(*) FROM memberships WHERE account_id = %s",
                        (team,)).fetchone() == (1,)  # fmt: skip
    listed = await client.get(f"/v1/teams/{team}/invitations", headers=owner.headers())
    assert [i["status"] for i in listed.json()["data"]] == ["revoked", "expired"]
    assert audit_actions(conn, team)[-1] == "invitation.revoke"
    _, late_token = await invite(client, owner, team, invitee.email)
    conn.execute("UPDATE accounts SET status = 'suspended' WHERE id = %s", (team,))
    error_of(await client.post(f"/v1/invitations/{late_token}/accept", headers=invitee.headers()),
             403, "account_inactive")  # fmt: skip


async def test_invitation_rules_for_roles_and_fields(
    client: httpx.AsyncClient, fake: FakeAuth, conn: psycopg.Connection
) -> None:
    owner, team, (admin, member) = await crew(client, fake, "admin", "member")
    url = f"/v1/teams/{team}/invitations"
    error_of(await client.post(url, json={"email": "a@example.com", "role": "member"},
                               headers=member.headers()), 403, "role_denied")  # fmt: skip
    error_of(await client.get(url, headers=member.headers()), 403, "role_denied")
    error_of(await client.post(url, json={"email": "a@example.com", "role": "admin"},
                               headers=admin.headers()), 403, "role_denied")  # fmt: skip
    for body, param in (({"email": "nope", "role": "member"}, "email"),
                        ({"email": "a@example.com", "role": "owner"}, "role")):  # fmt: skip
        bad = error_of(await client.post(url, json=body, headers=owner.headers()), 400,
                       "invalid_request_error")  # fmt: skip
        assert bad["param"] == param
    by_admin = await client.post(url, json={"email": "a@example.com", "role": "member"},
                                 headers=admin.headers())  # fmt: skip
    assert by_admin.status_code == 201, by_admin.text
    assert conn.execute("SELECT count(*) FROM team_invitations WHERE account_id = %s",
                        (team,)).fetchone() == (3,)  # fmt: skip


async def test_members_spend_one_shared_balance(
    client: httpx.AsyncClient, fake: FakeAuth, conn: psycopg.Connection
) -> None:
    owner, team, (member,) = await crew(client, fake, "member")
    fund(team, 2_000_000_000)
    personal = {}
    for person in (owner, member):
        profile = (await client.get("/v1/account", headers=person.headers())).json()["data"]
        personal[person.sub] = (profile["account"]["id"], profile["account"]["balance"])
    costs = {}
    for person, times in ((owner, 1), (member, 2)):
        secret = await team_key(client, person, team)
        spent = 0.0
        for _ in range(times):
            answer = await chat(secret)
            assert answer.status_code == 200, answer.text
            spent += answer.json()["usage"]["cost"]
        costs[person.sub] = spent
    balance = conn.execute("SELECT balance_nanos FROM accounts WHERE id = %s", (team,)).fetchone()
    charged = round(sum(costs.values()) * 1e9)
    assert charged > 0
    assert balance == (2_000_000_000 - charged,)
    for person in (owner, member):  # their own accounts paid nothing
        profile = (await client.get("/v1/account", headers=person.headers())).json()["data"]
        assert (profile["account"]["id"], profile["account"]["balance"]) == personal[person.sub]
    members = await client.get(f"/v1/teams/{team}/members", headers=member.headers())
    usage = {m["role"]: m["usage"] for m in members.json()["data"]}
    assert usage == {"owner": costs[owner.sub], "member": costs[member.sub]}
    shown = (await client.get(f"/v1/teams/{team}", headers=member.headers())).json()["data"]
    assert round(shown["balance"] * 1e9) == 2_000_000_000 - charged
    assert ledger.invariant_holds(conn, team)
    assert ledger.broken_accounts(conn) == []
