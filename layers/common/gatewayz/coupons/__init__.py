"""Coupons (docs/api.md, coupons): codes operators issue that grant credit (`credit`) or
take a percentage off the account's next credit purchase (`percent`).

`admin` and `fields`: `/admin/coupons` (create, list, read, change, deactivate,
analytics). `redemption`: `POST /v1/coupons/redeem` and the caller's redemptions.
`discount`: the attached percent coupon in the Stripe checkout, and its consumption
when that payment is made. `views`: the JSON shapes.
"""
