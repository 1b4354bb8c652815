"""The shipped model catalog (catalog_data/models.json) is well formed and loads, and the
config file's `models:` list extends and overrides it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import numbers
from importlib import resources

import pytest

from lunos.gateway.catalog import COMMON_PARAMETERS, Catalog

BUILTIN_PROVIDERS = {
    "openai", "anthropic", "google", "groq", "mistral", "deepseek", "together",
    "openrouter", "xai", "fireworks", "ollama", "vllm",
    "local",  # the built-in embedding model (local_model.py)
}
SELF_HOSTED = {"ollama", "vllm"}
ENTRY_KEYS = {
    "id", "name", "provider", "context_length", "max_output", "pricing", "input_modalities",
    "output_modalities", "supported_parameters", "unsupported_parameters", "constraints",
    "features", "note",
}
PRICE_KEYS = {"input", "output", "cached_input", "cache_write", "cache_write_1h", "reasoning",
              "image", "audio_minute"}
MODALITIES = {"text", "image", "audio", "video", "file"}
EMBEDDINGS = ["embeddings"]  # the output of an embedding model
THINKING_KINDS = {"budget", "adaptive", "level", "toggle"}
EFFORTS = {"none", "minimal", "low", "medium", "high", "xhigh", "max"}
ANTHROPIC_NEVER = {"frequency_penalty", "presence_penalty", "seed", "n", "logprobs",
                   "top_logprobs", "logit_bias"}


def _raw() -> dict:
    text = resources.files("lunos.gateway").joinpath("catalog_data/models.json").read_text()
    return json.loads(text)


RAW = _raw()
ENTRIES = RAW["models"]
CATALOG = Catalog.load()


def _ids(entries):
    return [e["id"] for e in entries]


def _resolved_parameters(entry: dict) -> set[str]:
    params = set(entry.get("supported_parameters", COMMON_PARAMETERS))
    return params - set(entry.get("unsupported_parameters", ()))


def test_top_level_metadata():
    assert dt.date.fromisoformat(RAW["updated"]).year >= 2025
    assert RAW["sources"], "the data must say where it comes from"
    assert all(s.startswith("https://") for s in RAW["sources"])
    assert len(set(RAW["sources"])) == len(RAW["sources"])


def test_ids_are_unique_and_prefixed_by_a_builtin_provider():
    ids = _ids(ENTRIES)
    assert len(ids) == len(set(ids))
    for model_id in ids:
        provider, _, model = model_id.partition("/")
        assert provider in BUILTIN_PROVIDERS, model_id
        assert model and model == model.strip() and " " not in model_id, model_id


def test_every_hosted_builtin_provider_has_a_model():
    providers = {m.partition("/")[0] for m in _ids(ENTRIES)}
    assert providers >= BUILTIN_PROVIDERS - SELF_HOSTED


@pytest.mark.parametrize("entry", ENTRIES, ids=_ids(ENTRIES))
def test_entry_shape(entry):
    assert set(entry) <= ENTRY_KEYS, set(entry) - ENTRY_KEYS
    assert isinstance(entry.get("name"), str) and entry["name"]
    for key in ("context_length", "max_output"):
        value = entry.get(key)
        assert value is None or (isinstance(value, int) and not isinstance(value, bool) and value > 0)
    if entry.get("context_length") and entry.get("max_output"):
        assert entry["max_output"] <= entry["context_length"]
    for key in ("input_modalities", "output_modalities"):
        if key in entry:
            if key == "output_modalities" and entry[key] == EMBEDDINGS:
                continue
            # A chat model takes and gives text; a media model (images, speech,
            # transcription) may take or give only its medium.
            assert entry[key] and set(entry[key]) <= MODALITIES
    assert "note" not in entry or (isinstance(entry["note"], str) and entry["note"])


@pytest.mark.parametrize("entry", ENTRIES, ids=_ids(ENTRIES))
def test_prices_are_non_negative_numbers_or_null(entry):
    pricing = dict(entry.get("pricing", {}))
    tiers = pricing.pop("tiers", [])
    assert set(pricing) <= PRICE_KEYS
    thresholds = [tier["above_input_tokens"] for tier in tiers]
    assert thresholds == sorted(set(thresholds)) and all(isinstance(t, int) for t in thresholds)
    for tier in tiers:  # a long-context tier never bills less than the base
        assert set(tier) - {"above_input_tokens"} <= PRICE_KEYS
        for key, value in tier.items():
            if key != "above_input_tokens":
                assert value >= pricing[key], (key, tier)
    for key, value in pricing.items():
        if value is not None:
            assert isinstance(value, numbers.Real) and not isinstance(value, bool), key
            assert value >= 0, key
    if pricing.get("input") is not None and pricing.get("cached_input") is not None:
        assert pricing["cached_input"] <= pricing["input"]
    if pricing.get("input") is not None and pricing.get("cache_write") is not None:
        assert pricing["cache_write"] >= pricing["input"]


@pytest.mark.parametrize("entry", ENTRIES, ids=_ids(ENTRIES))
def test_parameters_are_known_and_constraints_refer_to_supported_ones(entry):
    assert not ("supported_parameters" in entry and "unsupported_parameters" in entry)
    for key in ("supported_parameters", "unsupported_parameters"):
        listed = entry.get(key, [])
        assert len(listed) == len(set(listed)), f"duplicates in {key}"
        assert set(listed) <= COMMON_PARAMETERS, set(listed) - COMMON_PARAMETERS
    params = _resolved_parameters(entry)
    for name, limits in entry.get("constraints", {}).items():
        if name == "exclusive":
            for group in limits:
                assert len(group) >= 2 and set(group) <= params, group
            continue
        assert name in params, f"constraint on unsupported parameter {name}"
        assert set(limits) <= {"min", "max"} and limits
        if "min" in limits and "max" in limits:
            assert limits["min"] <= limits["max"]


@pytest.mark.parametrize("entry", ENTRIES, ids=_ids(ENTRIES))
def test_features_use_the_shared_vocabulary(entry):
    features = entry.get("features", {})
    if "thinking" in features:
        assert features["thinking"] in THINKING_KINDS
    for values_key, default_key in (("reasoning_efforts", "default_reasoning_effort"),
                                    ("thinking_levels", "default_thinking_level")):
        values = features.get(values_key)
        if values is not None:
            assert values and set(values) <= EFFORTS, values_key
            assert "reasoning_effort" in _resolved_parameters(entry)
        if default_key in features:
            assert features[default_key] in (values or EFFORTS), default_key
    if "thinking_levels" in features:
        assert features.get("thinking") == "level"
    for flag in ("native_structured_output", "forced_tool_choice", "assistant_prefill",
                 "thinking_always_on", "chat_tools", "sampling_requires_effort_none",
                 "chat_tools_require_effort_none", "sampling_ignored_when_thinking",
                 "thought_signatures"):
        assert isinstance(features.get(flag, False), bool), flag
    if features.get("chat_tools") is False:
        assert "tools" not in _resolved_parameters(entry)


def test_catalog_loads_every_entry():
    assert len(CATALOG) == len(ENTRIES)
    for entry in ENTRIES:
        info = CATALOG.get(entry["id"])
        assert info is not None
        assert info.provider == entry["id"].partition("/")[0]
        assert info.supported_parameters == frozenset(_resolved_parameters(entry))
        assert info.input_price == entry.get("pricing", {}).get("input")


def test_anthropic_models_never_take_openai_only_sampling_knobs():
    claude = [m for m in CATALOG if m.provider == "anthropic"]
    assert claude
    for info in claude:
        assert not (info.supported_parameters & ANTHROPIC_NEVER), info.id
        if "temperature" in info.supported_parameters:
            # Anthropic's range is 0..1 and these generations refuse temperature with top_p.
            assert info.constraints["temperature"] == {"max": 1}
            assert ["temperature", "top_p"] in info.constraints["exclusive"]
        assert info.features.thinking in {"budget", "adaptive"}


def test_gemini_and_reasoning_models_refuse_what_their_apis_reject():
    for info in CATALOG:
        if info.output_modalities == tuple(EMBEDDINGS) or not info.supported_parameters:
            continue  # embedding and media models have no chat parameters at all
        if info.provider == "google":
            assert not ({"logprobs", "frequency_penalty", "logit_bias"} & info.supported_parameters)
            assert info.features.thinking in {"budget", "level"}
        if info.provider == "openai" and info.features.reasoning_efforts:
            assert not ({"logit_bias", "frequency_penalty", "presence_penalty"}
                        & info.supported_parameters), info.id
            assert info.features.max_tokens_field == "max_completion_tokens"


def test_a_plain_common_entry_keeps_every_common_parameter():
    catalog = Catalog.load([{"id": "vllm/local-model"}])
    info = catalog.get("vllm/local-model")
    assert info is not None
    assert info.supported_parameters == COMMON_PARAMETERS
    assert info.input_price is None and not info.priced


def test_config_overrides_extend_and_merge_over_builtin_entries():
    base_id = "anthropic/claude-sonnet-5-5"
    base = CATALOG.get(base_id)
    assert base is not None and base.output_price is not None
    overrides = [
        {"id": base_id, "pricing": {"input": 1.5}, "unsupported_parameters": ["tools"],
         "features": {"assistant_prefill": False}},
        {"id": "ollama/llama3.3", "name": "Llama 3.3 (local)", "context_length": 131072,
         "pricing": {"input": 0, "output": 0},
         "unsupported_parameters": ["logit_bias", "service_tier"]},
    ]
    catalog = Catalog.load(overrides)
    assert len(catalog) == len(CATALOG) + 1

    merged = catalog.get(base_id)
    assert merged.input_price == 1.5
    assert merged.output_price == base.output_price  # untouched fields keep the built-in values
    assert merged.cached_input_price == base.cached_input_price
    assert merged.name == base.name and merged.context_length == base.context_length
    assert merged.supported_parameters == base.supported_parameters - {"tools"}
    assert merged.features.assistant_prefill is False
    assert merged.features.thinking == base.features.thinking
    assert merged.constraints == base.constraints

    local = catalog.get("ollama/llama3.3")
    assert local.provider == "ollama" and local.name == "Llama 3.3 (local)"
    assert local.priced and local.input_price == 0
    assert local.supported_parameters == COMMON_PARAMETERS - {"logit_bias", "service_tier"}

    # The built-in catalog itself is left as it was.
    assert Catalog.load().get(base_id).input_price == base.input_price


def test_an_unknown_feature_is_refused_when_the_catalog_loads():
    from lunos.gateway.config import ConfigError

    with pytest.raises(ConfigError, match="thinkng"):
        Catalog.load([{"id": "google/my-model", "features": {"thinkng": "level"}}])
    with pytest.raises(ConfigError, match="chat_tools"):
        Catalog.load([{"id": "google/my-model", "features": {"chat_tools": "no"}}])
    info = Catalog.load([{"id": "google/my-model", "features": {"thinking_levels": ["low"]}}]).get(
        "google/my-model")
    assert info.features.thinking_levels == ("low",)
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.features.thinking = "budget"
