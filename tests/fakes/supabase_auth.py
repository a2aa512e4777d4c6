"""A Supabase Auth stand-in for session tests: the project's JWKS endpoint on a real local
socket, serving the public halves of keys made with `cryptography`, and tokens signed the
way Supabase Auth signs them (PyJWT, the library the gateway verifies with)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

if TYPE_CHECKING:
    from collections.abc import Iterator

JWKS_PATH = "/auth/v1/.well-known/jwks.json"


@dataclass
class SigningKey:
    """A private key with its `kid` and algorithm (RS256 or ES256)."""

    algorithm: str
    kid: str = field(default_factory=lambda: uuid.uuid4().hex)
    private: Any = None

    def __post_init__(self) -> None:
        if self.private is None:
            self.private = (
                rsa.generate_private_key(public_exponent=65537, key_size=2048)
                if self.algorithm == "RS256"
                else ec.generate_private_key(ec.SECP256R1())
            )

    def jwk(self) -> dict[str, Any]:
        """The public key as Supabase publishes it."""
        algorithm = jwt.get_algorithm_by_name(self.algorithm)
        public = json.loads(algorithm.to_jwk(self.private.public_key()))
        return {**public, "kid": self.kid, "alg": self.algorithm, "use": "sig"}


@dataclass
class FakeAuth:
    """The JWKS endpoint's state: the keys it publishes and how often it was asked."""

    url: str = ""
    keys: list[SigningKey] = field(default_factory=list)
    fetches: int = 0

    @property
    def issuer(self) -> str:
        return f"{self.url}/auth/v1"

    def publish(self, key: SigningKey) -> SigningKey:
        self.keys.append(key)
        return key


def claims(
    email: str = "person@example.com",
    *,
    sub: str | None = None,
    verified: bool = True,
    ttl_s: int = 3600,
    iss: str = "",
    **extra: Any,
) -> dict[str, Any]:
    """A Supabase access token's payload (e-mail sign-in); `iss` when given."""
    now = int(time.time())
    subject = sub or str(uuid.uuid4())
    return {
        "aud": "authenticated", "exp": now + ttl_s, "iat": now, "sub": subject,
        "email": email, "phone": "", "role": "authenticated", "aal": "aal1",
        "app_metadata": {"provider": "email", "providers": ["email"]},
        "user_metadata": {"email": email, "email_verified": verified,
                          "phone_verified": False, "sub": subject},
        "amr": [{"method": "password", "timestamp": now}],
        "session_id": str(uuid.uuid4()), "is_anonymous": False,
        **({"iss": iss} if iss else {}), **extra,
    }  # fmt: skip


def sign(payload: dict[str, Any], key: SigningKey | bytes | str, **header: Any) -> str:
    """A token signed with an asymmetric key (its `kid` in the header) or an HS256 secret."""
    if isinstance(key, SigningKey):
        return jwt.encode(payload, key.private, algorithm=key.algorithm,
                          headers={"kid": key.kid, **header})  # fmt: skip
    return jwt.encode(payload, key, algorithm="HS256", headers=header or None)


@contextmanager
def serve() -> Iterator[FakeAuth]:
    """Serve the JWKS of a fresh `FakeAuth` on 127.0.0.1; `url` is the project URL."""
    state = FakeAuth()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != JWKS_PATH:
                self.send_error(404)
                return
            state.fetches += 1
            body = json.dumps({"keys": [key.jwk() for key in state.keys]}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


HS256_SECRET = "test-project-jwt-secret-of-a-decent-length-0123456789"


@contextmanager
def project(monkeypatch: Any) -> Iterator[FakeAuth]:
    """A configured Supabase project for the code under test: SUPABASE_URL at the fake,
    SUPABASE_JWT_SECRET set, caches forgotten before and after."""
    from gatewayz.identity import sessions
    from tests.conftest import reset_caches

    with serve() as fake:
        monkeypatch.setenv("SUPABASE_URL", fake.url)
        monkeypatch.setenv("SUPABASE_JWT_SECRET", HS256_SECRET)
        reset_caches()
        sessions.forget()
        try:
            yield fake
        finally:
            monkeypatch.delenv("SUPABASE_URL")
            monkeypatch.delenv("SUPABASE_JWT_SECRET")
            reset_caches()
            sessions.forget()
