"""Server-side web search (the `web_search` tool, SPEC §4, §5)."""

from __future__ import annotations


def wrap(runner, gw, body: dict, options):
    """The runner that runs the search tool loop, or `runner` when no search is asked."""
    return runner
