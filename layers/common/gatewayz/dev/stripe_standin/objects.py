"""The stand-in's state: Stripe objects by id, the event log, errors and parameter reading.

Objects are plain JSON-ready dicts shaped as Stripe's API returns them (`id`, `object`,
`livemode: false`, ...), so what the API answers and what an event carries are the same.
"""

from __future__ import annotations

import copy
import json
import secrets
import string
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from gatewayz.record import record

if TYPE_CHECKING:
    from collections.abc import Callable

Obj = dict[str, Any]
API_VERSION = "2026-10-28.endive"  # what stripe 16.1 sends; events say it too
_ALPHABET = string.ascii_letters + string.digits


class StripeError(Exception):
    """An error in Stripe's envelope: `{"error": {"type", "code", "message", "param", ...}}`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",  # Stripe's own field name
        code: str | None = None,
        param: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error: Obj = {"type": type, "message": message, **extra}
        if code is not None:
            self.error["code"] = code
        if param is not None:
            self.error["param"] = param

    def body(self) -> Obj:
        return {"error": self.error}


def missing(kind: str, ident: str, param: str = "id") -> StripeError:
    """Stripe's 404 for an unknown id."""
    return StripeError(404, f"No such {kind}: '{ident}'", code="resource_missing", param=param)


def missing_param(name: str) -> StripeError:
    """Stripe's 400 for a required parameter left out."""
    return StripeError(
        400, f"Missing required param: {name}.", code="parameter_missing", param=name
    )


def new_id(prefix: str) -> str:
    """A Stripe-looking id: `cus_…`, `cs_test_…`."""
    return prefix + "_" + "".join(secrets.choice(_ALPHABET) for _ in range(24))


def now() -> int:
    return int(time.time())


@dataclass
class State:
    """Every object the stand-in made, and the events, in order."""

    objects: dict[str, Obj] = field(default_factory=dict)
    events: list[Obj] = field(default_factory=list)
    pending: list[Obj] = field(default_factory=list)  # made by the current action
    declining: set[str] = field(default_factory=set)  # customers whose saved cards decline
    private: dict[str, Obj] = field(default_factory=dict)  # what Stripe keeps but does not show
    base_url: str = "http://127.0.0.1/_stripe"  # where the pages are, set per request
    request_id: str | None = None
    idempotency_key: str | None = None

    def put(self, obj: Obj) -> Obj:
        self.objects[obj["id"]] = obj
        return obj

    def get(self, ident: Any, kind: str, param: str = "id") -> Obj:
        """The object `ident` of type `kind` (Stripe's `object` value).

        Raises:
            StripeError: 404 resource_missing.
        """
        obj = self.objects.get(ident) if isinstance(ident, str) else None
        if obj is None or obj["object"] != kind:
            raise missing(kind.replace("_", " ").split(".")[-1], str(ident), param)
        return obj

    def emit(self, type_: str, obj: Obj, previous: Obj | None = None) -> Obj:
        """Record event `type_` carrying a snapshot of `obj` (and what an update changed)."""
        data: Obj = {"object": copy.deepcopy(obj)}
        if previous is not None:
            data["previous_attributes"] = copy.deepcopy(previous)
        event: Obj = {
            "id": new_id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": now(),
            "data": data,
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": self.request_id, "idempotency_key": self.idempotency_key},
            "type": type_,
        }
        self.objects[event["id"]] = event
        self.events.append(event)
        self.pending.append(event)
        return event


@record
class Reply:
    """What an action answered: HTTP status, JSON body, and whether it was a replay."""

    status: int
    body: bytes
    request_id: str
    replayed: bool = False

    def json(self) -> Obj:
        result: Obj = json.loads(self.body)
        return result


class Host(Protocol):
    """What the API and the pages need of the stand-in (`StripeStandin` is one)."""

    api_key: str | None

    def run(
        self,
        action: Callable[[State], Obj],
        *,
        base_url: str | None = None,
        idempotency_key: str | None = None,
        fingerprint: str = "",
    ) -> Reply: ...

    def redeliver(self, event_id: str) -> bool: ...


def base(prefix: str, kind: str, **fields: Any) -> Obj:
    """A new object's common fields."""
    return {"id": new_id(prefix), "object": kind, "created": now(), "livemode": False, **fields}


def text(params: Obj, name: str, *, required: bool = False) -> str | None:
    """A string parameter.

    Raises:
        StripeError: 400 when required and absent.
    """
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise missing_param(name)
        return None
    if not isinstance(value, str):
        raise StripeError(400, f"Invalid string: {name}.", param=name)
    return value


def integer(params: Obj, name: str, *, required: bool = False, minimum: int = 0) -> int | None:
    """A non-negative integer parameter.

    Raises:
        StripeError: 400 when absent (if required), not an integer or below `minimum`.
    """
    value = text(params, name, required=required)
    if value is None:
        return None
    if not value.isdigit():
        raise StripeError(400, f"Invalid integer: {value}", param=name)
    number = int(value)
    if number < minimum:
        raise StripeError(
            400, f"This value must be greater than or equal to {minimum}.", param=name
        )
    return number


def boolean(params: Obj, name: str) -> bool | None:
    """A `true`/`false` parameter.

    Raises:
        StripeError: 400 for another value.
    """
    value = text(params, name)
    if value is None:
        return None
    if value not in ("true", "false"):
        raise StripeError(400, f"Invalid boolean: {value}", param=name)
    return value == "true"


def metadata(params: Obj, current: Obj | None = None, name: str = "metadata") -> Obj:
    """`metadata[...]` merged into `current`; an empty value deletes a key, as in Stripe.

    Raises:
        StripeError: 400 when metadata is not a hash.
    """
    result = dict(current or {})
    given = params.get(name)
    if given is None or given == "":
        return {} if given == "" else result
    if not isinstance(given, dict):
        raise StripeError(400, "Invalid hash", param=name)
    for key, value in given.items():
        if value == "":
            result.pop(key, None)
        else:
            result[key] = value
    return result


def listing(url: str, data: list[Obj], params: Obj) -> Obj:
    """A list object, paged with `limit` and `starting_after` as Stripe pages.

    Raises:
        StripeError: 400 for a bad limit.
    """
    limit = integer(params, "limit", minimum=1) or 10
    after = text(params, "starting_after")
    if after is not None:
        ids = [item["id"] for item in data]
        data = data[ids.index(after) + 1 :] if after in ids else []
    return {"object": "list", "data": data[:limit], "has_more": len(data) > limit, "url": url}
