"""Stand-in for Anthropic's Messages API (`POST /v1/messages`), strict.

It answers with the shared fake model (see fake_model.py) in the Messages wire format, as
JSON or as named SSE events shaped like the recordings in tests/fixtures/anthropic/, and
rejects what the real API rejects, with Anthropic's error shape and wording:
`{"type": "error", "error": {"type": ..., "message": ...}, "request_id": ...}`.

Beyond the fake model:
- `thinking` enabled (or adaptive): a `thinking` block comes first, signed with an HMAC of
  its text (with `display: "omitted"`, the text is left out and the signature alone comes
  back); a last user text containing "redact" adds a `redacted_thinking` block. Thinking
  blocks sent back must carry the signature this stand-in issued, and in a tool loop the
  assistant turn must start with one, so tests prove the round trip carries them.
- Prompt caching: the words of everything up to the last block marked `cache_control`
  count as `cache_creation_input_tokens` the first time that exact prefix is seen and as
  `cache_read_input_tokens` afterwards (no 1024-token minimum here); `cache_creation`
  splits the writes by each breakpoint's `ttl` (`5m` or `1h`), as the real API does.
- URL image sources are not fetched; the fake model reports their URL.
- Documents (`document` blocks: plain text, base64 PDF, URL or content sources) are checked;
  when the last user turn has a plain-text document with `citations.enabled`, the answer
  quotes its first sentence with a `char_location` citation (`citations_delta` in a stream).
- The `web_search` server tool (`web_search_20250305`): a user text asking for a search gets
  a `server_tool_use` block, its `web_search_tool_result`, and text whose last sentence
  cites `fake_model.NATIVE_SOURCE` (`citations` of type `web_search_result_location`).
- Structured outputs: `output_config.format` (`{"type": "json_schema", "schema"}`) only on
  models that have it (Claude 4.5 and later), with the schema subset constrained decoding
  takes: every object closed with `additionalProperties: false`, no numeric or length
  constraints, `minItems` 0 or 1, known string formats, no `oneOf`, no recursion. Tool
  `input_schema`s must be valid draft 2020-12 schemas. Answers follow the schema; the
  `[[bad-json]]` / `[[off-schema]]` markers of structured.py apply.
- Betas: the `anthropic-beta` header takes the beta names the official SDK knows and the ones
  Claude Code sends; another name is refused, as the API refuses it. Fields that belong to a
  beta (`context_management`, `mcp_servers`, `compaction`, ...) are accepted only with their
  beta and refused otherwise as any unknown field is ("Extra inputs are not permitted").
  With `context_management` the answer carries `context_management.applied_edits` (none).
- `role: "system"` messages in `messages` (mid-conversation system messages, Claude Opus 4.8
  and later; no beta): text only, never first, right after a user turn, followed by an
  assistant turn or last, never two in a row; their text joins the system prompt.
- `POST /v1/messages/count_tokens`: the same body without `max_tokens` and the fields only
  answering takes (`stream`, `metadata`, `stop_sequences`, sampling), checked the same way;
  answers `{"input_tokens": N}` with N the prompt tokens /v1/messages would report for it
  (`input_tokens` + both cache counts).
- Test marker in the last user text: `[[stream-error:TYPE]]` makes a stream fail after its
  first text delta with `event: error` of that type (e.g. `overloaded_error`), as Anthropic
  ends a stream that breaks down; a JSON answer fails with that error's status instead.
  `[[cut:N]]` drops a stream's connection after N text (or tool input) deltas (no
  `message_stop`, the chunked body never terminated); `[[stall:N]]` sends N and then nothing for a
  minute, holding the connection open. `[[pause:N]]` ends the answer after N words with
  `stop_reason: "pause_turn"`, as a long server-tool turn does. A request that continues an
  answer (fake_model's `continued`) ignores these markers, as a fallback would not fail the
  same way.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import typing

import orjson
from anthropic.types.anthropic_beta_param import AnthropicBetaParam
from jsonschema import Draft202012Validator, SchemaError

from .fake_model import (
    NATIVE_SOURCE,
    Answer,
    Conversation,
    Image,
    Turn,
    continued,
    native_search,
    respond,
    value_for,
)
from .harness import Recorded, Reject, StandInApp, send_json, send_sse, sleep_unless_gone
from .structured import instructed, pointer, resolved, shape

VERSIONS = ("2023-06-01", "2026-10-21")
SAMPLING = ("temperature", "top_p", "top_k")
TOP_LEVEL = {
    "model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream",
    "temperature", "top_p", "top_k", "tools", "tool_choice", "thinking", "output_config",
    "service_tier", "container", "inference_geo", "cache_control", "diagnostics", "speed",
}
# count_tokens takes the prompt and what shapes it, nothing that only steers the answer.
COUNT_TOP_LEVEL = {"model", "messages", "system", "tools", "tool_choice", "thinking", "output_config",
                   "cache_control", "speed"}
# The beta names the official SDK lists, and those Claude Code sends besides.
KNOWN_BETAS = frozenset(typing.get_args(typing.get_args(AnthropicBetaParam)[1])) | {
    "claude-code-20250219", "oauth-2025-04-20", "fine-grained-tool-streaming-2025-05-14",
    "effort-2025-11-24", "tool-examples-2025-10-29", "advanced-tool-use-2025-11-20",
}
# Request fields that exist only under a beta: field -> the betas that enable it.
BETA_FIELDS = {
    "context_management": ("context-management-2025-06-27",),
    "mcp_servers": ("mcp-client-2025-04-04", "mcp-client-2025-11-20", "mcp-client-2026-09-15"),
    "compaction": ("compact-2026-01-12", "compact-2026-09-04"),
    "thread": ("message-threads-2026-08-12",),
    "fallbacks": ("server-side-fallback-2026-06-01", "server-side-fallback-2026-07-01"),
    "fallback_credit_token": ("fallback-credit-2026-06-01", "fallback-credit-2026-07-01"),
    "billing_policy": ("user-profiles-billing-2026-10-01",),
}
COUNT_BETA_FIELDS = ("context_management", "mcp_servers", "compaction", "billing_policy")
EDITS = {  # context_management edit type -> its fields
    "clear_tool_uses_20250919": {"type", "trigger", "keep", "clear_at_least", "clear_tool_inputs",
                                 "exclude_tools"},
    "clear_thinking_20251015": {"type", "keep"},
    "compact_20260112": {"type", "trigger", "instructions", "pause_after_compaction"},
}
SYSTEM_MESSAGES = re.compile(r"^claude-(opus-4-8|[a-z]+-5)(-|$)")  # mid-conversation system messages
SYSTEM_MESSAGE_FIELDS = {"role", "content"}
SYSTEM_MESSAGE_BETA_FIELDS = {"clear_at": "mid-conversation-system-clear-at-2026-08-21",
                              "output_config": "mid-conversation-output-config-2026-07-01"}
TOOL_FIELDS = {"type", "name", "description", "input_schema", "cache_control", "allowed_callers",
               "defer_loading", "eager_input_streaming", "input_examples", "strict"}
STREAM_ERROR = re.compile(r"\[\[stream-error:([a-z_]+)\]\]")
PAUSE = re.compile(r"\[\[pause:([0-9]+)\]\]")
STREAM_BREAK = re.compile(r"\[\[(cut|stall):([0-9]+)\]\]")
ERROR_STATUS = {"invalid_request_error": 400, "authentication_error": 401, "permission_error": 403,
                "not_found_error": 404, "request_too_large": 413, "rate_limit_error": 429,
                "api_error": 500, "overloaded_error": 529}
BLOCK_FIELDS = {  # block type -> (roles it may appear in, allowed keys)
    "text": ({"user", "assistant"}, {"type", "text", "cache_control", "citations"}),
    "image": ({"user"}, {"type", "source", "cache_control"}),
    "tool_result": ({"user"}, {"type", "tool_use_id", "content", "is_error", "cache_control"}),
    "tool_use": ({"assistant"}, {"type", "id", "name", "input", "cache_control"}),
    "thinking": ({"assistant"}, {"type", "thinking", "signature"}),
    "redacted_thinking": ({"assistant"}, {"type", "data"}),
    "document": ({"user"}, {"type", "source", "title", "context", "citations", "cache_control"}),
}
MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
EFFORTS = ("low", "medium", "high", "xhigh", "max")

# Per-model rules; ids may carry a date suffix (claude-sonnet-4-5-20250929).
NO_SAMPLING = re.compile(r"^claude-(opus-4-[78]|[a-z]+-5)(-|$)")  # Opus 4.7+, Claude 5.x
EXCLUSIVE_SAMPLING = re.compile(r"^claude-((sonnet|haiku|opus)-4-[56]|opus-4-1)(-|$)")
ADAPTIVE_ONLY = NO_SAMPLING  # reject thinking.type "enabled"
ADAPTIVE_CAPABLE = re.compile(r"^claude-(opus-4-[678]|sonnet-4-6|[a-z]+-5)(-|$)")
OUTPUT_FORMAT_CAPABLE = re.compile(r"^claude-((opus|sonnet|haiku)-4-[5-9]|opus-4-1|[a-z]+-5)(-|$)")
FORMAT_UNSUPPORTED = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
                      "minLength", "maxLength", "maxItems", "uniqueItems", "oneOf", "not", "if",
                      "then", "else", "patternProperties", "propertyNames", "minProperties",
                      "maxProperties", "prefixItems", "contains", "dependentRequired",
                      "dependentSchemas", "unevaluatedProperties", "unevaluatedItems")
STRING_FORMATS = ("date-time", "time", "date", "duration", "email", "hostname", "uri", "ipv4",
                  "ipv6", "uuid")

DOCS = "Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
RULES = {
    "auth": "invalid x-api-key",
    "version_missing": "anthropic-version: header is required",
    "version_unknown": "anthropic-version: {value!r} is not a valid version",
    "json": "There was an error parsing the body of your request as JSON",
    "model": "model: {model}",
    "extra": "{path}: Extra inputs are not permitted",
    "required": "{path}: Field required",
    "type": "{path}: Input should be a valid {kind}",
    "no_messages": "messages: at least one message is required",
    "role": "messages.{i}.role: Input should be 'user' or 'assistant'",
    "empty_content": "messages.{i}: all messages must have non-empty content except for the "
                     "optional final assistant message",
    "empty_text": "messages: text content blocks must be non-empty",
    "tag": "{path}: Input tag '{tag}' found using 'type' does not match any of the expected "
           "tags: {expected}",
    "le": "{path}: Input should be less than or equal to {limit}",
    "ge": "{path}: Input should be greater than or equal to {limit}",
    "deprecated": "`{name}` is deprecated for this model.",
    "exclusive": "`temperature` and `top_p` cannot both be specified for this model. Please use only one.",
    "orphan_result": "messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` "
                     "blocks: {id}. Each `tool_result` block must have a corresponding `tool_use` "
                     "block in the previous message.",
    "missing_result": "messages.{i}: `tool_use` ids were found without `tool_result` blocks "
                      "immediately after: {ids}. Each `tool_use` block must have a corresponding "
                      "`tool_result` block in the next message.",
    "duplicate_id": "messages.{i}.content.{j}: `tool_use` ids must be unique",
    "media_type": "{path}.source.base64.media_type: Input should be 'image/jpeg', 'image/png', "
                  "'image/gif' or 'image/webp'",
    "base64": "{path}.source.base64.data: The image data is not valid base64",
    "image_url": "{path}.source.url: Input should be a valid URL, only http and https are supported",
    "image_source": "{path}.source: Input tag '{tag}' found using 'type' does not match any of the "
                    "expected tags: 'base64', 'url'",
    "signature": "messages.{i}.content.{j}: Invalid `signature` in `thinking` block",
    "redacted": "messages.{i}.content.{j}: Invalid `data` in `redacted_thinking` block",
    "thinking_first": "messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but "
                      "found `{found}`. When `thinking` is enabled, a final `assistant` message must "
                      "start with a thinking block (preceeding the lastmost set of `tool_use` and "
                      "`tool_result` blocks). We recommend you include thinking blocks from previous "
                      "turns. To avoid this requirement, disable `thinking`. " + DOCS,
    "thinking_temperature": "`temperature` may only be set to 1 when thinking is enabled. " + DOCS,
    "thinking_top_p": "`top_p` must be greater than or equal to 0.95 or unset when thinking is enabled. " + DOCS,
    "thinking_top_k": "`top_k` must be unset when thinking is enabled. " + DOCS,
    "thinking_forced": "Thinking may not be enabled when tool_choice forces tool use.",
    "budget_min": "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
    "budget_max": "`max_tokens` must be greater than `thinking.budget_tokens`. " + DOCS,
    "adaptive": "thinking.type.adaptive: adaptive thinking is not supported on this model",
    "enabled": "thinking.type.enabled is not supported for this model. Use thinking.type.adaptive "
               "and output_config.effort to control thinking behavior.",
    "thinking_type": "thinking: Input tag '{tag}' found using 'type' does not match any of the "
                     "expected tags: 'adaptive', 'disabled', 'enabled'",
    "effort": "output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' or 'max'",
    "tool_name": "tools.{i}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'",
    "tool_unique": "tools: Tool names must be unique.",
    "tool_type": "tools.{i}: Input tag '{tag}' found using 'type' does not match any of the expected tags",
    "tool_choice": "tool_choice: Input tag '{tag}' found using 'type' does not match any of the "
                   "expected tags: 'auto', 'any', 'tool', 'none'",
    "tool_choice_name": "tool_choice.name: Tool '{name}' not found in provided tools",
    "tool_choice_tools": "tool_choice: tool_choice may only be specified while providing tools",
    "cache_limit": "A maximum of 4 blocks with cache_control may be provided. Found {n}.",
    "cache_type": "{path}.cache_control.type: Input should be 'ephemeral'",
    "cache_ttl": "{path}.cache_control.ttl: Input should be '5m' or '1h'",
    "format_model": "output_config.format: structured outputs are not supported on model '{model}'",
    "format_closed": "output_config.format.schema: For 'object' type, 'additionalProperties' must be "
                     "explicitly set to false (at {path})",
    "format_keyword": "output_config.format.schema: '{keyword}' is not supported (at {path})",
    "format_untyped": "output_config.format.schema: Invalid schema: Schema type is missing (at {path})",
    "format_recursive": "output_config.format.schema: recursive schemas are not supported",
    "input_schema": "tools.{i}.custom.input_schema: JSON schema is invalid. It must match JSON Schema "
                    "draft 2020-12 (https://json-schema.org/draft/2020-12). Learn more about tool use "
                    "at https://docs.claude.com/en/docs/tool-use.",
    "citations": "messages.{i}.content.{j}.citations: citations are not accepted on `user` text "
                 "blocks in this API version",
    "beta": "Unexpected value(s) `{names}` for the `anthropic-beta` header. Please consult our "
            "documentation at docs.claude.com or try again without the header.",
    "edit_type": "context_management.edits.{k}: Input tag '{tag}' found using 'type' does not match "
                 "any of the expected tags: " + ", ".join(f"'{t}'" for t in EDITS),
    "speed": "speed: Input should be 'standard' or 'fast'",
    "display": "thinking.{kind}.display: Input should be 'summarized' or 'omitted'",
    "system_first": "messages.0.role: the first message cannot have role `system`; use the top-level "
                    "`system` parameter",
    "system_after": "messages.{i}: a `system` message must immediately follow a `user` message",
    "system_before": "messages.{i}: a `system` message must be the last message or be followed by an "
                     "`assistant` message",
    "system_content": "messages.{i}.content.{j}: `system` messages may only contain `text` blocks",
    "system_twice": "messages.{i}: consecutive `system` messages are not allowed",
    "mcp_server": "mcp_servers.{k}.{name}: Field required",
}


def _error(message: str, kind: str = "invalid_request_error", request_id: str = "req_standin") -> dict:
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": request_id}


def bad(rule: str, **values) -> Reject:
    return Reject(400, _error(RULES[rule].format(**values)))


def _event(name: str, payload: dict) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def _words(text: str) -> int:
    return len(text.split())


class AnthropicStandIn(StandInApp):
    def __init__(self, api_key: str = "sk-ant-test") -> None:
        super().__init__()
        self.api_key = api_key
        self._secret = secrets.token_bytes(16)
        self._cached: set[str] = set()
        self._omitted: set[str] = set()  # signatures of thinking sent without its text

    def reset(self) -> None:
        super().reset()
        self._cached.clear()
        self._omitted.clear()

    # ------------------------------------------------------------ signatures

    def sign(self, thinking: str) -> str:
        mac = hmac.new(self._secret, thinking.encode(), hashlib.sha256).digest()
        return base64.b64encode(mac).decode()

    def redacted_data(self) -> str:
        nonce = secrets.token_hex(8)
        return f"{nonce}.{self.sign('redacted:' + nonce)}"

    def _redacted_ok(self, data: str) -> bool:
        nonce, _, mac = data.partition(".")
        return hmac.compare_digest(mac, self.sign("redacted:" + nonce))

    # ------------------------------------------------------------ request handling

    async def handle(self, rec: Recorded, send) -> None:
        if rec.path not in ("/v1/messages", "/v1/messages/count_tokens") or rec.method != "POST":
            raise Reject(404, _error("Not Found", "not_found_error"))
        key = rec.headers.get("x-api-key")
        if key is None and rec.headers.get("authorization", "").startswith("Bearer "):
            key = rec.headers["authorization"][7:]
        if key != self.api_key:
            raise Reject(401, _error(RULES["auth"], "authentication_error"))
        version = rec.headers.get("anthropic-version")
        if version is None:
            raise bad("version_missing")
        if version not in VERSIONS:
            raise bad("version_unknown", value=version)
        betas = _betas(rec.headers.get("anthropic-beta"))
        body = rec.json
        if not isinstance(body, dict):
            raise bad("json")
        if rec.path.endswith("/count_tokens"):
            conv, _ = self.validate(body, version, betas, counting=True)
            await send_json(send, 200, {"input_tokens": respond(conv).prompt_tokens})
            return
        conv, thinking = self.validate(body, version, betas)
        await self.answer(body, conv, thinking, send, rec)

    def validate(self, body: dict, version: str, betas: frozenset[str] = frozenset(),
                 counting: bool = False) -> tuple[Conversation, bool]:
        """Check `body` as the real API would (as a count_tokens body when `counting`);
        return the fake model's view of it."""
        known = COUNT_TOP_LEVEL if counting else TOP_LEVEL - set(SAMPLING) if version >= "2026-10-21" else TOP_LEVEL
        known = known | {name for name, enabling in BETA_FIELDS.items() if betas & set(enabling)
                         and (not counting or name in COUNT_BETA_FIELDS)}
        for name in body:
            if name not in known:
                raise bad("extra", path=name)
        for name in ("model", "messages") if counting else ("model", "messages", "max_tokens"):
            if name not in body:
                raise bad("required", path=name)
        model = body["model"]
        if not isinstance(model, str) or not model.startswith("claude-"):
            raise Reject(404, _error(RULES["model"].format(model=model), "not_found_error"))
        if not counting:
            max_tokens = body["max_tokens"]
            if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
                raise bad("type", path="max_tokens", kind="integer")
            if max_tokens < 1:
                raise bad("ge", path="max_tokens", limit=1)
        self._sampling(body, model)
        _check_beta_fields(body)
        tools = self._tools(body)
        thinking = self._thinking(body, model, betas)
        system = self._system(body.get("system"))
        conv = self._messages(body, version, thinking, betas)
        conv.system = "\n".join(t for t in (system, conv.system) if t)
        conv.tools = tools
        conv.tool_choice = self._tool_choice(body, tools, thinking)
        conv.response_schema = self._output_format(body, model)
        if conv.response_schema is None:  # JSON asked for in words, as a real model reads it
            conv.response_schema, conv.json_mode = instructed(conv.system)
        conv.max_tokens = body.get("max_tokens")
        stops = body.get("stop_sequences") or []
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise bad("type", path="stop_sequences", kind="list of strings")
        conv.stop = stops
        metadata = body.get("metadata")
        if metadata is not None:
            for name in metadata:
                if name != "user_id":
                    raise bad("extra", path=f"metadata.{name}")
        self._cache_controls(body)
        return conv, thinking

    def _sampling(self, body: dict, model: str) -> None:
        for name, low, high in (("temperature", 0, 1), ("top_p", 0, 1), ("top_k", 0, None)):
            value = body.get(name)
            if value is None:
                continue
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise bad("type", path=name, kind="number")
            if value < low:
                raise bad("ge", path=name, limit=low)
            if high is not None and value > high:
                raise bad("le", path=name, limit=high)
            if NO_SAMPLING.match(model):
                raise bad("deprecated", name=name)
        if EXCLUSIVE_SAMPLING.match(model) and body.get("temperature") is not None \
                and body.get("top_p") is not None:
            raise bad("exclusive")

    def _thinking(self, body: dict, model: str, betas: frozenset[str] = frozenset()) -> bool:
        config = body.get("thinking")
        effort = (body.get("output_config") or {}).get("effort")
        allowed_output = ("effort", "format", "task_budget") if "task-budgets-2026-03-13" in betas \
            else ("effort", "format")
        for name in body.get("output_config") or {}:
            if name not in allowed_output:
                raise bad("extra", path=f"output_config.{name}")
        if effort is not None and effort not in EFFORTS:
            raise bad("effort")
        if config is None:
            return False
        kind = config.get("type")
        if kind == "disabled":
            return False
        if kind == "adaptive":
            if not ADAPTIVE_CAPABLE.match(model):
                raise bad("adaptive")
            allowed = {"type", "display"}
        elif kind == "enabled":
            if ADAPTIVE_ONLY.match(model):
                raise bad("enabled")
            budget = config.get("budget_tokens")
            if budget is None:
                raise bad("required", path="thinking.enabled.budget_tokens")
            if budget < 1024:
                raise bad("budget_min")
            if "max_tokens" in body and budget >= body["max_tokens"]:
                raise bad("budget_max")
            allowed = {"type", "budget_tokens", "display"}
        else:
            raise bad("thinking_type", tag=kind)
        for name in config:
            if name not in allowed:
                raise bad("extra", path=f"thinking.{kind}.{name}")
        if config.get("display") not in (None, "summarized", "omitted"):
            raise bad("display", kind=kind)
        if body.get("temperature") not in (None, 1):
            raise bad("thinking_temperature")
        if body.get("top_p") is not None and body["top_p"] < 0.95:
            raise bad("thinking_top_p")
        if body.get("top_k") is not None:
            raise bad("thinking_top_k")
        return True

    def _tools(self, body: dict) -> list[dict]:
        tools = [t for t in body.get("tools") or [] if not _web_search_tool(t)]
        names = set()
        for i, tool in enumerate(tools):
            if tool.get("type") not in (None, "custom"):
                raise bad("tool_type", i=i, tag=tool.get("type"))
            for name in tool:
                if name not in TOOL_FIELDS:
                    raise bad("extra", path=f"tools.{i}.custom.{name}")
            for name in ("name", "input_schema"):
                if name not in tool:
                    raise bad("required", path=f"tools.{i}.custom.{name}")
            if not isinstance(tool["name"], str) or not TOOL_NAME.match(tool["name"]):
                raise bad("tool_name", i=i)
            schema = tool["input_schema"]
            if not isinstance(schema, dict) or schema.get("type") != "object":
                raise bad("type", path=f"tools.{i}.custom.input_schema.type", kind="'object'")
            if tool["name"] in names:
                raise bad("tool_unique")
            names.add(tool["name"])
        for i, tool in enumerate(tools):
            try:
                Draft202012Validator.check_schema(tool["input_schema"])
            except SchemaError:
                raise bad("input_schema", i=i) from None
        return [{"name": t["name"], "parameters": resolved(t["input_schema"])} for t in tools]

    def _output_format(self, body: dict, model: str) -> dict | None:
        fmt = (body.get("output_config") or {}).get("format")
        if fmt is None:
            return None
        if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
            raise bad("tag", path="output_config.format", tag=fmt.get("type") if isinstance(fmt, dict) else None,
                      expected="'json_schema'")
        for name in fmt:
            if name not in ("type", "schema"):
                raise bad("extra", path=f"output_config.format.json_schema.{name}")
        if not isinstance(fmt.get("schema"), dict):
            raise bad("required", path="output_config.format.json_schema.schema")
        if not OUTPUT_FORMAT_CAPABLE.match(model):
            raise bad("format_model", model=model)
        schema = fmt["schema"]
        _check_format_schema(schema, "#")
        if _recursive(schema):
            raise bad("format_recursive")
        return resolved(schema)

    def _tool_choice(self, body: dict, tools: list[dict], thinking: bool) -> str | None:
        choice = body.get("tool_choice")
        if choice is None:
            return None
        kind = choice.get("type")
        if kind not in ("auto", "any", "tool", "none"):
            raise bad("tool_choice", tag=kind)
        allowed = {"type"} | ({"disable_parallel_tool_use"} if kind != "none" else set())
        allowed |= {"name"} if kind == "tool" else set()
        for name in choice:
            if name not in allowed:
                raise bad("extra", path=f"tool_choice.{kind}.{name}")
        if not tools and kind != "none":
            raise bad("tool_choice_tools")
        if kind == "tool" and choice.get("name") not in {t["name"] for t in tools}:
            raise bad("tool_choice_name", name=choice.get("name"))
        if thinking and kind in ("any", "tool"):
            raise bad("thinking_forced")
        return {"auto": "auto", "any": "required", "none": "none"}.get(kind, choice.get("name"))

    def _system(self, system) -> str:
        if system is None or isinstance(system, str):
            return system or ""
        texts = []
        for j, block in enumerate(system):
            if block.get("type") != "text":
                raise bad("tag", path=f"system.{j}", tag=block.get("type"), expected="'text'")
            for name in block:
                if name not in ("type", "text", "cache_control", "citations"):
                    raise bad("extra", path=f"system.{j}.{name}")
            if not block.get("text"):
                raise Reject(400, _error("system: text content blocks must be non-empty"))
            texts.append(block["text"])
        return "\n".join(texts)

    def _messages(self, body: dict, version: str, thinking: bool,
                  betas: frozenset[str] = frozenset()) -> Conversation:
        messages = body["messages"]
        if not isinstance(messages, list):
            raise bad("type", path="messages", kind="list")
        if not messages:
            raise bad("no_messages")
        conv = Conversation()
        names: dict[str, str] = {}
        seen_ids: set[str] = set()
        for i, m in enumerate(messages):
            role = m.get("role")
            if role == "system" and SYSTEM_MESSAGES.match(body["model"]):
                text = _system_message(messages, i, betas)
                conv.system = f"{conv.system}\n{text}" if conv.system else text
                continue
            for name in m:
                if name not in ("role", "content"):
                    raise bad("extra", path=f"messages.{i}.{name}")
            if role not in ("user", "assistant"):
                raise bad("role", i=i)
            content = m.get("content")
            if isinstance(content, str):
                content = [{"type": "text", "text": content}] if content else []
            if not isinstance(content, list):
                raise bad("required", path=f"messages.{i}.content")
            if not content and not (role == "assistant" and i == len(messages) - 1):
                raise bad("empty_content", i=i)
            turn = Turn(role)
            previous = _previous_turn(messages, i)
            previous_uses = _tool_use_ids(previous) if previous and previous.get("role") == "assistant" else []
            answered = set()
            for j, block in enumerate(content):
                self._block(block, role, i, j, version)
                kind = block["type"]
                if kind == "text":
                    turn.text = f"{turn.text}\n{block['text']}" if turn.text else block["text"]
                elif kind == "image":
                    turn.images.append(_image(block))
                elif kind == "tool_use":
                    if block["id"] in seen_ids:
                        raise bad("duplicate_id", i=i, j=j)
                    seen_ids.add(block["id"])
                    names[block["id"]] = block["name"]
                    turn.tool_calls.append((block["name"], block["input"]))
                elif kind == "tool_result":
                    if block["tool_use_id"] not in previous_uses:
                        raise bad("orphan_result", i=i, j=j, id=block["tool_use_id"])
                    answered.add(block["tool_use_id"])
                    turn.tool_results.append((names[block["tool_use_id"]], _result_text(block.get("content"))))
            if previous_uses and set(previous_uses) - answered:
                missing = [u for u in previous_uses if u not in answered]
                raise bad("missing_result", i=i - 1, ids=", ".join(missing))
            conv.turns.append(turn)
        turns = [(i, m) for i, m in enumerate(messages) if m.get("role") != "system"]
        last_i, last = turns[-1]
        if last.get("role") == "assistant" and _tool_use_ids(last):
            raise bad("missing_result", i=last_i, ids=", ".join(_tool_use_ids(last)))
        if thinking and turn.tool_results and len(turns) > 1:
            before_i, before = turns[-2]
            first = (_blocks(before) or [{}])[0]
            if first.get("type") not in ("thinking", "redacted_thinking"):
                raise bad("thinking_first", i=before_i, found=first.get("type"))
        return conv

    def _block(self, block: dict, role: str, i: int, j: int, version: str) -> None:
        path = f"messages.{i}.content.{j}"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind not in BLOCK_FIELDS or role not in BLOCK_FIELDS[kind][0]:
            expected = ", ".join(f"'{k}'" for k, (roles, _) in BLOCK_FIELDS.items() if role in roles)
            raise bad("tag", path=path, tag=kind, expected=expected)
        for name in block:
            if name not in BLOCK_FIELDS[kind][1]:
                raise bad("extra", path=f"{path}.{kind}.{name}")
        for name in BLOCK_FIELDS[kind][1] - {"cache_control", "citations", "is_error", "content", "title", "context"}:
            if name not in block:
                raise bad("required", path=f"{path}.{kind}.{name}")
        if kind == "text":
            if not block["text"]:
                raise bad("empty_text")
            if role == "user" and block.get("citations") and version >= "2026-10-21":
                raise bad("citations", i=i, j=j)
        elif kind == "image":
            _check_image(block, path)
        elif kind == "document":
            _check_document(block, path)
        elif kind == "tool_use":
            if not isinstance(block["input"], dict):
                raise bad("type", path=f"{path}.tool_use.input", kind="dictionary")
        elif kind == "thinking":
            signature = str(block["signature"])
            omitted = block["thinking"] == "" and signature in self._omitted
            if not omitted and not hmac.compare_digest(signature, self.sign(block["thinking"])):
                raise bad("signature", i=i, j=j)
        elif kind == "redacted_thinking" and not self._redacted_ok(str(block["data"])):
            raise bad("redacted", i=i, j=j)

    def _cache_controls(self, body: dict) -> None:
        marked = [(path, b) for path, b, _ in _units(body) if isinstance(b, dict) and "cache_control" in b]
        for path, block in marked:
            if (block["cache_control"] or {}).get("type") != "ephemeral":
                raise bad("cache_type", path=path)
            if (block["cache_control"] or {}).get("ttl", "5m") not in ("5m", "1h"):
                raise bad("cache_ttl", path=path)
        if len(marked) > 4:
            raise bad("cache_limit", n=len(marked))

    # ------------------------------------------------------------ answering

    def cache_usage(self, body: dict, prompt_tokens: int) -> dict:
        units = _units(body)
        last = max((k for k, (_, b, _) in enumerate(units) if "cache_control" in b), default=-1)
        usage = {"input_tokens": prompt_tokens, "cache_creation_input_tokens": 0,
                 "cache_read_input_tokens": 0,
                 "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0}}
        if last < 0:
            return usage
        prefix = [b for _, b, _ in units[: last + 1]]
        words = min(sum(w for _, _, w in units[: last + 1]), prompt_tokens)
        key = hashlib.sha256(orjson.dumps([body["model"], prefix], option=orjson.OPT_SORT_KEYS)).hexdigest()
        if key in self._cached:
            usage["cache_read_input_tokens"] = words
        else:
            usage["cache_creation_input_tokens"] = words
            # Each breakpoint writes the words since the one before it, for its own ttl.
            since = 0
            for _, block, w in units[: last + 1]:
                since += w
                if "cache_control" in block:
                    ttl = (block["cache_control"] or {}).get("ttl") or "5m"
                    usage["cache_creation"][f"ephemeral_{ttl}_input_tokens"] += since
                    since = 0
        self._cached.add(key)
        usage["input_tokens"] = prompt_tokens - words
        return usage

    async def answer(self, body: dict, conv: Conversation, thinking: bool, send,
                     rec: Recorded | None = None) -> None:
        answer = respond(conv)
        choice = body.get("tool_choice") or {}
        if choice.get("type") in ("any", "tool") and not answer.tool_calls:
            # A forced tool is called even where the fake model would answer in text (after
            # tool results): the named tool, or for `any` the last one offered.
            tool = next((t for t in conv.tools if t["name"] == choice.get("name")), conv.tools[-1])
            answer = Answer(tool_calls=[(tool["name"], value_for(tool["parameters"]) or {})], finish="tool_calls",
                            prompt_tokens=answer.prompt_tokens, completion_tokens=answer.completion_tokens)
        shape(answer, conv)
        native = native_search(conv) if any(_web_search_tool(t) for t in body.get("tools") or ()) else None
        if native:
            answer.text, answer.tool_calls, answer.finish = native[1], [], "stop"
        cited = None if native or answer.tool_calls else _cited_document(body)
        if cited:
            answer.text, answer.finish = cited[0]["text"] + cited[1]["text"], "stop"
            answer.completion_tokens = _words(answer.text)
        if choice.get("disable_parallel_tool_use"):
            answer.tool_calls = answer.tool_calls[:1]
        paused = PAUSE.search(conv.turns[-1].text if conv.turns and continued(conv) is None else "")
        if paused and not answer.tool_calls:
            answer.text = "".join(_pieces(answer.text)[: int(paused.group(1))])
            answer.completion_tokens = _words(answer.text)
        n = len(self.requests)
        blocks: list[dict] = []
        thought_words = 0
        if thinking:
            last = conv.turns[-1]
            subject = "the tool results" if last.tool_results else f"'{last.text}'"
            thought = f"The user asked about {subject}. I will answer."
            signature = self.sign(thought)
            if (body.get("thinking") or {}).get("display") == "omitted":  # a signature, no text
                thought = ""
                self._omitted.add(signature)
            blocks.append({"type": "thinking", "thinking": thought, "signature": signature})
            thought_words = _words(thought)
            if "redact" in last.text:
                blocks.append({"type": "redacted_thinking", "data": self.redacted_data()})
        if native:
            blocks.extend(_search_blocks(native, n))
        elif cited:
            blocks.extend(cited)
        elif answer.text or not answer.tool_calls:
            blocks.append({"type": "text", "text": answer.text})
        for k, (name, args) in enumerate(answer.tool_calls):
            blocks.append({"type": "tool_use", "id": f"toolu_standin{n:03d}{k}", "name": name, "input": args})
        stop_reason = {"stop": "end_turn", "stop_sequence": "stop_sequence", "length": "max_tokens",
                       "tool_calls": "tool_use"}[answer.finish]
        if paused and not answer.tool_calls:
            stop_reason = "pause_turn"
        usage = self.cache_usage(body, answer.prompt_tokens)
        output = {"output_tokens": answer.completion_tokens + thought_words}
        if thinking:
            output["output_tokens_details"] = {"thinking_tokens": thought_words}
        if native:
            output["server_tool_use"] = {"web_search_requests": 1}
        message = {"id": f"msg_standin{n:04d}", "type": "message", "role": "assistant",
                   "model": body["model"], "content": blocks, "stop_reason": stop_reason,
                   "stop_sequence": answer.stop_sequence, "usage": {**usage, **output}}
        if "context_management" in body:
            message["context_management"] = {"applied_edits": []}
        last_text = conv.turns[-1].text if conv.turns and continued(conv) is None else ""
        failure = STREAM_ERROR.search(last_text)
        if not body.get("stream"):
            if failure:
                kind = failure.group(1)
                raise Reject(ERROR_STATUS.get(kind, 500), _error(f"stand-in {kind}", kind))
            await send_json(send, 200, message)
            return
        events = _stream_events(message, usage, output)
        if failure:
            events = _broken(events, failure.group(1))
        broken = STREAM_BREAK.search(last_text)
        if broken:
            await _send_broken(rec, send, events, broken.group(1), int(broken.group(2)))
            return
        await send_sse(send, events)


def _web_search_tool(tool) -> bool:
    """Whether `tool` is the web search server tool (checked as the API checks it)."""
    kind = tool.get("type") if isinstance(tool, dict) else None
    if not isinstance(kind, str) or not kind.startswith("web_search_"):
        return False
    if kind not in ("web_search_20250305", "web_search_20260209"):
        raise bad("tool_type", i=0, tag=kind)
    for name in tool:
        if name not in ("type", "name", "max_uses", "allowed_domains", "blocked_domains",
                        "user_location", "cache_control"):
            raise bad("extra", path=f"tools.{kind}.{name}")
    if tool.get("name") != "web_search":
        raise Reject(400, _error(f"tools.{kind}.name: Input should be 'web_search'"))
    if tool.get("allowed_domains") and tool.get("blocked_domains"):
        raise Reject(400, _error("Cannot specify both allowed_domains and blocked_domains"))
    return True


def _search_blocks(native: tuple[str, str, tuple[int, int]], n: int) -> list[dict]:
    """The content of an answer made with the web search tool."""
    query, text, (start, end) = native
    url, title, cited = NATIVE_SOURCE
    tool_id = f"srvtoolu_standin{n:03d}"
    return [
        {"type": "server_tool_use", "id": tool_id, "name": "web_search", "input": {"query": query}},
        {"type": "web_search_tool_result", "tool_use_id": tool_id, "content": [
            {"type": "web_search_result", "url": url, "title": title,
             "encrypted_content": "EncryptedStandinContent", "page_age": "1 day ago"}]},
        {"type": "text", "text": text[:start]},
        {"type": "text", "text": text[start:end], "citations": [
            {"type": "web_search_result_location", "url": url, "title": title,
             "encrypted_index": "EncryptedStandinIndex", "cited_text": cited}]},
    ]


def _pieces(text: str) -> list[str]:
    """Word-sized stream pieces that add up to exactly `text`."""
    return re.findall(r"\s*\S+|\s+$", text)


def _stream_events(message: dict, usage: dict, output: dict) -> list[bytes]:
    shell = {**message, "content": [], "stop_reason": None, "stop_sequence": None,
             "usage": {**usage, "output_tokens": 1}}
    events = [_event("message_start", {"type": "message_start", "message": shell})]
    for index, block in enumerate(message["content"]):
        kind = block["type"]
        start = {"text": {"type": "text", "text": ""},
                 "thinking": {"type": "thinking", "thinking": "", "signature": ""},
                 "tool_use": {**block, "input": {}},
                 "server_tool_use": {**block, "input": {}}}.get(kind, block)
        events.append(_event("content_block_start", {"type": "content_block_start", "index": index,
                                                     "content_block": start}))
        if index == 0:
            events.append(_event("ping", {"type": "ping"}))
        deltas: list[dict] = []
        if kind == "text":
            deltas = [{"type": "citations_delta", "citation": c} for c in block.get("citations") or ()]
            deltas += [{"type": "text_delta", "text": w} for w in _pieces(block["text"])]
        elif kind == "thinking":
            deltas = [{"type": "thinking_delta", "thinking": w}
                      for w in _pieces(block["thinking"])]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        elif kind in ("tool_use", "server_tool_use"):
            args = orjson.dumps(block["input"]).decode()
            step = max(1, len(args) // 3)
            deltas = [{"type": "input_json_delta", "partial_json": ""}]
            deltas += [{"type": "input_json_delta", "partial_json": args[k:k + step]}
                       for k in range(0, len(args), step)]
        for delta in deltas:
            events.append(_event("content_block_delta", {"type": "content_block_delta", "index": index,
                                                         "delta": delta}))
        events.append(_event("content_block_stop", {"type": "content_block_stop", "index": index}))
    delta = {"type": "message_delta",
             "delta": {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]},
             "usage": output}
    if "context_management" in message:
        delta["context_management"] = message["context_management"]
    events.append(_event("message_delta", delta))
    events.append(_event("message_stop", {"type": "message_stop"}))
    return events


def _broken(events: list[bytes], kind: str) -> list[bytes]:
    """The stream up to its first content delta, then Anthropic's `event: error` of `kind`."""
    first = next(k for k, e in enumerate(events) if e.startswith(b"event: content_block_delta"))
    error = {"type": "error", "error": {"type": kind, "message": f"stand-in {kind}"}}
    return [*events[: first + 1], _event("error", error)]


async def _send_broken(rec: Recorded, send, events: list[bytes], how: str, deltas: int) -> None:
    """Send `events` up to `deltas` text deltas, then cut the connection or stall."""
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]})
    sent = 0
    for event in events:
        if event.startswith(b"event: content_block_delta") and (
                b'"text_delta"' in event or (b'"input_json_delta"' in event and b'"partial_json":""' not in event)):
            if sent == deltas:
                break
            sent += 1
        await send({"type": "http.response.body", "body": event, "more_body": True})
    if how == "stall":
        await sleep_unless_gone(rec, 60)
        return
    raise ConnectionAbortedError("stand-in: stream cut on purpose ([[cut]] marker)")


