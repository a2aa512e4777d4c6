"""bench/'s scripts, loaded for the tests that check what they measure."""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

from tests.pg import ROOT


def load(name: str) -> Any:
    """bench/ is no package: load `bench/<name>.py` from its file, registered under its
    own name (its neighbours import it so: overhead.py imports latency_proxy)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)
    spec.loader.exec_module(module)
    return module
