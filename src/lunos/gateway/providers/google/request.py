"""OpenAI chat request -> Gemini `GenerateContentRequest` body.

Conversation rules:
- `system`/`developer` messages become `systemInstruction` (one text part each, wherever
  they stand in the conversation); the rest become `contents` with roles `user`/`model`,
  consecutive turns of one role merged into one content.
- Images are `inlineData` (the engine hands this adapter data URLs only); `detail` and
  `cache_control` have no Gemini counterpart and are left out.
- An assistant's `tool_calls` are `functionCall` parts (`args` as an object) carrying the
  call's `extra_content.google.thought_signature` as `thoughtSignature`; gateway-made call
  ids stay on this side (Gemini pairs calls and responses by position).
- `tool` messages are `functionResponse` parts `{name, response: {"result": ...}}` (the
  content as a JSON object when it is one, else the string), all responses of a run of
  tool messages in one user turn, in the order the assistant made the calls.
- A text-part signature echoed in `reasoning_details` (format `google-gemini-v1`) goes back
  on the last text part of its model turn.
- Gemini 3 models reject a request whose current turn (everything after the last user turn
  that is not only function responses) holds a model step whose first function call lacks
  its signature. When a client drops a signature (or the calls came from another model),
  Google's documented placeholder `skip_thought_signature_validator` is sent in its place,
  so the request still succeeds. Which models check is read from the catalog feature
  `thought_signatures` (bool) or else from the model id (`gemini-3*`).

Thinking (`reasoning_effort`): Gemini 3 models take `thinkingLevel`, Gemini 2.5 models a
`thinkingBudget`; which one is read from the catalog feature `thinking` ("level", "budget"
or "none") or else from the model id (`gemini-3*` / `gemini-2.5*`). Levels: minimal, low,
medium, high -> MINIMAL, LOW, MEDIUM, HIGH, moved up to the nearest level the model has
(catalog feature `thinking_levels`; by default Gemini 3 Pro models have LOW and HIGH only).
Budgets follow Google's own OpenAI-compatible endpoint: low 1024, medium 8192, high 24576;
minimal turns thinking off (0), except on Pro models, which cannot, where it is 128; xhigh
is the model's largest budget (24576; 32768 on Pro). `none` is minimal where that turns
thinking off or nearly (budget 0, level MINIMAL) and a 400 on models that always think (Pro
models; catalog feature `thinking_always_on`). xhigh is XHIGH where the model lists it, else
its highest level.

`response_format`: `responseMimeType: application/json`, plus `responseJsonSchema` for a
schema (schema.py says what is respelled). Models that refuse JSON mode next to function
declarations (`json_with_tools`) get the request as a system instruction instead.
"""

from __future__ import annotations

from typing import Any

import orjson

from ...catalog import features_of
from ...errors import GatewayError
from ..base import ChatRequest
from ..common import loads_arguments, parse_data_url, parts_of, text_of, tool_name_by_id
from ..json_output import instruction, requested
from .schema import function_parameters, response_schema

SKIP_SIGNATURE = "skip_thought_signature_validator"
GEMINI_SIGNATURE_FORMAT = "google-gemini-v1"

LEVELS = ("MINIMAL", "LOW", "MEDIUM", "HIGH", "XHIGH")
DEFAULT_LEVELS = ("MINIMAL", "LOW", "MEDIUM", "HIGH")
PRO_LEVELS = ("LOW", "HIGH")
BUDGETS = {"low": 1024, "medium": 8192, "high": 24576}
MAX_BUDGET, PRO_MAX_BUDGET = 24576, 32768
PRO_MIN_BUDGET = 128

_TOOL_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}


def thinking_style(req: ChatRequest) -> str | None:
    """"level" (Gemini 3), "budget" (Gemini 2.5) or None (no thinking setting)."""
    features = features_of(req.model_info)
    style = features.thinking
    if style is not None:
        return style if style in ("level", "budget") else None
    model = _model_id(req)
    if model.startswith("gemini-3"):
        return "level"
    if model.startswith("gemini-2.5"):
        return "budget"
    return None


def requires_signatures(req: ChatRequest) -> bool:
    """Whether the model rejects a current-turn function call without its signature."""
    features = features_of(req.model_info)
    if features.thought_signatures is not None:
        return features.thought_signatures
    return _model_id(req).startswith("gemini-3")


def json_with_tools(req: ChatRequest) -> bool:
    """Whether the model takes `responseMimeType: application/json` next to function
    declarations: catalog feature `structured_output_with_tools`, else by id (Gemini 2.x and
    older answer "Function calling with a response mime type: 'application/json' is
    unsupported"). Where it cannot, the JSON is asked for in the system instruction."""
    features = features_of(req.model_info)
    if features.structured_output_with_tools is not None:
        return features.structured_output_with_tools
    return not _model_id(req).startswith(("gemini-1", "gemini-2"))