# ---------------------------------------------------------------- helpers


def _betas(header: str | None) -> frozenset[str]:
    """The betas named in an `anthropic-beta` header (comma separated); unknown ones refused."""
    names = [name.strip() for name in (header or "").split(",") if name.strip()]
    unknown = [name for name in names if name not in KNOWN_BETAS]
    if unknown:
        raise bad("beta", names=", ".join(unknown))
    return frozenset(names)


def _check_beta_fields(body: dict) -> None:
    """The shapes of the beta fields the stand-in knows (only present with their beta)."""
    for k, edit in enumerate((body.get("context_management") or {}).get("edits") or ()):
        kind = edit.get("type") if isinstance(edit, dict) else None
        if kind not in EDITS:
            raise bad("edit_type", k=k, tag=kind)
        for name in edit:
            if name not in EDITS[kind]:
                raise bad("extra", path=f"context_management.edits.{k}.{kind}.{name}")
    for name in body.get("context_management") or {}:
        if name != "edits":
            raise bad("extra", path=f"context_management.{name}")
    for k, server in enumerate(body.get("mcp_servers") or ()):
        for name in ("type", "url", "name"):
            if name not in server:
                raise bad("mcp_server", k=k, name=name)
        for name in server:
            if name not in ("type", "url", "name", "authorization_token", "tool_configuration"):
                raise bad("extra", path=f"mcp_servers.{k}.{name}")
    if body.get("speed") not in (None, "standard", "fast"):
        raise bad("speed")
    for name in body.get("diagnostics") or {}:
        if name != "previous_message_id":
            raise bad("extra", path=f"diagnostics.{name}")


