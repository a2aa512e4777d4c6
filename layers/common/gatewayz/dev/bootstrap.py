"""Local bootstrap (docs/architecture.md, local run): migrate, seed, and the admin and
demo accounts.

The admin key holds every scope; the demo key belongs to a user on the trial plan whose
$10 trial credit is in the ledger. Both secrets are saved to `<state dir>/dev-keys.json`
(shown once, like any key, so this file is the only copy) and reused while they still
authenticate.

Sign-up works offline too: `session_token` signs a Supabase-style session token with the
local session secret (generated into the state directory when SUPABASE_JWT_SECRET is
unset), which `POST /v1/account` accepts as it would a real Supabase session.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from typing import TYPE_CHECKING, Any

from gatewayz import config, db, migrate, seed
from gatewayz.identity import accounts, keys
from gatewayz.record import record

if TYPE_CHECKING:
    from pathlib import Path

    import psycopg

ADMIN_EMAIL = "admin@gatewayz.dev.local"
DEMO_EMAIL = "demo@gatewayz.dev.local"
# Local Supabase user ids derive from the e-mail, so one address is one user across tokens.
_LOCAL_USERS = uuid.UUID("6f1c2d1e-7a43-4c55-9a0e-2b6f0c9d8e11")
SESSION_TTL_S = 3600


@record
class DevKeys:
    """The two keys a local run prints."""

    admin_key: str
    demo_key: str


def prepare_database(root: Path) -> dict[str, Any]:
    """Apply migrations and seed data; return what was done."""
    conn = db.connection()
    applied = migrate.apply(conn, root / "infra" / "migrations")
    seeded = seed.apply(conn, root / "infra" / "seed")
    return {"migrations_applied": applied, **seeded}


def dev_keys(home: Path) -> DevKeys:
    """The saved admin and demo keys if they still work, else new ones (saved)."""
    path = home / "dev-keys.json"
    pepper = config.key_hash_secret()
    conn = db.connection()
    if path.exists():
        saved = json.loads(path.read_text())
        found = DevKeys(saved.get("admin_key", ""), saved.get("demo_key", ""))
        if _works(conn, found.admin_key, pepper) and _works(conn, found.demo_key, pepper):
            return found
    with db.transaction() as cur:
        admin = _owner(cur, ADMIN_EMAIL, "Local admin", plan_id="payg", is_admin=True)
        demo = _owner(cur, DEMO_EMAIL, "Demo user", plan_id="trial", is_admin=False)
        admin_key = keys.create(
            cur, **_ids(admin), name="local admin", pepper=pepper, scopes=keys.SCOPES
        )
        demo_key = keys.create(cur, **_ids(demo), name="local demo", pepper=pepper)
    created = DevKeys(admin_key.secret, demo_key.secret)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        json.dump({"admin_key": created.admin_key, "demo_key": created.demo_key}, file, indent=2)
    return created


def _ids(owner: accounts.Owner) -> dict[str, str]:
    return {"account_id": owner.account_id, "user_id": owner.user_id}


def _owner(
    cur: psycopg.Cursor[Any], email: str, name: str, *, plan_id: str, is_admin: bool
) -> accounts.Owner:
    """The user with this e-mail and the personal account they own, created if missing."""
    row = cur.execute(
        """SELECT u.id, m.account_id FROM users u
             JOIN memberships m ON m.user_id = u.id AND m.role = 'owner'
             JOIN accounts a ON a.id = m.account_id AND a.kind = 'personal'
            WHERE lower(u.email) = lower(%s)""",
        (email,),
    ).fetchone()
    if row is not None:
        return accounts.Owner(user_id=str(row[0]), account_id=str(row[1]))
    return accounts.create_personal(
        cur, email=email, display_name=name, plan_id=plan_id, is_admin=is_admin
    )


def _works(conn: psycopg.Connection[Any], secret: str, pepper: bytes) -> bool:
    if not keys.looks_like_key(secret):
        return False
    row = conn.execute(
        """SELECT 1 FROM api_key_secrets s JOIN api_keys k ON k.id = s.key_id
            WHERE s.hash = %s AND k.revoked_at IS NULL
              AND (s.expires_at IS NULL OR s.expires_at > now())
              AND (k.expires_at IS NULL OR k.expires_at > now())""",
        (keys.hash_secret(secret, pepper),),
    ).fetchone()
    return row is not None


def session_token(
    email: str, *, verified: bool = True, ttl_s: int = SESSION_TTL_S, now: float | None = None
) -> str:
    """A session token for `email` as Supabase Auth would issue it after an e-mail sign-in
    (its claims and HS256 signature), signed with the session secret in use here."""
    import jwt

    issued = int(time.time() if now is None else now)
    subject = str(uuid.uuid5(_LOCAL_USERS, email.strip().lower()))
    url = config.get_settings().supabase_url
    claims = {
        "aud": "authenticated", "exp": issued + ttl_s, "iat": issued, "sub": subject,
        "email": email.strip(), "phone": "", "role": "authenticated", "aal": "aal1",
        "app_metadata": {"provider": "email", "providers": ["email"]},
        "user_metadata": {"email": email.strip(), "email_verified": verified,
                          "phone_verified": False, "sub": subject},
        "amr": [{"method": "password", "timestamp": issued}],
        "session_id": str(uuid.uuid4()), "is_anonymous": False,
        **({"iss": f"{url.rstrip('/')}/auth/v1"} if url else {}),
    }  # fmt: skip
    return jwt.encode(claims, config.session_jwt_secret(), algorithm="HS256")
