"""Referral codes as typed by people, and addresses as shown to the user who referred them."""

from __future__ import annotations

import pytest

from gatewayz import errors
from gatewayz.referrals import codes


@pytest.mark.parametrize(
    ("typed", "stored"),
    [("K7M2X9QP", "K7M2X9QP"), ("k7m2x9qp", "K7M2X9QP"), (" k7m2-x9qp ", "K7M2X9QP")],
)
def test_codes_match_in_any_case_without_separators(typed: str, stored: str) -> None:
    assert codes.normalize(typed) == stored


@pytest.mark.parametrize("typed", ["K7M2X9Q", "K7M2X9QPZ", "K7M2X9Q0", "K7M2X9QI", "K7M2X9Q_", ""])
def test_look_alikes_and_wrong_lengths_are_not_codes(typed: str) -> None:
    with pytest.raises(errors.InvalidReferralCode) as caught:
        codes.normalize(typed)
    assert caught.value.param == "code"


def test_the_alphabet_has_no_look_alikes() -> None:
    assert set(codes.ALPHABET).isdisjoint("01ILOU")
    assert len(set(codes.ALPHABET)) == len(codes.ALPHABET) == 30


@pytest.mark.parametrize(
    ("email", "masked"),
    [
        ("alice@example.com", "a***@e***.com"),
        ("bob.smith+x@mail.co.uk", "b***@m***.uk"),
        ("x@localhost", "x***@l***"),
    ],
)
def test_addresses_are_masked(email: str, masked: str) -> None:
    assert codes.mask_email(email) == masked