def _previous_turn(messages: list[dict], i: int) -> dict | None:
    """The user or assistant message before message `i`."""
    return next((m for m in reversed(messages[:i]) if m.get("role") != "system"), None)


def _system_message(messages: list[dict], i: int, betas: frozenset[str]) -> str:
    """Check a mid-conversation `role: "system"` message where it stands; return its text."""
    message = messages[i]
    allowed = SYSTEM_MESSAGE_FIELDS | {name for name, beta in SYSTEM_MESSAGE_BETA_FIELDS.items() if beta in betas}
    for name in message:
        if name not in allowed:
            raise bad("extra", path=f"messages.{i}.system.{name}")
    if i == 0:
        raise bad("system_first")
    if i + 1 < len(messages) and messages[i + 1].get("role") == "system":
        raise bad("system_twice", i=i + 1)
    if messages[i - 1].get("role") != "user":
        raise bad("system_after", i=i)
    if i + 1 < len(messages) and messages[i + 1].get("role") != "assistant":
        raise bad("system_before", i=i)
    content = message.get("content")
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
    if not isinstance(blocks, list) or not blocks:
        raise bad("empty_content", i=i)
    texts = []
    for j, block in enumerate(blocks):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise bad("system_content", i=i, j=j)
        for name in block:
            if name not in ("type", "text", "cache_control"):
                raise bad("extra", path=f"messages.{i}.content.{j}.text.{name}")
        if not block.get("text"):
            raise bad("empty_text")
        texts.append(block["text"])
    return "\n".join(texts)


