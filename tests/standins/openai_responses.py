"""Stand-in for OpenAI's Responses API (`POST /v1/responses`, `GET|DELETE /v1/responses/{id}`),
strict, answering with the shared fake model exactly as the Chat Completions stand-in does
(same words, same token counts), so a test can compare the two endpoints.

Provenance: shapes learnt from the official openai-python SDK (the `openai.types.responses`
models, the stream accumulator in `lib/streaming/responses`, the live-API snapshots in
`tests/lib/responses`) and from the real API's error bodies as quoted in public issue
threads (unknown parameters, `previous_response_not_found`, `invalid_encrypted_content`,
reasoning items refused by non-reasoning models). No code was copied.

What it checks, as OpenAI does: unknown top-level fields (`unknown_parameter`), a missing
`input`, `previous_response_id` naming a response it never stored, sampling ranges,
`max_output_tokens` below 16, `reasoning` on a model that does not reason, tools in the
flat Responses shape (a Chat-shaped `{"function": {...}}` tool lacks `tools[i].name`),
`text.format` json_schema (named; strict schemas follow strict mode), `include` values,
`function_call_output` answering a call the input never made (and a call left without
its output), reasoning items: only for reasoning models, with `encrypted_content` this
stand-in issued (else `invalid_encrypted_content`) or as the id of a stored item, and an
issued message / function call sent back without the reasoning item it came with.

Answers: reasoning models (o-series, gpt-5 and later, codex; not `-chat`) put a `reasoning`
item first ("Thinking about: <question>", its words billed as reasoning tokens and counted
against `max_output_tokens`), with a summary when `reasoning.summary` asks and
`encrypted_content` when `include` asks for `reasoning.encrypted_content`. Function calls are
`function_call` items (`call_id` "call_…"; arguments streamed 7 characters at a time; a call
of a tool inside a `namespace` tool carries `namespace`). With a `web_search` tool and a
question asking for a search, a `web_search_call` item, then a message citing
`NATIVE_SOURCE` with a `url_citation` annotation. An answer cut by `max_output_tokens` is
`status: "incomplete"`, `incomplete_details.reason: "max_output_tokens"`.

Streams: `event:`/`data:` pairs with increasing `sequence_number`, from `response.created`
and `response.in_progress` to `response.completed` (or `response.incomplete`). Test markers
as on chat: `[[status:N]]`, `[[delay:S]]`, `[[slow:S]]`, `[[cut:N]]` (the connection drops
after N pieces of the answer: text deltas, argument deltas).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import time

import orjson

from .fake_model import NATIVE_SOURCE, Conversation, Image, Turn, native_search, respond
from .harness import Recorded, Reject, disconnected, send_json, sleep_unless_gone
from .structured import instructed, resolved, shape

MARKER = re.compile(r"\[\[(status|delay|slow|cut):([0-9.]+)\]\]")
REASONING_MODEL = re.compile(r"^(o\d|gpt-[5-9]|codex)(?!.*-chat)")
KNOWN_FIELDS = {
    "model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "text",
    "reasoning", "max_output_tokens", "max_tool_calls", "temperature", "top_p", "top_logprobs",
    "metadata", "store", "include", "stream", "stream_options", "previous_response_id",
    "conversation", "background", "prompt", "prompt_cache_key", "prompt_cache_retention",
    "safety_identifier", "service_tier", "truncation", "user", "context_management",
    "access_programs", "background_options", "image", "moderation", "prompt_cache_options",
    # Not in the SDK's types, but OpenAI takes it: Codex CLI sends it on every request.
    "client_metadata",
}
INCLUDABLE = ("file_search_call.results", "web_search_call.results", "web_search_call.action.sources",
              "message.input_image.image_url", "computer_call_output.output.image_url",
              "code_interpreter_call.outputs", "reasoning.encrypted_content", "message.output_text.logprobs")
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
SEARCH_TOOLS = {"web_search", "web_search_2025_08_26", "web_search_preview", "web_search_preview_2025_03_11"}
# Hosted and client tools the real API takes that this model never calls.
OTHER_TOOLS = {"file_search", "computer_use_preview", "computer", "mcp", "code_interpreter", "image_generation",
               "local_shell", "shell", "custom", "apply_patch", "tool_search", "programmatic_tool_calling"}
# Input item types the real API takes that carry nothing this model reads.
OTHER_ITEMS = {"file_search_call", "computer_call", "computer_call_output", "image_generation_call",
               "code_interpreter_call", "local_shell_call", "local_shell_call_output", "shell_call",
               "shell_call_output", "apply_patch_call", "apply_patch_call_output", "mcp_list_tools",
               "mcp_approval_request", "mcp_approval_response", "mcp_call", "custom_tool_call",
               "custom_tool_call_output", "item_reference", "compaction", "tool_search_call",
               "tool_search_output", "additional_tools"}
PIECE = 7  # characters of arguments per streamed delta, as the chat stand-in streams them


def _error(message: str, param: str | None = None, code: str | None = None,
           type_: str = "invalid_request_error") -> dict:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _bad(message: str, param: str | None = None, code: str | None = None, status: int = 400) -> Reject:
    return Reject(status, _error(message, param, code))


def _id(prefix: str) -> str:
    return f"{prefix}_{os.urandom(24).hex()}"


def is_reasoning_model(model: str) -> bool:
    return bool(REASONING_MODEL.match(model))


class Request:
    """A checked Responses request: the conversation for the fake model and what shapes the answer."""

    def __init__(self, body: dict) -> None:
        self.body = body
        self.model: str = body["model"]
        self.conv = Conversation()
        self.reasoning = body.get("reasoning") or {}
        self.include = set(body.get("include") or [])
        self.search = False  # a web_search tool is offered
        self.namespaces: dict[str, str] = {}  # tool name -> its namespace
        self.items: list[dict] = []  # the whole input as items, earlier stored turns first
        self.last_user = ""

    @property
    def reasons(self) -> bool:
        return is_reasoning_model(self.model) and self.reasoning.get("effort") != "none"


class ResponsesAPI:
    def __init__(self) -> None:
        self._secret = os.urandom(16)
        self.stored: dict[str, dict] = {}  # response id -> {"response", "items"} (store not false)
        self.persisted: set[str] = set()  # ids of items inside stored responses
        self.needs_reasoning: dict[str, str] = {}  # issued message / call id -> its reasoning id
        self.billed: list[dict] = []

    def reset(self) -> None:
        self.stored.clear()
        self.persisted.clear()
        self.needs_reasoning.clear()
        self.billed.clear()

    # ------------------------------------------------------------ encrypted reasoning

    def encrypt(self, reasoning_id: str, text: str) -> str:
        payload = base64.urlsafe_b64encode(orjson.dumps({"id": reasoning_id, "text": text})).decode()
        mac = hmac.new(self._secret, payload.encode(), hashlib.sha256).hexdigest()
        return f"gAAAAA{payload}.{mac}"

    def decrypt(self, token: str) -> dict | None:
        payload, _, mac = token.removeprefix("gAAAAA").rpartition(".")
        good = hmac.new(self._secret, payload.encode(), hashlib.sha256).hexdigest()
        if not token.startswith("gAAAAA") or not hmac.compare_digest(mac, good):
            return None
        return orjson.loads(base64.urlsafe_b64decode(payload))

    # ------------------------------------------------------------ routes

    async def handle(self, rec: Recorded, send) -> None:
        parts = rec.path.removeprefix("/v1/responses").strip("/").split("/")
        if rec.method == "POST" and parts == [""]:
            await self.create(rec, send)
        elif rec.method in ("GET", "DELETE") and len(parts) == 1 and parts[0]:
            stored = self.stored.get(parts[0])
            if stored is None:
                raise _bad(f"Response with id '{parts[0]}' not found.", status=404)
            if rec.method == "GET":
                await send_json(send, 200, stored["response"])
            else:
                del self.stored[parts[0]]
                await send_json(send, 200, {"id": parts[0], "object": "response", "deleted": True})
        else:
            raise _bad(f"Unknown request URL: {rec.method} {rec.path}", code="unknown_url", status=404)

    async def create(self, rec: Recorded, send) -> None:
        body = rec.json
        if not isinstance(body, dict):
            raise _bad("We could not parse the JSON body of your request.")
        req = self.checked(body)
        markers = {k: float(v) for k, v in MARKER.findall(req.last_user)}
        if "delay" in markers and not await sleep_unless_gone(rec, markers["delay"]):
            return
        if "status" in markers:
            status = int(markers["status"])
            raise Reject(status, _error(f"stand-in failure {status}", type_="server_error"))
        response = self.answer(req)
        if body.get("store") is not False:
            self.stored[response["id"]] = {"response": response, "items": [*req.items, *response["output"]]}
            self.persisted.update(item["id"] for item in response["output"])
        if not body.get("stream"):
            if await disconnected(rec):
                return
            self.billed.append(response["usage"])
            await send_json(send, 200, response)
            return
        await self.stream(rec, send, req, response, markers)

    # ------------------------------------------------------------ the request

    def checked(self, body: dict) -> Request:
        unknown = sorted(set(body) - KNOWN_FIELDS)
        if unknown:
            raise _bad(f"Unknown parameter: '{unknown[0]}'.", unknown[0], "unknown_parameter")
        if not isinstance(body.get("model"), str) or not body["model"]:
            raise _bad("Missing required parameter: 'model'.", "model", "missing_required_parameter")
        previous = body.get("previous_response_id")
        if body.get("input") is None and previous is None and body.get("prompt") is None:
            raise _bad("Missing required parameter: 'input'.", "input", "missing_required_parameter")
        if previous is not None and body.get("conversation") is not None:
            raise _bad("Mutually exclusive parameters: Ensure you are only providing one of: "
                       "'previous_response_id' or 'conversation'.", None, "mutually_exclusive_parameters")
        if body.get("conversation") is not None:
            raise _bad(f"Conversation with id '{body['conversation']}' not found.", "conversation", status=404)
        _check_range(body, "temperature", 0, 2)
        _check_range(body, "top_p", 0, 1)
        limit = body.get("max_output_tokens")
        if limit is not None and (not isinstance(limit, int) or limit < 16):
            raise _bad(f"Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16, "
                       f"but got {limit} instead.", "max_output_tokens", "integer_below_min_value")
        _check_metadata(body.get("metadata"))
        for i, value in enumerate(body.get("include") or []):
            if value not in INCLUDABLE:
                raise _bad(f"Invalid value: '{value}'. Supported values are: "
                           + ", ".join(f"'{v}'" for v in INCLUDABLE) + ".", f"include[{i}]", "invalid_value")
        req = Request(body)
        self._reasoning(req)
        req.conv.system = body.get("instructions") or ""
        if previous is not None:
            stored = self.stored.get(previous)
            if stored is None:
                raise _bad(f"Previous response with id '{previous}' not found.", "previous_response_id",
                           "previous_response_not_found")
            req.items.extend(stored["items"])
        given = body.get("input")
        if isinstance(given, str):
            given = [{"role": "user", "content": given}]
        elif given is not None and not isinstance(given, list):
            raise _bad("Invalid type for 'input': expected one of a string or array of input items, but got "
                       f"{type(given).__name__} instead.", "input", "invalid_type")
        start = len(req.items)
        req.items.extend(given or [])
        self._items(req, start)
        self._tools(req)
        self._format(req)
        req.conv.max_tokens = limit
        req.last_user = next((t.text for t in reversed(req.conv.turns) if t.role == "user"), "")
        return req

    def _reasoning(self, req: Request) -> None:
        given = req.reasoning
        if not isinstance(given, dict):
            raise _bad("Invalid type for 'reasoning': expected an object.", "reasoning", "invalid_type")
        for key in ("effort", "summary", "generate_summary"):
            if given.get(key) is not None and not is_reasoning_model(req.model):
                raise _bad(f"Unsupported parameter: 'reasoning.{key}' is not supported with this model.",
                           f"reasoning.{key}", "unsupported_parameter")
        effort = given.get("effort")
        if effort is not None and effort not in EFFORTS:
            raise _bad(f"Invalid value: '{effort}'. Supported values are: "
                       + ", ".join(f"'{e}'" for e in EFFORTS) + ".", "reasoning.effort", "invalid_value")
        summary = given.get("summary")
        if summary is not None and summary not in ("auto", "concise", "detailed"):
            raise _bad(f"Invalid value: '{summary}'. Supported values are: 'auto', 'concise', and 'detailed'.",
                       "reasoning.summary", "invalid_value")

    def _items(self, req: Request, start: int) -> None:
        """Turn the input items into the fake model's turns, checking them as OpenAI does."""
        conv, issued, answered, reasoning_ids = req.conv, {}, set(), set()
        for i, item in enumerate(req.items):
            if not isinstance(item, dict):
                raise _bad(f"Invalid type for 'input[{i}]': expected an input item.", f"input[{i}]", "invalid_type")
            kind = item.get("type", "message" if "role" in item else None)
            where = f"input[{i - start}]" if i >= start else "input"
            if kind == "message":
                self._message(conv, item, where)
            elif kind == "function_call":
                for key in ("call_id", "name", "arguments"):
                    if not isinstance(item.get(key), str):
                        raise _bad(f"Missing required parameter: '{where}.{key}'.", f"{where}.{key}",
                                   "missing_required_parameter")
                issued[item["call_id"]] = item["name"]
                turn = _assistant_turn(conv)
                turn.tool_calls.append((item["name"], orjson.loads(item["arguments"] or "{}")))
            elif kind == "function_call_output":
                call_id = item.get("call_id")
                if call_id not in issued:
                    raise _bad(f"No tool call found for function call output with call_id {call_id}.", "input")
                answered.add(call_id)
                output = item.get("output")
                text = output if isinstance(output, str) else "".join(
                    p.get("text", "") for p in output or [] if p.get("type") == "input_text")
                if conv.turns and conv.turns[-1].role == "user" and conv.turns[-1].tool_results:
                    conv.turns[-1].tool_results.append((issued[call_id], text))
                else:
                    conv.turns.append(Turn("user", tool_results=[(issued[call_id], text)]))
            elif kind == "reasoning":
                reasoning_ids.add(self._reasoning_item(req, item))
            elif kind == "web_search_call":
                continue
            elif kind not in OTHER_ITEMS:
                raise _bad(f"Invalid value: '{kind}'. Supported values are: 'message', 'function_call', "
                           "'function_call_output', 'reasoning', and other item types.", f"{where}.type",
                           "invalid_value")
        missing = [c for c in issued if c not in answered]
        if missing:
            raise _bad(f"No tool output found for function call {missing[0]}.", "input")
        if is_reasoning_model(req.model):
            for item in req.items:
                needed = self.needs_reasoning.get(item.get("id") or "")
                if needed and needed not in reasoning_ids:
                    raise _bad(f"Item '{item['id']}' of type '{item['type']}' was provided without its "
                               f"required 'reasoning' item: '{needed}'.", "input")

    def _message(self, conv: Conversation, item: dict, where: str) -> None:
        role, content = item.get("role"), item.get("content")
        if role not in ("user", "assistant", "system", "developer"):
            raise _bad(f"Invalid value: '{role}'. Supported values are: 'assistant', 'system', 'developer', "
                       "and 'user'.", f"{where}.role", "invalid_value")
        parts = [{"type": "output_text" if role == "assistant" else "input_text", "text": content}] \
            if isinstance(content, str) else content
        if not isinstance(parts, list):
            raise _bad(f"Invalid type for '{where}.content': expected one of a string or array of input "
                       "items.", f"{where}.content", "invalid_type")
        allowed = {"output_text", "refusal"} if role == "assistant" else {"input_text", "input_image", "input_file"}
        text, images = "", []
        for j, part in enumerate(parts):
            kind = part.get("type")
            if kind not in allowed:
                raise _bad(f"Invalid value: '{kind}'. Supported values are: "
                           + ", ".join(f"'{k}'" for k in sorted(allowed)) + ".",
                           f"{where}.content[{j}].type", "invalid_value")
            if kind in ("input_text", "output_text"):
                text += part.get("text", "")
            elif kind == "input_image":
                images.append(_image(part))
        if role in ("system", "developer"):
            conv.system += text
        elif role == "assistant":
            turn = _assistant_turn(conv)
            turn.text += text
        else:
            conv.turns.append(Turn("user", text=text, images=images))

    def _reasoning_item(self, req: Request, item: dict) -> str:
        if not is_reasoning_model(req.model):
            raise _bad("Reasoning input items can only be provided to a reasoning or computer use model. "
                       "Remove reasoning items from your input and try again.", "input")
        token = item.get("encrypted_content")
        if token is not None:
            opened = self.decrypt(token) if isinstance(token, str) else None
            if opened is None:
                shown = f"{token[:4]}...{token[-4:]}" if isinstance(token, str) else "?"
                raise _bad(f"The encrypted content {shown} could not be verified.", None,
                           "invalid_encrypted_content")
            return opened["id"]
        if item.get("id") not in self.persisted:
            raise _bad(f"Item with id '{item.get('id')}' not found. Items are not persisted when `store` is set "
                       "to false. Try again with `store` set to true, or remove this item from your input.",
                       "input", status=404)
        return item["id"]

    def _tools(self, req: Request) -> None:
        tools = req.body.get("tools") or []
        for i, tool in enumerate(tools):
            kind = tool.get("type") if isinstance(tool, dict) else None
            if kind == "function":
                req.conv.tools.append(_function(tool, f"tools[{i}]"))
            elif kind == "namespace":
                for j, inner in enumerate(tool.get("tools") or []):
                    if inner.get("type") == "function":
                        req.conv.tools.append(_function(inner, f"tools[{i}].tools[{j}]"))
                        req.namespaces[inner["name"]] = tool.get("name")
            elif kind in SEARCH_TOOLS:
                req.search = True
            elif kind not in OTHER_TOOLS:
                raise _bad(f"Invalid value: '{kind}'. Supported values are: 'function', 'web_search', "
                           "'web_search_preview', 'file_search', 'mcp', and other tool types.",
                           f"tools[{i}].type", "invalid_value")
        choice = req.body.get("tool_choice")
        names = {t["name"] for t in req.conv.tools}
        if isinstance(choice, dict):
            if choice.get("type") == "function":
                if choice.get("name") not in names:
                    raise _bad(f"Tool choice 'function' with name '{choice.get('name')}' not found in 'tools' "
                               "parameter.", "tool_choice")
                choice = choice["name"]
            elif choice.get("type") == "allowed_tools":
                allowed = {t.get("name") for t in choice.get("tools") or []}
                req.conv.tools = [t for t in req.conv.tools if t["name"] in allowed]
                choice = "required" if choice.get("mode") == "required" else "auto"
            elif choice.get("type") in SEARCH_TOOLS:
                choice = "auto"
            else:
                raise _bad(f"Invalid value: '{choice.get('type')}'.", "tool_choice.type", "invalid_value")
        elif choice not in (None, "none", "auto", "required"):
            raise _bad(f"Invalid value: '{choice}'. Supported values are: 'none', 'auto', and 'required'.",
                       "tool_choice", "invalid_value")
        req.conv.tool_choice = choice

    def _format(self, req: Request) -> None:
        text = req.body.get("text") or {}
        fmt = text.get("format") if isinstance(text, dict) else None
        verbosity = text.get("verbosity") if isinstance(text, dict) else None
        if verbosity is not None and verbosity not in ("low", "medium", "high"):
            raise _bad(f"Invalid value: '{verbosity}'. Supported values are: 'low', 'medium', and 'high'.",
                       "text.verbosity", "invalid_value")
        if fmt is None:
            return
        kind = fmt.get("type") if isinstance(fmt, dict) else None
        if kind not in ("text", "json_object", "json_schema"):
            raise _bad(f"Invalid value: '{kind}'. Supported values are: 'text', 'json_object', and 'json_schema'.",
                       "text.format.type", "invalid_value")
        if kind == "json_object":
            if "json" not in orjson.dumps([req.items, req.conv.system]).decode().lower():
                raise _bad("Response input messages must contain the word 'json' in some form to use "
                           "'text.format' of type 'json_object'.", "input")
            req.conv.json_mode = True
            schema, _ = instructed(req.conv.system)
            req.conv.response_schema = resolved(schema) if schema is not None else None
        elif kind == "json_schema":
            # The strict-mode rules chat's response_format follows (imported here: that module imports this one).
            from .openai_api import _strict_problem

            if not fmt.get("name"):
                raise _bad("Missing required parameter: 'text.format.name'.", "text.format.name",
                           "missing_required_parameter")
            schema = fmt.get("schema")
            if not isinstance(schema, dict):
                raise _bad("Missing required parameter: 'text.format.schema'.", "text.format.schema",
                           "missing_required_parameter")
            if fmt.get("strict"):
                problem = (f"schema must be a JSON Schema of 'type: \"object\"', got 'type: \"{schema.get('type')}\"'."
                           if schema.get("type") != "object" else _strict_problem(schema, ()))
                if problem:
                    raise _bad(f"Invalid schema for response_format '{fmt['name']}': {problem}",
                               "text.format.schema", "invalid_json_schema")
            req.conv.response_schema = resolved(schema)

    # ------------------------------------------------------------ the answer

    def answer(self, req: Request) -> dict:
        conv, body = req.conv, req.body
        thought = f"Thinking about: {req.last_user}" if req.reasons else ""
        thought_tokens = len(thought.split())
        budget = None if conv.max_tokens is None else conv.max_tokens - thought_tokens
        spent = budget is not None and budget <= 0  # reasoning used every allowed token
        if spent:
            thought_tokens = conv.max_tokens
        conv.max_tokens = 0 if spent else budget
        answer = respond(conv)
        shape(answer, conv)
        if body.get("parallel_tool_calls") is False:
            answer.tool_calls = answer.tool_calls[:1]
        searched, span = self._search(req, answer)
        output: list[dict] = []
        reasoning_id = None
        if thought:
            reasoning_id = _id("rs")
            item = {"id": reasoning_id, "type": "reasoning", "summary": []}
            if req.reasoning.get("summary"):
                item["summary"] = [{"type": "summary_text", "text": thought}]
            if "reasoning.encrypted_content" in req.include:
                item["encrypted_content"] = self.encrypt(reasoning_id, thought)
            output.append(item)
        if searched is not None:
            action = {"type": "search", "query": searched}
            if "web_search_call.action.sources" in req.include:
                action["sources"] = [{"type": "url", "url": NATIVE_SOURCE[0]}]
            output.append({"id": _id("ws"), "type": "web_search_call", "status": "completed", "action": action})
        incomplete = answer.finish == "length" or spent
        cited = [{"type": "url_citation", "start_index": span[0], "end_index": span[1],
                  "url": NATIVE_SOURCE[0], "title": NATIVE_SOURCE[1]}] if searched is not None else []
        if answer.tool_calls:
            for name, args in answer.tool_calls:
                call = {"id": _id("fc"), "type": "function_call", "status": "completed",
                        "arguments": orjson.dumps(args).decode(), "call_id": _id("call")[:29], "name": name}
                if name in req.namespaces:
                    call["namespace"] = req.namespaces[name]
                output.append(call)
        elif not spent:
            output.append({"id": _id("msg"), "type": "message", "status": "incomplete" if incomplete else "completed",
                           "content": [{"type": "output_text", "annotations": cited, "logprobs": [],
                                        "text": answer.text}], "role": "assistant"})
        if reasoning_id:
            for item in output[1:]:
                self.needs_reasoning[item["id"]] = reasoning_id
        completion = 0 if spent else answer.completion_tokens
        usage = {"input_tokens": answer.prompt_tokens,
                 "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                 "output_tokens": completion + thought_tokens,
                 "output_tokens_details": {"reasoning_tokens": thought_tokens},
                 "total_tokens": answer.prompt_tokens + completion + thought_tokens}
        now = int(time.time())
        return {
            "id": _id("resp"), "object": "response", "created_at": now,
            "status": "incomplete" if incomplete else "completed", "background": False, "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
            "instructions": body.get("instructions"), "max_output_tokens": body.get("max_output_tokens"),
            "max_tool_calls": body.get("max_tool_calls"), "model": req.model, "output": output,
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": body.get("previous_response_id"),
            "prompt_cache_key": body.get("prompt_cache_key"),
            "reasoning": {"effort": req.reasoning.get("effort", "medium" if req.reasons else None),
                          "summary": req.reasoning.get("summary")},
            "safety_identifier": body.get("safety_identifier"), "service_tier": "default",
            "store": body.get("store", True), "temperature": body.get("temperature", 1.0),
            "text": {"format": (body.get("text") or {}).get("format") or {"type": "text"},
                     "verbosity": (body.get("text") or {}).get("verbosity") or "medium"},
            "tool_choice": body.get("tool_choice", "auto"), "tools": _echoed_tools(body.get("tools") or []),
            "top_logprobs": body.get("top_logprobs", 0), "top_p": body.get("top_p", 1.0),
            "truncation": body.get("truncation") or "disabled", "usage": usage, "user": body.get("user"),
            "metadata": body.get("metadata") or {}, "completed_at": None if incomplete else now,
        }

    @staticmethod
    def _search(req: Request, answer) -> tuple[str | None, tuple[int, int]]:
        """OpenAI's hosted web search: (the query, the cited span) when this answer searched,
        which then becomes the answer's text."""
        last = req.conv.turns[-1] if req.conv.turns else None
        if not req.search or req.conv.tool_choice == "none" or last is None or last.tool_results:
            return None, (0, 0)
        found = native_search(req.conv)
        if found is None:
            return None, (0, 0)
        query, answer.text, span = found
        answer.tool_calls, answer.finish = [], "stop"
        return query, span

    # ------------------------------------------------------------ the stream

    async def stream(self, rec: Recorded, send, req: Request, response: dict, markers: dict) -> None:
        events = list(_events(response))
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream; charset=utf-8")]})
        pieces = 0
        for number, (name, data, is_piece) in enumerate(events):
            if "slow" in markers and not await sleep_unless_gone(rec, markers["slow"]):
                return
            if is_piece:
                if "cut" in markers and pieces == int(markers["cut"]):
                    raise ConnectionAbortedError("stand-in: stream cut on purpose ([[cut]] marker)")
                pieces += 1
            if number == len(events) - 1:
                if await disconnected(rec):
                    return
                self.billed.append(response["usage"])
            frame = {"type": name, "sequence_number": number, **data}
            await send({"type": "http.response.body", "more_body": True,
                        "body": f"event: {name}\ndata: ".encode() + orjson.dumps(frame) + b"\n\n"})
        await send({"type": "http.response.body", "body": b""})


