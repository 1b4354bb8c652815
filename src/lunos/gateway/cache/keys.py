"""What a cached answer is keyed on (SPEC §10): pure functions over the engine's chat body.

The exact key is a SHA-256 over the key scope (the Lunos key's id), the requested model,
the messages and every other field of the chat body, the server-side web search options
included; only `stream` and `stream_options` are left out (a stream and a JSON answer are
the same answer). Lunos-only fields (`observability`, `models`, `cache`, ...) are never in
the chat body the engine gets, so they never split the cache.

A semantic match must share everything but the last message: its scope is the same hash
without that message, and the last message's text is what gets embedded.
"""

from __future__ import annotations

import dataclasses
import hashlib

import orjson

NOT_KEYED = frozenset({"stream", "stream_options"})


def _digest(parts: list) -> str:
    return hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _params(body: dict, options) -> dict:
    params = {k: v for k, v in body.items() if k not in NOT_KEYED and k != "messages"}
    if options.web_search is not None:
        params["web_search"] = dataclasses.asdict(options.web_search)
    return params


def exact_key(scope: str, body: dict, options) -> str:
    return _digest(["exact", scope, _params(body, options), body.get("messages")])


def semantic_scope(scope: str, body: dict, options) -> str:
    """What two requests must share to match by meaning: key, model, parameters and every
    message before the last."""
    return _digest(["semantic", scope, _params(body, options), body.get("messages", [])[:-1]])


def prompt_text(body: dict) -> str | None:
    """The text a semantic match compares: the last message's, when it is the user's and
    holds text (image parts are not compared: such a request matches exactly or not at all)."""
    messages = body.get("messages") or []
    if not messages or messages[-1].get("role") != "user":
        return None
    content = messages[-1].get("content")
    if isinstance(content, str):
        return content.strip() or None
    if not isinstance(content, list) or any(part.get("type") != "text" for part in content):
        return None
    text = "\n".join(part.get("text") or "" for part in content).strip()
    return text or None


def has_tools(body: dict, options) -> bool:
    """Function tools may have side effects, and a web search's results change: a request
    with either is served from an exact match only (unless the config opts in)."""
    return bool(body.get("tools")) or options.web_search is not None
