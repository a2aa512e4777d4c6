"""The project's docs describe the code as it is: every error code, setting and route is
documented, every link resolves, and nothing cites a file a clone does not have."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from gatewayz import config, errors
from tests.pg import ROOT

DOCS = ROOT / "docs"
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
SKIPPED_DIRS = {".git", ".venv", ".venv-sam", ".aws-sam", ".gatewayz", "mutants", "node_modules"}


def error_classes() -> list[type[errors.GatewayError]]:
    found, todo = [], [errors.GatewayError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_every_error_code_and_status_is_in_the_api_reference() -> None:
    api = (DOCS / "api.md").read_text()
    for cls in error_classes():
        assert f"`{cls.code}`" in api, cls.__name__
        assert f"| {cls.status} |" in api, cls.__name__


def test_every_setting_is_documented() -> None:
    text = "".join(p.read_text() for p in [ROOT / "README.md", DOCS / "operations.md"])
    for name in config.Settings.model_fields:
        # README names the providers' base URLs together, as `*_BASE_URL`.
        wildcard = "`*_BASE_URL`" if name.endswith("_base_url") else None
        assert f"`{name.upper()}`" in text or (wildcard and wildcard in text), name


def test_every_route_of_the_openapi_document_is_in_the_api_reference() -> None:
    api = (DOCS / "api.md").read_text()
    spec = json.loads((DOCS / "openapi.json").read_text())
    for path, item in spec["paths"].items():
        shown = path.replace("{model_id}", "{id}")
        for method in item:
            assert f"{method.upper()} {shown}" in api, (method, path)


@pytest.mark.parametrize(
    "page", sorted([*DOCS.glob("*.md"), ROOT / "README.md"]), ids=lambda p: p.name
)
def test_every_relative_link_resolves(page: Path) -> None:
    for target in LINK.findall(page.read_text()):
        if "://" in target:
            continue
        assert (page.parent / target).exists(), target


def test_nothing_cites_a_design_file_outside_the_repository() -> None:
    cited = "DES" + "IGN §"  # spelled apart so this file does not cite it
    found = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS and d != "__pycache__"]
        if folder == str(ROOT / "infra" / "migrations"):
            continue  # applied migrations never change: their checksums are recorded
        for name in files:
            path = Path(folder, name)
            try:
                if cited in path.read_text():
                    found.append(str(path.relative_to(ROOT)))
            except UnicodeDecodeError:
                continue
    assert not found