def _events(response: dict):
    """(event type, fields, whether it is a piece of the answer) for a finished response."""
    started = {**response, "status": "in_progress", "output": [], "usage": None, "incomplete_details": None,
               "completed_at": None}
    yield "response.created", {"response": started}, False
    yield "response.in_progress", {"response": started}, False
    for index, item in enumerate(response["output"]):
        where = {"item_id": item["id"], "output_index": index}
        kind = item["type"]
        if kind == "reasoning":
            yield "response.output_item.added", {"output_index": index, "item": {
                "id": item["id"], "type": "reasoning", "summary": []}}, False
            for k, part in enumerate(item["summary"]):
                yield "response.reasoning_summary_part.added", {
                    **where, "summary_index": k, "part": {"type": "summary_text", "text": ""}}, False
                for piece in _words(part["text"]):
                    yield "response.reasoning_summary_text.delta", {**where, "summary_index": k, "delta": piece}, False
                yield "response.reasoning_summary_text.done", {**where, "summary_index": k, "text": part["text"]}, False
                yield "response.reasoning_summary_part.done", {**where, "summary_index": k, "part": part}, False
        elif kind == "web_search_call":
            yield "response.output_item.added", {"output_index": index, "item": {
                **item, "status": "in_progress", "action": {"type": "search"}}}, False
            for step in ("in_progress", "searching", "completed"):
                yield f"response.web_search_call.{step}", where, False
        elif kind == "function_call":
            yield "response.output_item.added", {"output_index": index, "item": {
                **item, "arguments": "", "status": "in_progress"}}, False
            args = item["arguments"]
            for k in range(0, len(args), PIECE):
                yield "response.function_call_arguments.delta", {**where, "delta": args[k:k + PIECE]}, True
            yield "response.function_call_arguments.done", {**where, "name": item["name"], "arguments": args}, False
        elif kind == "message":
            part = item["content"][0]
            yield "response.output_item.added", {"output_index": index, "item": {
                **item, "status": "in_progress", "content": []}}, False
            at = {**where, "content_index": 0}
            yield "response.content_part.added", {**at, "part": {**part, "text": "", "annotations": []}}, False
            for piece in _words(part["text"]):
                yield "response.output_text.delta", {**at, "delta": piece, "logprobs": [],
                                                     "obfuscation": os.urandom(4).hex()}, True
            for k, annotation in enumerate(part["annotations"]):
                yield "response.output_text.annotation.added", {
                    **at, "annotation_index": k, "annotation": annotation}, False
            yield "response.output_text.done", {**at, "text": part["text"], "logprobs": []}, False
            yield "response.content_part.done", {**at, "part": part}, False
        yield "response.output_item.done", {"output_index": index, "item": item}, False
    final = "response.incomplete" if response["status"] == "incomplete" else "response.completed"
    yield final, {"response": response}, False


