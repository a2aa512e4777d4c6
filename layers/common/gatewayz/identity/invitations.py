"""Invitations to a team: sent by its owner or an admin to an e-mail address, accepted once
by the person signed in with that (verified) address.

The token is random, shown once (in the response and the queued e-mail) and kept only as
its SHA-256; it expires after `TTL`. Accepting adds the membership and marks the invitation
in one transaction, with the invitation's row locked, so a token serves once however many
times it is replayed.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from gatewayz import db, errors
from gatewayz.identity import audit, auth, signup, teams
from gatewayz.identity.principal import Principal, require_manager

if TYPE_CHECKING:
    import psycopg
    from starlette.requests import Request

    from gatewayz.identity.sessions import Session

TTL = timedelta(days=7)
TOKEN_PREFIX = "gwinv_"  # noqa: S105 (a prefix, not a secret)
INVITABLE_ROLES = ("admin", "member")
EMAIL_MAX = 320
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")

_COLUMNS = """
SELECT i.id, i.account_id, i.email, i.role, i.created_at, i.expires_at, i.accepted_at,
       i.revoked_at,
       CASE WHEN i.accepted_at IS NOT NULL THEN 'accepted'
            WHEN i.revoked_at IS NOT NULL THEN 'revoked'
            WHEN i.expires_at <= now() THEN 'expired'
            ELSE 'pending' END
  FROM team_invitations i
"""


def create(
    actor: Principal, team_id: str, email: Any, role: Any, *, request: Request | None = None
) -> dict[str, Any]:
    """`POST /v1/teams/{id}/invitations`: the invitation and its token; one e-mail queued.

    Raises:
        InvalidRequest: a bad `email` or `role` (param named).
        NotFound: not a member. RoleDenied: a member, or an admin inviting an admin.
        AlreadyMember: the address belongs to a member already.
    """
    if (
        not isinstance(email, str)
        or len(email.strip()) > EMAIL_MAX
        or not _EMAIL.match(email.strip())
    ):
        raise errors.InvalidRequest("email must be an e-mail address.", param="email")
    if role not in INVITABLE_ROLES:
        raise errors.InvalidRequest("role must be admin or member.", param="role")
    address = email.strip()
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with db.transaction() as cur:
        me = teams.in_team(cur, actor, team_id, lock=True)
        require_manager(me)
        if role == "admin" and me.role != "owner":
            raise errors.RoleDenied("Only the team's owner makes an admin.")
        if _member_by_email(cur, team_id, address):
            raise errors.AlreadyMember("This address belongs to a member of the team already.")
        row = cur.execute(
            """INSERT INTO team_invitations (account_id, email, role, token_hash, invited_by,
                                             expires_at)
               VALUES (%s, %s, %s, %s, %s, now() + %s) RETURNING id""",
            (team_id, address, role, _digest(token), me.user_id, TTL),
        ).fetchone()
        assert row is not None
        invitation = _one(cur, team_id, str(row[0]))
        _queue_email(cur, invitation, token)
        audit.record(
            cur, action="invitation.create", target_type="invitation",
            target_id=invitation["id"], account_id=team_id, principal=me,
            after={"email": address, "role": role, "expires_at": invitation["expires_at"]},
            request=request,
        )  # fmt: skip
    return {"data": invitation, "token": token}


def list_invitations(
    actor: Principal, team_id: str, limit: str | None, cursor: str | None
) -> dict[str, Any]:
    """`GET /v1/teams/{id}/invitations`: newest first, any status (owners and admins).

    Raises:
        NotFound: not a member. RoleDenied: a member.
    """
    with db.transaction() as cur:
        require_manager(teams.in_team(cur, actor, team_id))
        return teams.page_of(cur, _COLUMNS + " WHERE i.account_id = %s", [team_id], limit,
                             cursor, by=("i.created_at", "i.id"), newest_first=True,
                             shape=_shape)  # fmt: skip


def revoke(
    actor: Principal, team_id: str, invitation_id: str, *, request: Request | None = None
) -> dict[str, Any]:
    """`DELETE /v1/teams/{id}/invitations/{invitation_id}`: the revoked invitation; revoking
    it again changes nothing.

    Raises:
        NotFound: not a member, or no such invitation of the team. RoleDenied: a member.
        InvitationUsed: it was accepted already.
    """
    with db.transaction() as cur:
        me = teams.in_team(cur, actor, team_id, lock=True)
        require_manager(me)
        before = _one(cur, team_id, teams.parse_id(invitation_id, "invitation"))
        if before["status"] == "accepted":
            raise errors.InvitationUsed("This invitation was accepted already.")
        if before["status"] == "revoked":
            return {"data": before}
        cur.execute("UPDATE team_invitations SET revoked_at = now() WHERE id = %s", (before["id"],))
        audit.record(
            cur, action="invitation.revoke", target_type="invitation", target_id=before["id"],
            account_id=team_id, principal=me, before={"status": before["status"]},
            after={"status": "revoked"}, request=request,
        )  # fmt: skip
        return {"data": _one(cur, team_id, before["id"])}


def accept(session: Session, token: str, *, request: Request | None = None) -> dict[str, Any]:
    """`POST /v1/invitations/{token}/accept`: join the team; the team as the new member
    sees it. A person not signed up yet is signed up first.

    Raises:
        NotFound: no such token. InvitationUsed: accepted, revoked or expired.
        InvitationEmailMismatch: the session's e-mail is unverified or another address.
        AlreadyMember: the user is in the team already.
        AccountInactive: the team is closed or suspended.
    """
    with db.transaction() as cur:
        _usable(cur, session, token, lock=False)  # before signing anyone up
    user_id = _user_of(session) or _sign_up(session, request)
    with db.transaction() as cur:
        invitation = _usable(cur, session, token, lock=True)
        team_id = invitation["team_id"]
        status = cur.execute("SELECT status FROM accounts WHERE id = %s", (team_id,)).fetchone()
        if status is None or status[0] != "active":
            raise errors.AccountInactive("This team is closed or suspended.")
        joined = cur.execute(
            """INSERT INTO memberships (account_id, user_id, role) VALUES (%s, %s, %s)
               ON CONFLICT DO NOTHING""",
            (team_id, user_id, invitation["role"]),
        ).rowcount
        if not joined:
            raise errors.AlreadyMember("You are a member of this team already.")
        cur.execute(
            "UPDATE team_invitations SET accepted_at = now(), accepted_by = %s WHERE id = %s",
            (user_id, invitation["id"]),
        )
        member = Principal(user_id, team_id, invitation["role"])
        audit.record(
            cur, action="invitation.accept", target_type="invitation",
            target_id=invitation["id"], account_id=team_id, principal=member,
            before={"status": "pending"}, after={"status": "accepted", "user_id": user_id,
                                                 "role": invitation["role"]},
            request=request,
        )  # fmt: skip
        team = teams.get_in(cur, user_id, team_id)
    auth.announce(team_id)
    return {"data": team}


def _usable(
    cur: psycopg.Cursor[Any], session: Session, token: str, *, lock: bool
) -> dict[str, Any]:
    """The pending invitation of `token`, sent to the session's verified address."""
    found = cur.execute(
        _COLUMNS + " WHERE i.token_hash = %s" + (" FOR UPDATE" if lock else ""), (_digest(token),)
    ).fetchone()
    if found is None:
        raise errors.NotFound("No such invitation.")
    invitation = _shape(found)
    if invitation["status"] != "pending":
        raise errors.InvitationUsed(f"This invitation is {invitation['status']}.")
    if not session.email_verified or session.email.lower() != invitation["email"].lower():
        raise errors.InvitationEmailMismatch(
            "This invitation was sent to another e-mail address (or yours is not verified)."
        )
    return invitation


