"""Supabase session tokens (gatewayz.identity.sessions): HS256 with the project secret,
RS256/ES256 with the project's JWKS served by a local fake, and every way a token is
refused, with its status and code."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from gatewayz import errors
from gatewayz.identity import sessions
from tests.conftest import reset_caches
from tests.fakes.supabase_auth import HS256_SECRET, SigningKey, claims, project, sign

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.fakes.supabase_auth import FakeAuth


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAuth]:
    with project(monkeypatch) as served:
        yield served


def refused(token: str, cls: type[errors.GatewayError], **kwargs: float) -> errors.GatewayError:
    with pytest.raises(cls) as caught:
        sessions.verify(token, **kwargs)
    return caught.value


def test_an_hs256_token_gives_its_user(fake: FakeAuth) -> None:
    payload = claims("Ada@Example.com", iss=fake.issuer, user_metadata={"full_name": " Ada "})
    session = sessions.verify(sign(payload, HS256_SECRET))
    assert session == sessions.Session(
        auth_user_id=payload["sub"], email="Ada@Example.com", email_verified=False,
        display_name="Ada",
    )  # fmt: skip


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
def test_an_asymmetric_token_is_checked_against_the_projects_jwks(
    fake: FakeAuth, algorithm: str
) -> None:
    key = fake.publish(SigningKey(algorithm))
    payload = claims(iss=fake.issuer)
    session = sessions.verify(sign(payload, key))
    assert (session.auth_user_id, session.email, session.email_verified) == (
        payload["sub"], "person@example.com", True,
    )  # fmt: skip
    sessions.verify(sign(claims(iss=fake.issuer), key))
    assert fake.fetches == 1  # kept for the warm function


def test_a_wrong_signature_is_refused(fake: FakeAuth) -> None:
    published = fake.publish(SigningKey("ES256"))
    impostor = SigningKey("ES256", kid=published.kid)  # same kid, another private key
    err = refused(sign(claims(iss=fake.issuer), impostor), errors.InvalidSession)
    assert (err.status, err.code) == (401, "invalid_session")
    refused(sign(claims(iss=fake.issuer), "another-secret-of-a-decent-length-0123456789"),
            errors.InvalidSession)  # fmt: skip


def test_an_expired_token_is_refused_as_expired(fake: FakeAuth) -> None:
    err = refused(sign(claims(iss=fake.issuer, ttl_s=-120), HS256_SECRET), errors.ExpiredSession)
    assert (err.status, err.code, err.type) == (401, "expired_session", "authentication_error")
    # Within the leeway for clock skew it still counts.
    sessions.verify(sign(claims(iss=fake.issuer, ttl_s=-5), HS256_SECRET))


def test_another_audience_or_issuer_is_refused(fake: FakeAuth) -> None:
    anon = claims(iss=fake.issuer, aud="anon")
    assert refused(sign(anon, HS256_SECRET), errors.InvalidSession).code == "invalid_session"
    other = claims(iss="https://other.supabase.co/auth/v1")
    refused(sign(other, HS256_SECRET), errors.InvalidSession)
    refused(sign(claims(), HS256_SECRET), errors.InvalidSession)  # no iss at all


def test_alg_none_and_garbage_are_refused(fake: FakeAuth) -> None:
    import jwt

    unsigned = jwt.encode(claims(iss=fake.issuer), None, algorithm="none")
    err = refused(unsigned, errors.InvalidSession)
    assert "'none'" in err.message
    refused("not.a.jwt", errors.InvalidSession)
    refused("x", errors.InvalidSession)


def test_a_session_without_a_user_id_or_email_is_refused(fake: FakeAuth) -> None:
    refused(sign(claims(iss=fake.issuer, sub="not-a-uuid"), HS256_SECRET), errors.InvalidSession)
    anonymous = claims("", iss=fake.issuer, is_anonymous=True)
    err = refused(sign(anonymous, HS256_SECRET), errors.InvalidSession)
    assert "e-mail" in err.message


def test_a_rotated_key_is_fetched_when_a_token_names_it(fake: FakeAuth) -> None:
    first = fake.publish(SigningKey("RS256"))
    sessions.verify(sign(claims(iss=fake.issuer), first), clock=100.0)
    rotated = fake.publish(SigningKey("ES256"))
    sessions.verify(sign(claims(iss=fake.issuer), rotated), clock=200.0)
    assert fake.fetches == 2


def test_a_kid_that_never_appears_is_refused_and_fetched_at_most_every_few_seconds(
    fake: FakeAuth,
) -> None:
    fake.publish(SigningKey("ES256"))
    ghost = sign(claims(iss=fake.issuer), SigningKey("ES256"))
    err = refused(ghost, errors.InvalidSession, clock=100.0)
    assert "unknown key" in err.message
    assert fake.fetches == 1
    refused(ghost, errors.InvalidSession, clock=100.0 + sessions.JWKS_MIN_REFRESH_S / 2)
    assert fake.fetches == 1  # too soon to ask again
    refused(ghost, errors.InvalidSession, clock=100.0 + sessions.JWKS_MIN_REFRESH_S)
    assert fake.fetches == 2


def test_a_key_of_another_algorithm_than_the_token_says_is_refused(fake: FakeAuth) -> None:
    import jwt

    key = fake.publish(SigningKey("ES256"))
    # A token that claims RS256 but names the project's EC key.
    forged = jwt.encode(claims(iss=fake.issuer), SigningKey("RS256").private, algorithm="RS256",
                        headers={"kid": key.kid})  # fmt: skip
    refused(forged, errors.InvalidSession)


def test_the_top_level_email_verified_claim_wins(fake: FakeAuth) -> None:
    payload = claims(iss=fake.issuer, verified=True, email_verified=False)
    assert sessions.verify(sign(payload, HS256_SECRET)).email_verified is False


def test_an_unreachable_jwks_is_a_503(fake: FakeAuth, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPABASE_URL", "http://127.0.0.1:1")
    reset_caches()
    token = sign(claims(iss="http://127.0.0.1:1/auth/v1"), SigningKey("ES256"))
    err = refused(token, errors.ServiceUnavailable)
    assert err.status == 503


def test_missing_settings_are_503s_naming_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "keys")
    reset_caches()
    try:
        err = refused(sign(claims(), "whatever-secret-0123456789-0123456789"),
                      errors.MissingConfiguration)  # fmt: skip
        assert (err.status, err.code, err.metadata) == (
            503, "missing_configuration", {"setting": "SUPABASE_JWT_SECRET"},
        )  # fmt: skip
        err = refused(sign(claims(), SigningKey("RS256")), errors.MissingConfiguration)
        assert err.metadata == {"setting": "SUPABASE_URL"}
    finally:
        monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME")
        reset_caches()


def test_locally_the_generated_secret_signs_and_verifies(monkeypatch: pytest.MonkeyPatch) -> None:
    from gatewayz import config

    reset_caches()
    secret = config.session_jwt_secret()
    assert (config.home() / "supabase_jwt_secret").read_text().strip().encode() == secret
    session = sessions.verify(sign(claims("dev@example.com"), secret))
    assert session.email == "dev@example.com"
