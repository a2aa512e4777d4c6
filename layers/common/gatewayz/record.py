"""`@record`: our values, immutable to the type checker and cheap to build.

A frozen dataclass's `__init__` sets each field through `object.__setattr__`, one call a
field; the chat path builds some eighteen values a request (the parsed request, its
plan, its hold, its usage...), and those calls were ~7 % of a completion's instructions
(bench/README.md). A `@record` class is `@dataclass(frozen=True, slots=True)` to mypy
(`dataclass_transform(frozen_default=True)`: assigning to a field is a type error, and
mypy checks the whole package) and hashes and compares the same, but its `__init__` sets
the slots directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import dataclass_transform


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def record[T](cls: type[T], /) -> type[T]:
    """The class as a slotted dataclass, hashed by its fields as a frozen one is."""
    return dataclass(cls, slots=True, unsafe_hash=True)