def _user_of(session: Session) -> str | None:
    row = db.execute(
        "SELECT id FROM users WHERE auth_user_id = %s", (session.auth_user_id,)
    ).fetchone()
    return str(row[0]) if row is not None else None


def _sign_up(session: Session, request: Request | None) -> str:
    signup.sign_up(session, request=request)
    found = _user_of(session)
    assert found is not None
    return found


def _member_by_email(cur: psycopg.Cursor[Any], team_id: str, email: str) -> bool:
    return (
        cur.execute(
            """SELECT 1 FROM memberships m JOIN users u ON u.id = m.user_id
                WHERE m.account_id = %s AND lower(u.email) = lower(%s)""",
            (team_id, email),
        ).fetchone()
        is not None
    )


def _queue_email(cur: psycopg.Cursor[Any], invitation: dict[str, Any], token: str) -> None:
    from psycopg.types.json import Jsonb

    name = cur.execute(
        "SELECT name FROM accounts WHERE id = %s", (invitation["team_id"],)
    ).fetchone()
    assert name is not None
    cur.execute(
        """INSERT INTO email_outbox (account_id, to_address, template, subject, payload,
                                     dedupe_key)
           VALUES (%s, %s, 'team_invitation', %s, %s, %s) ON CONFLICT (dedupe_key) DO NOTHING""",
        (
            invitation["team_id"],
            invitation["email"],
            f"You are invited to join {name[0]} on Gatewayz",
            Jsonb(
                {
                    "team": name[0],
                    "role": invitation["role"],
                    "token": token,
                    "accept_path": f"/v1/invitations/{token}/accept",
                    "expires_at": invitation["expires_at"],
                }
            ),
            f"invitation:{invitation['id']}",
        ),
    )


def _one(cur: psycopg.Cursor[Any], team_id: str, invitation_id: str) -> dict[str, Any]:
    row = cur.execute(
        _COLUMNS + " WHERE i.account_id = %s AND i.id = %s", (team_id, invitation_id)
    ).fetchone()
    if row is None:
        raise errors.NotFound("No such invitation.")
    return _shape(row)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _shape(row: Any) -> dict[str, Any]:
    invitation_id, team_id, email, role, created, expires, accepted, revoked, status = row
    return {
        "id": str(invitation_id),
        "team_id": str(team_id),
        "email": email,
        "role": role,
        "status": status,
        "created_at": created.isoformat(),
        "expires_at": expires.isoformat(),
        "accepted_at": accepted.isoformat() if accepted else None,
        "revoked_at": revoked.isoformat() if revoked else None,
    }
