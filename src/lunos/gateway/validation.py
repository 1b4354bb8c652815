"""Validation of a chat-completions body before anything goes upstream (SPEC §4).

Every check raises a 400 naming the parameter by its path (`messages[2].content[0].image_url.url`).
The body stays a plain dict (parsed once, forwarded as-is where nothing needs reshaping);
Lunos-only fields and the server-side `web_search` tool are taken out into `ChatOptions`.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson

from . import schemas
from .errors import GatewayError

LUNOS_FIELDS = ("observability", "models", "fallback_model", "drop_params", "cache", "stream_failover")
# Fields no provider is sent: Lunos's own, and web_search_options (the search tools use it).
NOT_FORWARDED = frozenset((*LUNOS_FIELDS, "web_search_options"))
ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/jpg", "image/gif", "image/webp"})
SEARCH_ENGINES = frozenset({"auto", "searxng", "tavily", "brave", "exa", "native"})
REASONING_EFFORTS = frozenset({"none", "minimal", "low", "medium", "high", "xhigh"})
_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
# What could move a model id out of its place in an upstream URL: a `..` or `.` segment, a
# backslash, a percent-encoded byte (%2F is a slash to the upstream) or a control character.
_MODEL_TRICK = re.compile(r"\.\.|(^|/)\.(/|$)|\\|%[0-9a-fA-F]{2}|[\x00-\x1f\x7f-\x9f]")
_DATA_URL = re.compile(r"^data:(image/[a-zA-Z0-9.+-]+);base64,", re.ASCII)
_FILE_DATA_URL = re.compile(r"^data:([a-zA-Z0-9.+-]+/[a-zA-Z0-9.+-]+);base64,", re.ASCII)
AUDIO_FORMATS = ("wav", "mp3")
MAX_TOOLS = 128
MAX_MESSAGES = 10_000


def _bad(message: str, param: str, code: str = "invalid_value") -> GatewayError:
    return GatewayError(400, message, param=param, code=code)


@dataclass(slots=True)
class WebSearchOptions:
    max_results: int = 5
    search_context_size: str = "medium"
    allowed_domains: tuple[str, ...] = ()
    excluded_domains: tuple[str, ...] = ()
    engine: str = "auto"


@dataclass(slots=True)
class ChatOptions:
    """What the gateway itself acts on; none of it goes upstream."""

    observability: bool = False
    models: list[str] = field(default_factory=list)  # fallbacks, in order (after `model`)
    drop_params: bool | None = None
    stream_failover: bool | None = None  # None: the config's `stream_failover`
    web_search: WebSearchOptions | None = None
    # Set by a front door that derived these parameters from hints the client cannot help
    # sending (Claude Code's `thinking`): dropped silently where the model cannot take them.
    hinted: frozenset[str] = frozenset()
    fit_max_tokens: bool = False  # lower max_tokens to the model's max_output (agents ask a lot)
    # The response cache (SPEC §10): None when the request does not say (the config decides).
    cache: bool | None = None
    cache_ttl: float | None = None  # seconds; None: the config's
    cache_semantic: float | None = None  # cosine threshold for a semantic hit; None: exact only


def parse_json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise GatewayError(400, f"The request body is not valid JSON: {exc}", code="invalid_json") from None


def _number(body: dict, name: str, lo: float, hi: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(f"'{name}' must be a number, got {_kind(value)}", name, "invalid_type")
    if not lo <= value <= hi:
        raise _bad(f"'{name}' must be between {lo:g} and {hi:g}, got {value}", name)


def _integer(body: dict, name: str, lo: int, hi: int | None = None) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"'{name}' must be an integer, got {_kind(value)}", name, "invalid_type")
    if value < lo or (hi is not None and value > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise _bad(f"'{name}' must be {bound}, got {value}", name)


def _boolean(body: dict, name: str) -> None:
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise _bad(f"'{name}' must be a boolean, got {_kind(value)}", name, "invalid_type")


def _string(body: dict, name: str, param: str | None = None) -> None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise _bad(f"'{param or name}' must be a string, got {_kind(value)}", param or name, "invalid_type")


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


# Lunos options as headers, for clients that cannot add body fields (SPEC §9).
_OPTION_HEADERS = ((b"x-lunos-observability", "observability"), (b"x-lunos-drop-params", "drop_params"),
                   (b"x-lunos-cache", "cache"), (b"x-lunos-fallback-models", "models"),
                   (b"x-lunos-stream-failover", "stream_failover"))


def header_options(body: dict, headers: dict[bytes, bytes]) -> None:
    """Fill Lunos fields the body does not set from their `x-lunos-*` headers; a bad value
    is a 400 naming the header."""
    for header, name in _OPTION_HEADERS:
        raw = headers.get(header)
        if raw is None or name in body:
            continue
        text = raw.decode("latin-1").strip()
        if name == "models":
            body[name] = [m.strip() for m in text.split(",") if m.strip()]
        elif text.lower() in ("true", "1", "false", "0"):
            body[name] = text.lower() in ("true", "1")
        else:
            raise _bad(f"'{header.decode()}' must be true or false, got {text[:40]!r}", header.decode())


def validate_chat(body: Any) -> tuple[dict, ChatOptions]:
    """Check a chat-completions body; return it without Lunos fields (taken out of `body`
    itself: it is the request's own parse, and a copy would cost every traced request),
    and the Lunos options."""
    if not isinstance(body, dict):
        raise GatewayError(400, "The request body must be a JSON object", code="invalid_json")
    model = body.get("model")
    if model is None:
        raise _bad("'model' is required", "model", "missing_required_parameter")
    if not isinstance(model, str) or not model.strip():
        raise _bad("'model' must be a non-empty string", "model", "invalid_type")
    _model_id(model, "model")
    _messages(body.get("messages"))
    _number(body, "temperature", 0, 2)
    _number(body, "top_p", 0, 1)
    _number(body, "frequency_penalty", -2, 2)
    _number(body, "presence_penalty", -2, 2)
    _integer(body, "max_tokens", 1)
    _integer(body, "max_completion_tokens", 1)
    _integer(body, "n", 1, 128)
    _integer(body, "seed", -(2**63), 2**64 - 1)
    _integer(body, "top_logprobs", 0, 20)
    _string(body, "user")
    _string(body, "service_tier")
    for name in ("stream", "parallel_tool_calls", "logprobs", "store"):
        _boolean(body, name)
    if body.get("top_logprobs") is not None and not body.get("logprobs"):
        raise _bad("'top_logprobs' requires 'logprobs' to be true", "top_logprobs")
    _stop(body.get("stop"))
    _logit_bias(body.get("logit_bias"))
    _metadata(body.get("metadata"))
    effort = body.get("reasoning_effort")
    if effort is not None and (not isinstance(effort, str) or effort not in REASONING_EFFORTS):
        raise _bad(f"'reasoning_effort' must be one of {', '.join(sorted(REASONING_EFFORTS))}",
                   "reasoning_effort")
    stream_options = body.get("stream_options")
    if stream_options is not None:
        if not isinstance(stream_options, dict):
            raise _bad("'stream_options' must be an object", "stream_options", "invalid_type")
        if not body.get("stream"):
            raise _bad("'stream_options' is only allowed when 'stream' is true", "stream_options")
        if not isinstance(stream_options.get("include_usage", False), bool):
            raise _bad("'stream_options.include_usage' must be a boolean",
                       "stream_options.include_usage", "invalid_type")
    options = ChatOptions()
    web_search, spent = _tools(body)
    _tool_choice(body)
    _response_format(body.get("response_format"), spent)
    options.web_search = web_search or _web_search_options(body)
    lunos_options(body, options)
    for name in NOT_FORWARDED.intersection(body):
        del body[name]
    return body, options


def check_model_field(body: dict) -> None:
    """`model`: required, a non-empty string, a safe model id (the routes besides chat)."""
    model = body.get("model")
    if model is None:
        raise _bad("'model' is required", "model", "missing_required_parameter")
    if not isinstance(model, str) or not model.strip():
        raise _bad("'model' must be a non-empty string", "model", "invalid_type")
    _model_id(model, "model")


def _model_id(model: str, param: str) -> None:
    """The part after `provider/` goes upstream unchanged (SPEC §4), some of it into a URL
    path: nothing in it may change that path. Plain `/` stays allowed (`a/b/c`)."""
    if _MODEL_TRICK.search(model):
        raise _bad(f"'{param}' must not contain '..' or '.' path segments, a backslash, percent-encoded "
                   "characters or control characters", param)


def _stop(stop: Any) -> None:
    if stop is None or isinstance(stop, str):
        return
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise _bad("'stop' must be a string or an array of strings", "stop", "invalid_type")
    if len(stop) > 4:
        raise _bad("'stop' takes at most 4 sequences", "stop")


def _logit_bias(bias: Any) -> None:
    if bias is None:
        return
    if not isinstance(bias, dict):
        raise _bad("'logit_bias' must be an object of token ids to numbers", "logit_bias", "invalid_type")
    for token, value in bias.items():
        if not token.isdigit():
            raise _bad(f"'logit_bias' keys must be token ids, got {token!r}", "logit_bias")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not -100 <= value <= 100:
            raise _bad("'logit_bias' values must be numbers between -100 and 100", "logit_bias")


def _metadata(metadata: Any) -> None:
    if metadata is None:
        return
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise _bad("'metadata' must be an object of strings", "metadata", "invalid_type")


def _messages(messages: Any) -> None:
    if messages is None:
        raise _bad("'messages' is required", "messages", "missing_required_parameter")
    if not isinstance(messages, list):
        raise _bad(f"'messages' must be an array, got {_kind(messages)}", "messages", "invalid_type")
    if not messages:
        raise _bad("'messages' must contain at least one message", "messages")
    if len(messages) > MAX_MESSAGES:
        raise _bad(f"'messages' holds more than {MAX_MESSAGES} messages", "messages")
    issued: set[str] = set()
    unanswered: list[str] = []  # tool calls of the last assistant turn still owed a result
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise _bad(f"'{where}' must be an object, got {_kind(message)}", where, "invalid_type")
        role = message.get("role")
        if not isinstance(role, str) or role not in ROLES:
            shown = "missing" if role is None else repr(role)
            raise _bad(f"'{where}.role' is {shown}; it must be one of "
                       "system, developer, user, assistant, tool", f"{where}.role")
        if unanswered and role != "tool":
            raise _unanswered(unanswered, where)
        if "name" in message:
            _string(message, "name", f"{where}.name")
        content = message.get("content")
        if role in ("system", "developer"):
            _text_content(content, f"{where}.content", required=True)
        elif role == "user":
            _user_content(content, f"{where}.content")
        elif role == "assistant":
            _assistant(message, where, issued)
            unanswered = [c["id"] for c in message.get("tool_calls") or ()]
        else:
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                raise _bad(f"'{where}.tool_call_id' is required for a tool message",
                           f"{where}.tool_call_id", "missing_required_parameter")
            if call_id not in issued:
                raise _bad(f"'{where}.tool_call_id' ({call_id!r}) answers no tool call of an "
                           "earlier assistant message", f"{where}.tool_call_id")
            if call_id in unanswered:
                unanswered.remove(call_id)
            _text_content(content, f"{where}.content", required=True)
    if unanswered:
        raise _unanswered(unanswered, f"messages[{len(messages)}]")


def _unanswered(ids: list[str], where: str) -> GatewayError:
    """OpenAI's rule, which every provider shares: tool calls are answered right away."""
    return _bad(f"an assistant message with 'tool_calls' must be followed by tool messages "
                f"answering each call; no result for {', '.join(map(repr, ids))} before '{where}'",
                "messages")


def _text_content(content: Any, where: str, *, required: bool) -> None:
    if content is None:
        if required:
            raise _bad(f"'{where}' is required", where, "missing_required_parameter")
        return
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _bad(f"'{where}' must be a string or an array of content parts", where, "invalid_type")
    for j, part in enumerate(content):
        _part(part, f"{where}[{j}]", allowed=("text",))


def _user_content(content: Any, where: str) -> None:
    if content is None:
        raise _bad(f"'{where}' is required", where, "missing_required_parameter")
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _bad(f"'{where}' must be a string or an array of content parts", where, "invalid_type")
    if not content:
        raise _bad(f"'{where}' must not be an empty array", where)
    for j, part in enumerate(content):
        _part(part, f"{where}[{j}]", allowed=("text", "image_url", "file", "input_audio"))


def _part(part: Any, where: str, allowed: tuple[str, ...]) -> None:
    if not isinstance(part, dict):
        raise _bad(f"'{where}' must be an object", where, "invalid_type")
    kind = part.get("type")
    if kind not in allowed:
        raise _bad(f"'{where}.type' is {kind!r}; here it must be one of {', '.join(allowed)}",
                   f"{where}.type")
    if kind in ("text", "refusal"):
        if not isinstance(part.get(kind), str):
            raise _bad(f"'{where}.{kind}' must be a string", f"{where}.{kind}", "invalid_type")
    elif kind == "image_url":
        _image(part.get("image_url"), f"{where}.image_url")
    elif kind == "file":
        _file(part.get("file"), f"{where}.file")
    elif kind == "input_audio":
        _audio(part.get("input_audio"), f"{where}.input_audio")
    cache = part.get("cache_control")
    if cache is not None and not isinstance(cache, dict):
        raise _bad(f"'{where}.cache_control' must be an object", f"{where}.cache_control", "invalid_type")


def _base64(data: Any, where: str) -> None:
    if not isinstance(data, str) or not data:
        raise _bad(f"'{where}' must be a non-empty base64 string", where, "invalid_type")
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise _bad(f"'{where}' holds invalid base64 data", where) from None


def _file(file: Any, where: str) -> None:
    """A `file` part: `file_data` (a base64 data URL, e.g. a PDF) or `file_id`."""
    if not isinstance(file, dict):
        raise _bad(f"'{where}' must be an object with 'file_data' or 'file_id'", where, "invalid_type")
    data, file_id = file.get("file_data"), file.get("file_id")
    if (data is None) == (file_id is None):
        raise _bad(f"'{where}' must have one of 'file_data' and 'file_id'", where)
    if file_id is not None and (not isinstance(file_id, str) or not file_id):
        raise _bad(f"'{where}.file_id' must be a non-empty string", f"{where}.file_id", "invalid_type")
    if file.get("filename") is not None and not isinstance(file["filename"], str):
        raise _bad(f"'{where}.filename' must be a string", f"{where}.filename", "invalid_type")
    if data is not None:
        match = _FILE_DATA_URL.match(data) if isinstance(data, str) else None
        if match is None:
            raise _bad(f"'{where}.file_data' must be a base64 data URL (data:application/pdf;base64,...)",
                       f"{where}.file_data")
        _base64(data[match.end():], f"{where}.file_data")


def _audio(audio: Any, where: str) -> None:
    """An `input_audio` part: {"data": base64, "format": "wav" | "mp3"}."""
    if not isinstance(audio, dict):
        raise _bad(f"'{where}' must be an object with 'data' and 'format'", where, "invalid_type")
    if audio.get("format") not in AUDIO_FORMATS:
        raise _bad(f"'{where}.format' must be one of {', '.join(AUDIO_FORMATS)}", f"{where}.format")
    _base64(audio.get("data"), f"{where}.data")


def _image(image: Any, where: str) -> None:
    if not isinstance(image, dict):
        raise _bad(f"'{where}' must be an object with a 'url'", where, "invalid_type")
    url = image.get("url")
    if not isinstance(url, str) or not url:
        raise _bad(f"'{where}.url' must be a non-empty string", f"{where}.url", "invalid_type")
    detail = image.get("detail")
    if detail is not None and detail not in ("auto", "low", "high"):
        raise _bad(f"'{where}.detail' must be auto, low or high", f"{where}.detail")
    if url.startswith("data:"):
        match = _DATA_URL.match(url)
        if match is None:
            raise _bad(f"'{where}.url' is not a base64 data URL of an image "
                       "(data:image/<type>;base64,...)", f"{where}.url")
        if match.group(1).lower() not in IMAGE_TYPES:
            raise _bad(f"'{where}.url' has image type {match.group(1)}; supported: png, jpeg, "
                       "gif, webp", f"{where}.url")
        try:
            base64.b64decode(url[match.end():], validate=True)
        except (binascii.Error, ValueError):
            raise _bad(f"'{where}.url' holds invalid base64 data", f"{where}.url") from None
    elif not url.lower().startswith(("http://", "https://")):
        raise _bad(f"'{where}.url' must be an http(s) URL or a data URL", f"{where}.url")
    else:
        try:
            parts = urlsplit(url)
            valid = bool(parts.hostname) and (parts.port or 0) >= 0
        except ValueError:  # `http://[::1/`, a port that is not a number
            valid = False
        if not valid:
            raise _bad(f"'{where}.url' is not a valid URL", f"{where}.url")


def _assistant(message: dict, where: str, issued: set[str]) -> None:
    content = message.get("content")
    calls = message.get("tool_calls")
    if calls is not None:
        if not isinstance(calls, list):
            raise _bad(f"'{where}.tool_calls' must be an array", f"{where}.tool_calls", "invalid_type")
        for k, call in enumerate(calls):
            at = f"{where}.tool_calls[{k}]"
            if not isinstance(call, dict):
                raise _bad(f"'{at}' must be an object", at, "invalid_type")
            if not isinstance(call.get("id"), str) or not call["id"]:
                raise _bad(f"'{at}.id' must be a non-empty string", f"{at}.id")
            if call.get("type", "function") != "function":
                raise _bad(f"'{at}.type' must be 'function'", f"{at}.type")
            fn = call.get("function")
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
                raise _bad(f"'{at}.function.name' must be a non-empty string", f"{at}.function.name")
            if not isinstance(fn.get("arguments", ""), str):
                raise _bad(f"'{at}.function.arguments' must be a JSON string",
                           f"{at}.function.arguments", "invalid_type")
            issued.add(call["id"])
    if content is None:
        if not calls:
            raise _bad(f"'{where}.content' is required unless the message has tool_calls",
                       f"{where}.content", "missing_required_parameter")
        return
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _bad(f"'{where}.content' must be a string or an array of content parts",
                   f"{where}.content", "invalid_type")
    for j, part in enumerate(content):
        _part(part, f"{where}.content[{j}]", allowed=("text", "refusal"))
    details = message.get("reasoning_details")
    if details is not None and not isinstance(details, list):
        raise _bad(f"'{where}.reasoning_details' must be an array", f"{where}.reasoning_details",
                   "invalid_type")


def _tools(body: dict) -> tuple[WebSearchOptions | None, int]:
    """The web_search tool's options if there is one, and the bytes of the tools' schemas."""
    tools = body.get("tools")
    if tools is None:
        return None, 0
    if not isinstance(tools, list):
        raise _bad("'tools' must be an array", "tools", "invalid_type")
    if len(tools) > MAX_TOOLS:
        raise _bad(f"'tools' takes at most {MAX_TOOLS} tools", "tools")
    names: set[str] = set()
    search: WebSearchOptions | None = None
    functions = []
    spent = 0
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise _bad(f"'{where}' must be an object", where, "invalid_type")
        kind = tool.get("type")
        if kind == "web_search":
            search = _web_search(tool.get("parameters") or {}, f"{where}.parameters")
            continue
        if kind != "function":
            raise _bad(f"'{where}.type' must be 'function' or 'web_search', got {kind!r}", f"{where}.type")
        fn = tool.get("function")
        if not isinstance(fn, dict):
            raise _bad(f"'{where}.function' must be an object", f"{where}.function", "invalid_type")
        name = fn.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise _bad(f"'{where}.function.name' must be 1-64 letters, digits, '_' or '-'",
                       f"{where}.function.name")
        if name in names:
            raise _bad(f"'{where}.function.name' repeats the tool name {name!r}", f"{where}.function.name")
        names.add(name)
        _string(fn, "description", f"{where}.function.description")
        if "strict" in fn and fn["strict"] is not None and not isinstance(fn["strict"], bool):
            raise _bad(f"'{where}.function.strict' must be a boolean", f"{where}.function.strict", "invalid_type")
        params = fn.get("parameters")
        if params is not None:
            if not isinstance(params, dict):
                raise _bad(f"'{where}.function.parameters' must be a JSON Schema object",
                           f"{where}.function.parameters", "invalid_type")
            spent = check_schema(params, f"{where}.function.parameters", spent)
            if params.get("type", "object") != "object":
                raise _bad(f"'{where}.function.parameters' must describe an object (type: object)",
                           f"{where}.function.parameters")
        functions.append(tool)
    if search is not None:
        if functions:
            body["tools"] = functions
        else:
            del body["tools"]
    return search, spent


def _web_search(params: Any, where: str) -> WebSearchOptions:
    if not isinstance(params, dict):
        raise _bad(f"'{where}' must be an object", where, "invalid_type")
    options = WebSearchOptions()
    known = {"max_results", "search_context_size", "allowed_domains", "excluded_domains", "engine"}
    for key in params:
        if key not in known:
            raise _bad(f"'{where}.{key}' is not a web_search parameter", f"{where}.{key}")
    if params.get("max_results") is not None:
        value = params["max_results"]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 20:
            raise _bad(f"'{where}.max_results' must be an integer from 1 to 20", f"{where}.max_results")
        options.max_results = value
    size = params.get("search_context_size")
    if size is not None:
        if size not in ("low", "medium", "high"):
            raise _bad(f"'{where}.search_context_size' must be low, medium or high",
                       f"{where}.search_context_size")
        options.search_context_size = size
    for key in ("allowed_domains", "excluded_domains"):
        value = params.get(key)
        if value is None:
            continue
        if not isinstance(value, list) or not all(isinstance(d, str) and d for d in value):
            raise _bad(f"'{where}.{key}' must be an array of domain names", f"{where}.{key}", "invalid_type")
        setattr(options, key, tuple(d.lower().strip() for d in value))
    engine = params.get("engine")
    if engine is not None:
        if not isinstance(engine, str) or engine not in SEARCH_ENGINES:
            raise _bad(f"'{where}.engine' must be one of {', '.join(sorted(SEARCH_ENGINES))}",
                       f"{where}.engine")
        options.engine = engine
    return options


def _web_search_options(body: dict) -> WebSearchOptions | None:
    """OpenAI's `web_search_options` parameter turns on the same server-side search."""
    value = body.get("web_search_options")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _bad("'web_search_options' must be an object", "web_search_options", "invalid_type")
    options = WebSearchOptions()
    size = value.get("search_context_size")
    if size is not None:
        if size not in ("low", "medium", "high"):
            raise _bad("'web_search_options.search_context_size' must be low, medium or high",
                       "web_search_options.search_context_size")
        options.search_context_size = size
    return options


def _tool_choice(body: dict) -> None:
    choice = body.get("tool_choice")
    if choice is None:
        return
    tools = body.get("tools") or []
    if isinstance(choice, str):
        if choice not in ("none", "auto", "required"):
            raise _bad("'tool_choice' must be none, auto, required or a named function", "tool_choice")
        if choice == "required" and not tools:
            raise _bad("'tool_choice' is 'required' but no function tools are given", "tool_choice")
        return
    if not isinstance(choice, dict) or choice.get("type") != "function":
        raise _bad("'tool_choice' must be none, auto, required or "
                   "{\"type\": \"function\", \"function\": {\"name\": ...}}", "tool_choice")
    fn = choice.get("function")
    name = fn.get("name") if isinstance(fn, dict) else None
    if not isinstance(name, str):
        raise _bad("'tool_choice.function.name' must be a string", "tool_choice.function.name")
    if name not in {t["function"]["name"] for t in tools}:
        raise _bad(f"'tool_choice.function.name' names {name!r}, which is not among the tools",
                   "tool_choice.function.name")


def _response_format(fmt: Any, spent: int = 0) -> None:
    if fmt is None:
        return
    if not isinstance(fmt, dict):
        raise _bad("'response_format' must be an object", "response_format", "invalid_type")
    kind = fmt.get("type")
    if kind in ("text", "json_object"):
        return
    if kind != "json_schema":
        raise _bad("'response_format.type' must be text, json_object or json_schema",
                   "response_format.type")
    spec = fmt.get("json_schema")
    if not isinstance(spec, dict):
        raise _bad("'response_format.json_schema' must be an object", "response_format.json_schema",
                   "invalid_type")
    name = spec.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _bad("'response_format.json_schema.name' must be 1-64 letters, digits, '_' or '-'",
                   "response_format.json_schema.name")
    if spec.get("strict") is not None and not isinstance(spec["strict"], bool):
        raise _bad("'response_format.json_schema.strict' must be a boolean",
                   "response_format.json_schema.strict", "invalid_type")
    schema = spec.get("schema")
    if schema is not None:
        if not isinstance(schema, dict):
            raise _bad("'response_format.json_schema.schema' must be a JSON Schema object",
                       "response_format.json_schema.schema", "invalid_type")
        check_schema(schema, "response_format.json_schema.schema", spent)


def lunos_options(body: dict, options: ChatOptions) -> None:
    """Check the Lunos fields of `body` (`LUNOS_FIELDS`) into `options`; the caller removes them."""
    observability = body.get("observability")
    if observability is not None:
        if not isinstance(observability, bool):
            raise _bad("'observability' must be a boolean", "observability", "invalid_type")
        options.observability = observability
    _cache(body.get("cache"), options)
    drop = body.get("drop_params")
    if drop is not None:
        if not isinstance(drop, bool):
            raise _bad("'drop_params' must be a boolean", "drop_params", "invalid_type")
        options.drop_params = drop
    failover = body.get("stream_failover")
    if failover is not None:
        if not isinstance(failover, bool):
            raise _bad("'stream_failover' must be a boolean", "stream_failover", "invalid_type")
        options.stream_failover = failover
    models = body.get("models")
    if models is not None:
        if not isinstance(models, list) or not all(isinstance(m, str) and m for m in models):
            raise _bad("'models' must be an array of model ids", "models", "invalid_type")
        if len(models) > 10:
            raise _bad("'models' takes at most 10 model ids", "models")
        for i, name in enumerate(models):
            _model_id(name, f"models[{i}]")
        options.models = [m for m in models if m != body["model"]]
    fallback = body.get("fallback_model")
    if fallback is not None:
        if not isinstance(fallback, str) or not fallback:
            raise _bad("'fallback_model' must be a model id", "fallback_model", "invalid_type")
        _model_id(fallback, "fallback_model")
        if fallback not in options.models and fallback != body["model"]:
            options.models.append(fallback)


MAX_CACHE_TTL = 365 * 86400


def _cache(cache: Any, options: ChatOptions) -> None:
    """`cache: true|false` or `cache: {ttl: seconds, semantic: 0.0-1.0}` (which turns it on)."""
    if cache is None:
        return
    if isinstance(cache, bool):
        options.cache = cache
        return
    if not isinstance(cache, dict):
        raise _bad("'cache' must be a boolean or an object {ttl, semantic}", "cache", "invalid_type")
    for name in cache:
        if name not in ("ttl", "semantic"):
            raise _bad(f"'cache' takes 'ttl' and 'semantic', not {str(name)[:40]!r}", f"cache.{name}",
                       "invalid_value")
    for name, lo, hi in (("ttl", 1, MAX_CACHE_TTL), ("semantic", 0.0, 1.0)):
        value = cache.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not lo <= value <= hi):
            raise _bad(f"'cache.{name}' must be a number between {lo:g} and {hi:g}", f"cache.{name}")
    options.cache = True
    options.cache_ttl = cache.get("ttl")
    options.cache_semantic = cache.get("semantic")


def check_schema(schema: dict, param: str, spent: int = 0) -> int:
    """Raise a 400 naming `param` unless `schema` is a valid JSON Schema within the bounds of
    `schemas` (size, depth, local references, no reference cycles); return `spent` plus its
    size, refusing a request whose schemas together pass `schemas.MAX_REQUEST_BYTES`."""
    try:
        spent += schemas.check(schema)
    except schemas.SchemaInvalid as exc:
        raise _bad(f"'{param}' {exc}", param, "invalid_schema") from None
    if spent > schemas.MAX_REQUEST_BYTES:
        raise _bad(f"'{param}' takes the request's schemas past {schemas.MAX_REQUEST_BYTES} "
                   "bytes of JSON in all", param, "invalid_schema")
    return spent
