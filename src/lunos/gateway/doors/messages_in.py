"""The Messages front door, inward: check an Anthropic Messages body, and turn it into the
chat body the engine speaks for providers other than Anthropic (SPEC §9.1).

`validate_messages` checks structure only (types, required fields, known block and tool
types), naming the parameter by path; it runs for every provider, Anthropic included, so it
refuses no top-level field it does not know (agents send new ones all the time).

`to_chat` maps what has a chat meaning and drops what only steers Anthropic's own servers
(`ANTHROPIC_ONLY`). What a chat provider cannot honour (documents, server tools, Anthropic's
own client tools, ...) is a 400 `unsupported_parameter` naming it, or, with `drop`, left out
and listed. docs/providers.md has the table; the choices made here:

- Tool results become `tool` messages right after the assistant turn, in the order the
  calls were made; the turn's other blocks follow as one user message. Images inside a
  tool result cannot go in a chat `tool` message: they open that user message, after a line
  naming the call they came from. `is_error: true` prefixes the content with "Error: ".
- `server_tool_use` / `web_search_tool_result` blocks echoed in history (the search ran on
  Anthropic's side, earlier) become plain text in the assistant turn, so the model still
  sees what was searched and found.
- Thinking blocks become `reasoning_content` and `reasoning_details`. A signature that
  Anthropic made is kept as `{"type": "reasoning.text", "format": "anthropic-claude-v1"}`.
  A signature the gateway made (see `carry_signature`) carries another provider's
  reasoning entries and Gemini tool-call signatures, restored as they were.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import orjson

from ..errors import GatewayError
from ..providers.common import dumps
from ..validation import (
    IMAGE_TYPES,
    MAX_MESSAGES,
    MAX_TOOLS,
    _bad,
    _boolean,
    _integer,
    _kind,
    _number,
    check_model_field,
    check_schema,
)

# Top-level fields that only steer Anthropic's servers: dropped for other providers, never
# refused, whatever drop_params says. `cache_control` is also left off every block.
ANTHROPIC_ONLY = frozenset({
    "context_management", "diagnostics", "speed", "service_tier", "container", "mcp_servers",
    "inference_geo", "cache_control",
})
# Chat fields made from what agents send on every request (Claude Code: `metadata.user_id`,
# and `thinking` on some requests): where the model cannot take them they are dropped, not
# refused, so such an agent never stops on a 400 it cannot avoid.
BEST_EFFORT = frozenset({"user", "reasoning_effort"})
ROLES = frozenset({"user", "assistant", "system"})
BLOCK_TYPES = frozenset({
    "text", "image", "document", "search_result", "container_upload", "tool_use", "tool_result",
    "thinking", "redacted_thinking", "server_tool_use", "web_search_tool_result",
    "web_fetch_tool_result", "code_execution_tool_result", "bash_code_execution_tool_result",
    "text_editor_code_execution_tool_result", "tool_search_tool_result", "mcp_tool_use",
    "mcp_tool_result",
})
TOOL_RESULT_TYPES = frozenset({"text", "image", "document", "search_result", "tool_reference"})
# Anthropic's typed tools are versioned by date (`web_search_20250305`, `bash_20250124`);
# these are the families Lunos knows, each refused (or dropped) for other providers.
TYPED_TOOL = re.compile(
    r"^(web_search|web_fetch|code_execution|bash|text_editor|computer|memory|tool_search_tool"
    r"(_bm25|_regex)?)_\d{8}$")
UNDATED_TOOLS = frozenset({"mcp_toolset"})
TOOL_CHOICES = frozenset({"auto", "any", "tool", "none"})
EFFORTS = frozenset({"low", "medium", "high", "max"})
MIN_THINKING_BUDGET = 1024
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")

ANTHROPIC_FORMAT = "anthropic-claude-v1"
SIGNATURE_PREFIX = "lunos-v1."
# budget_tokens below each bound -> that effort; at or above the last -> "high".
EFFORT_BY_BUDGET = ((4096, "low"), (16384, "medium"))
ADAPTIVE_EFFORTS = {"low": "low", "medium": "medium", "high": "high", "max": "xhigh"}
DEFAULT_ADAPTIVE_EFFORT = "medium"


# ---------------------------------------------------------------- validation


def validate_messages(body: Any) -> None:
    if not isinstance(body, dict):
        raise GatewayError(400, "The request body must be a JSON object", code="invalid_json")
    check_model_field(body)
    if body.get("max_tokens") is None:
        raise _bad("'max_tokens' is required", "max_tokens", "missing_required_parameter")
    _integer(body, "max_tokens", 1)
    _messages(body.get("messages"))
    _system(body.get("system"))
    _number(body, "temperature", 0, 1)
    _number(body, "top_p", 0, 1)
    _integer(body, "top_k", 0)
    _boolean(body, "stream")
    _stop_sequences(body.get("stop_sequences"))
    _metadata(body.get("metadata"))
    names = _tools(body.get("tools"))
    _tool_choice(body.get("tool_choice"), names)
    _thinking(body.get("thinking"), body["max_tokens"])
    _output_config(body.get("output_config"))


def _object(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise _bad(f"'{where}' must be an object, got {_kind(value)}", where, "invalid_type")
    return value


def _required_string(block: dict, key: str, where: str) -> None:
    value = block.get(key)
    if value is None:
        raise _bad(f"'{where}.{key}' is required", f"{where}.{key}", "missing_required_parameter")
    if not isinstance(value, str):
        raise _bad(f"'{where}.{key}' must be a string, got {_kind(value)}", f"{where}.{key}", "invalid_type")


def _messages(messages: Any) -> None:
    if messages is None:
        raise _bad("'messages' is required", "messages", "missing_required_parameter")
    if not isinstance(messages, list):
        raise _bad(f"'messages' must be an array, got {_kind(messages)}", "messages", "invalid_type")
    if not messages:
        raise _bad("'messages' must contain at least one message", "messages")
    if len(messages) > MAX_MESSAGES:
        raise _bad(f"'messages' holds more than {MAX_MESSAGES} messages", "messages")
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        _object(message, where)
        role = message.get("role")
        if not isinstance(role, str) or role not in ROLES:
            shown = "missing" if role is None else repr(role)
            raise _bad(f"'{where}.role' is {shown}; it must be user, assistant or system", f"{where}.role")
        content = message.get("content")
        if content is None:
            raise _bad(f"'{where}.content' is required", f"{where}.content", "missing_required_parameter")
        if isinstance(content, str):
            continue
        if not isinstance(content, list):
            raise _bad(f"'{where}.content' must be a string or an array of content blocks",
                       f"{where}.content", "invalid_type")
        for j, block in enumerate(content):
            _block(block, f"{where}.content[{j}]", role)


def _block(block: Any, where: str, role: str) -> None:
    _object(block, where)
    kind = block.get("type")
    allowed = {"text"} if role == "system" else BLOCK_TYPES
    if not isinstance(kind, str) or kind not in allowed:
        raise _bad(f"'{where}.type' is {kind!r}, which is not a content block type "
                   f"{'of system messages' if role == 'system' else 'Lunos knows'}", f"{where}.type")
    owner = {"tool_use": "assistant", "tool_result": "user"}.get(kind)
    if owner and role != owner:
        raise _bad(f"'{where}': {kind} blocks belong in {owner} messages", f"{where}.type")
    cache = block.get("cache_control")
    if cache is not None:
        _object(cache, f"{where}.cache_control")
    if kind == "text":
        _required_string(block, "text", where)
    elif kind == "image":
        _image_source(block.get("source"), f"{where}.source")
    elif kind == "document":
        source = _object(block.get("source"), f"{where}.source")
        if source.get("type") not in ("base64", "text", "content", "url", "file"):
            raise _bad(f"'{where}.source.type' must be base64, text, content, url or file",
                       f"{where}.source.type")
    elif kind in ("tool_use", "server_tool_use", "mcp_tool_use"):
        _required_string(block, "id", where)
        _required_string(block, "name", where)
        _object(block.get("input"), f"{where}.input")
    elif kind == "tool_result":
        _tool_result(block, where)
    elif kind == "thinking":
        _required_string(block, "thinking", where)
        _required_string(block, "signature", where)
    elif kind == "redacted_thinking":
        _required_string(block, "data", where)
    elif kind == "search_result":
        _required_string(block, "source", where)
        _required_string(block, "title", where)
    elif kind == "container_upload":
        _required_string(block, "file_id", where)
    elif kind.endswith("_tool_result"):  # server tools' results, echoed in history
        _required_string(block, "tool_use_id", where)


def _image_source(source: Any, where: str) -> None:
    source = _object(source, where)
    kind = source.get("type")
    if kind == "base64":
        _required_string(source, "media_type", where)
        if source["media_type"].lower() not in IMAGE_TYPES:
            raise _bad(f"'{where}.media_type' is {source['media_type']!r}; supported: image/jpeg, "
                       "image/png, image/gif, image/webp", f"{where}.media_type")
        _required_string(source, "data", where)
        try:
            base64.b64decode(source["data"], validate=True)
        except (binascii.Error, ValueError):
            raise _bad(f"'{where}.data' is not valid base64", f"{where}.data") from None
    elif kind == "url":
        _required_string(source, "url", where)
        if not source["url"].lower().startswith(("http://", "https://")):
            raise _bad(f"'{where}.url' must be an http(s) URL", f"{where}.url")
    elif kind == "file":
        _required_string(source, "file_id", where)
    else:
        raise _bad(f"'{where}.type' must be base64, url or file", f"{where}.type")


def _tool_result(block: dict, where: str) -> None:
    _required_string(block, "tool_use_id", where)
    if block.get("is_error") is not None and not isinstance(block["is_error"], bool):
        raise _bad(f"'{where}.is_error' must be a boolean", f"{where}.is_error", "invalid_type")
    content = block.get("content")
    if content is None or isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _bad(f"'{where}.content' must be a string or an array of content blocks",
                   f"{where}.content", "invalid_type")
    for k, part in enumerate(content):
        at = f"{where}.content[{k}]"
        _object(part, at)
        if not isinstance(part.get("type"), str) or part["type"] not in TOOL_RESULT_TYPES:
            raise _bad(f"'{at}.type' is {part.get('type')!r}; a tool result holds "
                       f"{', '.join(sorted(TOOL_RESULT_TYPES))} blocks", f"{at}.type")
        if part["type"] != "tool_reference":
            _block(part, at, "user")


def _system(system: Any) -> None:
    if system is None or isinstance(system, str):
        return
    if not isinstance(system, list):
        raise _bad(f"'system' must be a string or an array of text blocks, got {_kind(system)}",
                   "system", "invalid_type")
    for j, block in enumerate(system):
        _block(block, f"system[{j}]", "system")


def _stop_sequences(stops: Any) -> None:
    if stops is None:
        return
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise _bad("'stop_sequences' must be an array of strings", "stop_sequences", "invalid_type")


def _metadata(metadata: Any) -> None:
    if metadata is None:
        return
    _object(metadata, "metadata")
    user = metadata.get("user_id")
    if user is not None and not isinstance(user, str):
        raise _bad("'metadata.user_id' must be a string", "metadata.user_id", "invalid_type")


def _tools(tools: Any) -> set[str]:
    if tools is None:
        return set()
    if not isinstance(tools, list):
        raise _bad(f"'tools' must be an array, got {_kind(tools)}", "tools", "invalid_type")
    if len(tools) > MAX_TOOLS:
        raise _bad(f"'tools' takes at most {MAX_TOOLS} tools", "tools")
    names: set[str] = set()
    spent = 0
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        _object(tool, where)
        kind = tool.get("type")
        custom = kind is None or kind == "custom"
        if not custom and (not isinstance(kind, str) or not (TYPED_TOOL.match(kind) or kind in UNDATED_TOOLS)):
            raise _bad(f"'{where}.type' is {kind!r}, which is not a tool type Lunos knows "
                       "(custom tools leave it out or say 'custom')", f"{where}.type")
        if kind in UNDATED_TOOLS:
            continue  # MCP toolsets are named by their server
        _required_string(tool, "name", where)
        if custom and not _TOOL_NAME.match(tool["name"]):
            raise _bad(f"'{where}.name' must be 1-128 letters, digits, '_' or '-'", f"{where}.name")
        if tool["name"] in names:
            raise _bad(f"'{where}.name' repeats the tool name {tool['name']!r}", f"{where}.name")
        names.add(tool["name"])
        if not custom:
            continue
        if tool.get("description") is not None and not isinstance(tool["description"], str):
            raise _bad(f"'{where}.description' must be a string", f"{where}.description", "invalid_type")
        if tool.get("strict") is not None and not isinstance(tool["strict"], bool):
            raise _bad(f"'{where}.strict' must be a boolean", f"{where}.strict", "invalid_type")
        schema = tool.get("input_schema")
        if schema is None:
            raise _bad(f"'{where}.input_schema' is required", f"{where}.input_schema",
                       "missing_required_parameter")
        _object(schema, f"{where}.input_schema")
        spent = check_schema(schema, f"{where}.input_schema", spent)
        if schema.get("type", "object") != "object":
            raise _bad(f"'{where}.input_schema' must describe an object (type: object)",
                       f"{where}.input_schema")
    return names


def _tool_choice(choice: Any, names: set[str]) -> None:
    if choice is None:
        return
    _object(choice, "tool_choice")
    kind = choice.get("type")
    if not isinstance(kind, str) or kind not in TOOL_CHOICES:
        raise _bad("'tool_choice.type' must be auto, any, tool or none", "tool_choice.type")
    if kind == "tool":
        _required_string(choice, "name", "tool_choice")
        if choice["name"] not in names:
            raise _bad(f"'tool_choice.name' names {choice['name']!r}, which is not among the tools",
                       "tool_choice.name")
    value = choice.get("disable_parallel_tool_use")
    if value is not None and not isinstance(value, bool):
        raise _bad("'tool_choice.disable_parallel_tool_use' must be a boolean",
                   "tool_choice.disable_parallel_tool_use", "invalid_type")


def _thinking(thinking: Any, max_tokens: int) -> None:
    if thinking is None:
        return
    _object(thinking, "thinking")
    kind = thinking.get("type")
    if kind not in ("enabled", "disabled", "adaptive"):
        raise _bad("'thinking.type' must be enabled, disabled or adaptive", "thinking.type")
    if kind != "enabled":
        return
    budget = thinking.get("budget_tokens")
    if budget is None:
        raise _bad("'thinking.budget_tokens' is required when thinking is enabled",
                   "thinking.budget_tokens", "missing_required_parameter")
    if isinstance(budget, bool) or not isinstance(budget, int):
        raise _bad(f"'thinking.budget_tokens' must be an integer, got {_kind(budget)}",
                   "thinking.budget_tokens", "invalid_type")
    if budget < MIN_THINKING_BUDGET:
        raise _bad(f"'thinking.budget_tokens' must be at least {MIN_THINKING_BUDGET}, got {budget}",
                   "thinking.budget_tokens")
    if budget >= max_tokens:
        raise _bad(f"'thinking.budget_tokens' ({budget}) must be less than 'max_tokens' ({max_tokens})",
                   "thinking.budget_tokens")


def _output_config(config: Any) -> None:
    if config is None:
        return
    _object(config, "output_config")
    effort = config.get("effort")
    if effort is not None and (not isinstance(effort, str) or effort not in EFFORTS):
        raise _bad("'output_config.effort' must be low, medium, high or max", "output_config.effort")
    fmt = config.get("format")
    if fmt is None:
        return
    _object(fmt, "output_config.format")
    if fmt.get("type") != "json_schema":
        raise _bad("'output_config.format.type' must be json_schema", "output_config.format.type")
    schema = _object(fmt.get("schema"), "output_config.format.schema")
    check_schema(schema, "output_config.format.schema")


# ---------------------------------------------------------------- signatures


def carry_signature(details: list[dict], call_signatures: dict[str, str]) -> str:
    """A thinking-block signature that carries another provider's reasoning entries and
    Gemini tool-call signatures through a Messages client: `lunos-v1.` + base64url(JSON)."""
    payload = orjson.dumps({"details": details, "calls": call_signatures})
    return SIGNATURE_PREFIX + base64.urlsafe_b64encode(payload).decode()


def read_signature(signature: str) -> tuple[list[dict], dict[str, str]] | None:
    """What `carry_signature` carried; None for a signature it did not make. A damaged one
    carries nothing (the thinking text still goes through)."""
    if not signature.startswith(SIGNATURE_PREFIX):
        return None
    try:
        payload = orjson.loads(base64.urlsafe_b64decode(signature[len(SIGNATURE_PREFIX):]))
    except (binascii.Error, ValueError):
        return [], {}
    details = payload.get("details") if isinstance(payload, dict) else None
    calls = payload.get("calls") if isinstance(payload, dict) else None
    details = [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []
    calls = {k: v for k, v in calls.items() if isinstance(v, str)} if isinstance(calls, dict) else {}
    return details, calls


def is_gateway_signature(signature: Any) -> bool:
    """Whether a thinking block was made by this door for another provider (Anthropic
    would refuse it: the Anthropic pass-through must leave such blocks out)."""
    return isinstance(signature, str) and signature.startswith(SIGNATURE_PREFIX)


# ---------------------------------------------------------------- translation


def to_chat(body: dict, *, drop: bool) -> tuple[dict, list[str]]:
    """A validated Messages body -> (chat body, what `drop` left out)."""
    t = _Translation(drop)
    out: dict[str, Any] = {"model": body["model"], "messages": t.messages(body)}
    out["max_tokens"] = body["max_tokens"]
    for name in ("temperature", "top_p", "top_k", "stream"):
        if body.get(name) is not None:
            out[name] = body[name]
    if body.get("stop_sequences"):
        out["stop"] = body["stop_sequences"]
    user = (body.get("metadata") or {}).get("user_id")
    if user:
        out["user"] = user
    t.tools(body, out)
    effort = reasoning_effort(body)
    if effort:
        out["reasoning_effort"] = effort
    fmt = (body.get("output_config") or {}).get("format")
    if fmt:
        out["response_format"] = {"type": "json_schema",
                                  "json_schema": {"name": "output", "schema": fmt["schema"]}}
    return out, t.dropped


def reasoning_effort(body: dict) -> str | None:
    """`thinking` and `output_config.effort` -> the chat `reasoning_effort` (None: not set)."""
    thinking = body.get("thinking") or {}
    effort = (body.get("output_config") or {}).get("effort")
    kind = thinking.get("type")
    if kind == "enabled":
        budget = thinking["budget_tokens"]
        return next((name for bound, name in EFFORT_BY_BUDGET if budget < bound), "high")
    if kind == "adaptive":
        return ADAPTIVE_EFFORTS.get(effort, DEFAULT_ADAPTIVE_EFFORT)
    if kind is None and effort:
        return ADAPTIVE_EFFORTS[effort]
    return None


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "\n\n".join(b["text"] for b in content if b.get("type") == "text" and b["text"])


def _image(source: dict) -> str | None:
    if source["type"] == "base64":
        return f"data:{source['media_type']};base64,{source['data']}"
    if source["type"] == "url":
        return source["url"]
    return None  # a Files API id: only Anthropic can read it


class _Translation:
    def __init__(self, drop: bool) -> None:
        self.drop = drop
        self.dropped: list[str] = []

    def unsupported(self, path: str, what: str) -> None:
        if not self.drop:
            raise GatewayError(400, f"'{path}' ({what}) is only supported by Anthropic models "
                               "(set drop_params to drop it instead)", param=path,
                               code="unsupported_parameter")
        self.dropped.append(path)

    # -- messages

    def messages(self, body: dict) -> list[dict]:
        out: list[dict] = []
        system = body.get("system")
        if system and _text_of(system):
            out.append({"role": "system", "content": _text_of(system)})
        owed: list[str] = []  # the tool_use ids of the last assistant turn
        messages = body["messages"]
        for i, message in enumerate(messages):
            role, content = message["role"], message["content"]
            if owed and role != "user":
                raise _unanswered(owed, i)
            if role == "system":
                if _text_of(content):
                    out.append({"role": "system", "content": _text_of(content)})
            elif role == "assistant":
                turn = self.assistant(content, i)
                if turn is not None:
                    out.append(turn)
                owed = [c["id"] for c in (turn or {}).get("tool_calls") or ()]
            else:
                out.extend(self.user(content, i, owed))
                owed = []
        if owed:
            raise _unanswered(owed, len(messages))
        return out

    def assistant(self, content: Any, i: int) -> dict | None:
        if isinstance(content, str):
            return {"role": "assistant", "content": content}
        texts: list[str] = []
        thoughts: list[str] = []
        details: list[dict] = []
        calls: list[dict] = []
        call_signatures: dict[str, str] = {}
        for j, block in enumerate(content):
            kind = block["type"]
            if kind == "text":
                texts.append(block["text"])
            elif kind == "tool_use":
                calls.append({"id": block["id"], "type": "function",
                              "function": {"name": block["name"], "arguments": dumps(block["input"])}})
            elif kind == "thinking":
                if block["thinking"]:
                    thoughts.append(block["thinking"])
                carried = read_signature(block["signature"])
                if carried is not None:
                    details.extend(carried[0])
                    call_signatures.update(carried[1])
                elif block["signature"]:
                    details.append({"type": "reasoning.text", "text": block["thinking"],
                                    "signature": block["signature"], "format": ANTHROPIC_FORMAT,
                                    "index": len(details)})
            elif kind == "redacted_thinking":
                details.append({"type": "reasoning.encrypted", "data": block["data"],
                                "format": ANTHROPIC_FORMAT, "index": len(details)})
            elif kind == "server_tool_use":
                texts.append(f"[{block['name']} ran on the server with input {dumps(block['input'])}]")
            elif kind == "web_search_tool_result":
                texts.append(_search_results(block.get("content")))
            else:
                self.unsupported(f"messages[{i}].content[{j}]", f"a {kind} block")
        for call in calls:
            if call["id"] in call_signatures:
                call["extra_content"] = {"google": {"thought_signature": call_signatures[call["id"]]}}
        text = "".join(texts)
        if not (text or calls or thoughts or details):
            return None
        turn: dict[str, Any] = {"role": "assistant", "content": text if text or not calls else None}
        if calls:
            turn["tool_calls"] = calls
        if thoughts:
            turn["reasoning_content"] = "".join(thoughts)
        if details:
            turn["reasoning_details"] = details
        return turn

    def user(self, content: Any, i: int, owed: list[str]) -> list[dict]:
        if isinstance(content, str):
            if owed:
                raise _unanswered(owed, i)
            return [{"role": "user", "content": content}]
        results: dict[str, dict] = {}
        images: list[dict] = []  # images returned by tools, each run after a label
        parts: list[dict] = []
        for j, block in enumerate(content):
            path = f"messages[{i}].content[{j}]"
            kind = block["type"]
            if kind == "text":
                if block["text"]:
                    parts.append({"type": "text", "text": block["text"]})
            elif kind == "image":
                url = _image(block["source"])
                if url is None:
                    self.unsupported(f"{path}.source", "an image from the Files API")
                else:
                    parts.append({"type": "image_url", "image_url": {"url": url}})
            elif kind == "document" and block["source"].get("type") == "base64" \
                    and not (block.get("citations") or {}).get("enabled"):  # citations: Anthropic's
                source = block["source"]  # chat's `file` part (a PDF as a data URL)
                file = {"file_data": f"data:{source.get('media_type')};base64,{source.get('data')}"}
                if block.get("title"):
                    file["filename"] = block["title"]
                parts.append({"type": "file", "file": file})
            elif kind == "tool_result":
                call_id = block["tool_use_id"]
                if call_id not in owed or call_id in results:
                    raise _bad(f"'{path}.tool_use_id' ({call_id!r}) answers no tool_use of the assistant "
                               "turn just before, or answers it twice", f"{path}.tool_use_id")
                results[call_id] = self.tool_result(block, path, images)
            else:
                self.unsupported(path, f"a {kind} block")
        missing = [c for c in owed if c not in results]
        if missing:
            raise _unanswered(missing, i)
        out = [results[c] for c in owed]
        if images or parts:
            out.append({"role": "user", "content": images + parts})
        return out

    def tool_result(self, block: dict, path: str, images: list[dict]) -> dict:
        content = block.get("content")
        texts: list[str] = []
        shown: list[dict] = []
        for k, part in enumerate([] if content is None or isinstance(content, str) else content):
            kind = part.get("type")
            if kind == "text":
                texts.append(part["text"])
            elif kind == "image" and _image(part["source"]) is not None:
                shown.append({"type": "image_url", "image_url": {"url": _image(part["source"])}})
            else:
                what = "an image from the Files API" if kind == "image" else f"a {kind} block"
                self.unsupported(f"{path}.content[{k}]", what)
        text = content if isinstance(content, str) else "\n".join(texts)
        if block.get("is_error"):
            text = f"Error: {text}"
        if shown:
            label = f"The images returned by tool call {block['tool_use_id']}:"
            images.extend([{"type": "text", "text": label}, *shown])
        return {"role": "tool", "tool_call_id": block["tool_use_id"], "content": text}

    # -- tools

    def tools(self, body: dict, out: dict) -> None:
        functions = []
        for i, tool in enumerate(body.get("tools") or ()):
            kind = tool.get("type")
            if kind not in (None, "custom"):
                self.unsupported(f"tools[{i}]", f"Anthropic's tool type {kind!r}")
                continue
            function: dict[str, Any] = {"name": tool["name"]}
            if tool.get("description"):
                function["description"] = tool["description"]
            function["parameters"] = tool["input_schema"]
            if tool.get("strict") is not None:
                function["strict"] = tool["strict"]
            functions.append({"type": "function", "function": function})
        if not functions:
            return
        out["tools"] = functions
        choice = body.get("tool_choice")
        if not choice:
            return
        kind = choice["type"]
        if kind == "tool":
            if choice["name"] not in {f["function"]["name"] for f in functions}:
                self.unsupported("tool_choice", f"a choice of the tool {choice['name']!r}")
                return
            out["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
        else:
            out["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}[kind]
        if choice.get("disable_parallel_tool_use"):
            out["parallel_tool_calls"] = False


def _unanswered(ids: list[str], i: int) -> GatewayError:
    return _bad(f"tool_use ids were found without tool_result blocks in the user message right "
                f"after them: {', '.join(ids)}", f"messages[{i}]")


def _search_results(content: Any) -> str:
    """A web search's results, as the model saw them (titles and addresses)."""
    if not isinstance(content, list):
        return "[web search failed]"
    found = [f"{r.get('title') or ''} <{r.get('url')}>" for r in content
             if isinstance(r, dict) and r.get("url")]
    return "[web search results: " + "; ".join(found) + "]"
