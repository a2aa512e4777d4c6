"""Bring-your-own-key: an account's own keys for the upstream providers.

An account's owners and admins store one key per provider (`openrouter`, `portkey`,
`featherless`, `chutes`); storing again replaces it. The key is kept Fernet-encrypted
(`gatewayz.crypto`), is never shown again (a listing shows its last 4 characters) and
never enters the audit log. A chat request of the account then calls that provider with
the account's key and pays only the gateway's fee (`BYOK_FEE_PERCENT` of the catalog
cost); see `gatewayz.chat.completions`.

The chat path reads an account's encrypted keys once and keeps them with the account's
`auth_version`: every change here bumps that version (a trigger, infra/migrations/0016)
and is announced, so the next request everywhere reads them again. Keys are decrypted
per request, only for the request, and never logged.
"""

from __future__ import annotations

import threading
import uuid
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, StrictStr

from gatewayz import crypto, db, errors, http, jsonbody
from gatewayz.chat.providers import REGISTRY
from gatewayz.identity import audit, auth, principal
from gatewayz.logs import get_logger
from gatewayz.record import record

if TYPE_CHECKING:
    from datetime import datetime

    from starlette.requests import Request

    from gatewayz.identity.auth import Caller
    from gatewayz.identity.principal import Principal

READ_SCOPES = ("keys:read", "keys:write")
WRITE_SCOPES = ("keys:write",)
MAX_KEY_CHARS = 4096
DEFAULT_LIMIT, MAX_LIMIT = 20, 100
_CACHE_MAX = 10_000
_COLUMNS = "id, provider, key_last4, created_at, updated_at"


class ProviderKeyCreate(BaseModel):
    """The body of `POST /v1/provider-keys`."""

    model_config = ConfigDict(extra="forbid")

    provider: StrictStr
    key: StrictStr


def parse(raw: bytes) -> ProviderKeyCreate:
    """The body of `POST /v1/provider-keys`.

    Raises:
        InvalidRequest: not a JSON object with string `provider` and `key` (`param` names
            the field).
    """
    from pydantic import ValidationError

    try:
        return ProviderKeyCreate.model_validate(jsonbody.loads(raw))
    except ValidationError as exc:
        raise http.validation_to_error(exc.errors()) from None


@record
class ProviderKey:
    """A stored provider key as the API shows it: never the secret."""

    id: str
    provider: str
    last4: str
    created_at: datetime
    updated_at: datetime

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "provider_key",
            "provider": self.provider,
            "last4": self.last4,
            "created_at": int(self.created_at.timestamp()),
            "updated_at": int(self.updated_at.timestamp()),
        }

    def audited(self) -> dict[str, Any]:
        """What the audit log keeps of it: which provider, which key (by its last 4)."""
        return {"provider": self.provider, "last4": self.last4}


def store(
    owner: Principal, body: ProviderKeyCreate, request: Request | None = None
) -> tuple[ProviderKey, bool]:
    """Store the account's key for `body.provider`, replacing any it had; the stored key
    and whether it is new.

    Raises:
        RoleDenied: not the account's owner or an admin.
        InvalidRequest: an unknown provider or an unusable key (`param` names which).
        MissingConfiguration: ENCRYPTION_KEYS is unset (nothing is stored).
    """
    principal.require_manager(owner)
    provider, secret = _provider(body.provider), _secret(body.key)
    sealed = crypto.encrypt(secret)
    with db.transaction() as cur:
        old = cur.execute(
            f"SELECT {_COLUMNS} FROM provider_credentials"
            " WHERE account_id = %s AND provider = %s FOR UPDATE",
            (owner.account_id, provider),
        ).fetchone()
        row = cur.execute(
            f"""INSERT INTO provider_credentials
                       (account_id, provider, encrypted_key, key_last4, created_by)
                VALUES (%s, %s, %s, %s, %s)
                ON CONFLICT (account_id, provider) DO UPDATE
                   SET encrypted_key = EXCLUDED.encrypted_key, key_last4 = EXCLUDED.key_last4,
                       created_by = EXCLUDED.created_by, updated_at = now()
                RETURNING {_COLUMNS}""",
            (owner.account_id, provider, sealed, secret[-4:], owner.user_id),
        ).fetchone()
        assert row is not None
        stored = _key(row)
        before = _key(old) if old is not None else None
        audit.record(
            cur,
            action="provider_key.replace" if before else "provider_key.create",
            target_type="provider_key",
            target_id=stored.id,
            account_id=owner.account_id,
            principal=owner,
            before=before.audited() if before else None,
            after=stored.audited(),
            request=request,
        )
    auth.announce(owner.account_id)
    return stored, before is None


def list_page(owner: Principal, *, limit: str | None, cursor: str | None) -> dict[str, Any]:
    """The account's stored keys by provider name, without secrets: one page.

    Raises:
        RoleDenied: not the account's owner or an admin.
        InvalidRequest: `limit` is not an integer from 1 to 100.
    """
    principal.require_manager(owner)
    size = _limit(limit)
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM provider_credentials"
        " WHERE account_id = %s AND provider > %s ORDER BY provider LIMIT %s",
        (owner.account_id, cursor or "", size + 1),
    ).fetchall()
    page = [_key(row) for row in rows[:size]]
    more = len(rows) > size
    return {"data": [k.public() for k in page], "next_cursor": page[-1].provider if more else None}


