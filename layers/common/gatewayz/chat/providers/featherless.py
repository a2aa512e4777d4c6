"""Featherless: https://api.featherless.ai/v1, Bearer key, Hugging Face model ids."""

from __future__ import annotations

from gatewayz.chat.providers.base import Provider


class Featherless(Provider):
    name = "featherless"
    default_base_url = "https://api.featherless.ai/v1"


PROVIDER = Featherless()
