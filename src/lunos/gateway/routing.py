"""From a model id to who answers it: `"anthropic/claude-x"` -> (adapter, upstream model, catalog).

The part before the first `/` names the provider; the rest goes upstream unchanged
(`openrouter/meta-llama/llama-3-70b` -> `meta-llama/llama-3-70b`). A model the catalog does
not know is still routed; only an unknown provider is a 404.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module

from .catalog import Catalog, ModelInfo
from .config import Settings
from .errors import GatewayError
from .providers.base import Adapter, ProviderConfig

ADAPTERS = {
    "openai": ("lunos.gateway.providers.openai_compat", "OpenAIAdapter"),
    "anthropic": ("lunos.gateway.providers.anthropic", "AnthropicAdapter"),
    "google": ("lunos.gateway.providers.google", "GoogleAdapter"),
}


def make_adapter(config: ProviderConfig) -> Adapter:
    module, name = ADAPTERS[config.kind]
    return getattr(import_module(module), name)(config)


@dataclass(frozen=True, slots=True)
class Route:
    model: str  # the full id that answers: "anthropic/claude-sonnet-4-5"
    provider: str
    upstream_model: str
    adapter: Adapter
    model_info: ModelInfo | None


class Router:
    def __init__(self, settings: Settings, catalog: Catalog) -> None:
        self.catalog = catalog
        self.adapters: dict[str, Adapter] = {
            name: make_adapter(config) for name, config in settings.providers.items()
        }
        self._cache: dict[str, Route] = {}

    def resolve(self, model: str) -> Route:
        route = self._cache.get(model)
        if route is not None:
            return route
        provider, sep, upstream = model.partition("/")
        if not sep or not upstream:
            raise GatewayError(
                404,
                f"The model {model!r} names no provider: use 'provider/model', "
                "for example 'openai/gpt-4o'",
                param="model",
                code="model_not_found",
            )
        adapter = self.adapters.get(provider)
        if adapter is None:
            raise GatewayError(404, f"Unknown provider {provider!r} in model {model!r}",
                               param="model", code="provider_not_found")
        config = adapter.config
        if config.key_required and not config.api_key:
            env = provider.upper().replace("-", "_") + "_API_KEY"
            raise GatewayError(
                400,
                f"The provider {provider!r} has no API key configured on this gateway "
                f"(set {env} or providers.{provider}.api_key)",
                param="model",
                code="provider_not_configured",
            )
        route = Route(model, provider, upstream, adapter, self.catalog.get(model))
        if len(self._cache) < 10_000:
            self._cache[model] = route
        return route