def _native_json(req: ChatRequest) -> bool:
    return not (req.body.get("tools") and not json_with_tools(req))


def build_body(req: ChatRequest) -> dict:
    body = req.body
    system, contents = _contents(body["messages"])
    wanted = requested(body)
    if wanted is not None and not _native_json(req):
        system.append({"text": instruction(*wanted)})
    if not contents:
        raise GatewayError(400, "Gemini needs at least one user or assistant message besides "
                                "system messages", param="messages")
    if requires_signatures(req):
        _fill_signatures(contents)
    out: dict[str, Any] = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": system}
    tools = body.get("tools")
    if tools:
        out["tools"] = [{"functionDeclarations": [_declaration(t["function"]) for t in tools]}]
        tool_config = _tool_config(body.get("tool_choice"))
        if tool_config:
            out["toolConfig"] = tool_config
    if body.get("web_search_options") is not None:  # web search engine "native": see search.py
        out.setdefault("tools", []).append({"googleSearch": {}})
    config = _generation_config(req)
    if config:
        out["generationConfig"] = config
    return out


def _model_id(req: ChatRequest) -> str:
    return req.upstream_model.rsplit("/", 1)[-1].lower()


# -- contents ---------------------------------------------------------------------------


def _contents(messages: list[dict]) -> tuple[list[dict], list[dict]]:
    system: list[dict] = []
    contents: list[dict] = []
    names = tool_name_by_id(messages)
    order = {call["id"]: j for m in messages if m.get("role") == "assistant"
             for j, call in enumerate(m.get("tool_calls") or ())}
    i = 0
    while i < len(messages):
        m = messages[i]
        role = m.get("role")
        if role in ("system", "developer"):
            text = text_of(m.get("content"))
            if text:
                system.append({"text": text})
        elif role == "user":
            _append(contents, "user", _user_parts(m.get("content"), i))
        elif role == "assistant":
            _append(contents, "model", _model_parts(m, i))
        elif role == "tool":
            run = []
            while i < len(messages) and messages[i].get("role") == "tool":
                run.append((i, messages[i]))
                i += 1
            run.sort(key=lambda item: order.get(item[1].get("tool_call_id"), len(order)))
            _append(contents, "user", [_function_response(m, j, names) for j, m in run])
            continue
        i += 1
    return system, contents


def _append(contents: list[dict], role: str, parts: list[dict]) -> None:
    if not parts:
        return
    if contents and contents[-1]["role"] == role:
        contents[-1]["parts"].extend(parts)
    else:
        contents.append({"role": role, "parts": parts})


def _user_parts(content: Any, index: int) -> list[dict]:
    parts = []
    for k, part in enumerate(parts_of(content)):
        kind = part.get("type")
        if kind == "text":
            if part.get("text"):
                parts.append({"text": part["text"]})
        elif kind == "image_url":
            url = part["image_url"]["url"]
            if not url.startswith("data:"):
                raise GatewayError(400, "Gemini takes images as data URLs only",
                                   param=f"messages[{index}].content[{k}].image_url.url")
            mime, data = parse_data_url(url)
            parts.append({"inlineData": {"mimeType": mime, "data": data}})
        elif kind == "file":
            file = part["file"]
            if file.get("file_data") is None:
                raise GatewayError(400, "Gemini takes files as data: send 'file_data' (a base64 data "
                                   "URL), not a 'file_id' of OpenAI's Files API",
                                   param=f"messages[{index}].content[{k}].file.file_id",
                                   code="unsupported_content")
            mime, data = parse_data_url(file["file_data"])
            parts.append({"inlineData": {"mimeType": mime, "data": data}})
        elif kind == "input_audio":
            audio = part["input_audio"]
            parts.append({"inlineData": {"mimeType": AUDIO_TYPES[audio["format"]], "data": audio["data"]}})
    return parts


AUDIO_TYPES = {"wav": "audio/wav", "mp3": "audio/mp3"}


def _model_parts(message: dict, index: int) -> list[dict]:
    parts: list[dict] = []
    text = text_of(message.get("content"))
    if text:
        parts.append({"text": text})
        signature = _text_signature(message.get("reasoning_details"))
        if signature:
            parts[-1]["thoughtSignature"] = signature
    for j, call in enumerate(message.get("tool_calls") or ()):
        function = call["function"]
        args = loads_arguments(function.get("arguments"),
                               f"messages[{index}].tool_calls[{j}].function.arguments")
        part: dict[str, Any] = {"functionCall": {"name": function["name"], "args": args}}
        signature = ((call.get("extra_content") or {}).get("google") or {}).get("thought_signature")
        if signature:
            part["thoughtSignature"] = signature
        parts.append(part)
    return parts


