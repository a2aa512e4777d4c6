"""Referral codes (docs/api.md, referrals): 8 characters from an alphabet without
look-alikes, made by the database for every user (infra/migrations/0026), matched in any
case and ignoring spaces and dashes."""

from __future__ import annotations

import re
from typing import Any

from gatewayz import errors

ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
LENGTH = 8
_SEPARATORS = re.compile(r"[\s-]+")
_CODE = re.compile(f"[{ALPHABET}]{{{LENGTH}}}")


def normalize(value: Any) -> str:
    """The code a client typed, as stored: upper case, without spaces or dashes.

    Raises:
        InvalidRequest: not a string (param `code`).
        InvalidReferralCode: not the shape of a code (param `code`).
    """
    if not isinstance(value, str):
        raise errors.InvalidRequest("code must be a string.", param="code")
    code = _SEPARATORS.sub("", value).upper()
    if not _CODE.fullmatch(code):
        raise errors.InvalidReferralCode(
            f"code is not a referral code ({LENGTH} letters and digits).", param="code"
        )
    return code


def mask_email(email: str) -> str:
    """An address shown to the user who referred its owner: enough to recognise a friend,
    never the address (`a***@e***.com`)."""
    local, _, domain = email.rpartition("@")
    name, dot, tld = domain.rpartition(".")
    host = f"{name[:1]}***{dot}{tld}" if dot else f"{domain[:1]}***"
    return f"{local[:1]}***@{host}"
