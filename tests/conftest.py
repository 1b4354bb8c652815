"""Shared fixtures: provider stand-ins (in-process threads) and the real gateway process."""

from __future__ import annotations

import pytest

from tests.gateway_process import MASTER_KEY, GatewayProcess
from tests.standins.harness import ServerThread
from tests.standins.images import ImageServer, start_https
from tests.standins.openai_api import OpenAIStandIn

OPENAI_KEY = "sk-openai-test"
ANTHROPIC_KEY = "sk-ant-test"
GEMINI_KEY = "gm-test"


class StandIns:
    def __init__(self, tmp) -> None:
        from tests.standins.anthropic_api import AnthropicStandIn
        from tests.standins.gemini_api import GeminiStandIn
        from tests.standins.search_api import SearxngStandIn

        self.openai = OpenAIStandIn(OPENAI_KEY)
        self.anthropic = AnthropicStandIn(ANTHROPIC_KEY)
        self.gemini = GeminiStandIn(GEMINI_KEY)
        self.search = SearxngStandIn()  # the web search backend (SEARXNG_URL)
        self.images = ImageServer()
        self.servers = {
            "openai": ServerThread(self.openai).start(),
            "anthropic": ServerThread(self.anthropic).start(),
            "gemini": ServerThread(self.gemini).start(),
            "search": ServerThread(self.search).start(),
        }
        self.image_server, self.cert = start_https(self.images, tmp)

    def reset(self) -> None:
        for app in (self.openai, self.anthropic, self.gemini, self.search):
            app.reset()
        self.images.hits.clear()

    def env(self) -> dict[str, str]:
        return {
            "LUNOS_MASTER_KEY": MASTER_KEY,
            "OPENAI_BASE_URL": self.servers["openai"].url + "/v1",
            "OPENAI_API_KEY": OPENAI_KEY,
            "GROQ_BASE_URL": self.servers["openai"].url + "/v1",
            "GROQ_API_KEY": OPENAI_KEY,
            "ANTHROPIC_BASE_URL": self.servers["anthropic"].url,
            "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
            "GEMINI_BASE_URL": self.servers["gemini"].url,
            "GEMINI_API_KEY": GEMINI_KEY,
            "SEARXNG_URL": self.servers["search"].url,
            "SSL_CERT_FILE": str(self.cert),
            "LUNOS_FETCH_ALLOW_HOSTS": "localhost",
            # Many tests fail the upstream on purpose; the breaker has tests of its own.
            "LUNOS_BREAKER_THRESHOLD": "1000000",
        }

    def stop(self) -> None:
        for server in [*self.servers.values(), self.image_server]:
            server.stop()


@pytest.fixture(scope="session")
def standins(tmp_path_factory):
    s = StandIns(tmp_path_factory.mktemp("certs"))
    yield s
    s.stop()


@pytest.fixture(scope="session")
def gateway(standins, tmp_path_factory):
    g = GatewayProcess(tmp_path_factory.mktemp("gateway"), standins.env()).start()
    yield g
    g.stop()


@pytest.fixture
def upstreams(standins):
    standins.reset()
    return standins
