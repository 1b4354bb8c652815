"""Stand-in for OpenAI's Chat Completions API (`POST /v1/chat/completions`), strict; its
Responses API (`/v1/responses`) lives in openai_responses.py and answers with the same model.

Rejects as the real API does: a wrong or missing bearer key (401), unknown top-level
fields ("Unrecognized request argument supplied"), bad roles, a `tool` message whose
`tool_call_id` no earlier assistant turn issued, out-of-range sampling values.

`response_format` is checked as OpenAI checks it: a known type, a named `json_schema`, a
strict schema that follows strict mode (closed objects, every property required, no
unsupported keyword), the word "json" in the messages for `json_object`; `deepseek*` models
refuse `json_schema`, as DeepSeek does. Answers follow the schema (see structured.py for
the instruction it follows and the `[[bad-json]]` / `[[off-schema]]` markers).

With `web_search_options` (OpenAI's search models), a user text asking for a search is
answered citing a source, with a `url_citation` in `annotations` (a delta in a stream).

Test markers in the last user text: `[[status:503]]` answers with that error status,
`[[delay:0.5]]` waits before answering, `[[slow:0.1]]` waits between stream events,
`[[cut:2]]` drops the connection of a stream after that many pieces of the answer (no
finish_reason, no [DONE], the chunked body never terminated), as a network failure would.
A request that continues an answer (fake_model's `continued`) ignores the markers. Every
answer that reached a still-connected client is added to `billed` (its usage), so tests
can compare the gateway's cost accounting with what the provider would have charged.
"""

from __future__ import annotations

import base64
import re
import time

import orjson

from .fake_model import NATIVE_SOURCE, Conversation, Image, Turn, continued, native_search, respond
from .harness import Recorded, Reject, StandInApp, disconnected, send_json, sleep_unless_gone
from .openai_responses import ResponsesAPI
from .structured import instructed, resolved, shape

MARKER = re.compile(r"\[\[(status|delay|slow|cut):([0-9.]+)\]\]")

KNOWN_FIELDS = {
    "model", "messages", "temperature", "max_tokens", "max_completion_tokens", "top_p", "stop",
    "frequency_penalty", "presence_penalty", "seed", "n", "user", "tools", "tool_choice",
    "parallel_tool_calls", "response_format", "stream", "stream_options", "logprobs",
    "top_logprobs", "logit_bias", "reasoning_effort", "metadata", "store", "service_tier",
    "web_search_options", "prediction", "modalities", "audio", "verbosity", "prompt_cache_key",
    "safety_identifier", "functions", "function_call", "prompt_cache_retention",
    "prompt_cache_options", "moderation",
}
ROLES = {"system", "developer", "user", "assistant", "tool", "function"}


def _error(message: str, param: str | None = None, code: str | None = None,
           type_: str = "invalid_request_error"):
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


