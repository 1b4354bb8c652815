"""The model catalog: what each known model can do and what it costs.

Data lives in `catalog_data/models.json` (maintained with the code) and can be extended or
overridden by the config file's `models:` list. Lookups are by full id (`provider/model`)
and happen in memory on every request, so the catalog is built once and frozen.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

# OpenAI body parameters a model accepts unless its entry says otherwise.
COMMON_PARAMETERS = frozenset(
    {
        "temperature",
        "top_p",
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "frequency_penalty",
        "presence_penalty",
        "seed",
        "n",
        "user",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "stream_options",
        "logprobs",
        "top_logprobs",
        "logit_bias",
        "reasoning_effort",
        "metadata",
        "store",
        "service_tier",
        "web_search_options",
        "prediction",
        "modalities",
        "audio",
        "verbosity",
        "prompt_cache_key",
        "safety_identifier",
    }
)


PRICE_KINDS = ("input", "output", "cached_input", "cache_write", "cache_write_1h", "reasoning")


@dataclass(frozen=True, slots=True)
class Prices:
    """USD per million tokens of each kind, as one request is billed (defaults resolved)."""

    input: float
    output: float
    cached_input: float
    cache_write: float  # the provider's default cache write (Anthropic: 5 minutes)
    cache_write_1h: float  # Anthropic's 1-hour cache writes
    reasoning: float

    @property
    def most_per_input(self) -> float:
        """The dearest way an input token can be billed (for worst-case reservations)."""
        return max(self.input, self.cached_input, self.cache_write, self.cache_write_1h)

    @property
    def most_per_output(self) -> float:
        return max(self.output, self.reasoning)


@dataclass(frozen=True, slots=True)
class PriceTier:
    """Long-context pricing: a request whose prompt has more than `above_input_tokens`
    tokens is billed, whole, at these prices; kinds left out keep the base price."""

    above_input_tokens: int
    prices: Mapping[str, float]

    def public(self) -> dict:
        return {"above_input_tokens": self.above_input_tokens, **self.prices}


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str  # "anthropic/claude-sonnet-4-5"
    provider: str
    name: str = ""
    context_length: int | None = None
    max_output: int | None = None
    # USD per million tokens; None when unknown.
    input_price: float | None = None
    output_price: float | None = None
    cached_input_price: float | None = None
    cache_write_price: float | None = None
    reasoning_price: float | None = None  # defaults to output_price
    cache_write_1h_price: float | None = None  # defaults to cache_write_price
    price_tiers: tuple[PriceTier, ...] = ()  # ascending thresholds
    input_modalities: tuple[str, ...] = ("text",)
    output_modalities: tuple[str, ...] = ("text",)
    supported_parameters: frozenset[str] = COMMON_PARAMETERS
    constraints: Mapping[str, Any] = field(default_factory=dict)
    # Free-form per-provider switches (e.g. Anthropic `native_structured_output`).
    features: Mapping[str, Any] = field(default_factory=dict)

    @property
    def priced(self) -> bool:
        return self.input_price is not None and self.output_price is not None

    def prices(self, prompt_tokens: int = 0) -> Prices | None:
        """The prices a request with this many prompt tokens pays; None when unknown."""
        if not self.priced:
            return None
        given = {"input": self.input_price, "output": self.output_price,
                 "cached_input": self.cached_input_price, "cache_write": self.cache_write_price,
                 "cache_write_1h": self.cache_write_1h_price, "reasoning": self.reasoning_price}
        for tier in self.price_tiers:
            if prompt_tokens > tier.above_input_tokens:
                given.update(tier.prices)
        write = given["cache_write"] if given["cache_write"] is not None else given["input"]
        return Prices(
            input=given["input"],
            output=given["output"],
            cached_input=given["cached_input"] if given["cached_input"] is not None else given["input"],
            cache_write=write,
            cache_write_1h=given["cache_write_1h"] if given["cache_write_1h"] is not None else write,
            reasoning=given["reasoning"] if given["reasoning"] is not None else given["output"],
        )

    def public(self) -> dict:
        """The `/v1/models` entry."""
        return {
            "id": self.id,
            "object": "model",
            "owned_by": self.provider,
            "provider": self.provider,
            "name": self.name or self.id,
            "context_length": self.context_length,
            "max_output_tokens": self.max_output,
            "pricing": {
                "input": self.input_price,
                "output": self.output_price,
                "cached_input": self.cached_input_price,
                "cache_write": self.cache_write_price,
                "cache_write_1h": self.cache_write_1h_price,
                "tiers": [tier.public() for tier in self.price_tiers],
                "unit": "USD per million tokens",
            },
            "input_modalities": list(self.input_modalities),
            "output_modalities": list(self.output_modalities),
            "supported_parameters": sorted(self.supported_parameters),
        }


def _model_from_entry(entry: Mapping[str, Any], base: ModelInfo | None = None) -> ModelInfo:
    model_id = entry["id"]
    provider = entry.get("provider") or model_id.partition("/")[0]
    pricing = entry.get("pricing", {})
    values: dict[str, Any] = {} if base is None else {
        f: getattr(base, f) for f in ModelInfo.__dataclass_fields__
    }
    values.update(id=model_id, provider=provider)
    for key in ("name", "context_length", "max_output"):
        if key in entry:
            values[key] = entry[key]
    for key, attr in (
        ("input", "input_price"),
        ("output", "output_price"),
        ("cached_input", "cached_input_price"),
        ("cache_write", "cache_write_price"),
        ("reasoning", "reasoning_price"),
        ("cache_write_1h", "cache_write_1h_price"),
    ):
        if key in pricing:
            values[attr] = pricing[key]
    if "tiers" in pricing:
        values["price_tiers"] = _price_tiers(model_id, pricing["tiers"])
    if "input_modalities" in entry:
        values["input_modalities"] = tuple(entry["input_modalities"])
    if "output_modalities" in entry:
        values["output_modalities"] = tuple(entry["output_modalities"])
    params = set(values.get("supported_parameters", COMMON_PARAMETERS))
    if "supported_parameters" in entry:
        params = set(entry["supported_parameters"])
    params -= set(entry.get("unsupported_parameters", ()))
    values["supported_parameters"] = frozenset(params)
    if "constraints" in entry:
        values["constraints"] = dict(entry["constraints"])
    if "features" in entry:
        values["features"] = {**values.get("features", {}), **entry["features"]}
    return ModelInfo(**values)


def _price_tiers(model_id: str, entries: Any) -> tuple[PriceTier, ...]:
    """`pricing.tiers`: [{"above_input_tokens": N, "input": ..., "output": ..., ...}]."""
    tiers = []
    for entry in entries if isinstance(entries, list) else [entries]:
        where = f"model {model_id!r}: pricing.tiers"
        if not isinstance(entry, Mapping):
            raise ValueError(f"{where}: each tier is an object")
        threshold = entry.get("above_input_tokens")
        if not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 0:
            raise ValueError(f"{where}: 'above_input_tokens' must be a whole number of tokens")
        unknown = set(entry) - {"above_input_tokens", *PRICE_KINDS}
        if unknown:
            raise ValueError(f"{where}: unknown key {sorted(unknown)[0]!r} (prices are "
                             + ", ".join(PRICE_KINDS) + ")")
        prices = {k: v for k, v in entry.items() if k != "above_input_tokens"}
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0
                   for v in prices.values()):
            raise ValueError(f"{where}: prices are numbers of USD per million tokens")
        tiers.append(PriceTier(threshold, {k: float(v) for k, v in prices.items()}))
    return tuple(sorted(tiers, key=lambda tier: tier.above_input_tokens))


class Catalog:
    def __init__(self, models: Iterable[ModelInfo]) -> None:
        self._models: dict[str, ModelInfo] = {m.id: m for m in models}

    @classmethod
    def load(cls, overrides: Iterable[Mapping[str, Any]] = ()) -> Catalog:
        text = resources.files("lunos.gateway").joinpath("catalog_data/models.json").read_text()
        models: dict[str, ModelInfo] = {}
        for entry in json.loads(text)["models"]:
            info = _model_from_entry(entry)
            models[info.id] = info
        for entry in overrides:
            base = models.get(entry["id"])
            info = _model_from_entry(entry, base)
            models[info.id] = info
        return cls(models.values())

    def get(self, model_id: str) -> ModelInfo | None:
        return self._models.get(model_id)

    def __iter__(self):
        return iter(self._models.values())

    def __len__(self) -> int:
        return len(self._models)
