"""template.yaml as data: functions, their routes and schedules (docs/architecture.md).

The local dev server routes each request the way API Gateway would with `load()` and
`match()`, and the tests check the template through them. Only used locally: PyYAML is a
dev dependency, imported inside `load()`, and no Lambda handler imports this module.

Routes come from each function's `Api` events (`ResponseTransferMode: RESPONSE_STREAM`
marks a streamed route) and from any OpenAPI `DefinitionBody` of a serverless API
(`responseTransferMode: STREAM` on the integration). `Globals` merge as SAM merges them:
maps key by key, lists global entries first, scalars overridden.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote

from gatewayz.record import record

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

__all__ = ["Function", "Route", "Schedule", "Template", "TemplateError", "load", "match"]

FUNCTION_TYPE = "AWS::Serverless::Function"
LAYER_TYPE = "AWS::Serverless::LayerVersion"
API_TYPE = "AWS::Serverless::Api"

# CloudFormation's short-form tags; each becomes its long form ("!Sub x" -> {"Fn::Sub": x}).
_TAGS = {"Ref": "Ref", "Condition": "Condition"}
for _name in ("Sub", "GetAtt", "If", "Join", "Select", "Split", "Equals", "Not", "And", "Or"):
    _TAGS[_name] = f"Fn::{_name}"
for _name in ("FindInMap", "Base64", "Cidr", "ImportValue", "GetAZs", "Transform"):
    _TAGS[_name] = f"Fn::{_name}"
_CODE_URI = re.compile(r"^functions/(?P<group>[A-Za-z0-9_-]+)/?$")
_FUNCTION_ARN = re.compile(r"\$\{(?P<logical_id>[A-Za-z0-9]+)\.Arn\}")
_OPENAPI_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch"})
_ANY_METHOD = "x-amazon-apigateway-any-method"


class TemplateError(ValueError):
    """template.yaml does not describe the gateway the way this module reads it."""


@record
class Route:
    """One API Gateway method: `method` on the resource `path`, served by `group`."""

    group: str
    method: str
    path: str
    streaming: bool


@record
class Schedule:
    """One EventBridge Scheduler schedule (a `ScheduleV2` event) of a scheduled job."""

    job: str
    expression: str
    retry_attempts: int | None
    has_dead_letter: bool
    omit_name: bool


@record
class Function:
    """One `AWS::Serverless::Function`, with `Globals` merged in."""

    logical_id: str
    group: str
    code_uri: str
    handler: str
    streaming: bool
    routes: tuple[Route, ...]
    schedules: tuple[Schedule, ...]
    environment: dict[str, object]
    properties: dict[str, object]


@record
class Template:
    """The parsed template: functions by group, layers and parameters by logical id."""

    functions: dict[str, Function]
    layers: dict[str, dict[str, object]]
    parameters: dict[str, dict[str, object]]
    raw: dict[str, object]

    @property
    def routes(self) -> tuple[Route, ...]:
        return tuple(route for function in self.functions.values() for route in function.routes)


def load(path: Path) -> Template:
    """Parse the SAM template at `path`.

    Raises:
        TemplateError: a function's CodeUri is not `functions/<group>/`, two functions
            share a group, or an event or API definition is malformed.
    """
    import yaml

    raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_loader())  # noqa: S506 - a SafeLoader
    if not isinstance(raw, dict):
        raise TemplateError(f"{path} is not a YAML mapping")
    resources = _mapping(raw.get("Resources"), "Resources")
    globals_ = _mapping(raw.get("Globals", {}), "Globals")
    function_globals = _mapping(globals_.get("Function", {}), "Globals.Function")
    layer_globals = _mapping(globals_.get("LayerVersion", {}), "Globals.LayerVersion")

    groups: dict[str, str] = {}  # logical id -> group
    functions: dict[str, Function] = {}
    for logical_id, resource in _resources_of(resources, FUNCTION_TYPE):
        properties = _merge(function_globals, _mapping(resource.get("Properties", {}), logical_id))
        function = _function(logical_id, properties)
        if function.group in functions:
            raise TemplateError(
                f"{logical_id} and {functions[function.group].logical_id} "
                f"are both group {function.group!r}"
            )
        functions[function.group] = function
        groups[logical_id] = function.group

    for route in _definition_routes(resources, groups):
        function = functions[route.group]
        functions[route.group] = _with_route(function, route)

    layers = {
        logical_id: _merge(layer_globals, _mapping(resource.get("Properties", {}), logical_id))
        for logical_id, resource in _resources_of(resources, LAYER_TYPE)
    }
    parameters = {
        name: _mapping(value, f"Parameters.{name}")
        for name, value in _mapping(raw.get("Parameters", {}), "Parameters").items()
    }
    return Template(functions=functions, layers=layers, parameters=parameters, raw=raw)


def match(routes: Sequence[Route], method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The route API Gateway (REST) would pick for `method path`, with its path parameters.

    The most specific resource wins, segment by segment: a literal beats `{param}`, which
    beats the greedy `{proxy+}` (one or more remaining segments, parameter "proxy"). On that
    resource an exact method beats ANY; a method it lacks is no match (API Gateway answers
    403 "Missing Authentication Token" rather than trying a less specific resource).
    A trailing slash is ignored for matching, as API Gateway does (`/v1/keys/` is routed to
    `/v1/keys`; the event's `path` keeps the slash). Parameter values are percent-decoded.
    """
    segments = _segments(path.split("?", 1)[0])
    best_rank: tuple[int, ...] | None = None
    best: list[tuple[Route, dict[str, str]]] = []
    for route in routes:
        found = _match_path(_template_segments(route.path), segments)
        if found is None:
            continue
        rank, params = found
        if best_rank is None or rank < best_rank:
            best_rank, best = rank, [(route, params)]
        elif rank == best_rank and route.path == best[0][0].path:
            best.append((route, params))
    wanted = method.upper()
    for candidate in (wanted, "ANY"):
        for route, params in best:
            if route.method == candidate:
                return route, params
    return None


