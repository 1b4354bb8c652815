"""The Responses front door, outward: the engine's chat completion (or chunks) -> an OpenAI
Responses `response` object (or its stream events), for providers other than OpenAI.

Shapes follow OpenAI's API reference and the responses recorded in the official
openai-python SDK's tests (tests/lib/responses/); the stream events are those its
`ResponseStreamState` accumulates.

- Output items, in order: `reasoning`, `message`, `function_call`. Reasoning text (chat
  `reasoning_content`: Claude's and Gemini's thinking are summaries already) is the item's
  `summary` of `summary_text` parts and streams as `response.reasoning_summary_text.delta`,
  as OpenAI's own models stream theirs. The item's `encrypted_content` is
  `messages_in.carry_signature(details, call signatures)`: the provider's `reasoning_details`
  (Anthropic signatures, Gemini text signatures) and Gemini tool-call signatures, always
  set, so a client echoing the items gives the provider its reasoning back. Reasoning
  state that arrives after the reasoning item closed (Gemini signs the last part) goes in
  one more reasoning item at the end, with an empty summary.
- A function call's `call_id` is the chat tool call id exactly; a namespaced tool's call
  gets its `namespace` and `name` back (`responses_in.tool_names`).
- `status`: finish_reason length -> `incomplete` (`max_output_tokens`), content_filter ->
  `incomplete` (`content_filter`), else `completed`. A refusal is a `refusal` part.
- Web search annotations (chat `url_citation`) become `output_text` annotations
  `{type, start_index, end_index, url, title}`.
- Usage: `input_tokens` (cached included, as chat's prompt_tokens), `cached_tokens` and
  `cache_write_tokens`, `output_tokens` with `reasoning_tokens`, and the gateway's `cost`.
- Request fields are echoed as OpenAI echoes them (its defaults where the request is
  silent; `temperature` and `top_p` stay null then, the provider's defaults being unknown).
- A failure after the stream started is `response.failed` with `error: {code, message}`;
  `code` is from OpenAI's set (`rate_limit_exceeded`, `invalid_image`, else `server_error`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from ..errors import GatewayError
from ..providers.common import new_tool_call_id
from .messages_in import carry_signature
from .messages_out import (
    _call_signature,
    sse_event,  # the same framing: `event:` + `data:`
)
from .responses_in import new_id, tool_names

_TEXT_DELTA = (b'event: response.output_text.delta\ndata: '
               b'{"type":"response.output_text.delta","sequence_number":')

_PLAIN = {"role", "content"}  # a delta with only these keys carries nothing but text
INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}
ERROR_CODES = {"rate_limit_error": "rate_limit_exceeded", "invalid_image": "invalid_image"}


def usage_of(usage: Any) -> dict | None:
    if not isinstance(usage, dict):
        return None
    prompt = usage.get("prompt_tokens_details") or {}
    completion = usage.get("completion_tokens_details") or {}
    out: dict[str, Any] = {
        "input_tokens": usage.get("prompt_tokens") or 0,
        "input_tokens_details": {"cached_tokens": prompt.get("cached_tokens") or 0,
                                 "cache_write_tokens": prompt.get("cache_write_tokens") or 0},
        "output_tokens": usage.get("completion_tokens") or 0,
        "output_tokens_details": {"reasoning_tokens": completion.get("reasoning_tokens") or 0},
        "total_tokens": usage.get("total_tokens")
        or (usage.get("prompt_tokens") or 0) + (usage.get("completion_tokens") or 0),
    }
    if usage.get("cost") is not None:
        out["cost"] = usage["cost"]
    return out


def annotation(entry: Any) -> dict | None:
    """A chat `url_citation` annotation in Responses' flat shape."""
    cite = entry.get("url_citation") if isinstance(entry, dict) else None
    if entry.get("type") != "url_citation" or not isinstance(cite, dict) or not cite.get("url"):
        return None
    return {"type": "url_citation", "start_index": cite.get("start_index") or 0,
            "end_index": cite.get("end_index") or 0, "url": cite["url"], "title": cite.get("title") or ""}


