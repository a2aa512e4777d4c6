"""Supabase Auth sessions: a signed-in person's access token, verified.

Supabase Auth signs a session's access token (a JWT) either with the project's shared
secret (HS256, `SUPABASE_JWT_SECRET`) or with one of its asymmetric signing keys (RS256,
ES256), published as a JWKS at `{SUPABASE_URL}/auth/v1/.well-known/jwks.json`. The key set
is fetched once per warm function and kept; a token naming a key we do not know yet sends
us back for the set (a rotation), at most once every `JWKS_MIN_REFRESH_S`.

Whether the e-mail is verified: Supabase Auth sets `user_metadata.email_verified` to true
when the address is confirmed (and OAuth providers report theirs there). The user can
edit `user_metadata` themselves, so this is only as good as the project's "confirm
e-mail" setting, which keeps unconfirmed addresses from getting a session at all; a
project can instead put a top-level `email_verified` claim in its tokens with a custom
access token hook (read from `auth.users.email_confirmed_at`), which then wins.

PyJWT is imported on first use: the chat function never loads it.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from gatewayz import config, errors
from gatewayz.record import record

if TYPE_CHECKING:
    from jwt import PyJWK

AUDIENCE = "authenticated"
LEEWAY_S = 30  # clock skew between Supabase and us
ASYMMETRIC = ("RS256", "ES256")
JWKS_PATH = "/auth/v1/.well-known/jwks.json"
JWKS_MIN_REFRESH_S = 5.0
JWKS_TIMEOUT_S = 3.0


@record
class Session:
    """Who a verified session token says the person is."""

    auth_user_id: str  # Supabase's user id (`sub`), our `users.auth_user_id`
    email: str
    email_verified: bool
    display_name: str | None = None


def verify(token: str, *, clock: float | None = None) -> Session:
    """The session behind an access token, after checking its signature, expiry,
    audience and subject.

    Raises:
        InvalidSession: malformed, wrong signature or audience, unknown key, no e-mail.
        ExpiredSession: past its expiry.
        MissingConfiguration: the secret or SUPABASE_URL the token's algorithm needs.
        ServiceUnavailable: the signing keys could not be fetched.
    """
    import jwt

    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise errors.InvalidSession("Invalid session token.") from None
    algorithm = header.get("alg")
    key: Any
    if algorithm == "HS256":
        key = config.session_jwt_secret()
    elif algorithm in ASYMMETRIC:
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise errors.InvalidSession("Session token names no signing key.")
        key = key_set(_supabase_url()).key(kid, clock=clock)
        if key.algorithm_name != algorithm:
            raise errors.InvalidSession("Session token's algorithm does not match its key.")
    else:
        raise errors.InvalidSession(f"Session tokens signed with {algorithm!r} are not accepted.")
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=AUDIENCE,
            issuer=_issuer(),
            leeway=LEEWAY_S,
            options={"require": ["exp", "sub", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        raise errors.ExpiredSession("Session expired: refresh it and try again.") from None
    except jwt.PyJWTError as exc:
        raise errors.InvalidSession(f"Invalid session token: {exc}.") from None
    return _session(claims)


def _session(claims: dict[str, Any]) -> Session:
    try:
        subject = str(uuid.UUID(str(claims["sub"])))
    except ValueError:
        raise errors.InvalidSession("Invalid session token: `sub` is not a user id.") from None
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email or claims.get("is_anonymous") is True:
        raise errors.InvalidSession("This session has no e-mail address: sign in with one.")
    metadata = claims.get("user_metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    verified = claims.get("email_verified", metadata.get("email_verified"))
    name = metadata.get("full_name") or metadata.get("name")
    return Session(
        auth_user_id=subject,
        email=email.strip(),
        email_verified=verified is True,
        display_name=(name.strip()[:200] or None) if isinstance(name, str) else None,
    )


def _supabase_url() -> str:
    return config.require("supabase_url").rstrip("/")


def _issuer() -> str | None:
    """Supabase's `iss` when the project is configured (tokens of another project are
    refused even if a key were shared); locally, with no project, it is not checked."""
    url = config.get_settings().supabase_url
    return f"{url.rstrip('/')}/auth/v1" if url else None


class KeySet:
    """A project's public signing keys by `kid`, fetched on demand and kept."""

    def __init__(self, url: str, *, min_refresh_s: float = JWKS_MIN_REFRESH_S) -> None:
        self.url = url
        self.min_refresh_s = min_refresh_s
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = threading.Lock()

    def key(self, kid: str, *, clock: float | None = None) -> PyJWK:
        """The key `kid`, fetching the set when it is unknown and the last fetch is older
        than `min_refresh_s`.

        Raises:
            InvalidSession: no such key, even after a fetch.
            ServiceUnavailable: the set could not be fetched.
        """
        now = time.monotonic() if clock is None else clock
        with self._lock:
            found = self._keys.get(kid)
            due = self._fetched_at is None or now - self._fetched_at >= self.min_refresh_s
            if found is None and due:
                self._keys = self._fetch()
                self._fetched_at = now
                found = self._keys.get(kid)
        if found is None:
            raise errors.InvalidSession("Session token is signed with an unknown key.")
        return found

    def _fetch(self) -> dict[str, PyJWK]:
        import httpx
        import jwt

        try:
            response = httpx.get(self.url, timeout=JWKS_TIMEOUT_S)
            response.raise_for_status()
            data = response.json()
        except (httpx.HTTPError, ValueError):
            raise errors.ServiceUnavailable("Could not fetch the session signing keys.") from None
        keys: dict[str, PyJWK] = {}
        for entry in data.get("keys", []) if isinstance(data, dict) else []:
            try:
                key = jwt.PyJWK(entry)
            except jwt.PyJWTError:
                continue  # a key type we cannot use; the others still work
            if key.key_id and key.algorithm_name in ASYMMETRIC:
                keys[key.key_id] = key
        return keys


_key_sets: dict[str, KeySet] = {}
_key_sets_lock = threading.Lock()


def key_set(supabase_url: str) -> KeySet:
    """The warm function's key set of the project at `supabase_url`."""
    url = supabase_url.rstrip("/") + JWKS_PATH
    with _key_sets_lock:
        found = _key_sets.get(url)
        if found is None:
            found = _key_sets[url] = KeySet(url)
        return found


def forget() -> None:
    """Drop every fetched key set (tests)."""
    with _key_sets_lock:
        _key_sets.clear()
