"""Server-side features layered around the engine: structured outputs, web search.

Each layer is a runner with the engine's two methods (`complete`, `stream`) that wraps the
runner below it; `runner_for` stacks the layers a request asks for, outermost last:
web search (may call the model several times) over structured outputs (checks every final
answer) over the engine (one upstream call, with retries and fallbacks).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from ..records import CallRecord
from ..validation import ChatOptions


class Runner(Protocol):
    async def complete(self, body: dict, options: ChatOptions, record: CallRecord) -> dict: ...

    def stream(self, body: dict, options: ChatOptions, record: CallRecord) -> AsyncIterator[list[dict]]: ...


def runner_for(gw, body: dict, options: ChatOptions) -> Runner:
    runner: Runner = gw.engine
    runner = structured.wrap(runner, gw, body, options)
    runner = web_search.wrap(runner, gw, body, options)
    return runner


from . import structured, web_search  # noqa: E402  (they import Runner from here)
