"""Which search backends this gateway has, and how searches run (SPEC §2).

From the environment (which wins) and the YAML file's `search:` section:

    search:
      backend: searxng        # the default; LUNOS_SEARCH_BACKEND (or search_backend) wins
      timeout: 5              # seconds per backend call, page fetches included (LUNOS_SEARCH_TIMEOUT)
      max_searches: 3         # searches one request may make
      fetch_pages: false      # fetch result pages through the guarded fetch
      pages_per_search: 3     # how many results' pages, when fetch_pages is on
      page_chars: 3000        # page text kept per fetched result
      stream_hold_chars: 200  # see loop.py: text held back while a turn may still search
      searxng: {url: ...}                          # SEARXNG_URL
      tavily: {api_key: ..., base_url: ...}        # TAVILY_API_KEY, TAVILY_BASE_URL
      brave: {api_key: ..., base_url: ...}         # BRAVE_API_KEY, BRAVE_BASE_URL
      exa: {api_key: ..., base_url: ...}           # EXA_API_KEY, EXA_BASE_URL

A backend is configured when it has its URL (SearXNG) or its key (the hosted ones). With
no default named, the first configured one in the order searxng, tavily, brave, exa is the
default. Settings are read once per `Settings` object.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ...errors import GatewayError
from .base import Backend
from .brave import BraveBackend
from .exa import ExaBackend
from .searxng import SearxngBackend
from .tavily import TavilyBackend

log = logging.getLogger("lunos.search")

ORDER = ("searxng", "tavily", "brave", "exa")
HINTS = {
    "searxng": "set SEARXNG_URL",
    "tavily": "set TAVILY_API_KEY",
    "brave": "set BRAVE_API_KEY",
    "exa": "set EXA_API_KEY",
}
# Snippet characters per result for each search_context_size.
CONTEXT_CHARS = {"low": 300, "medium": 800, "high": 2000}


@dataclass(frozen=True, slots=True)
class SearchConfig:
    backends: Mapping[str, Backend] = field(default_factory=dict)  # configured ones, by name
    default: str | None = None
    timeout: float = 5.0
    max_searches: int = 3
    fetch_pages: bool = False
    pages_per_search: int = 3
    page_chars: int = 3000
    stream_hold_chars: int = 200

    def pick(self, engine: str) -> Backend:
        """The backend for a request's `engine` (`auto` = the default), or a clear 400."""
        if engine == "auto":
            if self.default is None:
                raise GatewayError(400, "Web search is not configured on this gateway (set "
                                        "SEARXNG_URL, or TAVILY_API_KEY, BRAVE_API_KEY or "
                                        "EXA_API_KEY)", param="tools", code="search_not_configured")
            name, param = self.default, "tools"
        else:
            name, param = engine, "tools"
        backend = self.backends.get(name)
        if backend is None:
            hint = HINTS.get(name, "")
            raise GatewayError(400, f"The web search engine {name!r} is not configured on this "
                                    f"gateway ({hint})", param=param, code="search_not_configured")
        return backend


def load_search_config(settings, env: Mapping[str, str] | None = None) -> SearchConfig:
    env = {} if env is None else env  # config.py folds the search variables into `search`
    section: Mapping[str, Any] = settings.search or {}

    def sub(name: str) -> Mapping[str, Any]:
        value = section.get(name)
        return value if isinstance(value, Mapping) else {}

    def setting(env_key: str, name: str, key: str) -> str | None:
        value = env.get(env_key) or sub(name).get(key)
        return str(value) if value else None

    backends: dict[str, Backend] = {}
    url = setting("SEARXNG_URL", "searxng", "url")
    if url:
        backends["searxng"] = SearxngBackend(url)
    for name, make in (("tavily", TavilyBackend), ("brave", BraveBackend), ("exa", ExaBackend)):
        prefix = name.upper()
        key = setting(f"{prefix}_API_KEY", name, "api_key")
        if key:
            backends[name] = make(key, setting(f"{prefix}_BASE_URL", name, "base_url"))
    default = settings.search_backend or section.get("backend")
    if default is not None:
        default = str(default).strip().lower()
        if default not in ORDER:
            log.warning("unknown search backend %r (LUNOS_SEARCH_BACKEND); expected one of %s",
                        default, ", ".join(ORDER))
    else:
        default = next((name for name in ORDER if name in backends), None)
    return SearchConfig(
        backends=backends,
        default=default,
        timeout=_number(env.get("LUNOS_SEARCH_TIMEOUT") or section.get("timeout"), 5.0, float),
        max_searches=_number(section.get("max_searches"), 3, int),
        fetch_pages=_flag(section.get("fetch_pages")),
        pages_per_search=_number(section.get("pages_per_search"), 3, int),
        page_chars=_number(section.get("page_chars"), 3000, int),
        stream_hold_chars=_number(section.get("stream_hold_chars"), 200, int, minimum=0),
    )


def _number(value: Any, default, cast, minimum: float = 0.001):
    if value is None or value == "":
        return default
    try:
        number = cast(value)
    except (TypeError, ValueError):
        log.warning("search setting %r is not a number; using %s", value, default)
        return default
    return number if number >= minimum else default


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


_cache: dict[int, tuple[object, SearchConfig]] = {}


def search_config(settings) -> SearchConfig:
    """The search configuration of these settings (built once per settings)."""
    hit = _cache.get(id(settings))
    if hit is None or hit[0] is not settings:
        hit = (settings, load_search_config(settings))
        _cache[id(settings)] = hit
    return hit[1]
