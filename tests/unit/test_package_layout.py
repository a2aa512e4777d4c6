"""The shape of the shared package: no import cycles (counting imports inside functions
and under TYPE_CHECKING), and the local-only `gatewayz.dev` reached from nowhere a Lambda
function runs."""

from __future__ import annotations

import ast

from tests.pg import ROOT

LAYER = ROOT / "layers" / "common"


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports, anywhere in its file."""
    files = {}
    for path in (LAYER / "gatewayz").rglob("*.py"):
        name = ".".join(path.relative_to(LAYER).with_suffix("").parts).removesuffix(".__init__")
        files[name] = path
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gatewayz"):
                for alias in node.names:
                    target = f"{node.module}.{alias.name}"
                    graph[name].add(target if target in files else str(node.module))
            elif isinstance(node, ast.Import):
                graph[name].update(a.name for a in node.names if a.name in files)
        graph[name] &= files.keys() - {name}
    return graph


def cycle_through(graph: dict[str, set[str]], start: str) -> list[str] | None:
    """A path start -> ... -> start, if there is one."""
    stack, seen = [(start, [start])], set()
    while stack:
        node, path = stack.pop()
        for target in sorted(graph[node]):
            if target == start:
                return [*path, start]
            if target not in seen:
                seen.add(target)
                stack.append((target, [*path, target]))
    return None


def test_the_graph_sees_imports_of_every_form() -> None:
    graph = import_graph()
    assert "gatewayz.chat.catalog" in graph["gatewayz.chat.listing"]  # inside a function
    assert "gatewayz.chat.model" in graph["gatewayz.chat.providers.base"]  # TYPE_CHECKING
    assert "gatewayz.chat.providers.mock" in graph["gatewayz.chat.providers"]


def test_no_module_imports_itself_through_others() -> None:
    graph = import_graph()

    # A package importing its own submodules is how packages work, not a cycle.
    def own(node: str, target: str) -> bool:
        return target.startswith(node + ".")

    flat = {node: {t for t in targets if not own(node, t)} for node, targets in graph.items()}
    cycles = {node: path for node in flat if (path := cycle_through(flat, node))}
    assert cycles == {}


def test_only_the_embedded_database_fallback_reaches_into_dev() -> None:
    # db.database_url() starts the embedded PostgreSQL only outside Lambda (inside, no
    # DATABASE_URL is a 503 before the import), so the layer can leave gatewayz.dev out.
    graph = import_graph()
    outside = {
        node: sorted(t for t in targets if t.startswith("gatewayz.dev"))
        for node, targets in graph.items()
        if not node.startswith("gatewayz.dev")
    }
    assert {node: targets for node, targets in outside.items() if targets} == {
        "gatewayz.db": ["gatewayz.dev.embedded"]
    }