class OpenAIStandIn(StandInApp):
    def __init__(self, api_key: str = "sk-openai-test") -> None:
        super().__init__()
        self.api_key = api_key
        self.billed: list[dict] = []
        self.responses = ResponsesAPI()  # its `billed` holds what Responses answers cost

    def reset(self) -> None:
        super().reset()
        self.billed.clear()
        self.responses.reset()

    async def handle(self, rec: Recorded, send) -> None:
        responses = rec.path == "/v1/responses" or rec.path.startswith("/v1/responses/")
        if not responses and (rec.path != "/v1/chat/completions" or rec.method != "POST"):
            raise Reject(404, _error(f"Unknown request URL: {rec.method} {rec.path}", code="unknown_url"))
        if rec.headers.get("authorization") != f"Bearer {self.api_key}":
            raise Reject(401, _error("Incorrect API key provided.", code="invalid_api_key"))
        if responses:
            await self.responses.handle(rec, send)
            return
        body = rec.json
        if not isinstance(body, dict):
            raise Reject(400, _error("We could not parse the JSON body of your request."))
        conv = self.conversation(body)
        last_user = next((t.text for t in reversed(conv.turns) if t.role == "user"), "")
        markers = {k: float(v) for k, v in MARKER.findall(last_user)} if continued(conv) is None else {}
        if "delay" in markers and not await sleep_unless_gone(rec, markers["delay"]):
            return
        if "status" in markers:
            raise Reject(int(markers["status"]), _error(f"stand-in failure {int(markers['status'])}",
                                                         type_="server_error"))
        n = body.get("n") or 1
        answer = respond(conv)
        shape(answer, conv)
        cited = _native_search(body, conv, answer)
        created = int(time.time())
        cid = f"chatcmpl-standin{len(self.requests)}"
        finish = {"stop_sequence": "stop"}.get(answer.finish, answer.finish)
        usage = {"prompt_tokens": answer.prompt_tokens, "completion_tokens": answer.completion_tokens,
                 "total_tokens": answer.prompt_tokens + answer.completion_tokens,
                 "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                 "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0}}
        calls = [{"id": f"call_std{i}", "type": "function",
                  "function": {"name": name, "arguments": orjson.dumps(args).decode()}}
                 for i, (name, args) in enumerate(answer.tool_calls)]
        if not body.get("stream"):
            message = {"role": "assistant", "content": answer.text if not calls else None,
                       "refusal": None, "annotations": cited}
            if calls:
                message["tool_calls"] = calls
            if await disconnected(rec):
                return
            self.billed.append(usage)
            await send_json(send, 200, {
                "id": cid, "object": "chat.completion", "created": created, "model": body["model"],
                "choices": [{"index": i, "message": message, "logprobs": None, "finish_reason": finish}
                            for i in range(n)],
                "usage": usage, "service_tier": "default", "system_fingerprint": "fp_standin"})
            return
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        base = {"id": cid, "object": "chat.completion.chunk", "created": created,
                "model": body["model"], "system_fingerprint": "fp_standin"}

        def chunk(delta, finish_reason=None, index=0):
            c = {**base, "choices": [{"index": index, "delta": delta, "logprobs": None,
                                      "finish_reason": finish_reason}]}
            if include_usage:
                c["usage"] = None
            return b"data: " + orjson.dumps(c) + b"\n\n"

        events = []
        for i in range(n):
            events.append(chunk({"role": "assistant", "content": "", "refusal": None}, index=i))
            if calls:
                for j, call in enumerate(calls):
                    events.append(chunk({"tool_calls": [{"index": j, "id": call["id"], "type": "function",
                                                         "function": {"name": call["function"]["name"], "arguments": ""}}]}, index=i))
                    args = call["function"]["arguments"]
                    for k in range(0, len(args), 7):
                        events.append(chunk({"tool_calls": [{"index": j, "function": {"arguments": args[k:k + 7]}}]}, index=i))
            else:
                for piece in answer.words():
                    events.append(chunk({"content": piece}, index=i))
            if cited:
                events.append(chunk({"annotations": cited}, index=i))
            events.append(chunk({}, finish, index=i))
        if include_usage:
            events.append(b"data: " + orjson.dumps({**base, "choices": [], "usage": usage}) + b"\n\n")
        events.append(b"data: [DONE]\n\n")
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        billing_at = len(events) - (2 if include_usage else 1)  # the usage chunk, else [DONE]
        for k, event in enumerate(events):
            if "slow" in markers and not await sleep_unless_gone(rec, markers["slow"]):
                return
            if "cut" in markers and k == 1 + int(markers["cut"]):  # the role chunk, then pieces
                raise ConnectionAbortedError("stand-in: stream cut on purpose ([[cut]] marker)")
            if k == billing_at:
                if await disconnected(rec):
                    return
                self.billed.append(usage)
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    def conversation(self, body: dict) -> Conversation:
        unknown = sorted(set(body) - KNOWN_FIELDS)
        if unknown:
            raise Reject(400, _error(f"Unrecognized request argument supplied: {unknown[0]}", unknown[0]))
        if not isinstance(body.get("model"), str) or not body["model"]:
            raise Reject(400, _error("you must provide a model parameter", "model"))
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise Reject(400, _error("'messages' must contain at least 1 item", "messages"))
        temperature = body.get("temperature")
        if temperature is not None and not 0 <= temperature <= 2:
            raise Reject(400, _error("temperature must be between 0 and 2", "temperature"))
        top_p = body.get("top_p")
        if top_p is not None and not 0 <= top_p <= 1:
            raise Reject(400, _error("top_p must be between 0 and 1", "top_p"))
        conv = Conversation()
        issued: dict[str, str] = {}
        for i, m in enumerate(messages):
            role = m.get("role")
            if role not in ROLES:
                raise Reject(400, _error(f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', 'tool', 'function', and 'developer'.", f"messages[{i}].role"))
            content = m.get("content")
            if role in ("system", "developer"):
                conv.system += _text(content)
                continue
            if role == "tool":
                call_id = m.get("tool_call_id")
                if call_id not in issued:
                    raise Reject(400, _error("Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.", f"messages.[{i}].role"))
                if conv.turns and conv.turns[-1].role == "user" and conv.turns[-1].tool_results:
                    conv.turns[-1].tool_results.append((issued[call_id], _text(content)))
                else:
                    conv.turns.append(Turn("user", tool_results=[(issued[call_id], _text(content))]))
                continue
            turn = Turn(role, text=_text(content), images=_images(content))
            for call in m.get("tool_calls") or []:
                issued[call["id"]] = call["function"]["name"]
                turn.tool_calls.append((call["function"]["name"], orjson.loads(call["function"]["arguments"] or "{}")))
            conv.turns.append(turn)
        conv.tools = [{"name": t["function"]["name"], "parameters": resolved(t["function"].get("parameters"))}
                      for t in body.get("tools") or []]
        choice = body.get("tool_choice")
        conv.tool_choice = choice["function"]["name"] if isinstance(choice, dict) else choice
        conv.max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
        stop = body.get("stop")
        conv.stop = [stop] if isinstance(stop, str) else list(stop or [])
        fmt = _response_format(body)
        if fmt.get("type") == "json_schema":
            conv.response_schema = resolved(fmt["json_schema"].get("schema") or {})
        conv.json_mode = fmt.get("type") == "json_object"
        if conv.json_mode:
            schema, _ = instructed(conv.system)
            conv.response_schema = resolved(schema) if schema is not None else None
        return conv


STRICT_UNSUPPORTED = ("allOf", "oneOf", "not", "if", "then", "else", "dependentRequired",
                      "dependentSchemas", "patternProperties", "unevaluatedProperties",
                      "propertyNames", "minProperties", "maxProperties", "unevaluatedItems",
                      "contains", "minContains", "maxContains", "uniqueItems")


def _response_format(body: dict) -> dict:
    fmt = body.get("response_format")
    if fmt is None:
        return {}
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind not in ("text", "json_object", "json_schema"):
        raise Reject(400, _error(f"Invalid value: '{kind}'. Supported values are: 'text', 'json_object', "
                                 "and 'json_schema'.", "response_format.type", "invalid_value"))
    if kind == "json_object" and "json" not in orjson.dumps(body["messages"]).decode().lower():
        raise Reject(400, _error("'messages' must contain the word 'json' in some form, to use "
                                 "'response_format' of type 'json_object'.", "messages"))
    if kind != "json_schema":
        return fmt
    if str(body.get("model", "")).startswith("deepseek"):
        raise Reject(400, _error("This response_format type is unavailable now", None,
                                 "invalid_request_error"))
    spec = fmt.get("json_schema")
    if not isinstance(spec, dict) or not spec.get("name"):
        raise Reject(400, _error("Missing required parameter: 'response_format.json_schema.name'.",
                                 "response_format.json_schema.name", "missing_required_parameter"))
    schema = spec.get("schema") or {}
    if spec.get("strict"):
        if schema.get("type") != "object":
            problem = f"schema must be a JSON Schema of 'type: \"object\"', got 'type: \"{schema.get('type')}\"'."
        else:
            problem = _strict_problem(schema, ())
        if problem:
            raise Reject(400, _error(f"Invalid schema for response_format '{spec['name']}': {problem}",
                                     "response_format", "invalid_value"))
    return fmt


def _strict_problem(schema, context: tuple) -> str | None:
    """The first strict-mode rule `schema` breaks, in OpenAI's words."""
    if not isinstance(schema, dict):
        return None
    for key in STRICT_UNSUPPORTED:
        if key in schema:
            return f"In context={context}, '{key}' is not permitted."
    if schema.get("type") == "object" or "properties" in schema:
        if schema.get("additionalProperties") is not False:
            return (f"In context={context}, 'additionalProperties' is required to be supplied and to "
                    "be false.")
        missing = [k for k in schema.get("properties") or {} if k not in (schema.get("required") or [])]
        if missing:
            return (f"In context={context}, 'required' is required to be supplied and to be an array "
                    f"including every key in properties. Missing '{missing[0]}'.")
    subs = [(("items",), schema.get("items"))]
    subs += [((key, name), sub) for key in ("properties", "$defs", "definitions")
             for name, sub in (schema.get(key) or {}).items()]
    subs += [(("anyOf", str(i)), sub) for i, sub in enumerate(schema.get("anyOf") or [])]
    for where, sub in subs:
        problem = _strict_problem(sub, context + where)
        if problem:
            return problem
    return None


def _native_search(body: dict, conv: Conversation, answer) -> list[dict]:
    """OpenAI's own search (`web_search_options`, search models): when the user asks for a
    search, the answer cites `NATIVE_SOURCE` with a url_citation annotation."""
    found = native_search(conv) if body.get("web_search_options") is not None else None
    if found is None:
        return []
    _, answer.text, (start, end) = found
    answer.tool_calls = []
    answer.finish = "stop"
    return [{"type": "url_citation", "url_citation": {
        "url": NATIVE_SOURCE[0], "title": NATIVE_SOURCE[1], "start_index": start, "end_index": end}}]


def _text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if p.get("type") == "text")
    return ""


def _images(content) -> list[Image]:
    images = []
    if not isinstance(content, list):
        return images
    for part in content:
        if part.get("type") != "image_url":
            continue
        url = part["image_url"]["url"]
        if url.startswith("data:"):
            header, _, data = url.partition(",")
            images.append(Image(header[5:].split(";")[0], len(base64.b64decode(data))))
        else:
            images.append(Image("url", 0, url))
    return images
