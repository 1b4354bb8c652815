"""OpenAI chat body -> Anthropic Messages API body and headers.

Rules, in the order a request meets them:

- `system` / `developer` messages become the top-level `system` list of text blocks
  (keeping `cache_control`); the Messages API has no system role.
- `tool` messages become `tool_result` blocks in a user turn; consecutive same-role turns
  are merged, so all results of one assistant turn (and a user text right after them)
  land in ONE user message, results first, as Anthropic requires.
- assistant `reasoning_details` (format `anthropic-claude-v1`) become `thinking` /
  `redacted_thinking` blocks again, before the text and `tool_use` blocks; an entry
  without a signature cannot be sent back and is left out.
- `max_tokens` / `max_completion_tokens` -> `max_tokens`, clamped to the catalog's
  `max_output`. When absent: `DEFAULT_MAX_TOKENS` (8192, the provider option
  `default_max_tokens` overrides it), capped at `max_output`. The Messages API requires
  the field; 8192 is long enough for nearly every answer and keeps non-streamed requests
  well inside Anthropic's time limits, and output is billed by use, not by the cap.
- `reasoning_effort` -> thinking. Models whose catalog `features` say
  `{"thinking": "adaptive"}` get `{"type": "adaptive"}` plus `output_config.effort`
  (minimal -> low; the nearest of the model's `reasoning_efforts` when it lists them).
  Other models get a fixed budget, `THINKING_BUDGETS[effort]` (xhigh: 32768). `none` is
  `{"type": "disabled"}`, refused (400) on models whose thinking cannot be turned off
  (catalog feature `thinking_always_on`). Thinking tokens count
  inside `max_tokens` (as reasoning tokens count inside OpenAI's `max_completion_tokens`):
  without a client cap `max_tokens` = budget + the default; under a client cap (or a model
  cap too small for both) the budget is at most half the cap, never under Anthropic's 1024
  minimum, and a cap of 1024 or less leaves no room, so the request goes without thinking.
- `user` -> `metadata.user_id`. OpenAI's own `metadata` (tags for OpenAI's stored
  completions) has no Anthropic meaning and is not sent: Anthropic's `metadata` takes
  only `user_id`.
- Nothing the Messages API does not know is ever sent (its validation rejects unknown
  fields with "Extra inputs are not permitted").
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

from ...catalog import features_of
from ...errors import GatewayError
from ..base import ChatRequest, ProviderConfig
from ..common import loads_arguments, parse_data_url, parts_of
from . import search

DEFAULT_VERSION = "2023-06-01"
# From this API version on, temperature/top_p/top_k are removed from the Messages API.
SAMPLING_REMOVED_VERSION = "2026-10-21"
DEFAULT_MAX_TOKENS = 8192
MIN_THINKING_BUDGET = 1024
THINKING_BUDGETS = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 16384, "xhigh": 32768}
ADAPTIVE_EFFORT = {"minimal": "low", "low": "low", "medium": "medium", "high": "high", "xhigh": "xhigh"}
EFFORT_ORDER = ("low", "medium", "high", "xhigh", "max")
REASONING_FORMAT = "anthropic-claude-v1"
# Anthropic names JPEG only as image/jpeg; clients often write image/jpg.
_MEDIA_ALIASES = {"image/jpg": "image/jpeg"}


def api_version(config: ProviderConfig) -> str:
    return str(config.options.get("anthropic_version", DEFAULT_VERSION))


def sampling_removed(version: str) -> bool:
    """API versions are dates, so later versions compare greater as strings."""
    return version >= SAMPLING_REMOVED_VERSION


def thinking_requested(body: dict) -> bool:
    effort = body.get("reasoning_effort")
    return isinstance(effort, str) and effort in THINKING_BUDGETS


def headers(config: ProviderConfig, version: str) -> list[tuple[str, str]]:
    result = [("content-type", "application/json"), ("anthropic-version", version)]
    if config.api_key:
        result.append(("x-api-key", config.api_key))
    result.extend(config.headers)
    return result


def build_body(req: ChatRequest, version: str, default_max_tokens: int = DEFAULT_MAX_TOKENS) -> dict:
    body = req.body
    system, messages = translate_messages(body["messages"])
    out: dict[str, Any] = {"model": req.upstream_model, "messages": messages}
    if system:
        out["system"] = system
    out["max_tokens"] = _max_tokens(req, default_max_tokens)
    if thinking_requested(body):
        _add_thinking(out, req, default_max_tokens)
    elif body.get("reasoning_effort") == "none":
        out["thinking"] = {"type": "disabled"}
    if not sampling_removed(version):
        for name in ("temperature", "top_p"):
            if body.get(name) is not None:
                out[name] = body[name]
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else list(stop or ())
    stops = [s for s in stops if s]
    if stops:
        out["stop_sequences"] = stops
    if body.get("user"):
        out["metadata"] = {"user_id": body["user"]}
    tools = body.get("tools")
    if tools:
        out["tools"] = [_tool(t) for t in tools]
        choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
        if choice is not None:
            out["tool_choice"] = choice
    if body.get("web_search_options") is not None:  # web search engine "native": see search.py
        out.setdefault("tools", []).append(search.tool(body["web_search_options"]))
    if req.stream:
        out["stream"] = True
    return out


# ---------------------------------------------------------------- limits and thinking


def _max_tokens(req: ChatRequest, default: int) -> int:
    body = req.body
    requested = body.get("max_completion_tokens") or body.get("max_tokens")
    cap = req.model_info.max_output if req.model_info is not None else None
    value = requested if requested else default
    return min(value, cap) if cap else value


def _add_thinking(out: dict, req: ChatRequest, default_max_tokens: int) -> None:
    effort = req.body["reasoning_effort"]
    features = features_of(req.model_info)
    if features.thinking == "adaptive":
        out["thinking"] = {"type": "adaptive"}
        out["output_config"] = {"effort": _nearest_effort(ADAPTIVE_EFFORT[effort], features.reasoning_efforts)}
        return
    budget = THINKING_BUDGETS[effort]
    cap = req.model_info.max_output if req.model_info is not None else None
    client_cap = req.body.get("max_completion_tokens") or req.body.get("max_tokens")
    if client_cap or (cap and budget + default_max_tokens > cap):
        max_tokens = out["max_tokens"]  # already min(client cap or default, model cap)
        if not client_cap:
            max_tokens = cap
        budget = min(budget, max(max_tokens // 2, MIN_THINKING_BUDGET))
    else:
        max_tokens = budget + default_max_tokens
    if budget >= max_tokens:
        return  # no room to think under this cap
    out["max_tokens"] = max_tokens
    out["thinking"] = {"type": "enabled", "budget_tokens": budget}


def _nearest_effort(wanted: str, accepted: object) -> str:
    """`wanted`, or the accepted effort closest to it (the lower one on a tie)."""
    if not isinstance(accepted, (list, tuple)) or not accepted or wanted in accepted:
        return wanted
    rank = EFFORT_ORDER.index(wanted)
    known = [e for e in accepted if e in EFFORT_ORDER]
    if not known:
        return wanted
    return min(known, key=lambda e: (abs(EFFORT_ORDER.index(e) - rank), EFFORT_ORDER.index(e)))


# ---------------------------------------------------------------- tools


def _tool(tool: dict) -> dict:
    fn = tool["function"]
    out = {"name": fn["name"]}
    if fn.get("description"):
        out["description"] = fn["description"]
    out["input_schema"] = fn.get("parameters") or {"type": "object", "properties": {}}
    return out


def _tool_choice(choice: Any, parallel: Any) -> dict | None:
    if isinstance(choice, dict):
        out = {"type": "tool", "name": choice["function"]["name"]}
    elif choice == "none":
        return {"type": "none"}
    elif choice == "required":
        out = {"type": "any"}
    elif choice == "auto" or parallel is False:
        out = {"type": "auto"}
    else:
        return None
    if parallel is False:
        out["disable_parallel_tool_use"] = True
    return out


# ---------------------------------------------------------------- messages


def translate_messages(messages: list[dict]) -> tuple[list[dict], list[dict]]:
    """(system blocks, alternating user/assistant messages with block contents)."""
    system: list[dict] = []
    turns: list[dict] = []
    for i, m in enumerate(messages):
        role = m["role"]
        if role in ("system", "developer"):
            system.extend(_text_blocks(m.get("content")))
        elif role == "tool":
            _append(turns, "user", [_tool_result(m)])
        elif role == "user":
            _append(turns, "user", _user_blocks(m.get("content"), i))
        elif role == "assistant":
            _append(turns, "assistant", _assistant_blocks(m, i))
    for turn in turns:
        if turn["role"] == "user":
            # tool_result blocks must open the user turn; sorted() keeps the order otherwise.
            turn["content"].sort(key=lambda b: b["type"] != "tool_result")
    return system, turns


def _append(turns: list[dict], role: str, blocks: list[dict]) -> None:
    if not blocks:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})


def _with_cache_control(block: dict, part: dict) -> dict:
    if part.get("cache_control"):
        block["cache_control"] = part["cache_control"]
    return block


def _text_blocks(content: Any) -> list[dict]:
    return [
        _with_cache_control({"type": "text", "text": p["text"]}, p)
        for p in parts_of(content)
        if p.get("type") == "text" and p.get("text")
    ]


def _user_blocks(content: Any, index: int) -> list[dict]:
    blocks = []
    for j, part in enumerate(parts_of(content)):
        kind = part.get("type")
        if kind == "text" and part.get("text"):
            blocks.append(_with_cache_control({"type": "text", "text": part["text"]}, part))
        elif kind == "image_url":
            blocks.append(_with_cache_control(_image(part["image_url"]["url"]), part))
        elif kind == "file":
            blocks.append(_with_cache_control(_document(part["file"], f"messages[{index}].content[{j}]"), part))
        elif kind == "input_audio":
            raise GatewayError(400, "Anthropic models take no audio input: the 'input_audio' part at "
                               f"'messages[{index}].content[{j}]' cannot be sent (use a Gemini or "
                               "OpenAI audio model)", param=f"messages[{index}].content[{j}]",
                               code="unsupported_content")
    return blocks


def _document(file: dict, where: str) -> dict:
    """A `file` part (a PDF as a data URL) as a `document` block with a base64 source."""
    if file.get("file_data") is None:
        raise GatewayError(400, "Anthropic takes files as data: send 'file_data' (a base64 data URL), "
                           "not a 'file_id' of OpenAI's Files API", param=f"{where}.file.file_id",
                           code="unsupported_content")
    media_type, data = parse_data_url(file["file_data"])
    if media_type not in ("application/pdf", "text/plain"):
        raise GatewayError(400, f"Anthropic takes PDF (or plain text) documents, not {media_type}",
                           param=f"{where}.file.file_data", code="unsupported_content")
    if media_type == "text/plain":
        source = {"type": "text", "media_type": media_type,
                  "data": base64.b64decode(data).decode("utf-8", "replace")}
    else:
        source = {"type": "base64", "media_type": media_type, "data": data}
    block = {"type": "document", "source": source}
    if file.get("filename"):
        block["title"] = file["filename"]
    return block


def _image(url: str) -> dict:
    if url.startswith("data:"):
        media_type, data = parse_data_url(url)
        media_type = _MEDIA_ALIASES.get(media_type, media_type)
        source = {"type": "base64", "media_type": media_type, "data": data}
    else:
        source = {"type": "url", "url": url}
    return {"type": "image", "source": source}


def _tool_result(m: dict) -> dict:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": m["tool_call_id"]}
    content = m.get("content")
    if isinstance(content, str):
        if content:
            block["content"] = content
    else:
        texts = _text_blocks(content)
        if texts:
            block["content"] = texts
    return block


def _assistant_blocks(m: dict, i: int) -> list[dict]:
    blocks = list(thinking_blocks(m.get("reasoning_details") or ()))
    blocks.extend(_text_blocks(m.get("content")))
    for j, call in enumerate(m.get("tool_calls") or ()):
        fn = call["function"]
        arguments = loads_arguments(fn.get("arguments"), f"messages[{i}].tool_calls[{j}].function.arguments")
        blocks.append({"type": "tool_use", "id": call["id"], "name": fn["name"], "input": arguments})
    return blocks


def thinking_blocks(details: Iterable[Any]) -> list[dict]:
    """`reasoning_details` entries this adapter produced -> thinking blocks to send back."""
    blocks = []
    for entry in details:
        if not isinstance(entry, dict) or entry.get("format", REASONING_FORMAT) != REASONING_FORMAT:
            continue
        kind = entry.get("type")
        if kind == "reasoning.text" and entry.get("signature"):
            blocks.append({"type": "thinking", "thinking": entry.get("text") or "",
                           "signature": entry["signature"]})
        elif kind == "reasoning.encrypted" and entry.get("data"):
            blocks.append({"type": "redacted_thinking", "data": entry["data"]})
    return blocks

