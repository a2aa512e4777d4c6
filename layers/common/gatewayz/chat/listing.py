"""`GET /v1/models` and `GET /v1/models/{id}`: the served catalog in OpenAI's list shape
with OpenRouter's metadata (context, modalities, per-token prices, providers)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gatewayz.record import record

if TYPE_CHECKING:
    from decimal import Decimal

    from gatewayz.billing.pricing import Price
    from gatewayz.chat.model import Model


def listing(model: Model) -> dict[str, Any]:
    """The `GET /v1/models` entry: OpenAI's fields plus OpenRouter's metadata. Prices are
    USD per token (per image), as strings, from the first offer (the one tried first)."""
    first = model.offers[0]
    return {
        "id": model.id,
        "object": "model",
        "created": model.created,
        "owned_by": model.id.split("/", 1)[0],
        "name": model.name,
        "description": model.description,
        "context_length": model.context_length,
        "architecture": {
            "input_modalities": list(model.input_modalities),
            "output_modalities": list(model.output_modalities),
        },
        "pricing": _pricing(first.price),
        "top_provider": {
            "context_length": first.context_length or model.context_length,
            "max_completion_tokens": first.max_output_tokens or model.max_output_tokens,
        },
        "supported_parameters": list(model.supported_parameters),
        "providers": [
            {
                "name": offer.provider,
                "context_length": offer.context_length or model.context_length,
                "max_completion_tokens": offer.max_output_tokens or model.max_output_tokens,
                "pricing": _pricing(offer.price),
            }
            for offer in model.offers
        ],
    }


def _pricing(price: Price) -> dict[str, str]:
    per_token = {
        "prompt": price.input,
        "completion": price.output,
        "input_cache_read": price.cached_input,
        "internal_reasoning": price.reasoning,
    }
    shown = {name: _per_token(value) for name, value in per_token.items() if value is not None}
    if price.image is not None:
        shown["image"] = _plain(price.image)
    return shown


def _per_token(per_million: Decimal) -> str:
    return _plain(per_million / 1_000_000)


def _plain(value: Decimal) -> str:
    """A decimal without exponent or trailing zeros: "0.00000015", "0"."""
    text = format(value.normalize(), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def list_served(
    *,
    supported_parameters: str | None = None,
    input_modalities: str | None = None,
    output_modalities: str | None = None,
) -> dict[str, Any]:
    """`GET /v1/models`: every model this deploy serves, OpenAI's list shape, narrowed by
    OpenRouter's filters (comma lists): models supporting every one of
    `supported_parameters`, accepting every one of `input_modalities`, and producing any
    one of `output_modalities` (`all`, or no value: any output)."""
    from gatewayz.chat import catalog, providers
    from gatewayz.config import get_settings

    served = catalog.models(providers.available(get_settings()))
    wanted = Filters(
        parameters=_names(supported_parameters),
        inputs=_names(input_modalities),
        outputs=frozenset() if _names(output_modalities) & {"all"} else _names(output_modalities),
    )
    data = [listing(m) for _, m in sorted(served.items()) if wanted.match(m)]
    return {"object": "list", "data": data}


@record
class Filters:
    """What `GET /v1/models` was asked to narrow to; empty sets match every model."""

    parameters: frozenset[str] = frozenset()
    inputs: frozenset[str] = frozenset()
    outputs: frozenset[str] = frozenset()

    def match(self, model: Model) -> bool:
        return (
            self.parameters <= set(model.supported_parameters)
            and self.inputs <= set(model.input_modalities)
            and (not self.outputs or bool(self.outputs & set(model.output_modalities)))
        )


def _names(value: str | None) -> frozenset[str]:
    """A comma list's names, blanks dropped."""
    return frozenset(n.strip() for n in (value or "").split(",") if n.strip())


def describe(model_id: str) -> dict[str, Any]:
    """`GET /v1/models/{id}`.

    Raises:
        ModelNotFound: no such model is served here.
    """
    from gatewayz import errors
    from gatewayz.chat import catalog, providers
    from gatewayz.config import get_settings

    model = catalog.models(providers.available(get_settings())).get(model_id)
    if model is None:
        raise errors.ModelNotFound(
            f"The model `{errors.quote(model_id)}` does not exist.", param="model"
        )
    return listing(model)
