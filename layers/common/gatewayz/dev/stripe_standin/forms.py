"""Stripe's form encoding: `a[b][0][c]=v` pairs into nested dicts and lists.

Stripe's v1 API takes `application/x-www-form-urlencoded` bodies (and query strings) in
bracket notation; the official clients write lists as `a[0]=`, `a[1]=` (older ones `a[]=`).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

_KEY = re.compile(r"([^\[\]]+)|\[([^\[\]]*)\]")


def parse(raw: bytes | str) -> dict[str, Any]:
    """A form body or query string as nested dicts, with all-numeric keys made lists."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    root: dict[str, Any] = {}
    for name, value in parse_qsl(text, keep_blank_values=True):
        parts = [m.group(1) if m.group(1) is not None else m.group(2) for m in _KEY.finditer(name)]
        if not parts:
            continue
        node = root
        for index, part in enumerate(parts[:-1]):
            key = part if part != "" else str(len(node))
            node = node.setdefault(key, {})
            if not isinstance(node, dict):  # `a=1&a[b]=2`: the later, nested form wins
                node = {}
                parent = _walk(root, parts[: index + 1])
                parent[key] = node
        last = parts[-1]
        node[last if last != "" else str(len(node))] = value
    result: dict[str, Any] = _listify(root)
    return result


def _walk(root: dict[str, Any], parts: list[str]) -> dict[str, Any]:
    node = root
    for part in parts[:-1]:
        node = node[part]
    return node


def _listify(node: Any) -> Any:
    """`{"0": x, "1": y}` becomes `[x, y]`, recursively."""
    if not isinstance(node, dict):
        return node
    items = {key: _listify(value) for key, value in node.items()}
    if items and all(key.isdigit() for key in items):
        return [items[key] for key in sorted(items, key=int)]
    return items
