"""gatewayz.dev.samtemplate: reading SAM templates and routing as API Gateway REST does."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

import pytest

from gatewayz.dev import samtemplate
from gatewayz.dev.samtemplate import Route, match

if TYPE_CHECKING:
    from pathlib import Path


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "template.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def routes(*specs: str) -> list[Route]:
    """Routes from "METHOD /path group" strings."""
    result = []
    for spec in specs:
        method, path, group = spec.split()
        result.append(Route(group=group, method=method, path=path, streaming=False))
    return result


def routed(table: list[Route], method: str, path: str) -> tuple[str, dict[str, str]] | None:
    found = match(table, method, path)
    return None if found is None else (f"{found[0].method} {found[0].path}", found[1])


# --- match ---------------------------------------------------------------------------------

TABLE = routes(
    "ANY /items x",
    "GET /items/{id} x",
    "ANY /items/{proxy+} y",
    "GET /items/special z",
    "POST /items/special z",
    "ANY /items/special w",
    "GET /items/{id}/parts x",
    "GET /files/{proxy+} f",
)


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        # A literal segment beats a parameter, which beats the greedy proxy.
        ("GET", "/items/special", ("GET /items/special", {})),
        ("GET", "/items/42", ("GET /items/{id}", {"id": "42"})),
        ("GET", "/items/42/parts", ("GET /items/{id}/parts", {"id": "42"})),
        ("GET", "/items/42/other", ("ANY /items/{proxy+}", {"proxy": "42/other"})),
        # An exact method beats ANY on the same resource.
        ("POST", "/items/special", ("POST /items/special", {})),
        ("DELETE", "/items/special", ("ANY /items/special", {})),
        ("DELETE", "/items/42", None),
        ("DELETE", "/items", ("ANY /items", {})),
        # The greedy parameter takes one or more segments, never none.
        ("GET", "/files/a/b/c.txt", ("GET /files/{proxy+}", {"proxy": "a/b/c.txt"})),
        ("GET", "/files", None),
        ("GET", "/files/", None),
        # A trailing slash is ignored; a query string is not part of the path.
        ("GET", "/items/", ("ANY /items", {})),
        ("GET", "/items/42/?x=1", ("GET /items/{id}", {"id": "42"})),
        # Parameters are percent-decoded after the split on "/".
        ("GET", "/items/a%2Fb", ("GET /items/{id}", {"id": "a/b"})),
        ("GET", "/files/my%20dir/x", ("GET /files/{proxy+}", {"proxy": "my dir/x"})),
        ("get", "/items/42", ("GET /items/{id}", {"id": "42"})),
        ("GET", "/other", None),
        ("GET", "/", None),
    ],
)
def test_match_follows_api_gateway_precedence(
    method: str, path: str, expected: tuple[str, dict[str, str]] | None
) -> None:
    assert routed(TABLE, method, path) == expected


def test_a_resource_without_the_method_does_not_fall_back_to_a_less_specific_one() -> None:
    table = routes("POST /v1/chat/completions chat", "ANY /v1/{proxy+} other")
    assert routed(table, "GET", "/v1/chat/completions") is None
    assert routed(table, "GET", "/v1/anything/else") == (
        "ANY /v1/{proxy+}",
        {"proxy": "anything/else"},
    )


def test_match_does_not_depend_on_route_order() -> None:
    assert routed(list(reversed(TABLE)), "GET", "/items/special") == ("GET /items/special", {})
    assert routed(list(reversed(TABLE)), "GET", "/items/7") == ("GET /items/{id}", {"id": "7"})


# --- load ----------------------------------------------------------------------------------

TEMPLATE = """\
AWSTemplateFormatVersion: 2010-09-09
Transform: AWS::Serverless-2016-10-31
Parameters:
  Secret: {Type: String, NoEcho: true, Default: ""}
Globals:
  Function:
    Runtime: python3.13
    Timeout: 10
    Layers: [!Ref Shared]
    Environment:
      Variables:
        SECRET: !Ref Secret
        LEVEL: INFO
Resources:
  Shared:
    Type: AWS::Serverless::LayerVersion
    Properties: {ContentUri: layers/common/}
  Api:
    Type: AWS::Serverless::Api
    Properties:
      StageName: prod
      DefinitionBody:
        openapi: "3.0.1"
        paths:
          /v1/stream:
            post:
              x-amazon-apigateway-integration:
                type: aws_proxy
                httpMethod: POST
                responseTransferMode: STREAM
                uri: !Sub "STREAM_URI"
            parameters: []
          /v1/stream/{proxy+}:
            x-amazon-apigateway-any-method:
              x-amazon-apigateway-integration:
                type: aws_proxy
                httpMethod: POST
                uri:
                  Fn::Sub:
                    - "BUFFERED_URI"
                    - {}
  StreamFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/stream/
      Handler: run.sh
      Timeout: 600
      Layers: [!Sub "arn:aws:lambda:${AWS::Region}:1:layer:Adapter:1"]
      Environment:
        Variables:
          AWS_LWA_INVOKE_MODE: response_stream
          LEVEL: DEBUG
  JobsFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/jobs
      Handler: app.handler
      Events:
        Ping:
          Type: Api
          Properties: {RestApiId: !Ref Api, Path: /ping, Method: get}
        Nightly:
          Type: ScheduleV2
          Properties:
            ScheduleExpression: cron(0 3 * * ? *)
            Input: '{"job": "nightly"}'
            OmitName: true
            RetryPolicy: {MaximumRetryAttempts: 2}
            DeadLetterConfig: {Arn: !GetAtt Dlq.Arn}
        Hourly:
          Type: ScheduleV2
          Properties:
            ScheduleExpression: rate(1 hour)
            Input: '{"job": "hourly"}'
  Dlq:
    Type: AWS::SQS::Queue
