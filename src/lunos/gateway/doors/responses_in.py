"""The Responses front door, inward: check an OpenAI Responses body, list its input as items,
and turn a whole conversation of items into the chat body the engine speaks for providers
other than OpenAI (SPEC §9.2).

`validate_responses` checks structure only, naming the parameter by path
(`input[2].content[0].image_url`). It refuses no top-level field it does not know: clients
such as Codex send new ones all the time, and those are ignored.

`to_chat` maps what has a chat meaning; fields that only steer OpenAI's own servers
(`RESPONSES_ONLY`) are dropped silently. What a chat provider cannot honour (files, hosted
tools other than web search, items of hosted tools, stored prompts) is a 400
`unsupported_parameter` naming it, or, with `drop`, left out and listed. docs/providers.md
has the table; the choices made here:

- `instructions` is the first system message; `developer` messages are system messages.
- A run of assistant-side items (reasoning, assistant messages, function calls) between two
  other items is one assistant turn; `function_call_output` items are `tool` messages. Images
  in a tool output cannot go in a chat `tool` message: they follow in a user message after a
  line naming the call.
- Reasoning: a `reasoning` item this door made (responses_out) has `encrypted_content`
  `lunos-v1.…` (`messages_in.carry_signature`): its summary becomes `reasoning_content` and
  what it carries (another provider's `reasoning_details`, Gemini tool-call signatures)
  comes back as it was. A reasoning item OpenAI made is opaque to other providers: left out.
- Namespace tools are flattened: `{namespace}__{name}` as a chat function (`tool_names`
  maps the names back for the answer).
- `web_search` / `web_search_preview` turn on Lunos's server-side search (SPEC §4);
  `user_location` has no counterpart and is ignored. A `web_search_call` item echoed from an
  earlier OpenAI turn is a record of a search already done: left out (its answer stays).
"""

from __future__ import annotations

import re
from typing import Any

from ..asgi import new_request_id
from ..errors import GatewayError
from ..validation import (
    MAX_TOOLS,
    REASONING_EFFORTS,
    _bad,
    _boolean,
    _image,
    _integer,
    _kind,
    _model_id,
    _number,
    check_schema,
)
from .messages_in import read_signature

# Top-level fields that only steer OpenAI's servers (or are handled by the route, like
# `previous_response_id` and `store`): never sent to a chat provider, never refused.
RESPONSES_ONLY = frozenset({
    "store", "include", "truncation", "prompt_cache_key", "prompt_cache_retention",
    "service_tier", "client_metadata", "background", "metadata", "previous_response_id",
    "stream_options", "top_logprobs", "max_tool_calls", "context_management",
})
# Chat fields made from what agents send on every request (Codex: `reasoning`,
# `parallel_tool_calls`; the Agents SDK: `user`-like ids): where the model cannot take them
# they are dropped, not refused, so an agent never stops on a 400 it cannot avoid.
BEST_EFFORT = frozenset({"reasoning_effort", "user", "parallel_tool_calls"})

