"""Modules a function's routes use, loaded when a route first touches them.

A route file that imports its business modules at the top pays for all they import
(settings, the database layer, pricing, ...) at cold start, before the first request,
in every function. `module("gatewayz.identity.teams")` gives the module as an object
that loads on its first attribute access (the standard library's `LazyLoader`), so the
routes read as plain module calls and the import happens on the request that needs it.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import ModuleType


def module(name: str) -> ModuleType:
    """`name`, loaded on first attribute access (or the module itself if already loaded)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    lazy = importlib.util.module_from_spec(spec)
    sys.modules[name] = lazy
    loader.exec_module(lazy)
    return lazy
