"""Settings for the length of a block: the gateway reads them afresh, and forgets them
after (its cached settings, connections and stores are reset both times)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

import pytest

from tests.conftest import reset_caches

if TYPE_CHECKING:
    from collections.abc import Iterator


@contextmanager
def settings(**values: str) -> Iterator[None]:
    """Set environment variables `values` (names upper case) while the block runs."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in values.items():
            patch.setenv(name, value)
        reset_caches()
        try:
            yield
        finally:
            patch.undo()
            reset_caches()
