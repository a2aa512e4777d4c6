"""Secrets at rest under ENCRYPTION_KEYS (gatewayz.crypto): MultiFernet, newest key first."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from gatewayz import config, crypto, errors

if TYPE_CHECKING:
    from collections.abc import Callable

SECRET = "sk-or-v1-0123456789abcdef"


def test_a_secret_round_trips_and_the_token_does_not_contain_it(
    use_keys: Callable[..., None],
) -> None:
    use_keys(crypto.new_key())
    token = crypto.encrypt(SECRET)
    assert SECRET not in token
    assert crypto.decrypt(token) == SECRET
    # Fernet tokens carry a random IV: the same secret never encrypts the same way twice.
    assert crypto.encrypt(SECRET) != token


def test_an_old_key_still_decrypts_and_rotation_leaves_only_the_new_one_needed(
    use_keys: Callable[..., None],
) -> None:
    old, new = crypto.new_key(), crypto.new_key()
    use_keys(old)
    token = crypto.encrypt(SECRET)
    use_keys(new, old)  # the new key first: it encrypts, both decrypt
    assert crypto.decrypt(token) == SECRET
    assert not crypto.is_current(token)
    assert crypto.is_current(crypto.encrypt(SECRET))
    rotated = crypto.rotate(token)
    assert crypto.is_current(rotated)
    use_keys(new)  # the old key dropped
    assert crypto.decrypt(rotated) == SECRET
    with pytest.raises(crypto.Undecryptable):
        crypto.decrypt(token)
    with pytest.raises(crypto.Undecryptable):
        crypto.rotate(token)


def test_a_token_of_a_key_not_configured_is_undecryptable(use_keys: Callable[..., None]) -> None:
    use_keys(crypto.new_key())
    token = crypto.encrypt(SECRET)
    use_keys(crypto.new_key())
    with pytest.raises(crypto.Undecryptable):
        crypto.decrypt(token)
    with pytest.raises(crypto.Undecryptable):
        crypto.decrypt("not a token")


def test_unset_keys_are_a_503_naming_the_setting() -> None:
    config.get_settings.cache_clear()
    with pytest.raises(errors.MissingConfiguration) as raised:
        crypto.encrypt(SECRET)
    assert raised.value.status == 503
    assert raised.value.metadata == {"setting": "ENCRYPTION_KEYS"}


@pytest.mark.parametrize("value", ["not-a-fernet-key", " , ", "c2hvcnQ="])
def test_a_value_that_is_not_fernet_keys_is_a_503_naming_the_setting(
    use_keys: Callable[..., None], value: str
) -> None:
    use_keys(value)
    with pytest.raises(errors.MissingConfiguration) as raised:
        crypto.encrypt(SECRET)
    assert raised.value.metadata == {"setting": "ENCRYPTION_KEYS"}


def test_spaces_around_the_keys_are_ignored(use_keys: Callable[..., None]) -> None:
    old, new = crypto.new_key(), crypto.new_key()
    use_keys(old)
    token = crypto.encrypt(SECRET)
    use_keys(f" {new} ", f" {old}")
    assert crypto.decrypt(token) == SECRET
