"""E-mail bodies: every notice renders HTML and text from its payload, values escaped,
amounts in dollars, missing values leaving their sentence out."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gatewayz.email import outbox, templates

HOSTILE = '<script>alert("x")</script>'
PAYLOAD = {
    "key_name": HOSTILE, "team": HOSTILE, "description": HOSTILE, "reason": HOSTILE,
    "amount_nanos": 25_000_000_000, "balance_nanos": 1_500_000_000, "threshold": "5",
    "spent_nanos": 8_000_000_000, "limit_nanos": 10_000_000_000, "level": 80,
    "removed_nanos": 2_345_678_900, "trial_credit_nanos": 10_000_000_000,
    "prefix": "gw_live_ab", "last4": "wxyz", "old_secret_expires_in_hours": 24,
}  # fmt: skip


@pytest.mark.parametrize("template", sorted(outbox.TEMPLATES))
def test_every_notice_renders_both_bodies_with_values_escaped(template: str) -> None:
    rendered = templates.render(template, f"Subject {HOSTILE}", PAYLOAD)
    assert rendered.html.startswith("<!doctype html>")
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;" in rendered.html  # at least the subject, escaped
    assert rendered.text.startswith("Hello,")
    assert templates.SIGNATURE in rendered.text
    # The text body carries the same sentences as the HTML one.
    for paragraph in rendered.text.split("\n\n")[1:-1]:
        assert templates.html.escape(paragraph) in rendered.html


@pytest.mark.parametrize("template", sorted(outbox.TEMPLATES))
def test_an_empty_payload_still_renders(template: str) -> None:
    rendered = templates.render(template, "Subject", {})
    assert "None" not in rendered.text
    assert "$" not in rendered.text


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("payment_received", "$25.00"),
        ("low_balance", "Your balance is $1.50, below the $5.00"),
        ("trial_ended", "$2.35"),
        ("key_limit", "Spent $8.00 of $10.00"),
        ("welcome", "$10.00 of credit"),
    ],
)
def test_amounts_are_dollars(template: str, expected: str) -> None:
    assert expected in templates.render(template, "s", PAYLOAD).text


def test_dollar_formatting() -> None:
    assert templates.format_usd(Decimal("1234.567")) == "$1,234.57"
    assert templates.format_usd(Decimal("0.000123456")) == "$0.0001"
    assert templates.format_usd(Decimal("-3")) == "-$3.00"
    assert templates.format_usd(Decimal(0)) == "$0.00"


def test_key_limit_says_which_level() -> None:
    reached = templates.render("key_limit", "s", {**PAYLOAD, "level": 100}).text
    assert "reached its spending limit" in reached
    assert "80%" in templates.render("key_limit", "s", PAYLOAD).text


def test_an_unknown_template_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown e-mail template"):
        templates.render("newsletter", "s", {})
