"""What every store backend must answer (gatewayz/ratelimit/base.py): a reply that is not
exactly `[denied, version, count, pttl, ...]` is an unavailable store, never a decision."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import pytest

from gatewayz.ratelimit import Store, StoreUnavailable, Window

if TYPE_CHECKING:
    from collections.abc import Sequence


class Replying(Store):
    """A backend that answers every hit with `reply`, as a broken server might."""

    name: ClassVar[str] = "replying"

    def __init__(self, reply: list[int]) -> None:
        self.reply = reply

    def ping(self) -> None:
        pass

    def _hit(
        self,
        keys: list[str],
        args: list[int],
        corrections: Sequence[tuple[str, int]],
        version_key: str | None,
    ) -> Sequence[int]:
        return self.reply

    def _adjust(self, key: str, delta: int) -> None:
        pass

    def _announce(self, key: str, version: int, ttl_ms: int) -> int:
        return version


WINDOW = Window("k", 5, 60_000)


def test_a_well_formed_reply_is_a_decision() -> None:
    decision = Replying([0, 9, 1, 59_000]).hit([WINDOW], version_key="v")
    assert (decision.allowed, decision.version, decision.windows[0].remaining) == (True, 9, 4)


@pytest.mark.parametrize(
    "reply",
    [
        [0, 1, 59_000],  # the reply before versions: one item short
        [0, 0, 1, 59_000, 7],  # one too many
        [2, 0, 1, 59_000],  # denies a window that was not asked
        [-1, 0, 1, 59_000],
        [0, -3, 1, 59_000],  # a negative version
    ],
)
def test_a_malformed_reply_is_an_unavailable_store(reply: list[int]) -> None:
    with pytest.raises(StoreUnavailable, match="malformed"):
        Replying(reply).hit([WINDOW], version_key="v")