ROLES = frozenset({"user", "assistant", "system", "developer"})
INPUT_PARTS = frozenset({"input_text", "input_image", "input_file"})
PARTS_BY_ROLE = {
    "user": INPUT_PARTS,
    "system": frozenset({"input_text"}),
    "developer": frozenset({"input_text"}),
    "assistant": frozenset({"output_text", "refusal", "input_text"}),
}
# Items of OpenAI's hosted tools: known, but only OpenAI can run or read them.
HOSTED_ITEMS = frozenset({
    "file_search_call", "computer_call", "computer_call_output", "image_generation_call",
    "code_interpreter_call", "local_shell_call", "local_shell_call_output", "shell_call",
    "shell_call_output", "apply_patch_call", "apply_patch_call_output", "mcp_list_tools",
    "mcp_approval_request", "mcp_approval_response", "mcp_call", "custom_tool_call",
    "custom_tool_call_output", "compaction", "tool_search_call", "tool_search_output",
    "additional_tools", "program", "program_output",
})
ITEM_TYPES = frozenset({
    "message", "function_call", "function_call_output", "reasoning", "item_reference",
    "web_search_call", *HOSTED_ITEMS,
})
WEB_SEARCH_TOOLS = frozenset({
    "web_search", "web_search_preview", "web_search_2025_08_26", "web_search_preview_2025_03_11",
})
HOSTED_TOOLS = frozenset({
    "file_search", "code_interpreter", "computer_use_preview", "computer", "image_generation",
    "mcp", "local_shell", "shell", "custom", "apply_patch", "tool_search",
    "programmatic_tool_calling",
})
TOOL_CHOICE_MODES = frozenset({"auto", "none", "required"})
VERBOSITIES = frozenset({"low", "medium", "high"})
SUMMARIES = frozenset({"auto", "concise", "detailed"})
IMAGE_DETAILS = frozenset({"auto", "low", "high", "original"})
MIN_OUTPUT_TOKENS = 16
MAX_METADATA = 16
_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
NAMESPACE_SEPARATOR = "__"
ID_PREFIXES = {"message": "msg_", "function_call": "fc_", "function_call_output": "fco_",
               "reasoning": "rs_"}


def new_id(prefix: str) -> str:
    """An item id (`msg_…`): unique, as request ids are, without a system call each."""
    return new_request_id(prefix)


# ---------------------------------------------------------------- validation


def validate_responses(body: Any) -> None:
    if not isinstance(body, dict):
        raise GatewayError(400, "The request body must be a JSON object", code="invalid_json")
    model = body.get("model")
    if model is None:
        raise _bad("Missing required parameter: 'model'.", "model", "missing_required_parameter")
    if not isinstance(model, str) or not model.strip():
        raise _bad("'model' must be a non-empty string", "model", "invalid_type")
    _model_id(model, "model")
    _string(body.get("previous_response_id"), "previous_response_id")
    _input(body.get("input"), required=body.get("previous_response_id") is None)
    _string(body.get("instructions"), "instructions")
    names = _tools(body.get("tools"))
    _tool_choice(body.get("tool_choice"), names)
    _text(body.get("text"))
    _reasoning(body.get("reasoning"))
    _integer(body, "max_output_tokens", MIN_OUTPUT_TOKENS)
    _integer(body, "max_tool_calls", 1)
    _integer(body, "top_logprobs", 0, 20)
    _number(body, "temperature", 0, 2)
    _number(body, "top_p", 0, 1)
    for name in ("store", "stream", "parallel_tool_calls", "background"):
        _boolean(body, name)
    for name in ("user", "safety_identifier", "prompt_cache_key", "service_tier"):
        _string(body.get(name), name)
    _metadata(body.get("metadata"))
    include = body.get("include")
    if include is not None and (not isinstance(include, list) or not all(isinstance(i, str) for i in include)):
        raise _bad("'include' must be an array of strings", "include", "invalid_type")
    truncation = body.get("truncation")
    if truncation is not None and truncation not in ("auto", "disabled"):
        raise _bad("'truncation' must be auto or disabled", "truncation")
    if body.get("background"):
        raise _bad("'background' responses are not supported by Lunos", "background",
                   "unsupported_parameter")


