"""Arranging rows for integration tests through the package's own functions."""

from __future__ import annotations

import uuid

from gatewayz import accounts, db


def new_owner(plan_id: str = "payg") -> accounts.Owner:
    """A fresh user with a personal account (a trial plan grants the trial credit)."""
    with db.transaction() as cur:
        return accounts.create_personal(
            cur, email=f"user-{uuid.uuid4().hex[:10]}@example.com", plan_id=plan_id
        )