def _check_format_schema(node, path: str) -> None:
    """The JSON Schema subset of structured outputs, checked at every depth."""
    if isinstance(node, list):
        for i, item in enumerate(node):
            _check_format_schema(item, f"{path}/{i}")
        return
    if not isinstance(node, dict):
        return
    if not {"type", "enum", "const", "anyOf", "oneOf", "allOf", "$ref"} & node.keys():
        raise bad("format_untyped", path=path)
    for keyword in FORMAT_UNSUPPORTED:
        if keyword in node:
            raise bad("format_keyword", keyword=keyword, path=path)
    if node.get("minItems") not in (None, 0, 1):
        raise bad("format_keyword", keyword="minItems", path=path)
    if "format" in node and node["format"] not in STRING_FORMATS:
        raise bad("format_keyword", keyword=f"format: {node['format']}", path=path)
    kind = node.get("type")
    if (kind == "object" or (isinstance(kind, list) and "object" in kind) or "properties" in node) \
            and node.get("additionalProperties") is not False:
        raise bad("format_closed", path=path)
    for key in ("properties", "$defs", "definitions"):
        for name, sub in (node.get(key) or {}).items():
            _check_format_schema(sub, f"{path}/{key}/{name}")
    for key in ("items", "anyOf", "allOf"):
        if key in node:
            _check_format_schema(node[key], f"{path}/{key}")


