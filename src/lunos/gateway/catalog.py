"""The model catalog: what each known model can do and what it costs.

Data lives in `catalog_data/models.json` (maintained with the code) and can be extended or
overridden by the config file's `models:` list. Lookups are by full id (`provider/model`)
and happen in memory on every request, so the catalog is built once and frozen.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from typing import Any

from .config import ConfigError

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
class Features:
    """Per-model switches the adapters read. A catalog entry (or a config override) naming a
    key not listed here is refused when the catalog loads, so a typo cannot go unnoticed.
    `None` means "not said": the adapter decides from the model id."""

    # reasoning: "adaptive" / "budget" (Anthropic), "level" / "budget" (Gemini), "toggle", "none"
    thinking: str | None = None
    thinking_always_on: bool = False  # thinking cannot be turned off (reasoning_effort "none")
    reasoning_efforts: tuple[str, ...] = ()  # the efforts the model's own API takes
    default_reasoning_effort: str | None = None
    thinking_levels: tuple[str, ...] = ()  # Gemini thinkingLevel values the model takes
    default_thinking_level: str | None = None
    thought_signatures: bool | None = None  # Gemini: calls must carry their signature
    sampling_requires_effort_none: bool = False
    sampling_ignored_when_thinking: bool = False
    # tools and structured output
    chat_tools: bool = True
    chat_tools_require_effort_none: bool = False
    forced_tool_choice: bool = True
    native_structured_output: bool = False
    structured_output_with_tools: bool | None = None
    response_format_types: tuple[str, ...] = ()
    assistant_prefill: bool = True
    # field names the model's API spells differently (OpenAI-compatible providers)
    max_tokens_field: str | None = None
    seed_field: str | None = None

    @classmethod
    def parse(cls, raw: Any, where: str, base: Features | None = None) -> Features:
        """`raw` (a catalog entry's `features`) over `base`; ConfigError on an unknown key or
        a value of the wrong kind."""
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where}.features must be a mapping")
        kinds = {f.name: f.type for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in raw.items():
            kind = kinds.get(key)
            if kind is None:
                raise ConfigError(f"{where}.features.{key} is not a model feature "
                                  f"(known: {', '.join(kinds)})")
            if "tuple" in kind:
                ok = isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
                value = tuple(value) if ok else value
            elif "bool" in kind:
                ok = isinstance(value, bool) or (value is None and "None" in kind)
            else:
                ok = isinstance(value, str) or value is None
            if not ok:
                raise ConfigError(f"{where}.features.{key} has a value of the wrong kind: {value!r}")
            values[key] = value
        return replace(base or NO_FEATURES, **values)


NO_FEATURES = Features()


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
    image_price: float | None = None  # USD per generated image (images route), beside tokens
    minute_price: float | None = None  # USD per minute of audio transcribed
    input_modalities: tuple[str, ...] = ("text",)
    output_modalities: tuple[str, ...] = ("text",)
    supported_parameters: frozenset[str] = COMMON_PARAMETERS
    constraints: Mapping[str, Any] = field(default_factory=dict)
    features: Features = NO_FEATURES

    def __post_init__(self) -> None:
        if not isinstance(self.features, Features):  # a mapping, as in a catalog entry
            object.__setattr__(self, "features", Features.parse(self.features, self.id))

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
                "image": self.image_price,
                "audio_minute": self.minute_price,
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
        ("image", "image_price"),
        ("audio_minute", "minute_price"),
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
        values["features"] = Features.parse(entry["features"], f"models[{model_id}]",
                                            values.get("features"))
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
    def __init__(self, models: Iterable[ModelInfo], created: int = 0) -> None:
        self._models: dict[str, ModelInfo] = {m.id: m for m in models}
        # Unix time of the catalog's last update: the `created` of OpenAI's model object.
        self.created = created

    @classmethod
    def load(cls, overrides: Iterable[Mapping[str, Any]] = ()) -> Catalog:
        text = resources.files("lunos.gateway").joinpath("catalog_data/models.json").read_text()
        models: dict[str, ModelInfo] = {}
        data = json.loads(text)
        updated = dt.datetime.fromisoformat(data["updated"]).replace(tzinfo=dt.timezone.utc)
        for entry in data["models"]:
            info = _model_from_entry(entry)
            models[info.id] = info
        for entry in overrides:
            base = models.get(entry["id"])
            info = _model_from_entry(entry, base)
            models[info.id] = info
        return cls(models.values(), int(updated.timestamp()))

    def get(self, model_id: str) -> ModelInfo | None:
        return self._models.get(model_id)

    def __iter__(self):
        return iter(self._models.values())

    def __len__(self) -> int:
        return len(self._models)


def features_of(info: ModelInfo | None) -> Features:
    """A model's features; the defaults for a model the catalog does not know."""
    return NO_FEATURES if info is None else info.features
