"""Settings are read one way: `config.load_settings` reads the environment, nothing else does."""

from __future__ import annotations

import re
from pathlib import Path

import lunos.gateway
from lunos.gateway.catalog import Catalog
from lunos.gateway.config import load_settings
from lunos.gateway.routing import Router
from lunos.gateway.tools.web_search.config import search_config

GATEWAY = Path(lunos.gateway.__file__).parent


def test_only_config_reads_the_environment():
    readers = [path.relative_to(GATEWAY).as_posix() for path in GATEWAY.rglob("*.py")
               if re.search(r"os\.environ|os\.getenv|getenv\(", path.read_text())]
    assert readers == ["config.py"]


def test_alias_keys_and_search_backends_come_from_the_settings(tmp_path, monkeypatch):
    path = tmp_path / "lunos.yaml"
    path.write_text("aliases:\n  smart:\n    - model: openai/gpt-4o\n      api_key_env: TEAM_KEY\n")
    settings = load_settings(path, env={"TEAM_KEY": "sk-team", "TAVILY_API_KEY": "tv"})
    monkeypatch.setenv("TEAM_KEY", "sk-other")  # read after load_settings: not seen
    monkeypatch.setenv("BRAVE_API_KEY", "br")
    route = Router(settings, Catalog.load(())).resolve("smart")[0]
    assert route.adapter.config.api_key == "sk-team"
    assert set(search_config(settings).backends) == {"tavily"}
