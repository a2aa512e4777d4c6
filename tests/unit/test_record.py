"""`@record` (gatewayz/record.py): a frozen dataclass to the type checker, one whose
fields are set directly at run time; it must hash, compare and copy as one."""

from __future__ import annotations

import dataclasses
import importlib
import textwrap
from pathlib import Path

import pytest
from mypy import api as mypy_api

from gatewayz.record import record

ROOT = Path(__file__).resolve().parents[2]


@record
class Price:
    model: str
    nanos: int
    tags: tuple[str, ...] = ()
    notes: list[str] = dataclasses.field(default_factory=list, compare=False, hash=False)


def test_a_record_compares_and_hashes_by_its_fields_as_a_frozen_dataclass_does() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Frozen:
        model: str
        nanos: int
        tags: tuple[str, ...] = ()

    a, b = Price("m", 5, ("x",)), Price("m", 5, ("x",), ["ignored"])
    assert a == b
    assert hash(a) == hash(b) == hash(Frozen("m", 5, ("x",)))
    assert a != Price("m", 6, ("x",))
    assert {a: 1}[b] == 1
    assert dataclasses.replace(a, nanos=7) == Price("m", 7, ("x",))
    assert not hasattr(a, "__dict__")  # slotted
    assert a.notes is not Price("m", 5).notes  # default factories run per instance


def test_assigning_to_a_records_field_is_a_type_error(tmp_path: Path) -> None:
    # The immutability is the type checker's: mypy runs on the whole package in CI.
    source = tmp_path / "mutates.py"
    source.write_text(
        textwrap.dedent(
            """
            from gatewayz.record import record

            @record
            class Hold:
                amount_nanos: int

            hold = Hold(5)
            hold.amount_nanos = 0
            """
        )
    )
    out, _, status = mypy_api.run(
        [str(source), "--no-incremental", "--config-file", str(ROOT / "pyproject.toml")]
    )
    assert status == 1, out
    assert 'Property "amount_nanos" defined in "Hold" is read-only' in out


@pytest.mark.parametrize(
    "module",
    [
        "gatewayz.billing.credits",
        "gatewayz.billing.pricing",
        "gatewayz.chat.budget",
        "gatewayz.chat.request",
        "gatewayz.chat.routing",
        "gatewayz.db",
        "gatewayz.ratelimit.base",
        "gatewayz.ratelimit.limiter",
    ],
)
def test_no_value_built_on_the_request_path_is_a_frozen_dataclass(module: str) -> None:
    values = [
        v
        for v in vars(importlib.import_module(module)).values()
        if isinstance(v, type) and dataclasses.is_dataclass(v) and v.__module__ == module
    ]
    assert values
    for value in values:
        assert not value.__dataclass_params__.frozen, f"{value.__name__}: use @record"  # type: ignore[attr-defined]
