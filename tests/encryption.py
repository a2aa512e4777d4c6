"""`use_keys`: set ENCRYPTION_KEYS (newest first) for one test, as a deploy would."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from gatewayz import config

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


@pytest.fixture
def use_keys(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """A function that sets ENCRYPTION_KEYS to the keys it is given (none: unset)."""

    def use(*keys: str) -> None:
        monkeypatch.setenv("ENCRYPTION_KEYS", ",".join(keys))
        config.get_settings.cache_clear()

    yield use
    monkeypatch.delenv("ENCRYPTION_KEYS", raising=False)
    config.get_settings.cache_clear()
