"""The e-mail outbox: notices are rows first, e-mails later.

A notice is queued in the transaction of the change it reports (a payment credited, a
key rotated), so it exists exactly when the change does; `dedupe_key` makes queueing it
twice a no-op. The `email_outbox` job renders and sends it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

# Notices an account cannot turn off: they report money moving or access changing.
ESSENTIAL = frozenset(
    {
        "payment_received",
        "payment_failed",
        "refund",
        "key_rotated",
        "trial_ended",
        "spend_limit_reached",
        "team_invitation",
    }
)
# Notices an account may turn off in its e-mail preferences (`/v1/account`).
OPTIONAL = frozenset({"welcome", "trial_ending", "low_balance", "key_limit", "spend_alert"})
TEMPLATES = ESSENTIAL | OPTIONAL


def queue(
    cur: psycopg.Cursor[Any],
    *,
    account_id: str,
    template: str,
    subject: str,
    payload: dict[str, Any],
    dedupe_key: str,
    to_address: str | None = None,
) -> bool:
    """Queue one notice for the account's owner (or `to_address`); False when it was
    already queued (same `dedupe_key`), the account turned it off, or nobody can get it.

    Raises:
        ValueError: `template` is not a known notice.
    """
    from psycopg.types.json import Jsonb

    if template not in TEMPLATES:
        raise ValueError(f"unknown e-mail template {template!r}")
    row = cur.execute(
        """SELECT a.email_preferences, u.email
             FROM accounts a
             LEFT JOIN memberships m ON m.account_id = a.id AND m.role = 'owner'
             LEFT JOIN users u ON u.id = m.user_id
            WHERE a.id = %s""",
        (account_id,),
    ).fetchone()
    if row is None:
        return False
    preferences, owner_email = row
    if template in OPTIONAL and preferences.get(template) is False:
        return False
    address = to_address or owner_email
    if address is None:
        return False
    queued = cur.execute(
        """INSERT INTO email_outbox (account_id, to_address, template, subject, payload,
                                     dedupe_key)
           VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (dedupe_key) DO NOTHING
           RETURNING id""",
        (account_id, address, template, subject, Jsonb(payload), dedupe_key),
    ).fetchone()
    return queued is not None
