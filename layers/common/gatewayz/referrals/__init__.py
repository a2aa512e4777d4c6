"""Referrals (docs/api.md, referrals): users' codes, applying one, and the rewards a
referred account's first paid purchase grants both sides."""