def response_object(request: dict, *, response_id: str, model: str, created_at: int, status: str,
                    output: list[dict], usage: dict | None = None, finish: str | None = None,
                    error: dict | None = None) -> dict:
    """A `response` object: the request's fields echoed as OpenAI echoes them."""
    reason = INCOMPLETE.get(finish) if status == "incomplete" else None
    reasoning = request.get("reasoning") or {}
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": False,
        "error": error,
        "incomplete_details": {"reason": reason} if reason else None,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "max_tool_calls": request.get("max_tool_calls"),
        "model": model,
        "output": output,
        "parallel_tool_calls": request.get("parallel_tool_calls", True),
        "previous_response_id": request.get("previous_response_id"),
        "prompt_cache_key": request.get("prompt_cache_key"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "safety_identifier": request.get("safety_identifier"),
        "service_tier": request.get("service_tier") or "default",
        "store": request.get("store", True),
        "temperature": request.get("temperature"),
        "text": {"format": {"type": "text"}, "verbosity": "medium", **(request.get("text") or {})},
        "tool_choice": request.get("tool_choice", "auto"),
        "tools": request.get("tools") or [],
        "top_logprobs": request.get("top_logprobs", 0),
        "top_p": request.get("top_p"),
        "truncation": request.get("truncation", "disabled"),
        "usage": usage,
        "user": request.get("user"),
        "metadata": request.get("metadata") or {},
    }


def _fresh(part: dict) -> dict:
    """A copy of a part as it starts (its annotations list not shared)."""
    return {**part, "annotations": []} if part["type"] == "output_text" else dict(part)


def _status(finish: Any) -> str:
    return "incomplete" if finish in INCOMPLETE else "completed"


def reasoning_item(text: str, details: list[dict], calls: dict[str, str], item_id: str | None = None) -> dict:
    return {"id": item_id or new_id("rs_"), "type": "reasoning",
            "summary": [{"type": "summary_text", "text": text}] if text else [],
            "encrypted_content": carry_signature(details, calls)}


def call_item(call_id: str, name: str, arguments: str, names: dict, status: str, item_id: str) -> dict:
    namespace, plain = names.get(name, (None, name))
    item = {"id": item_id, "type": "function_call", "status": status, "call_id": call_id,
            "name": plain, "arguments": arguments}
    if namespace:
        item["namespace"] = namespace
    return item