def _recursive(root: dict) -> bool:
    def refs(node):
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    def loops(ref: str, seen: frozenset) -> bool:
        return ref in seen or any(loops(r, seen | {ref}) for r in refs(pointer(root, ref)))

    return any(loops(r, frozenset()) for r in refs(root))



def _blocks(message: dict) -> list[dict]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return content if isinstance(content, list) else []


def _tool_use_ids(message: dict) -> list[str]:
    return [b.get("id") for b in _blocks(message) if isinstance(b, dict) and b.get("type") == "tool_use"]


def _result_text(content) -> str:
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content or () if b.get("type") == "text")


def _check_document(block: dict, path: str) -> None:
    source = block["source"]
    kind = source.get("type") if isinstance(source, dict) else None
    fields = {"text": {"type", "media_type", "data"}, "base64": {"type", "media_type", "data"},
              "url": {"type", "url"}, "content": {"type", "content"}}
    if kind not in fields:
        raise bad("tag", path=f"{path}.document.source", tag=kind, expected="'base64', 'text', 'content', 'url'")
    for name in source:
        if name not in fields[kind]:
            raise bad("extra", path=f"{path}.document.source.{kind}.{name}")
    if kind == "text" and (source.get("media_type") != "text/plain" or not isinstance(source.get("data"), str)):
        raise Reject(400, _error(f"{path}.document.source.text.media_type: Input should be 'text/plain'"))
    if kind == "base64" and source.get("media_type") != "application/pdf":
        raise Reject(400, _error(f"{path}.document.source.base64.media_type: Input should be 'application/pdf'"))
    citations = block.get("citations")
    if citations is not None and (not isinstance(citations, dict) or set(citations) - {"enabled"}):
        raise bad("extra", path=f"{path}.document.citations")