def _text_signature(details: Any) -> str | None:
    """The last Gemini signature an assistant message carries in `reasoning_details`."""
    found = None
    for entry in details or ():
        if (isinstance(entry, dict) and entry.get("format") == GEMINI_SIGNATURE_FORMAT
                and entry.get("type") == "reasoning.encrypted" and entry.get("data")):
            found = entry["data"]
    return found


def _function_response(message: dict, index: int, names: dict[str, str]) -> dict:
    call_id = message.get("tool_call_id")
    name = names.get(call_id)
    if name is None:
        raise GatewayError(400, f"tool message refers to unknown tool call '{call_id}'",
                           param=f"messages[{index}].tool_call_id")
    text = text_of(message.get("content"))
    result: Any = text
    if text[:1] == "{":
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            value = None
        if isinstance(value, dict):
            result = value
    return {"functionResponse": {"name": name, "response": {"result": result}}}


def _fill_signatures(contents: list[dict]) -> None:
    """Put the placeholder signature on current-turn steps whose first call has none."""
    start = 0
    for i, content in enumerate(contents):
        if content["role"] == "user" and any("functionResponse" not in p for p in content["parts"]):
            start = i + 1
    for content in contents[start:]:
        if content["role"] != "model":
            continue
        first = next((p for p in content["parts"] if "functionCall" in p), None)
        if first is not None and not first.get("thoughtSignature"):
            first["thoughtSignature"] = SKIP_SIGNATURE


# -- tools ------------------------------------------------------------------------------


def _declaration(function: dict) -> dict:
    out: dict[str, Any] = {"name": function["name"]}
    if function.get("description"):
        out["description"] = function["description"]
    parameters = function_parameters(function.get("parameters"))
    if parameters is not None:
        out["parametersJsonSchema"] = parameters
    return out


def _tool_config(choice: Any) -> dict | None:
    if choice is None:
        return None
    if isinstance(choice, dict):
        name = choice["function"]["name"]
        return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}}
    return {"functionCallingConfig": {"mode": _TOOL_MODES[choice]}}


# -- generation config ------------------------------------------------------------------


def _generation_config(req: ChatRequest) -> dict:
    body = req.body
    config: dict[str, Any] = {}
    for name, key in (("temperature", "temperature"), ("top_p", "topP"), ("seed", "seed")):
        if body.get(name) is not None:
            config[key] = body[name]
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if max_tokens:
        config["maxOutputTokens"] = max_tokens
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    for name, key in (("presence_penalty", "presencePenalty"),
                      ("frequency_penalty", "frequencyPenalty")):
        if body.get(name):
            config[key] = body[name]
    if (body.get("n") or 1) > 1:
        config["candidateCount"] = body["n"]
    fmt = (body.get("response_format") or {}) if _native_json(req) else {}
    if fmt.get("type") == "json_object":
        config["responseMimeType"] = "application/json"
    elif fmt.get("type") == "json_schema":
        config["responseMimeType"] = "application/json"
        schema = (fmt.get("json_schema") or {}).get("schema")
        if schema:
            config["responseJsonSchema"] = response_schema(schema)
    thinking = thinking_config(req)
    if thinking:
        config["thinkingConfig"] = thinking
    return config


def _pro(req: ChatRequest) -> bool:
    return "pro" in _model_id(req)


def _levels(req: ChatRequest) -> tuple[str, ...]:
    """The thinking levels the model takes, lowest first."""
    listed = {lv.upper() for lv in features_of(req.model_info).thinking_levels}
    if listed:
        return tuple(lv for lv in LEVELS if lv in listed)
    return PRO_LEVELS if _pro(req) else DEFAULT_LEVELS


def can_stop_thinking(req: ChatRequest) -> bool:
    """Whether `reasoning_effort: "none"` has a translation: a thinking budget of 0 (2.5
    Flash models) or the MINIMAL level (Gemini 3 Flash models). Pro models always think."""
    if features_of(req.model_info).thinking_always_on:
        return False
    if thinking_style(req) == "budget":
        return not _pro(req)
    return "MINIMAL" in _levels(req)


def thinking_config(req: ChatRequest) -> dict | None:
    effort = req.body.get("reasoning_effort")
    style = thinking_style(req) if effort else None
    if style is None:
        return None
    effort = "minimal" if effort == "none" else effort  # check() refused it where impossible
    if style == "budget":
        if effort == "minimal":
            return {"thinkingBudget": PRO_MIN_BUDGET if _pro(req) else 0}
        if effort == "xhigh":
            return {"thinkingBudget": PRO_MAX_BUDGET if _pro(req) else MAX_BUDGET}
        return {"thinkingBudget": BUDGETS[effort]}
    available = _levels(req)
    wanted = LEVELS.index(effort.upper())
    level = next((lv for lv in LEVELS[wanted:] if lv in available), available[-1])
    return {"thinkingLevel": level}
