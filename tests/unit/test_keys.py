"""API key secrets."""

from __future__ import annotations

import hashlib
import hmac
import re

import pytest

from gatewayz.identity import keys


def test_a_key_is_the_prefix_and_32_base62_characters() -> None:
    secret = keys.generate()
    assert re.fullmatch(r"gw_live_[A-Za-z0-9]{32}", secret)
    assert re.fullmatch(r"gw_test_[A-Za-z0-9]{32}", keys.generate("test"))
    assert len({keys.generate() for _ in range(1000)}) == 1000
    with pytest.raises(ValueError, match="environment"):
        keys.generate("prod")


def test_the_hash_depends_on_the_pepper_and_never_contains_the_key() -> None:
    secret = keys.generate()
    one, other = keys.hash_secret(secret, b"pepper-1"), keys.hash_secret(secret, b"pepper-2")
    # HMAC-SHA256 under the pepper, computed here by the standard library.
    assert one == hmac.new(b"pepper-1", secret.encode(), hashlib.sha256).digest()
    assert len(one) == 32
    assert one != other
    assert secret.encode() not in one


@pytest.mark.parametrize(
    ("candidate", "ok"),
    [
        ("gw_live_" + "a" * 32, True),
        ("gw_test_" + "Z9" * 16, True),
        ("gw_live_" + "a" * 31, False),
        ("gw_live_" + "a" * 31 + "-", False),
        ("sk-" + "a" * 48, False),
        ("gw_prod_" + "a" * 32, False),
        ("", False),
    ],
)
def test_shape_check(candidate: str, ok: bool) -> None:
    assert keys.looks_like_key(candidate) is ok