def delete(owner: Principal, ref: str, request: Request | None = None) -> ProviderKey:
    """Delete the account's key named by `ref` (its provider or its id); the deleted key.

    Raises:
        RoleDenied: not the account's owner or an admin.
        NotFound: the account has no such key (another account's id included).
    """
    principal.require_manager(owner)
    column = "provider" if ref in REGISTRY else "id"
    if column == "id" and not _is_uuid(ref):
        raise _not_found(ref)
    with db.transaction() as cur:
        row = cur.execute(
            f"DELETE FROM provider_credentials WHERE account_id = %s AND {column} = %s"
            f" RETURNING {_COLUMNS}",
            (owner.account_id, ref),
        ).fetchone()
        if row is None:
            raise _not_found(ref)
        gone = _key(row)
        audit.record(
            cur,
            action="provider_key.delete",
            target_type="provider_key",
            target_id=gone.id,
            account_id=owner.account_id,
            principal=owner,
            before=gone.audited(),
            request=request,
        )
    auth.announce(owner.account_id)
    return gone


def own_keys(caller: Caller) -> dict[str, str]:
    """The caller's account's own provider keys, decrypted, by provider: for this request
    only (callers must not keep or log them).

    Raises:
        MissingConfiguration: the account has keys but ENCRYPTION_KEYS is unset, or holds
            none of the keys that sealed them (never served with our key instead).
    """
    sealed = _sealed(caller)
    keys = {}
    for provider, token in sealed.items():
        try:
            keys[provider] = crypto.decrypt(token)
        except crypto.Undecryptable:
            get_logger().error(
                "a stored provider key cannot be decrypted with ENCRYPTION_KEYS",
                extra={"account_id": caller.account_id, "provider": provider},
            )
            raise errors.MissingConfiguration(crypto.SETTING, invalid=True) from None
    return keys


def reencrypt() -> tuple[int, int]:
    """Re-encrypt every stored key with the newest of ENCRYPTION_KEYS; (re-encrypted,
    total). Keys already under the newest key are left as they are, so a second run
    changes nothing.

    Raises:
        MissingConfiguration: ENCRYPTION_KEYS is unset or invalid.
        Undecryptable: a stored key opens with none of ENCRYPTION_KEYS (nothing changed).
    """
    changed: set[str] = set()
    rotated = 0
    with db.transaction() as cur:
        rows = cur.execute(
            "SELECT id, account_id, encrypted_key FROM provider_credentials ORDER BY id FOR UPDATE"
        ).fetchall()
        for key_id, account_id, token in rows:
            if crypto.is_current(token):
                continue
            cur.execute(
                "UPDATE provider_credentials SET encrypted_key = %s WHERE id = %s",
                (crypto.rotate(token), key_id),
            )
            rotated += 1
            changed.add(str(account_id))
            audit.record(
                cur,
                action="provider_key.reencrypt",
                target_type="provider_key",
                target_id=str(key_id),
                account_id=str(account_id),
                actor_kind="system",
            )
    for account_id in changed:
        auth.announce(account_id)
    return rotated, len(rows)


def forget() -> None:
    """Drop the cached keys of every account (tests)."""
    with _lock:
        _cache.clear()


# account id -> (its auth_version when read, {provider: encrypted key})
_cache: dict[str, tuple[int, dict[str, str]]] = {}
_lock = threading.Lock()


def _sealed(caller: Caller) -> dict[str, str]:
    """The account's encrypted keys, read again once its auth_version moved past the
    cached one (every change to them moves it)."""
    with _lock:
        cached = _cache.get(caller.account_id)
    if cached is not None and cached[0] >= caller.auth_version:
        return cached[1]
    rows = db.execute(
        """SELECT a.auth_version, c.provider, c.encrypted_key
             FROM accounts a LEFT JOIN provider_credentials c ON c.account_id = a.id
            WHERE a.id = %s""",
        (caller.account_id,),
    ).fetchall()
    version = int(rows[0][0]) if rows else caller.auth_version
    sealed = {p: token for _, p, token in rows if p in REGISTRY}
    with _lock:
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()
        _cache[caller.account_id] = (version, sealed)
    return sealed


def _provider(name: str) -> str:
    if name not in REGISTRY:
        raise errors.InvalidRequest(
            f"`provider` must be one of {', '.join(sorted(REGISTRY))}.", param="provider"
        )
    return name


def _secret(key: str) -> str:
    key = key.strip()
    if len(key) < 8 or len(key) > MAX_KEY_CHARS:
        raise errors.InvalidRequest(
            f"`key` must be the provider's API key: 8 to {MAX_KEY_CHARS} characters.", param="key"
        )
    # It goes into an HTTP header as it is.
    if not key.isascii() or not key.isprintable() or any(c.isspace() for c in key):
        raise errors.InvalidRequest(
            "`key` must be printable ASCII without spaces, as API keys are.", param="key"
        )
    return key


def _limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_LIMIT
    if not value.isdigit() or not 1 <= int(value) <= MAX_LIMIT:
        raise errors.InvalidRequest(
            f"`limit` must be an integer from 1 to {MAX_LIMIT}.", param="limit"
        )
    return int(value)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _not_found(ref: str) -> errors.NotFound:
    return errors.NotFound(f"No provider key `{ref[:100]}` in this account.")


def _key(row: tuple[Any, ...]) -> ProviderKey:
    key_id, provider, last4, created_at, updated_at = row
    return ProviderKey(str(key_id), provider, last4, created_at, updated_at)
