"""Platform operators for the `/admin` route tests: a user with `is_admin` and a key of
theirs holding the `admin` scope."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gatewayz import db
from gatewayz.identity import keys
from tests.factories import new_key, new_owner

if TYPE_CHECKING:
    from gatewayz.identity.accounts import Owner


def make_operator(owner: Owner) -> None:
    """Make the owner's user a platform operator."""
    db.execute("UPDATE users SET is_admin = true WHERE id = %s", (owner.user_id,))


def operator_key() -> tuple[Owner, keys.NewKey]:
    """A new operator and their key with every scope, `admin` included."""
    owner = new_owner()
    make_operator(owner)
    return owner, new_key(owner, scopes=(*keys.DEFAULT_SCOPES, "admin"))
