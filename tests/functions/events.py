"""Real API Gateway events from infra/events/, and the functions' real handlers."""

from __future__ import annotations

import copy
import json
import uuid
from typing import TYPE_CHECKING, Any

from gatewayz.dev.local import LambdaContext, import_app
from tests.pg import ROOT

if TYPE_CHECKING:
    from types import ModuleType

HTTP_GROUPS = ["chat", "images", "keys", "billing", "history", "referrals", "coupons", "webhooks"]
_loaded: dict[str, ModuleType] = {}


def function(group: str) -> ModuleType:
    """The `app` module of functions/<group>/, imported once."""
    if group not in _loaded:
        _loaded[group] = import_app(ROOT / "functions" / group / "app.py", f"test_fn_{group}")
    return _loaded[group]


def event(group: str, name: str = "health", **changes: Any) -> dict[str, Any]:
    """infra/events/<group>/<name>.json, with top-level fields replaced by `changes`.

    `headers` given here replace both the single- and multi-value header maps, and
    `path`/`httpMethod` are mirrored into the request context, as API Gateway does.
    """
    loaded = json.loads((ROOT / "infra" / "events" / group / f"{name}.json").read_text())
    result: dict[str, Any] = copy.deepcopy(loaded)
    headers = changes.pop("headers", None)
    result.update(changes)
    if headers is not None:
        result["headers"] = headers
        result["multiValueHeaders"] = {k: [v] for k, v in headers.items()}
    if "path" in changes:
        result["resource"] = changes["path"]
        result["requestContext"]["resourcePath"] = changes["path"]
        result["requestContext"]["path"] = f"/{result['requestContext']['stage']}{changes['path']}"
    if "httpMethod" in changes:
        result["requestContext"]["httpMethod"] = changes["httpMethod"]
    return result


def invoke(group: str, lambda_event: dict[str, Any]) -> dict[str, Any]:
    """Call the function's Lambda handler as the Lambda runtime would."""
    result: dict[str, Any] = function(group).handler(lambda_event, LambdaContext())
    return result


def json_body(result: dict[str, Any]) -> Any:
    return json.loads(result["body"])


def header(result: dict[str, Any], name: str) -> str | None:
    """A response header, whichever map Mangum put it in."""
    for key, value in (result.get("headers") or {}).items():
        if key.lower() == name:
            return str(value)
    for key, values in (result.get("multiValueHeaders") or {}).items():
        if key.lower() == name:
            return str(values[-1])
    return None


def sent_with_key(lambda_event: dict[str, Any], secret: str) -> dict[str, Any]:
    """The event with `secret` as its bearer key, a fresh request id and no stale
    `Content-Length` (its body may have been replaced)."""
    for headers in (lambda_event["headers"], lambda_event["multiValueHeaders"]):
        value = f"Bearer {secret}"
        headers["Authorization"] = value if headers is lambda_event["headers"] else [value]
        headers.pop("Content-Length", None)
    lambda_event["requestContext"]["requestId"] = str(uuid.uuid4())
    return lambda_event
