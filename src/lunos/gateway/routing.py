"""From a model id to who may answer it: a list of `Route`s (deployments).

The part before the first `/` names the provider; the rest goes upstream unchanged
(`openrouter/meta-llama/llama-3-70b` -> `meta-llama/llama-3-70b`). A model the catalog does
not know is still routed. An id that names no provider (`gpt-4o`: clients such as the OpenAI
Agents SDK strip the `openai/`) is the catalog model of that name when exactly one provider
has it, else the `default_provider`'s model of that name; with neither it is a 404. The config file's `aliases:`
map a name (`smart`, or a real id like `openai/gpt-4o`) to several deployments, each a model
with optional credentials, base URL and weight of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
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
    deployment: str = ""  # health and load are tracked by this name (the provider by default)
    weight: float = 1.0


_OVERRIDES = {"api_key", "base_url", "headers", "api_key_env"}


class Router:
    def __init__(self, settings: Settings, catalog: Catalog) -> None:
        self.catalog = catalog
        self.adapters: dict[str, Adapter] = {
            name: make_adapter(config) for name, config in settings.providers.items()
        }
        self._cache: dict[str, list[Route]] = {}
        self.default_provider = settings.default_provider
        owners: dict[str, list[str]] = {}
        for info in catalog:
            if info.provider in self.adapters:
                owners.setdefault(info.id.partition("/")[2], []).append(info.id)
        # A bare model id -> the one full id of that name.
        self._bare = {name: ids[0] for name, ids in owners.items() if len(ids) == 1}
        self.aliases: dict[str, list[Route]] = {
            name: [self._deployment(name, i, spec) for i, spec in enumerate(specs)]
            for name, specs in settings.aliases.items()
        }

    def _deployment(self, alias: str, index: int, spec) -> Route:
        route = self._single(spec["model"])
        if not _OVERRIDES & set(spec):
            return replace(route, weight=float(spec.get("weight", 1)))
        config = route.adapter.config
        api_key = spec.get("api_key")  # config.py read `api_key_env`
        config = replace(
            config,
            api_key=api_key or config.api_key,
            base_url=(spec.get("base_url") or config.base_url).rstrip("/"),
            headers=config.headers + tuple((k.lower(), str(v)) for k, v in (spec.get("headers") or {}).items()),
        )
        return replace(route, adapter=make_adapter(config), deployment=f"{alias}#{index}",
                       weight=float(spec.get("weight", 1)))

    def resolve(self, model: str) -> list[Route]:
        """The deployments that may answer `model` (one, unless it is an alias)."""
        routes = self.aliases.get(model) or self._cache.get(model)
        if routes is not None:
            return routes
        routes = [self._single(model)]
        if len(self._cache) < 10_000:
            self._cache[model] = routes
        return routes

    def full_id(self, model: str) -> str:
        """`provider/model` for a bare id that resolves (see `_single`); other ids as given."""
        provider, sep, upstream = model.partition("/")
        if sep and upstream and provider in self.adapters:
            return model
        if model in self._bare:
            return self._bare[model]
        return f"{self.default_provider}/{model}" if self.default_provider else model

    def _single(self, model: str) -> Route:
        provider, sep, upstream = model.partition("/")
        adapter = self.adapters.get(provider) if sep and upstream else None
        if adapter is None:
            full = self._bare.get(model)
            if full is not None:
                return self._single(full)
            if self.default_provider:
                return self._single(f"{self.default_provider}/{model}")
        if not sep or not upstream:
            raise GatewayError(
                404,
                f"The model {model!r} names no provider: use 'provider/model', "
                "for example 'openai/gpt-4o' (or set a default provider)",
                param="model",
                code="model_not_found",
            )
        if adapter is None:
            raise GatewayError(404, f"Unknown provider {provider!r} in model {model!r}",
                               param="model", code="provider_not_found")
        return Route(model, provider, upstream, adapter, self.catalog.get(model), deployment=provider)


def check_credentials(route: Route) -> None:
    """A clear error when the route's provider has no endpoint or key configured here."""
    config = route.adapter.config
    if not config.base_url:
        missing = ("base URL", "base_url")
    elif config.key_required and not config.api_key:
        missing = ("API key", "api_key")
    else:
        return
    env = route.provider.upper().replace("-", "_") + "_" + missing[1].upper()
    raise GatewayError(
        400,
        f"The provider {route.provider!r} has no {missing[0]} configured on this gateway "
        f"(set {env} or providers.{route.provider}.{missing[1]})",
        param="model",
        code="provider_not_configured",
    )
