"""Who owns chat history: a user within an account (an API key's member, or a session)."""

from __future__ import annotations

from typing import Protocol


class Owner(Protocol):
    """A principal or a chat caller: history is read and written only through these."""

    @property
    def account_id(self) -> str: ...

    @property
    def user_id(self) -> str: ...