def to_response(completion: dict, *, response_id: str, model: str, created_at: int, request: dict) -> dict:
    choice = (completion.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    finish = choice.get("finish_reason")
    status = _status(finish)
    output: list[dict] = []
    details = [e for e in message.get("reasoning_details") or () if isinstance(e, dict)]
    calls = [c for c in message.get("tool_calls") or () if isinstance(c, dict)]
    for call in calls:
        call["id"] = call.get("id") or new_tool_call_id()
    signatures = {c["id"]: s for c in calls if (s := _call_signature(c))}
    thought = message.get("reasoning_content") or ""
    if thought or details or signatures:
        output.append(reasoning_item(thought, details, signatures))
    text = message.get("content")
    if isinstance(text, list):  # content parts
        text = "".join(p.get("text") or "" for p in text if isinstance(p, dict))
    parts: list[dict] = []
    if text:
        cited = [a for a in map(annotation, message.get("annotations") or ()) if a]
        parts.append({"type": "output_text", "text": text, "annotations": cited, "logprobs": []})
    if message.get("refusal"):
        parts.append({"type": "refusal", "refusal": message["refusal"]})
    if parts:
        output.append({"id": new_id("msg_"), "type": "message", "status": status, "role": "assistant",
                       "content": parts})
    names = tool_names(request)
    for call in calls:
        function = call.get("function") or {}
        output.append(call_item(call["id"], function.get("name") or "", function.get("arguments") or "",
                                names, "completed", new_id("fc_")))
    return response_object(request, response_id=response_id, model=model, created_at=created_at,
                           status=status, output=output, usage=usage_of(completion.get("usage")),
                           finish=finish)


# ---------------------------------------------------------------- streams


@dataclass(slots=True)
class _Call:
    index: int  # its output_index
    item_id: str
    call_id: str
    name: str
    arguments: str = ""


class ResponsesStream:
    """Chat chunks -> Responses stream events, each with the next `sequence_number`.

    One reasoning item and one message item are open at a time; text after reasoning (or
    the reverse) closes the open one. Function calls open as their first piece arrives and
    stream their arguments piece by piece as the provider sent them (interleaved calls are
    told apart by `output_index`); they close at the end. The final event
    (`response.completed`, or `response.incomplete`) waits for the usage chunk, which
    follows the finish chunk, or for `finish()`.
    """

    def __init__(self, response_id: str, model: str, created_at: int, request: dict) -> None:
        self._id = response_id
        self._model = model
        self._created_at = created_at
        self._request = request
        self._names = tool_names(request)
        self._sequence = 0
        self._started = False
        self._done = False
        self._output: dict[int, dict] = {}  # finished items by output_index
        self._next_index = 0
        self._reasoning: dict | None = None  # the open reasoning item
        self._message: dict | None = None  # the open message item
        self._part: dict | None = None  # its open content part
        self._at: dict = {}  # where that part is: item_id, output_index, content_index
        self._at_bytes = b""  # the same, framed for `_text_delta`
        self._out: list[bytes] = []  # framed events not yet taken
        self._calls: dict[int, _Call] = {}  # by chat tool-call index
        self._open_calls: list[_Call] = []
        self._details: list[dict] = []  # reasoning state not yet in a reasoning item
        self._call_signatures: dict[str, str] = {}
        self._finish: str | None = None
        self._usage: dict | None = None
        self._annotations: list[dict] = []
        self._final: dict | None = None

    @property
    def completed(self) -> bool:
        """Whether the final event has been made (the response can be stored)."""
        return self._final is not None

    @property
    def response(self) -> dict:
        """The final response (what `response.completed` carried), or the one so far."""
        return self._final or self._snapshot("in_progress")

    def feed(self, chunk: dict) -> bytes:
        """The events `chunk` makes, framed as SSE."""
        part = self._part
        if part is not None and part["type"] == "output_text" and chunk.get("usage") is None:
            choices = chunk.get("choices")
            if choices and len(choices) == 1:  # most chunks: more text for the open text part
                choice = choices[0]
                delta = choice.get("delta")
                text = delta.get("content") if isinstance(delta, dict) else None
                if (text and isinstance(text, str) and not choice.get("finish_reason")
                        and not choice.get("index") and delta.keys() <= _PLAIN and not self._finish):
                    part["text"] += text
                    return self._text_delta(text)  # nothing else waits: feed takes all it made
        self._start()
        if not self._done:
            for choice in chunk.get("choices") or ():
                if not isinstance(choice, dict) or (choice.get("index") or 0) != 0 or self._finish:
                    continue
                self._delta(choice.get("delta") or {})
                if choice.get("finish_reason"):
                    self._finish = choice["finish_reason"]
                    self._close_all()
            if isinstance(chunk.get("usage"), dict):
                self._usage = chunk["usage"]
            if self._finish and self._usage is not None:
                self._end()
        return self._take()

    def finish(self) -> bytes:
        self._start()
        if not self._done:
            if not self._finish:
                self._finish = "stop"
                self._close_all()
            self._end()
        return self._take()

    def fail(self, error: GatewayError) -> bytes:
        self._start()
        if not self._done:
            self._done = True
            code = ERROR_CODES.get(error.code or "", ERROR_CODES.get(error.type, "server_error"))
            self._final = self._snapshot("failed", error={"code": code, "message": error.message})
            self._emit("response.failed", response=self._final)
        return self._take()

    # ------------------------------------------------------------ events

    def _take(self) -> bytes:
        out, self._out = self._out, []
        return b"".join(out)

    def _emit(self, name: str, **data: Any) -> None:
        self._out.append(sse_event(name, {"type": name, "sequence_number": self._sequence, **data}))
        self._sequence += 1

    def _text_delta(self, text: str) -> bytes:
        """`response.output_text.delta`, the event most streams are made of, framed from
        pieces made once per content part: the same bytes `_emit` would write."""
        self._sequence += 1
        return b"".join((_TEXT_DELTA, str(self._sequence - 1).encode(), self._at_bytes,
                         orjson.dumps(text), b',"logprobs":[]}\n\n'))

    def _snapshot(self, status: str, **extra: Any) -> dict:
        output = [self._output[i] for i in sorted(self._output)]
        return response_object(self._request, response_id=self._id, model=self._model,
                               created_at=self._created_at, status=status, output=output, **extra)

    def _start(self) -> None:
        if self._started:
            return
        self._started = True
        snapshot = self._snapshot("in_progress")  # the same object, serialised twice
        self._emit("response.created", response=snapshot)
        self._emit("response.in_progress", response=snapshot)

    def _end(self) -> None:
        self._done = True
        if self._details or self._call_signatures:  # reasoning state that came late
            item = reasoning_item("", self._details, self._call_signatures)
            self._details, self._call_signatures = [], {}
            index = self._add(item)
            self._item_done(index, item)
        status = _status(self._finish)
        self._final = self._snapshot(status, usage=usage_of(self._usage), finish=self._finish)
        self._emit(f"response.{status}", response=self._final)

    def _add(self, item: dict) -> int:
        index = self._next_index
        self._next_index += 1
        self._emit("response.output_item.added", output_index=index, item=item)
        return index

    def _item_done(self, index: int, item: dict) -> None:
        self._output[index] = item
        self._emit("response.output_item.done", output_index=index, item=item)

    # ------------------------------------------------------------ deltas

    def _delta(self, delta: dict) -> None:
        if delta.keys() <= _PLAIN:  # most chunks: a piece of text, nothing else to look at
            text = delta.get("content")
            if text and isinstance(text, str):
                self._text("output_text", text)
            return
        if isinstance(delta.get("reasoning_content"), str) and delta["reasoning_content"]:
            self._thinking(delta["reasoning_content"])
        for entry in delta.get("reasoning_details") or ():
            if isinstance(entry, dict):
                self._details.append(entry)
        for key, kind in (("content", "output_text"), ("refusal", "refusal")):
            if isinstance(delta.get(key), str) and delta[key]:
                self._text(kind, delta[key])
        for entry in delta.get("annotations") or ():
            cited = annotation(entry)
            if cited:
                self._annotate(cited)
        for piece in delta.get("tool_calls") or ():
            if isinstance(piece, dict):
                self._tool_piece(piece)

    def _thinking(self, text: str) -> None:
        self._close_message()
        item = self._reasoning
        if item is None:
            item = self._reasoning = {"id": new_id("rs_"), "type": "reasoning", "summary": [], "text": ""}
            item["index"] = self._add({"id": item["id"], "type": "reasoning", "summary": []})
            self._emit("response.reasoning_summary_part.added", item_id=item["id"],
                       output_index=item["index"], summary_index=0, part={"type": "summary_text", "text": ""})
        item["text"] += text
        self._emit("response.reasoning_summary_text.delta", item_id=item["id"],
                   output_index=item["index"], summary_index=0, delta=text)

    def _close_reasoning(self) -> None:
        item, self._reasoning = self._reasoning, None
        if item is None:
            return
        where = {"item_id": item["id"], "output_index": item["index"], "summary_index": 0}
        self._emit("response.reasoning_summary_text.done", **where, text=item["text"])
        self._emit("response.reasoning_summary_part.done", **where,
                   part={"type": "summary_text", "text": item["text"]})
        done = reasoning_item(item["text"], self._details, self._call_signatures, item["id"])
        self._details, self._call_signatures = [], {}
        self._item_done(item["index"], done)

    def _text(self, kind: str, text: str) -> None:
        part = self._part
        if part is not None and kind == "output_text" == part["type"]:  # the open text part grows
            part["text"] += text
            self._out.append(self._text_delta(text))
            return
        self._close_reasoning()
        message = self._message
        if message is None:
            item_id = new_id("msg_")
            message = self._message = {"id": item_id, "type": "message", "status": "in_progress",
                                       "role": "assistant", "content": []}
            message["index"] = self._add({**message, "content": []})
        part = self._part
        if part is None or part["type"] != kind:
            self._close_part()
            part = self._part = ({"type": "output_text", "text": "", "annotations": [], "logprobs": []}
                                 if kind == "output_text" else {"type": "refusal", "refusal": ""})
            message["content"].append(part)
            self._at = self._where()
            self._at_bytes = b"," + orjson.dumps(self._at)[1:-1] + b',"delta":'
            self._emit("response.content_part.added", **self._at, part=_fresh(part))
        if kind == "output_text":
            part["text"] += text
            self._out.append(self._text_delta(text))
        else:
            part["refusal"] += text
            self._emit("response.refusal.delta", **self._where(), delta=text)

    def _where(self) -> dict:
        message = self._message
        return {"item_id": message["id"], "output_index": message["index"],
                "content_index": len(message["content"]) - 1}

    def _annotate(self, cited: dict) -> None:
        part = self._part
        if part is None or part["type"] != "output_text":
            self._annotations.append(cited)  # the text's part is closed: the final response has it
            return
        part["annotations"].append(cited)
        self._emit("response.output_text.annotation.added", **self._where(),
                   annotation_index=len(part["annotations"]) - 1, annotation=cited)

    def _close_part(self) -> None:
        part, self._part = self._part, None
        if part is None:
            return
        if part["type"] == "output_text":
            self._emit("response.output_text.done", **self._where(), text=part["text"], logprobs=[])
        else:
            self._emit("response.refusal.done", **self._where(), refusal=part["refusal"])
        self._emit("response.content_part.done", **self._where(), part=part)

    def _close_message(self) -> None:
        if self._message is None:
            return
        self._close_part()
        message, self._message = self._message, None
        index = message.pop("index")
        message["status"] = "incomplete" if self._finish in INCOMPLETE else "completed"
        self._item_done(index, message)

    def _tool_piece(self, piece: dict) -> None:
        index = piece.get("index") or 0
        function = piece.get("function") or {}
        call, call_id = self._calls.get(index), piece.get("id") or None
        if call is None or call_id not in (None, call.call_id):
            # A new id at a known index is a new call (some APIs send whole calls, unindexed).
            self._close_reasoning()
            self._close_message()
            call = _Call(0, new_id("fc_"), call_id or new_tool_call_id(), function.get("name") or "")
            call.index = self._add(call_item(call.call_id, call.name, "", self._names, "in_progress",
                                             call.item_id))
            self._calls[index] = call
            self._open_calls.append(call)
        signature = _call_signature(piece)
        if signature:
            self._call_signatures[call.call_id] = signature
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            call.arguments += arguments
            self._emit("response.function_call_arguments.delta", item_id=call.item_id,
                       output_index=call.index, delta=arguments)

    def _close_all(self) -> None:
        self._close_reasoning()
        self._close_message()
        for call in self._open_calls:
            self._emit("response.function_call_arguments.done", item_id=call.item_id,
                       output_index=call.index, arguments=call.arguments)
            self._item_done(call.index, call_item(call.call_id, call.name, call.arguments, self._names,
                                                  "completed", call.item_id))
        self._open_calls = []
        if self._annotations:
            self._late_annotations()

    def _late_annotations(self) -> None:
        """Annotations that came after their text's message closed join its last text part."""
        for index in sorted(self._output, reverse=True):
            item = self._output[index]
            parts = [p for p in item.get("content") or () if p.get("type") == "output_text"]
            if item["type"] == "message" and parts:
                parts[-1]["annotations"].extend(self._annotations)
                break
        self._annotations = []
