"""`provider.require_parameters`: which request fields a model must list as supported,
and what is left to serve the request."""

from __future__ import annotations

from typing import Any

import pytest

from gatewayz import errors
from gatewayz.chat import parameters
from gatewayz.chat.model import Model
from gatewayz.chat.routing import Preferences


def _model(model_id: str, *supported: str) -> Model:
    return Model(id=model_id, name=model_id, context_length=1000, supported_parameters=supported)


PLAIN = _model("a/plain", "max_tokens", "stop")
TOOLS = _model("b/tools", "max_tokens", "stop", "tools", "tool_choice", "reasoning")


@pytest.mark.parametrize(
    ("body", "missing"),
    [
        ({"model": "a", "messages": [], "stream": True, "user": "u", "provider": {}}, []),
        ({"max_completion_tokens": 5, "stop": "x"}, []),
        ({"tools": [], "temperature": 0.5, "stop": None}, ["tools", "temperature"]),
        ({"reasoning_effort": "low", "unknown_field": 1}, ["reasoning_effort"]),
    ],
)
def test_only_model_parameters_that_are_set_are_checked(
    body: dict[str, Any], missing: list[str]
) -> None:
    assert parameters.unsupported(PLAIN, body) == missing


def test_models_lacking_a_parameter_are_skipped_in_order() -> None:
    body = {"tools": [], "reasoning_effort": "high"}
    assert parameters.supporting([PLAIN, TOOLS, PLAIN], body) == [TOOLS]
    assert parameters.supporting([TOOLS, PLAIN], {"stop": "x"}) == [TOOLS, PLAIN]


def test_when_none_is_left_the_400_names_the_first_models_first_parameter() -> None:
    with pytest.raises(errors.InvalidRequest) as refused:
        parameters.supporting([PLAIN, TOOLS], {"seed": 1, "tools": []})
    assert refused.value.param == "seed"
    assert "a/plain" in refused.value.message


def test_the_switch_is_off_unless_true_and_must_be_a_boolean() -> None:
    assert Preferences.parse(None).require_parameters is False
    assert Preferences.parse({"order": ["x"]}).require_parameters is False
    assert Preferences.parse({"require_parameters": True}).require_parameters is True
    with pytest.raises(errors.InvalidRequest) as refused:
        Preferences.parse({"require_parameters": 1})
    assert refused.value.param == "provider.require_parameters"