Outputs:
  Tags:
    Value: !Join ["", [!Select [0, !Split [",", !ImportValue Other]], !GetAZs "", !Base64 x]]
  Conditions:
    Value: !If [C, !Equals [a, b], !Not [!And [!Or [!Condition D, x], y]]]
  More:
    Value: !FindInMap [M, !Cidr [a, 1, 2], !Transform {Name: X}]
"""
LAMBDA = "arn:aws:apigateway:${AWS::Region}:lambda:path"
TEMPLATE = TEMPLATE.replace(
    "STREAM_URI",
    f"{LAMBDA}/2021-11-15/functions/${{StreamFunction.Arn}}/response-streaming-invocations",
).replace("BUFFERED_URI", f"{LAMBDA}/2015-03-31/functions/${{StreamFunction.Arn}}/invocations")


def test_load_reads_functions_with_globals_merged_as_sam_does(tmp_path: Path) -> None:
    template = samtemplate.load(write(tmp_path, TEMPLATE))
    stream, jobs = template.functions["stream"], template.functions["jobs"]
    assert (stream.logical_id, stream.code_uri, stream.handler) == (
        "StreamFunction",
        "functions/stream/",
        "run.sh",
    )
    assert stream.properties["Timeout"] == 600
    assert jobs.properties["Timeout"] == 10
    assert stream.properties["Layers"] == [
        {"Ref": "Shared"},
        {"Fn::Sub": "arn:aws:lambda:${AWS::Region}:1:layer:Adapter:1"},
    ]
    assert stream.environment == {
        "SECRET": {"Ref": "Secret"},
        "LEVEL": "DEBUG",
        "AWS_LWA_INVOKE_MODE": "response_stream",
    }
    assert jobs.environment == {"SECRET": {"Ref": "Secret"}, "LEVEL": "INFO"}
    assert stream.streaming
    assert not jobs.streaming
    assert template.layers == {"Shared": {"ContentUri": "layers/common/"}}
    assert template.parameters["Secret"] == {"Type": "String", "NoEcho": True, "Default": ""}
    assert template.raw["AWSTemplateFormatVersion"] == "2010-09-09"


def test_load_reads_api_events_and_the_definition_body(tmp_path: Path) -> None:
    template = samtemplate.load(write(tmp_path, TEMPLATE))
    assert set(template.routes) == {
        Route(group="jobs", method="GET", path="/ping", streaming=False),
        Route(group="stream", method="POST", path="/v1/stream", streaming=True),
        Route(group="stream", method="ANY", path="/v1/stream/{proxy+}", streaming=False),
    }


def test_load_reads_schedules(tmp_path: Path) -> None:
    jobs = samtemplate.load(write(tmp_path, TEMPLATE)).functions["jobs"]
    assert jobs.schedules == (
        samtemplate.Schedule(
            job="nightly",
            expression="cron(0 3 * * ? *)",
            retry_attempts=2,
            has_dead_letter=True,
            omit_name=True,
        ),
        samtemplate.Schedule(
            job="hourly",
            expression="rate(1 hour)",
            retry_attempts=None,
            has_dead_letter=False,
            omit_name=False,
        ),
    )


def test_short_form_tags_become_their_long_form(tmp_path: Path) -> None:
    outputs = samtemplate.load(write(tmp_path, TEMPLATE)).raw["Outputs"]
    assert outputs == {
        "Tags": {
            "Value": {
                "Fn::Join": [
                    "",
                    [
                        {"Fn::Select": [0, {"Fn::Split": [",", {"Fn::ImportValue": "Other"}]}]},
                        {"Fn::GetAZs": ""},
                        {"Fn::Base64": "x"},
                    ],
                ]
            }
        },
        "Conditions": {
            "Value": {
                "Fn::If": [
                    "C",
                    {"Fn::Equals": ["a", "b"]},
                    {"Fn::Not": [{"Fn::And": [{"Fn::Or": [{"Condition": "D"}, "x"]}, "y"]}]},
                ]
            }
        },
        "More": {
            "Value": {
                "Fn::FindInMap": [
                    "M",
                    {"Fn::Cidr": ["a", 1, 2]},
                    {"Fn::Transform": {"Name": "X"}},
                ]
            }
        },
    }
    resources = samtemplate.load(write(tmp_path, TEMPLATE)).raw["Resources"]
    dlq = resources["JobsFunction"]["Properties"]["Events"]["Nightly"]["Properties"]
    assert dlq["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["Dlq", "Arn"]}}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("CodeUri: functions/jobs", "CodeUri: src/jobs/"), "not functions/<group>/"),
        (("CodeUri: functions/jobs", "CodeUri: functions/stream/"), "both group 'stream'"),
        (('Input: \'{"job": "hourly"}\'', "Input: '{\"task\": 1}'"), "Input must be JSON"),
        (("Path: /ping, ", ""), "needs a Path and a Method"),
        (("${StreamFunction.Arn}/response", "${GoneFunction.Arn}/response"), "GoneFunction"),
    ],
)
def test_load_refuses_a_template_it_cannot_route(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    old, new = change
    assert old in TEMPLATE
    with pytest.raises(samtemplate.TemplateError, match=message):
        samtemplate.load(write(tmp_path, TEMPLATE.replace(old, new, 1)))
