"""An upstream provider (docs/architecture.md, step 6): where it lives, how to sign in,
and a few hooks over the OpenAI-compatible request.

Every provider speaks OpenAI's chat and completions API. A provider file declares its
name and base URL and overrides a hook only where that upstream differs; nothing else
in the package branches on a provider's name.
"""

from __future__ import annotations

from dataclasses import field
from typing import TYPE_CHECKING, Any, ClassVar

from gatewayz.record import record

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from gatewayz.chat.model import Model
    from gatewayz.chat.upstream import Reply
    from gatewayz.config import Settings

# Fields of our API that are ours, never the upstream's: routing preferences and the
# fallback list are decided here (OpenRouter would read them as its own).
GATEWAY_FIELDS = frozenset({"provider", "models", "route", "transforms", "usage"})


class Provider:
    """Base of every provider; subclasses set `name` and `default_base_url`."""

    name: ClassVar[str]
    default_base_url: ClassVar[str]
    supports_completions: ClassVar[bool] = True

    def api_key(self, settings: Settings) -> str | None:
        """This provider's key from `<NAME>_API_KEY`, or None when unset."""
        secret = getattr(settings, f"{self.name}_api_key", None)
        return secret.get_secret_value() if secret is not None else None

    def base_url(self, settings: Settings) -> str:
        """`<NAME>_BASE_URL` or the provider's own."""
        url = getattr(settings, f"{self.name}_base_url", None) or self.default_base_url
        return str(url).rstrip("/")

    def headers(self, api_key: str) -> dict[str, str]:
        """Authentication headers."""
        return {"authorization": f"Bearer {api_key}"}

    def body(self, body: dict[str, Any], provider_model_id: str, *, stream: bool) -> dict[str, Any]:
        """The request to send: the client's, whole, with the upstream's model id, our
        own fields removed, and usage always requested on streams."""
        out = {k: v for k, v in body.items() if k not in GATEWAY_FIELDS}
        out["model"] = provider_model_id
        if stream:
            options = body.get("stream_options")
            out["stream_options"] = {
                **(options if isinstance(options, dict) else {}),
                "include_usage": True,
            }
        return out

    def cap_field(self, *, chat: bool) -> str:
        """The request field this provider reads the output cap from: `max_tokens`, the
        one every OpenAI-compatible server knows (and legacy completions know only)."""
        return "max_tokens"

    def serve_locally(self) -> Callable[[str, bytes], Awaitable[Reply]] | None:
        """An in-process stand-in for the network (the offline mock); None: the network."""
        return None

    def builtin_models(self) -> tuple[Model, ...]:
        """Models this provider brings with it, beside the database catalog (the mock's)."""
        return ()


@record
class Upstream:
    """A provider ready to call: its base URL and key resolved from the settings, or the
    calling account's own key for it (`own_key`, bring-your-own-key)."""

    provider: Provider
    base_url: str
    api_key: str = field(repr=False)  # never in a log line or a traceback's repr
    own_key: bool = False

    @property
    def name(self) -> str:
        return self.provider.name
