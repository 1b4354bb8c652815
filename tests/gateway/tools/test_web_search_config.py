"""Which backends a gateway has, which one is the default, and the search settings."""

from __future__ import annotations

import pytest

from lunos.gateway.config import load_settings
from lunos.gateway.errors import GatewayError
from lunos.gateway.tools.web_search.config import load_search_config, search_config


def config(env: dict, yaml_text: str | None = None, tmp_path=None):
    path = None
    if yaml_text is not None:
        path = tmp_path / "lunos.yaml"
        path.write_text(yaml_text)
    settings = load_settings(path, env=env)
    return load_search_config(settings, env)


def test_nothing_configured():
    c = config({})
    assert c.backends == {} and c.default is None
    with pytest.raises(GatewayError) as info:
        c.pick("auto")
    assert info.value.status == 400 and info.value.code == "search_not_configured"
    assert "SEARXNG_URL" in info.value.message


def test_the_first_configured_backend_is_the_default():
    c = config({"BRAVE_API_KEY": "b", "EXA_API_KEY": "e"})
    assert set(c.backends) == {"brave", "exa"} and c.default == "brave"
    assert c.pick("auto").name == "brave" and c.pick("exa").name == "exa"
    assert config({"EXA_API_KEY": "e", "SEARXNG_URL": "http://s:8080/"}).default == "searxng"


def test_lunos_search_backend_picks_the_default():
    c = config({"SEARXNG_URL": "http://s", "TAVILY_API_KEY": "t", "LUNOS_SEARCH_BACKEND": "Tavily"})
    assert c.default == "tavily" and c.pick("auto").name == "tavily"


def test_a_default_that_is_not_configured_is_a_clear_error():
    c = config({"SEARXNG_URL": "http://s", "LUNOS_SEARCH_BACKEND": "exa"})
    with pytest.raises(GatewayError) as info:
        c.pick("auto")
    assert info.value.code == "search_not_configured" and "EXA_API_KEY" in info.value.message
    with pytest.raises(GatewayError) as info:
        c.pick("brave")
    assert "'brave' is not configured" in info.value.message


def test_base_urls_are_overridable():
    c = config({"SEARXNG_URL": "http://searx.local:8888/", "TAVILY_API_KEY": "t", "TAVILY_BASE_URL": "http://t.local",
                "BRAVE_API_KEY": "b", "BRAVE_BASE_URL": "http://b.local/res/v1/", "EXA_API_KEY": "e",
                "EXA_BASE_URL": "http://e.local"})
    assert c.backends["searxng"].url == "http://searx.local:8888/search"
    assert c.backends["tavily"].url == "http://t.local/search"
    assert c.backends["brave"].url == "http://b.local/res/v1/web/search"
    assert c.backends["exa"].url == "http://e.local/search"
    public = config({"TAVILY_API_KEY": "t", "BRAVE_API_KEY": "b", "EXA_API_KEY": "e"}).backends
    assert public["tavily"].url == "https://api.tavily.com/search"
    assert public["brave"].url == "https://api.search.brave.com/res/v1/web/search"
    assert public["exa"].url == "https://api.exa.ai/search"


def test_the_yaml_section_and_env_precedence(tmp_path):
    text = """
search:
  backend: exa
  timeout: 2.5
  max_searches: 5
  fetch_pages: true
  pages_per_search: 1
  stream_hold_chars: 0
  searxng: {url: "http://from-file"}
  exa: {api_key: file-key, base_url: "http://exa-file"}
"""
    c = config({"SEARXNG_URL": "http://from-env"}, text, tmp_path)
    assert c.backends["searxng"].url == "http://from-env/search"
    assert c.backends["exa"].url == "http://exa-file/search"
    assert ("x-api-key", "file-key") in c.backends["exa"].headers
    assert (c.default, c.timeout, c.max_searches, c.fetch_pages, c.pages_per_search, c.stream_hold_chars) == (
        "exa", 2.5, 5, True, 1, 0)
    assert config({"LUNOS_SEARCH_TIMEOUT": "0.75"}, text, tmp_path).timeout == 0.75


def test_unreadable_numbers_fall_back_to_defaults():
    c = config({"LUNOS_SEARCH_TIMEOUT": "soon"})
    assert c.timeout == 5.0 and c.max_searches == 3 and not c.fetch_pages


def test_settings_are_read_once(monkeypatch):
    settings = load_settings(None, env={"SEARXNG_URL": "http://first"})
    monkeypatch.setenv("SEARXNG_URL", "http://second")  # the environment is read by load_settings only
    first = search_config(settings)
    assert search_config(settings) is first and first.backends["searxng"].url == "http://first/search"
