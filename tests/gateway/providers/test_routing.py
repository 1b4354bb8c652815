"""Router: bare model ids, the default provider, and the vLLM preset's base URL."""

from __future__ import annotations

import pytest

from lunos.gateway.catalog import Catalog
from lunos.gateway.config import ConfigError, load_settings
from lunos.gateway.errors import GatewayError
from lunos.gateway.routing import Router, check_credentials

CATALOG = Catalog.load()


def router(**env) -> Router:
    return Router(load_settings(env={"OPENAI_API_KEY": "k", **env}), CATALOG)


def test_a_bare_id_is_the_one_catalog_model_of_that_name():
    r = router()
    for bare, full in [("gpt-4o", "openai/gpt-4o"), ("claude-sonnet-4-5", "anthropic/claude-sonnet-4-5"),
                       ("gemini-2.5-flash", "google/gemini-2.5-flash")]:
        (route,) = r.resolve(bare)
        assert (route.model, route.upstream_model) == (full, bare)
        assert route.model_info is CATALOG.get(full)


def test_a_name_two_providers_share_is_not_guessed():
    catalog = Catalog.load([{"id": "groq/gpt-4o"}])
    r = Router(load_settings(env={}), catalog)
    with pytest.raises(GatewayError) as exc:
        r.resolve("gpt-4o")
    assert exc.value.status == 404 and exc.value.param == "model"
    (route,) = Router(load_settings(env={"LUNOS_DEFAULT_PROVIDER": "groq"}), catalog).resolve("gpt-4o")
    assert route.model == "groq/gpt-4o"


def test_the_default_provider_takes_unknown_names_and_unknown_prefixes():
    r = router(LUNOS_DEFAULT_PROVIDER="ollama")
    (route,) = r.resolve("llama3.3")
    assert (route.model, route.provider, route.upstream_model) == ("ollama/llama3.3", "ollama", "llama3.3")
    (route,) = r.resolve("meta-llama/llama-3")
    assert (route.provider, route.upstream_model) == ("ollama", "meta-llama/llama-3")
    (route,) = r.resolve("openai/gpt-4o")  # a provider prefix still wins
    assert route.provider == "openai"


def test_an_unknown_default_provider_is_a_configuration_error():
    with pytest.raises(ConfigError, match="LUNOS_DEFAULT_PROVIDER"):
        load_settings(env={"LUNOS_DEFAULT_PROVIDER": "nope"})


def test_the_vllm_preset_needs_its_base_url():
    """vLLM's default port is Lunos's own: the preset never points at the gateway itself."""
    settings = load_settings(env={})
    assert settings.providers["vllm"].base_url == ""
    (route,) = Router(settings, CATALOG).resolve("vllm/qwen3")
    with pytest.raises(GatewayError) as exc:
        check_credentials(route)
    assert exc.value.status == 400 and "VLLM_BASE_URL" in exc.value.message
    settings = load_settings(env={"VLLM_BASE_URL": "http://gpu-box:8000/v1"})
    (route,) = Router(settings, CATALOG).resolve("vllm/qwen3")
    check_credentials(route)
    assert route.adapter.config.base_url == "http://gpu-box:8000/v1"