def _cited_document(body: dict) -> list[dict] | None:
    """The answer blocks citing a plain-text document of the last user turn that asks for
    citations: a lead-in, then its first sentence with a `char_location` citation."""
    documents = [b for m in body["messages"] if m.get("role") == "user" for b in _blocks(m)
                 if b.get("type") == "document"]
    last = next((m for m in reversed(body["messages"]) if m.get("role") == "user"), None)
    for block in _blocks(last) if last is not None else ():
        if block.get("type") == "document" and (block.get("citations") or {}).get("enabled") \
                and block["source"]["type"] == "text":
            data = block["source"]["data"]
            sentence = re.match(r"[^.!?]*[.!?]?", data).group(0).strip() or data
            start = data.index(sentence)
            citation = {"type": "char_location", "cited_text": sentence, "document_index": documents.index(block),
                        "document_title": block.get("title"), "start_char_index": start,
                        "end_char_index": start + len(sentence)}
            return [{"type": "text", "text": "According to the document: "},
                    {"type": "text", "text": sentence, "citations": [citation]}]
    return None


def _check_image(block: dict, path: str) -> None:
    source = block["source"]
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64":
        if source.get("media_type") not in MEDIA_TYPES:
            raise bad("media_type", path=f"{path}.image")
        try:
            base64.b64decode(source.get("data") or "", validate=True)
        except (binascii.Error, ValueError):
            raise bad("base64", path=f"{path}.image") from None
        if not source.get("data"):
            raise bad("base64", path=f"{path}.image")
    elif kind == "url":
        if not re.match(r"^https?://[^\s/]+", str(source.get("url"))):
            raise bad("image_url", path=f"{path}.image")
    else:
        raise bad("image_source", path=f"{path}.image", tag=kind)
    for name in source:
        if name not in ({"type", "media_type", "data"} if kind == "base64" else {"type", "url"}):
            raise bad("extra", path=f"{path}.image.source.{kind}.{name}")


def _image(block: dict) -> Image:
    source = block["source"]
    if source["type"] == "url":
        return Image("url", 0, source["url"])
    return Image(source["media_type"], len(base64.b64decode(source["data"])))


def _units(body: dict) -> list[tuple[str, dict, int]]:
    """The prompt in cache order (tools, system, messages): (path, block, words)."""
    units = [(f"tools.{i}", t, 0) for i, t in enumerate(body.get("tools") or ())]
    system = body.get("system")
    if isinstance(system, list):
        units += [(f"system.{j}", b, _words(b.get("text", ""))) for j, b in enumerate(system)]
    elif system:
        units.append(("system", {"type": "text", "text": system}, _words(system)))
    for i, m in enumerate(body.get("messages") or ()):
        for j, b in enumerate(_blocks(m)):
            text = b.get("text", "") if b.get("type") == "text" else (
                _result_text(b.get("content")) if b.get("type") == "tool_result" else "")
            units.append((f"messages.{i}.content.{j}", b, _words(text)))
    return units