def _segments(path: str) -> tuple[str, ...]:
    stripped = path.strip("/")
    return tuple(stripped.split("/")) if stripped else ()


@lru_cache(maxsize=256)
def _template_segments(path: str) -> tuple[str, ...]:
    return _segments(path)


def _match_path(
    template: tuple[str, ...], segments: tuple[str, ...]
) -> tuple[tuple[int, ...], dict[str, str]] | None:
    """(rank per segment: 0 literal, 1 parameter, 2 greedy; parameters) or None."""
    rank: list[int] = []
    params: dict[str, str] = {}
    for index, part in enumerate(template):
        if part.startswith("{") and part.endswith("+}"):
            rest = segments[index:]
            if not rest or index != len(template) - 1:
                return None
            params[part[1:-2]] = unquote("/".join(rest))
            rank.append(2)
            return tuple(rank), params
        if index >= len(segments) or not segments[index]:
            return None
        segment = unquote(segments[index])
        if part.startswith("{") and part.endswith("}"):
            params[part[1:-1]] = segment
            rank.append(1)
        elif segment == part:
            rank.append(0)
        else:
            return None
    if len(segments) != len(template):
        return None
    return tuple(rank), params


def _function(logical_id: str, properties: dict[str, object]) -> Function:
    code_uri = properties.get("CodeUri")
    found = _CODE_URI.match(code_uri) if isinstance(code_uri, str) else None
    if found is None or not isinstance(code_uri, str):
        raise TemplateError(f"{logical_id}: CodeUri {code_uri!r} is not functions/<group>/")
    group = found["group"]
    handler = properties.get("Handler")
    if not isinstance(handler, str):
        raise TemplateError(f"{logical_id}: Handler must be a string")
    environment = _mapping(
        _mapping(properties.get("Environment", {}), f"{logical_id}.Environment").get(
            "Variables", {}
        ),
        f"{logical_id}.Environment.Variables",
    )
    routes: list[Route] = []
    schedules: list[Schedule] = []
    events = _mapping(properties.get("Events", {}), f"{logical_id}.Events")
    for name, event in events.items():
        event = _mapping(event, f"{logical_id}.Events.{name}")
        where = f"{logical_id}.Events.{name}"
        props = _mapping(event.get("Properties", {}), where)
        if event.get("Type") == "Api":
            routes.append(_api_route(group, props, where))
        elif event.get("Type") == "ScheduleV2":
            schedules.append(_schedule(props, where))
    return Function(
        logical_id=logical_id,
        group=group,
        code_uri=code_uri,
        handler=handler,
        streaming=environment.get("AWS_LWA_INVOKE_MODE") == "response_stream",
        routes=tuple(routes),
        schedules=tuple(schedules),
        environment=environment,
        properties=properties,
    )


def _api_route(group: str, props: dict[str, object], where: str) -> Route:
    path, method = props.get("Path"), props.get("Method")
    if not isinstance(path, str) or not isinstance(method, str):
        raise TemplateError(f"{where}: an Api event needs a Path and a Method")
    return Route(
        group=group,
        method=method.upper(),
        path=path,
        streaming=props.get("ResponseTransferMode") == "RESPONSE_STREAM",
    )


