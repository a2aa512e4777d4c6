"""Stripe's bracket-notation form encoding, as the stand-in reads it."""

from __future__ import annotations

from urllib.parse import urlencode

from stripe._encode import _api_encode

from gatewayz.dev.stripe_standin import forms


def test_what_the_stripe_library_encodes_comes_back_as_it_was_given() -> None:
    params = {
        "mode": "payment",
        "line_items": [
            {
                "price_data": {
                    "currency": "usd",
                    "unit_amount": 2500,
                    "product_data": {"name": "Credit & more"},
                },
                "quantity": 2,
            },
            {"price": "price_123", "quantity": 1},
        ],
        "metadata": {"account_id": "a1", "note": "[x]=y"},
        "discounts": [{"coupon": "SAVE20"}],
        "expand": ["payment_intent", "subscription"],
    }
    body = urlencode(list(_api_encode(params)))

    parsed = forms.parse(body)

    assert parsed == {
        "mode": "payment",
        "line_items": [
            {
                "price_data": {
                    "currency": "usd",
                    "unit_amount": "2500",
                    "product_data": {"name": "Credit & more"},
                },
                "quantity": "2",
            },
            {"price": "price_123", "quantity": "1"},
        ],
        "metadata": {"account_id": "a1", "note": "[x]=y"},
        "discounts": [{"coupon": "SAVE20"}],
        "expand": ["payment_intent", "subscription"],
    }


def test_empty_brackets_append_and_ten_items_keep_their_order() -> None:
    assert forms.parse("expand[]=a&expand[]=b") == {"expand": ["a", "b"]}
    pairs = "&".join(f"items[{i}][id]=si_{i}" for i in range(12))
    assert [item["id"] for item in forms.parse(pairs)["items"]] == [f"si_{i}" for i in range(12)]
    assert forms.parse(b"") == {}