def _words(text: str) -> list[str]:
    return re.findall(r"\s*\S+", text) or ([text] if text else [])


def _assistant_turn(conv: Conversation) -> Turn:
    """The assistant turn items join: a message and the calls after it are one turn."""
    if not conv.turns or conv.turns[-1].role != "assistant":
        conv.turns.append(Turn("assistant"))
    return conv.turns[-1]


def _function(tool: dict, where: str) -> dict:
    if not isinstance(tool.get("name"), str) or not tool["name"]:
        raise _bad(f"Missing required parameter: '{where}.name'.", f"{where}.name", "missing_required_parameter")
    return {"name": tool["name"], "parameters": resolved(tool.get("parameters") or {})}


def _echoed_tools(tools: list[dict]) -> list[dict]:
    """The tools as the response lists them: function tools with their defaults filled in."""
    return [{"description": None, "parameters": None, "strict": True, **t} if t.get("type") == "function" else t
            for t in tools]


def _image(part: dict) -> Image:
    url = part.get("image_url")
    if not isinstance(url, str):
        return Image("file", 0, part.get("file_id"))
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        return Image(header[5:].split(";")[0], len(base64.b64decode(data)))
    return Image("url", 0, url)


def _check_range(body: dict, name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if value > high:
        raise _bad(f"Invalid '{name}': decimal above maximum value. Expected a value <= {high}, but got "
                   f"{value} instead.", name, "decimal_above_max_value")
    if value < low:
        raise _bad(f"Invalid '{name}': decimal below minimum value. Expected a value >= {low}, but got "
                   f"{value} instead.", name, "decimal_below_min_value")


def _check_metadata(metadata) -> None:
    if metadata is None:
        return
    if not isinstance(metadata, dict) or len(metadata) > 16:
        raise _bad("Invalid 'metadata': expected an object with at most 16 pairs.", "metadata", "invalid_value")
    for key, value in metadata.items():
        if not isinstance(value, str):
            raise _bad(f"Invalid type for 'metadata.{key}': expected a string, but got "
                       f"{type(value).__name__} instead.", f"metadata.{key}", "invalid_type")
        if len(key) > 64 or len(value) > 512:
            raise _bad(f"Invalid 'metadata.{key}': string too long.", f"metadata.{key}", "string_above_max_length")
