"""`/v1/account` through the keys function's real app: sign-up with a Supabase session
(one user, account, key and trial however many first requests race), the trial rules,
the profile, its changes, and closing the account (keys revoked, ledger kept)."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from gatewayz import db
from gatewayz.identity.accounts import Owner
from tests import ledger
from tests.factories import new_key
from tests.fakes.supabase_auth import HS256_SECRET, SigningKey, claims, project, sign
from tests.functions.events import event, function, invoke, json_body

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    import psycopg

    from tests.fakes.supabase_auth import FakeAuth

pytestmark = pytest.mark.usefixtures("database_url")
TRIAL_NANOS = 10_000_000_000


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAuth]:
    with project(monkeypatch) as served:
        yield served


@pytest.fixture
async def client(fake: FakeAuth) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=function("keys").app, client=("198.51.100.9", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://keys.local") as c:
        yield c


class Person:
    """Someone signed in to the fake project: their Supabase id and e-mail."""

    def __init__(self, fake: FakeAuth, email: str | None = None, *, verified: bool = True):
        self.fake = fake
        self.sub = str(uuid.uuid4())
        self.email = email or f"p-{self.sub[:8]}@example.com"
        self.verified = verified

    def token(self, **extra: Any) -> str:
        payload = claims(self.email, sub=self.sub, verified=self.verified,
                         iss=self.fake.issuer, **extra)  # fmt: skip
        return sign(payload, HS256_SECRET)

    def headers(self, account: str | None = None) -> dict[str, str]:
        found = {"Authorization": f"Bearer {self.token()}"}
        return found | ({"X-Gatewayz-Account": account} if account else {})


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def error_of(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    return error


async def sign_up(client: httpx.AsyncClient, person: Person) -> dict[str, Any]:
    response = await client.post("/v1/account", headers=person.headers())
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def trial_rows(conn: psycopg.Connection, account_id: str) -> list[int]:
    rows = conn.execute(
        "SELECT amount_nanos FROM credit_transactions WHERE account_id = %s AND kind = 'trial'",
        (account_id,),
    ).fetchall()
    return [row[0] for row in rows]


async def test_a_verified_first_sign_in_gets_an_account_a_key_and_the_trial(
    client: httpx.AsyncClient, fake: FakeAuth, conn: psycopg.Connection
) -> None:
    person = Person(fake)
    body = await sign_up(client, person)
    data, key = body["data"], body["key"]
    assert key.startswith("gw_live_")
    assert data["user"]["email"] == person.email
    assert data["role"] == "owner"
    account = data["account"]
    assert (account["kind"], account["plan"], account["status"]) == ("personal", "trial", "active")
    assert account["balance"] == 10
    assert account["trial_started_at"] is not None
    assert trial_rows(conn, account["id"]) == [TRIAL_NANOS]
    # The key works and acts in the same account; the secret is never shown again.
    by_key = await client.get("/v1/account", headers=bearer(key))
    assert by_key.status_code == 200, by_key.text
    assert by_key.json()["data"]["account"]["id"] == account["id"]
    for headers in (person.headers(), bearer(key)):  # a session again, or the new key
        again = await client.post("/v1/account", headers=headers)
        assert again.status_code == 200
        assert "key" not in again.json()
        assert again.json()["data"]["account"]["id"] == account["id"]
    actions = conn.execute(
        "SELECT action, actor_kind FROM audit_log WHERE account_id = %s ORDER BY id",
        (account["id"],),
    ).fetchall()
    assert actions == [("account.create", "user"), ("key.create", "user"),
                       ("account.trial_start", "user")]  # fmt: skip
    assert key not in str(conn.execute("SELECT after FROM audit_log WHERE account_id = %s",
                                       (account["id"],)).fetchall())  # fmt: skip


async def test_an_unverified_e_mail_gets_the_free_plan_until_it_is_verified(
    client: httpx.AsyncClient, fake: FakeAuth, conn: psycopg.Connection
) -> None:
    person = Person(fake, verified=False)
    account = (await sign_up(client, person))["data"]["account"]
    assert (account["plan"], account["balance"], account["trial_started_at"]) == ("free", 0, None)
    assert trial_rows(conn, account["id"]) == []
    person.verified = True
    later = await client.post("/v1/account", headers=person.headers())
    assert later.status_code == 200
    assert (later.json()["data"]["account"]["plan"], later.json()["data"]["account"]["balance"]) \
        == ("trial", 10)  # fmt: skip
    assert trial_rows(conn, account["id"]) == [TRIAL_NANOS]
    await client.post("/v1/account", headers=person.headers())
    assert trial_rows(conn, account["id"]) == [TRIAL_NANOS]


async def test_an_e_mail_never_gets_a_second_trial(
    client: httpx.AsyncClient, fake: FakeAuth, conn: psycopg.Connection
) -> None:
    person = Person(fake, email=f"Once-{uuid.uuid4().hex[:8]}@Example.com")
    first = (await sign_up(client, person))["data"]["account"]
    closed = await client.delete("/v1/account", headers=person.headers())
    assert closed.status_code == 200, closed.text
    # The same address, signing in again (a new Supabase user, same inbox) after closing.
    for email in (person.email.lower(), person.email.replace("@", "+again@")):
        again = Person(fake, email=email)
        second = (await sign_up(client, again))["data"]["account"]
        assert second["id"] != first["id"]
        assert (second["plan"], second["balance"]) == ("free", 0)
        assert trial_rows(conn, second["id"]) == []
        await client.delete("/v1/account", headers=again.headers())


async def test_twenty_concurrent_first_sign_ins_create_one_of_everything(
    client: httpx.AsyncClient, fake: FakeAuth, conn: psycopg.Connection
) -> None:
    person = Person(fake)
    responses = await asyncio.gather(
        *(client.post("/v1/account", headers=person.headers()) for _ in range(20))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 19 + [201], [r.text for r in responses if r.status_code >= 300]
    assert sum("key" in r.json() for r in responses) == 1
    assert len({r.json()["data"]["account"]["id"] for r in responses}) == 1
    counts = conn.execute(
        """SELECT count(DISTINCT u.id), count(DISTINCT m.account_id), count(DISTINCT k.id),
                  count(DISTINCT t.id)
             FROM users u
             JOIN memberships m ON m.user_id = u.id
             LEFT JOIN api_keys k ON k.account_id = m.account_id
             LEFT JOIN credit_transactions t ON t.account_id = m.account_id AND t.kind = 'trial'
            WHERE u.auth_user_id = %s""",
        (person.sub,),
    ).fetchone()
    assert counts == (1, 1, 1, 1)


async def test_another_users_session_cannot_read_or_change_this_account(
    client: httpx.AsyncClient, fake: FakeAuth, conn: psycopg.Connection
) -> None:
    owner, stranger = Person(fake), Person(fake)
    account = (await sign_up(client, owner))["data"]["account"]
    await sign_up(client, stranger)
    target = account["id"]
    error_of(await client.get("/v1/account", headers=stranger.headers(target)), 404, "not_found")
    patched = await client.patch("/v1/account", headers=stranger.headers(target),
                                 json={"name": "mine now"})  # fmt: skip
    error_of(patched, 404, "not_found")
    error_of(await client.delete("/v1/account", headers=stranger.headers(target)), 404,
             "not_found")  # fmt: skip
    assert conn.execute("SELECT name, status FROM accounts WHERE id = %s", (target,)).fetchone() \
        == (account["name"], "active")  # fmt: skip
    # Without the header the stranger sees only their own account.
    own = await client.get("/v1/account", headers=stranger.headers())
    assert own.json()["data"]["account"]["id"] != target


async def test_a_member_reads_and_renames_themself_but_not_the_account(
    client: httpx.AsyncClient, fake: FakeAuth, conn: psycopg.Connection
) -> None:
    owner, member = Person(fake), Person(fake)
    account = (await sign_up(client, owner))["data"]["account"]
    member_user = (await sign_up(client, member))["data"]["user"]["id"]
    conn.execute("INSERT INTO memberships (account_id, user_id, role) VALUES (%s, %s, 'member')",
                 (account["id"], member_user))  # fmt: skip
    seen = await client.get("/v1/account", headers=member.headers(account["id"]))
    assert (seen.json()["data"]["account"]["id"], seen.json()["data"]["role"]) == (
        account["id"], "member",
    )  # fmt: skip
    renamed = await client.patch("/v1/account", headers=member.headers(account["id"]),
                                 json={"display_name": "Member M"})  # fmt: skip
    assert renamed.json()["data"]["user"]["display_name"] == "Member M"
    denied = await client.patch("/v1/account", headers=member.headers(account["id"]),
                                json={"name": "Taken over"})  # fmt: skip
    error_of(denied, 403, "role_denied")
    error_of(await client.delete("/v1/account", headers=member.headers(account["id"])), 403,
             "role_denied")  # fmt: skip
    by_owner = await client.patch("/v1/account", headers=owner.headers(), json={"name": "Ours"})
    assert by_owner.json()["data"]["account"]["name"] == "Ours"
    rows = conn.execute(
        """SELECT action, actor_user_id::text, before, after FROM audit_log
            WHERE account_id = %s AND action IN ('user.update', 'account.update') ORDER BY id""",
        (account["id"],),
    ).fetchall()
    assert rows == [
        ("user.update", member_user, {"display_name": None}, {"display_name": "Member M"}),
        ("account.update", owner_id(conn, owner), {"name": account["name"]}, {"name": "Ours"}),
    ]


def owner_id(conn: psycopg.Connection, person: Person) -> str:
    row = conn.execute("SELECT id::text FROM users WHERE auth_user_id = %s", (person.sub,))
    found = row.fetchone()
    assert found is not None
    return str(found[0])


async def test_closing_revokes_every_key_keeps_the_ledger_and_anonymises_the_owner(
    client: httpx.AsyncClient, fake: FakeAuth, conn: psycopg.Connection
) -> None:
    person = Person(fake)
    body = await sign_up(client, person)
    account, key = body["data"]["account"], body["key"]
    # The key serves a completion (the chat function caches it), then the account closes.
    assert (await chat(key))["statusCode"] == 200
    closed = await client.delete("/v1/account", headers=bearer(key))
    assert closed.status_code == 200, closed.text
    assert closed.json()["data"]["account"]["status"] == "closed"
    audit_row = conn.execute(
        """SELECT actor_kind, before, after FROM audit_log
            WHERE account_id = %s AND action = 'account.close'""",
        (account["id"],),
    ).fetchall()
    key_id = conn.execute("SELECT id::text FROM api_keys WHERE account_id = %s", (account["id"],))
    assert audit_row == [
        ("key", {"status": "active"}, {"status": "closed", "revoked_keys": [key_id.fetchone()[0]]})
    ]
    refused = await chat(key)
    assert (refused["statusCode"], json_body(refused)["error"]["code"]) == (401, "revoked_api_key")
    error_of(await client.get("/v1/account", headers=bearer(key)), 401, "revoked_api_key")
    live = "SELECT count(*) FROM api_keys WHERE account_id = %s AND revoked_at IS NULL"
    assert conn.execute(live, (account["id"],)).fetchone() == (0,)
    assert ledger.invariant_holds(conn, account["id"])
    assert len(conn.execute("SELECT 1 FROM credit_transactions WHERE account_id = %s",
                            (account["id"],)).fetchall()) >= 2  # trial and usage  # fmt: skip
    user = conn.execute("SELECT email, auth_user_id, deleted_at FROM users WHERE id = %s",
                        (body["data"]["user"]["id"],)).fetchone()  # fmt: skip
    assert user is not None
    assert user[0].endswith("@deleted.invalid")
    assert person.email not in user[0]
    assert (user[1], user[2] is not None) == (None, True)
    # The session now finds no account: signing in again starts afresh.
    error_of(await client.get("/v1/account", headers=person.headers()), 404, "account_not_found")


async def chat(key: str) -> dict[str, Any]:
    """One completion through the chat function's real handler and sample event (in a
    thread: Mangum runs its own event loop, as in Lambda)."""
    lambda_event = event("chat", "chat-completions")
    lambda_event["headers"]["Authorization"] = f"Bearer {key}"
    lambda_event["multiValueHeaders"]["Authorization"] = [f"Bearer {key}"]
    lambda_event["requestContext"]["requestId"] = str(uuid.uuid4())
    return await asyncio.to_thread(invoke, "chat", lambda_event)


async def test_bad_credentials_and_input_are_refused_with_their_codes(
    client: httpx.AsyncClient, fake: FakeAuth
) -> None:
    person = Person(fake)
    error_of(await client.get("/v1/account", headers=person.headers()), 404, "account_not_found")
    await sign_up(client, person)
    expired = {"Authorization": f"Bearer {person.token(exp=1)}"}
    error_of(await client.get("/v1/account", headers=expired), 401, "expired_session")
    error_of(await client.get("/v1/account", headers=bearer("nonsense")), 401, "invalid_session")
    error_of(await client.get("/v1/account"), 401, "invalid_api_key")
    error_of(await client.get("/v1/account", headers=bearer("gw_live_short")), 401,
             "invalid_api_key")  # fmt: skip
    bad_header = person.headers("not-a-uuid")
    assert error_of(await client.get("/v1/account", headers=bad_header), 400,
                    "invalid_request_error")["param"] == "X-Gatewayz-Account"  # fmt: skip
    for patch, param in (
        ({}, None),
        ({"name": " "}, "name"),
        ({"name": None}, "name"),
        ({"display_name": "x" * 201}, "display_name"),
        ({"plan": "team"}, "plan"),
    ):
        response = await client.patch("/v1/account", headers=person.headers(), json=patch)
        assert error_of(response, 400, "invalid_request_error")["param"] == param, patch


async def test_a_key_needs_a_read_scope_and_an_rs256_session_works_too(
    client: httpx.AsyncClient, fake: FakeAuth
) -> None:
    signing = fake.publish(SigningKey("RS256"))
    person = Person(fake)
    token = sign(claims(person.email, sub=person.sub, iss=fake.issuer), signing)
    created = await client.post("/v1/account", headers=bearer(token))
    assert created.status_code == 201, created.text
    data = created.json()["data"]
    chat_only = new_key(Owner(data["user"]["id"], data["account"]["id"]), scopes=["chat"])
    error_of(await client.get("/v1/account", headers=bearer(chat_only.secret)), 403,
             "scope_denied")  # fmt: skip


async def test_an_e_mail_taken_by_another_user_is_a_409(
    client: httpx.AsyncClient, fake: FakeAuth
) -> None:
    email = f"operator-made-{uuid.uuid4().hex[:8]}@example.com"
    db.execute("INSERT INTO users (email) VALUES (%s)", (email,))
    response = await client.post("/v1/account", headers=Person(fake, email=email).headers())
    error_of(response, 409, "email_in_use")


def test_sign_up_through_an_api_gateway_event(fake: FakeAuth) -> None:
    person = Person(fake)
    headers = {"Authorization": f"Bearer {person.token()}", "Content-Type": "application/json"}
    body = '{"display_name": "Via Gateway"}'
    post = event("keys", httpMethod="POST", path="/v1/account", headers=headers, body=body)
    created = invoke("keys", post)
    assert created["statusCode"] == 201, created["body"]
    assert json_body(created)["data"]["user"]["display_name"] == "Via Gateway"
    again = invoke("keys", event("keys", httpMethod="GET", path="/v1/account", headers=headers))
    assert json_body(again)["data"]["user"]["display_name"] == "Via Gateway"
