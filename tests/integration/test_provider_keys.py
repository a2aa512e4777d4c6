"""Stored provider keys (gatewayz.identity.provider_keys) against the real database: what
the chat path reads, when it reads it again, and `gatewayz reencrypt`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from gatewayz import config, crypto, db, errors
from gatewayz.dev import cli
from gatewayz.identity import auth, principal, provider_keys
from tests.factories import new_key, new_owner

if TYPE_CHECKING:
    from collections.abc import Callable

    from gatewayz.identity.accounts import Owner

pytestmark = pytest.mark.usefixtures("database_url")


def manager(owner: Owner) -> principal.Principal:
    return principal.Principal(owner.user_id, owner.account_id, "owner")


def put(owner: Owner, provider: str, key: str) -> None:
    body = provider_keys.ProviderKeyCreate(provider=provider, key=key)
    provider_keys.store(manager(owner), body)


def caller_of(owner: Owner) -> auth.Caller:
    """The caller of a fresh key of the account, as the chat path would have it."""
    return auth.authenticate(new_key(owner).secret, max_age_s=0)


def sealed_tokens() -> dict[str, str]:
    rows = db.execute("SELECT id::text, encrypted_key FROM provider_credentials").fetchall()
    return dict(rows)


def test_the_chat_path_sees_a_change_as_soon_as_its_caller_does(
    use_keys: Callable[..., None],
) -> None:
    use_keys(crypto.new_key())
    owner = new_owner()
    assert provider_keys.own_keys(caller_of(owner)) == {}
    put(owner, "openrouter", "sk-or-first-0001")
    # A caller looked up after the change carries the account's new auth_version, so the
    # cached (empty) keys of the older version are read again.
    caller = caller_of(owner)
    assert provider_keys.own_keys(caller) == {"openrouter": "sk-or-first-0001"}
    put(owner, "openrouter", "sk-or-second-0002")
    assert provider_keys.own_keys(caller_of(owner)) == {"openrouter": "sk-or-second-0002"}
    provider_keys.delete(manager(owner), "openrouter")
    assert provider_keys.own_keys(caller_of(owner)) == {}
    # Another account sees none of them.
    put(owner, "chutes", "cpk-chutes-0003")
    assert provider_keys.own_keys(caller_of(new_owner())) == {}


def test_an_unreadable_key_is_a_503_never_a_silent_fallback(
    use_keys: Callable[..., None],
) -> None:
    use_keys(crypto.new_key())
    owner = new_owner()
    put(owner, "openrouter", "sk-or-first-0001")
    use_keys(crypto.new_key())  # the key that sealed it is gone
    with pytest.raises(errors.MissingConfiguration) as raised:
        provider_keys.own_keys(caller_of(owner))
    assert raised.value.metadata == {"setting": "ENCRYPTION_KEYS"}
    config.get_settings.cache_clear()
    use_keys()  # unset altogether
    with pytest.raises(errors.MissingConfiguration):
        provider_keys.own_keys(caller_of(owner))


def test_reencrypt_moves_every_key_to_the_newest_and_then_has_nothing_to_do(
    use_keys: Callable[..., None], capsys: pytest.CaptureFixture[str]
) -> None:
    db.execute("DELETE FROM provider_credentials")
    old, new = crypto.new_key(), crypto.new_key()
    use_keys(old)
    first, second = new_owner(), new_owner()
    put(first, "openrouter", "sk-or-first-0001")
    put(first, "featherless", "fl-first-00002")
    put(second, "openrouter", "sk-or-second-003")
    before = sealed_tokens()

    use_keys(new, old)
    assert cli.main(["reencrypt"]) == 0
    assert "re-encrypted 3 of 3 provider key(s)" in capsys.readouterr().out
    after = sealed_tokens()
    assert set(after) == set(before)
    assert all(after[k] != before[k] for k in after)
    audited = db.execute(
        "SELECT count(*) FROM audit_log WHERE action = 'provider_key.reencrypt'"
        " AND target_id = ANY(%s)",
        (list(after),),
    ).fetchone()
    assert audited == (3,)

    assert cli.main(["reencrypt"]) == 0  # idempotent: nothing left to move
    assert "re-encrypted 0 of 3 provider key(s)" in capsys.readouterr().out
    assert sealed_tokens() == after

    use_keys(new)  # the old key dropped: every stored key still opens
    assert provider_keys.own_keys(caller_of(first)) == {
        "openrouter": "sk-or-first-0001",
        "featherless": "fl-first-00002",
    }
    assert provider_keys.own_keys(caller_of(second)) == {"openrouter": "sk-or-second-003"}


def test_reencrypt_changes_nothing_when_a_key_cannot_be_opened(
    use_keys: Callable[..., None], capsys: pytest.CaptureFixture[str]
) -> None:
    db.execute("DELETE FROM provider_credentials")
    use_keys(crypto.new_key())
    put(new_owner(), "openrouter", "sk-or-first-0001")
    put(new_owner(), "chutes", "cpk-second-0002")
    before = sealed_tokens()
    use_keys(crypto.new_key())
    assert cli.main(["reencrypt"]) == 1
    assert "nothing was changed" in capsys.readouterr().err
    assert sealed_tokens() == before
    use_keys()
    assert cli.main(["reencrypt"]) == 1
    assert "ENCRYPTION_KEYS" in capsys.readouterr().err