def _schedule(props: dict[str, object], where: str) -> Schedule:
    expression, payload = props.get("ScheduleExpression"), props.get("Input")
    if not isinstance(expression, str) or not isinstance(payload, str):
        raise TemplateError(f"{where}: a ScheduleV2 event needs a ScheduleExpression and an Input")
    try:
        job = json.loads(payload).get("job")
    except (ValueError, AttributeError):
        job = None
    if not isinstance(job, str):
        raise TemplateError(f'{where}: Input must be JSON like {{"job": "<name>"}}')
    retry = props.get("RetryPolicy")
    attempts = retry.get("MaximumRetryAttempts") if isinstance(retry, dict) else None
    return Schedule(
        job=job,
        expression=expression,
        retry_attempts=attempts if isinstance(attempts, int) else None,
        has_dead_letter=isinstance(props.get("DeadLetterConfig"), dict),
        omit_name=props.get("OmitName") is True,
    )


def _definition_routes(resources: dict[str, object], groups: dict[str, str]) -> Iterator[Route]:
    """Routes written directly in an API's OpenAPI `DefinitionBody` (aws_proxy to a function)."""
    for api_id, resource in _resources_of(resources, API_TYPE):
        body = _mapping(resource.get("Properties", {}), api_id).get("DefinitionBody")
        if not isinstance(body, dict):
            continue  # none, or an AWS::Include: SAM builds the body from the Api events
        for path, item in _mapping(body.get("paths", {}), f"{api_id}.paths").items():
            for key, operation in _mapping(item, f"{api_id}.paths.{path}").items():
                if key != _ANY_METHOD and key.lower() not in _OPENAPI_METHODS:
                    continue  # parameters, summary, ...
                where = f"{api_id}.paths.{path}.{key}"
                integration = _mapping(operation, where).get("x-amazon-apigateway-integration")
                if not isinstance(integration, dict):
                    continue
                logical_id = _integration_function(integration.get("uri"))
                if logical_id is None:
                    continue  # not a Lambda integration of this template
                if logical_id not in groups:
                    raise TemplateError(f"{where}: integrates unknown function {logical_id}")
                yield Route(
                    group=groups[logical_id],
                    method="ANY" if key == _ANY_METHOD else key.upper(),
                    path=str(path),
                    streaming=integration.get("responseTransferMode") == "STREAM",
                )


def _integration_function(uri: object) -> str | None:
    if isinstance(uri, dict) and "Fn::Sub" in uri:
        uri = uri["Fn::Sub"]
        if isinstance(uri, list) and uri:
            uri = uri[0]
    if not isinstance(uri, str):
        return None
    found = _FUNCTION_ARN.search(uri)
    return found["logical_id"] if found else None


def _with_route(function: Function, route: Route) -> Function:
    return Function(
        logical_id=function.logical_id,
        group=function.group,
        code_uri=function.code_uri,
        handler=function.handler,
        streaming=function.streaming,
        routes=(*function.routes, route),
        schedules=function.schedules,
        environment=function.environment,
        properties=function.properties,
    )


def _resources_of(
    resources: dict[str, object], kind: str
) -> Iterator[tuple[str, dict[str, object]]]:
    for logical_id, resource in resources.items():
        if isinstance(resource, dict) and resource.get("Type") == kind:
            yield logical_id, cast("dict[str, object]", resource)


def _merge(global_value: dict[str, object], local: dict[str, object]) -> dict[str, object]:
    """SAM's Globals merge: maps merge key by key, lists concatenate, the local scalar wins."""
    merged = dict(global_value)
    for key, value in local.items():
        current = merged.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            merged[key] = _merge(cast("dict[str, object]", current), value)
        elif isinstance(current, list) and isinstance(value, list):
            merged[key] = [*current, *value]
        else:
            merged[key] = value
    return merged


def _mapping(value: object, where: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise TemplateError(f"{where} must be a mapping")
    return cast("dict[str, object]", value)


def _loader() -> type[Any]:
    """A SafeLoader that reads CloudFormation's short-form tags and keeps dates as strings."""
    import yaml

    class CloudFormationLoader(yaml.SafeLoader):
        pass

    # CloudFormation reads `2010-09-09` as a string, not a date.
    CloudFormationLoader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, object]:
        name = _TAGS[node.tag[1:]]
        value: object
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
            if name == "Fn::GetAtt":
                value = str(value).split(".", 1)  # !GetAtt Res.Attr -> [Res, Attr]
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(cast("yaml.MappingNode", node), deep=True)
        return {name: value}

    for tag in _TAGS:
        CloudFormationLoader.add_constructor(f"!{tag}", construct)
    return CloudFormationLoader
