"""Server-side web search (the `web_search` tool, SPEC §4, §5).

A request turns it on with the tool `{"type": "web_search", "parameters": {...}}` or OpenAI's
`web_search_options`; validation puts both into `options.web_search`. `engine` picks how:
a backend of this gateway (`auto` = the default one, or `searxng`, `tavily`, `brave`,
`exa`), run by the gateway's own loop (loop.py), or `native`, the provider's own search
(native.py). Modules: base.py (the backend interface), one module per backend, config.py,
service.py (one search), sources.py (numbering, the fenced text the model reads),
citations.py (annotations), loop.py, native.py.
"""

from __future__ import annotations

from ...errors import GatewayError
from ...validation import ChatOptions
from . import native
from .config import search_config
from .loop import SearchLoop
from .service import Searcher

TOOL_NAME = "web_search"


def wrap(runner, gw, body: dict, options: ChatOptions):
    """The runner that runs the search tool loop, or `runner` when no search is asked."""
    search = options.web_search
    if search is None:
        return runner
    if (body.get("n") or 1) > 1:
        raise GatewayError(400, "'n' greater than 1 cannot be combined with web search",
                           param="n", code="unsupported_parameter")
    if search.engine == "native":
        return native.wrap(runner, gw, body, options)
    config = search_config(gw.settings)
    searcher = Searcher(config.pick(search.engine), gw.client, gw.fetcher, config)
    names = {t["function"]["name"] for t in body.get("tools") or ()}
    tool_name = TOOL_NAME if TOOL_NAME not in names else "lunos_web_search"
    return SearchLoop(runner, searcher, search, config,
                      offer_tool=calls_tools(gw, body), tool_name=tool_name)


def calls_tools(gw, body: dict) -> bool:
    """Whether the model can be offered the search function (else: context mode)."""
    if body.get("tool_choice") == "none":
        return False
    routes = native.routes(gw, body["model"])
    info = routes[0].model_info if routes else None
    if info is None:
        return True  # unknown model: assume it calls tools, as the provider decides
    features = info.features
    if "tools" not in info.supported_parameters or not features.chat_tools:
        return False
    effort = body.get("reasoning_effort") or features.default_reasoning_effort
    return not (features.chat_tools_require_effort_none and effort not in (None, "none"))