def _object(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise _bad(f"'{where}' must be an object, got {_kind(value)}", where, "invalid_type")
    return value


def _string(value: Any, where: str) -> None:
    if value is not None and not isinstance(value, str):
        raise _bad(f"'{where}' must be a string, got {_kind(value)}", where, "invalid_type")


def _required_string(block: dict, key: str, where: str) -> None:
    value = block.get(key)
    if value is None:
        raise _bad(f"Missing required parameter: '{where}.{key}'.", f"{where}.{key}",
                   "missing_required_parameter")
    if not isinstance(value, str):
        raise _bad(f"'{where}.{key}' must be a string, got {_kind(value)}", f"{where}.{key}", "invalid_type")


def _one_of(value: Any, allowed: frozenset[str], where: str) -> None:
    if value is not None and (not isinstance(value, str) or value not in allowed):
        raise _bad(f"'{where}' is {value!r}; it must be one of {', '.join(sorted(allowed))}", where)


def _input(value: Any, *, required: bool) -> None:
    if value is None:
        if required:
            raise _bad("Missing required parameter: 'input'.", "input", "missing_required_parameter")
        return
    if isinstance(value, str):
        return
    if not isinstance(value, list):
        raise _bad(f"'input' must be a string or an array of items, got {_kind(value)}", "input", "invalid_type")
    for i, item in enumerate(value):
        _item(item, f"input[{i}]")


def _item(item: Any, where: str) -> None:
    _object(item, where)
    kind = item.get("type")
    if kind is None and "role" in item:
        kind = "message"
    if not isinstance(kind, str) or kind not in ITEM_TYPES:
        raise _bad(f"'{where}.type' is {kind!r}, which is not an input item type Lunos knows", f"{where}.type")
    if kind == "message":
        _message(item, where)
    elif kind == "function_call":
        for key in ("call_id", "name", "arguments"):
            _required_string(item, key, where)
        _string(item.get("namespace"), f"{where}.namespace")
    elif kind == "function_call_output":
        _required_string(item, "call_id", where)
        _output(item.get("output"), f"{where}.output")
    elif kind == "reasoning":
        summary = item.get("summary")
        if not isinstance(summary, list):
            raise _bad(f"'{where}.summary' must be an array", f"{where}.summary", "invalid_type")
        for j, part in enumerate(summary):
            _object(part, f"{where}.summary[{j}]")
            _required_string(part, "text", f"{where}.summary[{j}]")
        for j, part in enumerate(item.get("content") or ()):
            _object(part, f"{where}.content[{j}]")
            _required_string(part, "text", f"{where}.content[{j}]")
        _string(item.get("encrypted_content"), f"{where}.encrypted_content")
    elif kind == "item_reference":
        _required_string(item, "id", where)


def _message(item: dict, where: str) -> None:
    role = item.get("role")
    if not isinstance(role, str) or role not in ROLES:
        shown = "missing" if role is None else repr(role)
        raise _bad(f"'{where}.role' is {shown}; it must be user, assistant, system or developer", f"{where}.role")
    content = item.get("content")
    if content is None:
        raise _bad(f"Missing required parameter: '{where}.content'.", f"{where}.content",
                   "missing_required_parameter")
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _bad(f"'{where}.content' must be a string or an array of content parts",
                   f"{where}.content", "invalid_type")
    for j, part in enumerate(content):
        _part(part, f"{where}.content[{j}]", PARTS_BY_ROLE[role])


def _part(part: Any, where: str, allowed: frozenset[str]) -> None:
    _object(part, where)
    kind = part.get("type")
    if not isinstance(kind, str) or kind not in allowed:
        raise _bad(f"'{where}.type' is {kind!r}; here it must be one of {', '.join(sorted(allowed))}",
                   f"{where}.type")
    if kind in ("input_text", "output_text"):
        _required_string(part, "text", where)
    elif kind == "refusal":
        _required_string(part, "refusal", where)
    elif kind == "input_image":
        _one_of(part.get("detail"), IMAGE_DETAILS, f"{where}.detail")
        if part.get("image_url") is not None:
            _string(part["image_url"], f"{where}.image_url")
            try:
                _image({"url": part["image_url"]}, f"{where}.image_url")
            except GatewayError as exc:  # chat's check names `image_url.url`; here it is flat
                exc.param = f"{where}.image_url"
                exc.message = exc.message.replace(f"{where}.image_url.url", f"{where}.image_url")
                exc.args = (exc.message,)
                raise
        elif part.get("file_id") is not None:
            _string(part["file_id"], f"{where}.file_id")
        else:
            raise _bad(f"'{where}' needs an 'image_url' or a 'file_id'", f"{where}.image_url",
                       "missing_required_parameter")
    elif kind == "input_file":
        for key in ("file_data", "file_url", "file_id", "filename"):
            _string(part.get(key), f"{where}.{key}")
        if all(part.get(key) is None for key in ("file_data", "file_url", "file_id")):
            raise _bad(f"'{where}' needs 'file_data', 'file_url' or 'file_id'", f"{where}.file_data",
                       "missing_required_parameter")


def _output(output: Any, where: str) -> None:
    if output is None:
        raise _bad(f"Missing required parameter: '{where}'.", where, "missing_required_parameter")
    if isinstance(output, str):
        return
    if not isinstance(output, list):
        raise _bad(f"'{where}' must be a string or an array of content parts", where, "invalid_type")
    for j, part in enumerate(output):
        _part(part, f"{where}[{j}]", INPUT_PARTS)


def _function(tool: dict, where: str, spent: int) -> int:
    name = tool.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _bad(f"'{where}.name' must be 1-64 letters, digits, '_' or '-'", f"{where}.name")
    _string(tool.get("description"), f"{where}.description")
    if tool.get("strict") is not None and not isinstance(tool["strict"], bool):
        raise _bad(f"'{where}.strict' must be a boolean", f"{where}.strict", "invalid_type")
    params = tool.get("parameters")
    if params is None:
        return spent
    _object(params, f"{where}.parameters")
    spent = check_schema(params, f"{where}.parameters", spent)
    if params.get("type", "object") != "object":
        raise _bad(f"'{where}.parameters' must describe an object (type: object)", f"{where}.parameters")
    return spent


def _tools(tools: Any) -> set[str]:
    """The names of the function tools (namespaced ones as `namespace.name` too)."""
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
        if kind == "function":
            spent = _function(tool, where, spent)
            if tool["name"] in names:
                raise _bad(f"'{where}.name' repeats the tool name {tool['name']!r}", f"{where}.name")
            names.add(tool["name"])
        elif kind in WEB_SEARCH_TOOLS:
            _one_of(tool.get("search_context_size"), VERBOSITIES, f"{where}.search_context_size")
            filters = tool.get("filters")
            if filters is not None:
                domains = _object(filters, f"{where}.filters").get("allowed_domains")
                if domains is not None and (not isinstance(domains, list)
                                            or not all(isinstance(d, str) and d for d in domains)):
                    raise _bad(f"'{where}.filters.allowed_domains' must be an array of domain names",
                               f"{where}.filters.allowed_domains", "invalid_type")
            if tool.get("user_location") is not None:
                _object(tool["user_location"], f"{where}.user_location")
        elif kind == "namespace":
            _required_string(tool, "name", where)
            inner = tool.get("tools")
            if not isinstance(inner, list):
                raise _bad(f"'{where}.tools' must be an array", f"{where}.tools", "invalid_type")
            for j, fn in enumerate(inner):
                _object(fn, f"{where}.tools[{j}]")
                if fn.get("type") == "function":
                    spent = _function(fn, f"{where}.tools[{j}]", spent)
                    names.add(f"{tool['name']}.{fn['name']}")
        elif kind not in HOSTED_TOOLS:
            raise _bad(f"'{where}.type' is {kind!r}, which is not a tool type Lunos knows", f"{where}.type")
    return names


def _tool_choice(choice: Any, names: set[str]) -> None:
    if choice is None:
        return
    if isinstance(choice, str):
        _one_of(choice, TOOL_CHOICE_MODES, "tool_choice")
        return
    _object(choice, "tool_choice")
    kind = choice.get("type")
    if kind == "function":
        _required_string(choice, "name", "tool_choice")
        if choice["name"] not in names:
            raise _bad(f"'tool_choice.name' names {choice['name']!r}, which is not among the function tools",
                       "tool_choice.name")
    elif kind == "allowed_tools":
        _one_of(choice.get("mode"), frozenset({"auto", "required"}), "tool_choice.mode")
        if not isinstance(choice.get("tools"), list):
            raise _bad("'tool_choice.tools' must be an array", "tool_choice.tools", "invalid_type")
        for j, tool in enumerate(choice["tools"]):
            _object(tool, f"tool_choice.tools[{j}]")
    elif not isinstance(kind, str) or kind not in WEB_SEARCH_TOOLS | HOSTED_TOOLS:
        raise _bad("'tool_choice' must be none, auto, required, a function, allowed_tools or a hosted "
                   "tool type", "tool_choice.type")


def _text(text: Any) -> None:
    if text is None:
        return
    _object(text, "text")
    _one_of(text.get("verbosity"), VERBOSITIES, "text.verbosity")
    fmt = text.get("format")
    if fmt is None:
        return
    _object(fmt, "text.format")
    kind = fmt.get("type")
    if kind in ("text", "json_object"):
        return
    if kind != "json_schema":
        raise _bad("'text.format.type' must be text, json_object or json_schema", "text.format.type")
    name = fmt.get("name")
    if name is None:
        raise _bad("Missing required parameter: 'text.format.name'.", "text.format.name",
                   "missing_required_parameter")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _bad("'text.format.name' must be 1-64 letters, digits, '_' or '-'", "text.format.name")
    if fmt.get("strict") is not None and not isinstance(fmt["strict"], bool):
        raise _bad("'text.format.strict' must be a boolean", "text.format.strict", "invalid_type")
    _string(fmt.get("description"), "text.format.description")
    if fmt.get("schema") is None:
        raise _bad("Missing required parameter: 'text.format.schema'.", "text.format.schema",
                   "missing_required_parameter")
    check_schema(_object(fmt["schema"], "text.format.schema"), "text.format.schema")


def _reasoning(reasoning: Any) -> None:
    if reasoning is None:
        return
    _object(reasoning, "reasoning")
    _one_of(reasoning.get("effort"), REASONING_EFFORTS, "reasoning.effort")
    _one_of(reasoning.get("summary"), SUMMARIES, "reasoning.summary")
    _one_of(reasoning.get("generate_summary"), SUMMARIES, "reasoning.generate_summary")


def _metadata(metadata: Any) -> None:
    if metadata is None:
        return
    _object(metadata, "metadata")
    if len(metadata) > MAX_METADATA:
        raise _bad(f"'metadata' takes at most {MAX_METADATA} pairs", "metadata")
    for key, value in metadata.items():
        if len(key) > 64:
            raise _bad(f"'metadata' keys are at most 64 characters; {key[:20]!r}... is longer", "metadata")
        if not isinstance(value, str) or len(value) > 512:
            raise _bad(f"'metadata.{key}' must be a string of at most 512 characters", f"metadata.{key}",
                       "invalid_type" if not isinstance(value, str) else "invalid_value")


# ---------------------------------------------------------------- input items


def input_items(body: dict) -> list[dict]:
    """The request's `input` as items, each with an `id` and a `type`; a message's string
    content as one text part (what the store keeps and `input_items` lists)."""
    raw = body.get("input")
    if raw is None:
        return []
    if isinstance(raw, str):
        raw = [{"role": "user", "content": raw}]
    items = []
    for item in raw:
        item = dict(item)
        kind = item.setdefault("type", "message")
        if kind == "message" and isinstance(item["content"], str):
            part = "output_text" if item["role"] == "assistant" else "input_text"
            text = {"type": part, "text": item["content"]}
            if part == "output_text":
                text["annotations"] = []
            item["content"] = [text]
        if kind != "item_reference" and not item.get("id"):
            item["id"] = new_id(ID_PREFIXES.get(kind, "item_"))
        items.append(item)
    return items


# ---------------------------------------------------------------- translation


def tool_names(body: dict) -> dict[str, tuple[str | None, str]]:
    """Chat function name -> (namespace, name) for the request's function tools."""
    names: dict[str, tuple[str | None, str]] = {}
    for tool in body.get("tools") or ():
        if tool.get("type") == "function":
            names[tool["name"]] = (None, tool["name"])
        elif tool.get("type") == "namespace":
            for fn in tool["tools"]:
                if fn.get("type") == "function":
                    names[tool["name"] + NAMESPACE_SEPARATOR + fn["name"]] = (tool["name"], fn["name"])
    return names


def is_gateway_reasoning(item: dict) -> bool:
    """Whether a reasoning item was made by this door for another provider (OpenAI would
    refuse its `encrypted_content`: the OpenAI pass-through must leave such items out)."""
    content = item.get("encrypted_content")
    return item.get("type") == "reasoning" and isinstance(content, str) and read_signature(content) is not None


def to_chat(body: dict, items: list[dict], *, drop: bool) -> tuple[dict, list[str]]:
    """A validated Responses body and the whole conversation as items (earlier turns' input
    and output, then this request's `input_items`) -> (chat body, what `drop` left out).
    `item_reference` items must already be resolved by the caller."""
    t = _Translation(drop)
    messages: list[dict] = []
    if body.get("instructions"):
        messages.append({"role": "system", "content": body["instructions"]})
    messages.extend(t.messages(items))
    out: dict[str, Any] = {"model": body["model"], "messages": messages}
    if body.get("stream") is not None:
        out["stream"] = body["stream"]
    if body.get("max_output_tokens") is not None:
        out["max_tokens"] = body["max_output_tokens"]
    for name in ("temperature", "top_p", "parallel_tool_calls"):
        if body.get(name) is not None:
            out[name] = body[name]
    user = body.get("user") or body.get("safety_identifier")
    if user:
        out["user"] = user
    effort = (body.get("reasoning") or {}).get("effort")
    if effort:
        out["reasoning_effort"] = effort
    fmt = (body.get("text") or {}).get("format") or {}
    if fmt.get("type") == "json_object":
        out["response_format"] = {"type": "json_object"}
    elif fmt.get("type") == "json_schema":
        spec = {"name": fmt["name"], "schema": fmt["schema"]}
        if fmt.get("description"):
            spec["description"] = fmt["description"]
        if fmt.get("strict") is not None:
            spec["strict"] = fmt["strict"]
        out["response_format"] = {"type": "json_schema", "json_schema": spec}
    t.tools(body, out)
    for name in ("prompt", "conversation"):
        if body.get(name) is not None:
            t.unsupported(name, "a stored OpenAI object")
    return out, t.dropped


def _image_part(part: dict) -> dict | None:
    if part.get("image_url") is None:
        return None
    image: dict[str, Any] = {"url": part["image_url"]}
    if part.get("detail") in ("auto", "low", "high"):
        image["detail"] = part["detail"]
    return {"type": "image_url", "image_url": image}


class _Turn:
    """One assistant turn being gathered from a run of assistant-side items."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.thoughts: list[str] = []
        self.details: list[dict] = []
        self.calls: list[dict] = []
        self.call_signatures: dict[str, str] = {}

    def message(self) -> dict | None:
        text = "".join(self.texts)
        if not (text or self.calls or self.thoughts or self.details):
            return None
        for call in self.calls:
            if call["id"] in self.call_signatures:
                call["extra_content"] = {"google": {"thought_signature": self.call_signatures[call["id"]]}}
        turn: dict[str, Any] = {"role": "assistant", "content": text if text or not self.calls else None}
        if self.calls:
            turn["tool_calls"] = self.calls
        if self.thoughts:
            turn["reasoning_content"] = "".join(self.thoughts)
        if self.details:
            turn["reasoning_details"] = self.details
        return turn


class _Translation:
    def __init__(self, drop: bool) -> None:
        self.drop = drop
        self.dropped: list[str] = []

    def unsupported(self, path: str, what: str) -> None:
        if not self.drop:
            raise GatewayError(400, f"'{path}' ({what}) is only supported by OpenAI models "
                               "(set drop_params to drop it instead)", param=path,
                               code="unsupported_parameter")
        self.dropped.append(path)

    # -- items

    def messages(self, items: list[dict]) -> list[dict]:
        out: list[dict] = []
        turn: _Turn | None = None
        issued: set[str] = set()
        owed: list[str] = []  # calls of the last assistant turn not answered yet
        images: list[dict] = []  # images returned by tools, each run after a label
        for i, item in enumerate(items):
            where = f"input[{i}]"
            kind = item.get("type", "message")
            assistant_side = kind in ("reasoning", "function_call") or (
                kind == "message" and item.get("role") == "assistant")
            if assistant_side:
                if owed and turn is None:
                    raise _unanswered(owed)
                turn = turn or _Turn()
                self.assistant_item(item, turn, where)
                continue
            if turn is not None:
                message = turn.message()
                if message is not None:
                    out.append(message)
                    owed = [c["id"] for c in message.get("tool_calls") or ()]
                    issued.update(owed)
                turn = None
            if kind == "function_call_output":
                call_id = item["call_id"]
                if call_id not in issued:
                    raise _bad(f"No tool call found for function call output with call_id {call_id}.",
                               "input")
                if call_id in owed:
                    owed.remove(call_id)
                out.append(self.tool_output(item, where, images))
                continue
            if images:  # images the tools returned, after every tool message
                out.append({"role": "user", "content": images})
                images = []
            if owed:
                raise _unanswered(owed)
            if kind == "message":
                out.append(self.message(item, where))
            elif kind == "item_reference":
                raise _bad(f"Item with id '{item['id']}' not found.", "input")
            elif kind != "web_search_call":
                self.unsupported(where, f"an item of OpenAI's hosted tools ({kind})")
        if turn is not None and (message := turn.message()) is not None:
            out.append(message)
            owed = [c["id"] for c in message.get("tool_calls") or ()]
        if images:
            out.append({"role": "user", "content": images})
        if owed:
            raise _unanswered(owed)
        return out

    def message(self, item: dict, where: str) -> dict:
        role = "system" if item["role"] in ("system", "developer") else "user"
        content = item["content"]
        if isinstance(content, str):
            return {"role": role, "content": content}
        parts: list[dict] = []
        for j, part in enumerate(content):
            converted = self.part(part, f"{where}.content[{j}]")
            if converted is not None:
                parts.append(converted)
        if role == "system" or all(p["type"] == "text" for p in parts):
            return {"role": role, "content": "".join(p["text"] for p in parts)}
        return {"role": role, "content": parts}

    def part(self, part: dict, where: str) -> dict | None:
        kind = part["type"]
        if kind == "input_text":
            return {"type": "text", "text": part["text"]}
        if kind == "input_image":
            image = _image_part(part)
            if image is None:
                self.unsupported(f"{where}.file_id", "an image from OpenAI's Files API")
            return image
        if kind == "input_file" and isinstance(part.get("file_data"), str) \
                and part["file_data"].startswith("data:"):
            file = {"file_data": part["file_data"]}  # chat's `file` part (a PDF as a data URL)
            if part.get("filename"):
                file["filename"] = part["filename"]
            return {"type": "file", "file": file}
        self.unsupported(where, "a file by id or URL")
        return None

    def assistant_item(self, item: dict, turn: _Turn, where: str) -> None:
        kind = item.get("type", "message")
        if kind == "function_call":
            name = item["name"]
            if item.get("namespace"):
                name = item["namespace"] + NAMESPACE_SEPARATOR + name
            turn.calls.append({"id": item["call_id"], "type": "function",
                               "function": {"name": name, "arguments": item["arguments"]}})
        elif kind == "reasoning":
            content = item.get("encrypted_content")
            carried = read_signature(content) if isinstance(content, str) else None
            if carried is None:
                return  # OpenAI's own reasoning: opaque to other providers
            text = "".join(s["text"] for s in item["summary"])
            text += "".join(c["text"] for c in item.get("content") or ())
            if text:
                turn.thoughts.append(text)
            turn.details.extend(carried[0])
            turn.call_signatures.update(carried[1])
        else:
            content = item["content"]
            if isinstance(content, str):
                turn.texts.append(content)
                return
            for part in content:
                turn.texts.append(part.get("text") if part["type"] != "refusal" else part["refusal"])

    def tool_output(self, item: dict, where: str, images: list[dict]) -> dict:
        output = item["output"]
        if isinstance(output, str):
            return {"role": "tool", "tool_call_id": item["call_id"], "content": output}
        texts: list[str] = []
        shown: list[dict] = []
        for j, part in enumerate(output):
            converted = self.part(part, f"{where}.output[{j}]")
            if converted is None:
                continue
            if converted["type"] == "text":
                texts.append(converted["text"])
            else:
                shown.append(converted)
        if shown:
            label = {"type": "text", "text": f"The images returned by tool call {item['call_id']}:"}
            images.extend([label, *shown])
        return {"role": "tool", "tool_call_id": item["call_id"], "content": "\n".join(texts)}

    # -- tools

    def tools(self, body: dict, out: dict) -> None:
        functions: list[dict] = []
        search: dict | None = None
        for i, tool in enumerate(body.get("tools") or ()):
            kind = tool["type"]
            if kind == "function":
                functions.append(_chat_function(tool, tool["name"]))
            elif kind == "namespace":
                for j, fn in enumerate(tool["tools"]):
                    name = tool["name"] + NAMESPACE_SEPARATOR + fn.get("name", "")
                    if fn.get("type") != "function":
                        self.unsupported(f"tools[{i}].tools[{j}]", f"a {fn.get('type')} tool")
                    elif not _NAME.match(name):
                        self.unsupported(f"tools[{i}].tools[{j}]", f"the namespaced name {name!r}, "
                                         "longer than chat's 64 characters")
                    else:
                        functions.append(_chat_function(fn, name))
            elif kind in WEB_SEARCH_TOOLS:
                search = _search_parameters(tool)
            else:
                self.unsupported(f"tools[{i}]", f"OpenAI's hosted tool {kind!r}")
        allowed = _allowed(body.get("tool_choice"))
        if allowed is not None:
            functions = [f for f in functions if f["function"]["name"] in allowed]
        chat_tools = list(functions)
        if search is not None:
            chat_tools.append({"type": "web_search", "parameters": search})
        if chat_tools:
            out["tools"] = chat_tools
        self.tool_choice(body.get("tool_choice"), functions, search is not None, out)

    def tool_choice(self, choice: Any, functions: list[dict], search: bool, out: dict) -> None:
        if choice is None or not (functions or search):
            return
        if isinstance(choice, str):
            if choice != "required" or functions:
                out["tool_choice"] = choice
            return  # search only: the search loop decides whether to search
        kind = choice["type"]
        if kind == "function":
            out["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
        elif kind == "allowed_tools":
            if choice["mode"] != "required" or functions:
                out["tool_choice"] = choice["mode"]
        elif kind not in WEB_SEARCH_TOOLS:  # a choice of web search leaves the choice to the model
            self.unsupported("tool_choice", f"a choice of OpenAI's hosted tool {kind!r}")


def _chat_function(tool: dict, name: str) -> dict:
    function: dict[str, Any] = {"name": name}
    if tool.get("description"):
        function["description"] = tool["description"]
    function["parameters"] = tool.get("parameters") or {"type": "object", "properties": {}}
    if tool.get("strict") is not None:
        function["strict"] = tool["strict"]
    return {"type": "function", "function": function}


def _search_parameters(tool: dict) -> dict:
    params: dict[str, Any] = {}
    if tool.get("search_context_size"):
        params["search_context_size"] = tool["search_context_size"]
    domains = (tool.get("filters") or {}).get("allowed_domains")
    if domains:
        params["allowed_domains"] = domains
    return params


def _allowed(choice: Any) -> set[str] | None:
    """The chat function names an `allowed_tools` choice keeps (None: no such choice)."""
    if not isinstance(choice, dict) or choice.get("type") != "allowed_tools":
        return None
    return {t["name"] if not t.get("namespace") else t["namespace"] + NAMESPACE_SEPARATOR + t["name"]
            for t in choice["tools"] if t.get("type") == "function" and isinstance(t.get("name"), str)}


def _unanswered(ids: list[str]) -> GatewayError:
    return _bad(f"No tool output found for function call {', '.join(ids)}.", "input")
