"""Responses API answers and event streams in the shapes OpenAI documents, for the SDK tests.

The shapes follow the official `openai` SDK's `openai.types.responses` models (the tests
validate every fixture against them), with Lunos's `usage.cost` added.
"""

from __future__ import annotations

import json

USAGE = {"input_tokens": 12, "input_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 0}, "output_tokens": 9,
         "output_tokens_details": {"reasoning_tokens": 3}, "total_tokens": 21, "cost": 0.00042}

REASONING = {"id": "rs_1", "type": "reasoning", "summary": [{"type": "summary_text", "text": "Think."}],
             "encrypted_content": "gAAAA-opaque"}
MESSAGE = {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
           "content": [{"type": "output_text", "text": "Paris is the capital.", "annotations": [
               {"type": "url_citation", "url": "https://example.org/paris", "title": "Paris",
                "start_index": 0, "end_index": 5}]}]}
CALL = {"id": "fc_1", "type": "function_call", "call_id": "call_abc", "name": "get_weather",
        "arguments": '{"city": "Paris"}', "status": "completed"}


def response(status: str = "completed", output: list | None = None, **extra) -> dict:
    return {"id": "resp_1", "object": "response", "created_at": 1767225600, "status": status,
            "model": "openai/gpt-5", "output": [REASONING, MESSAGE] if output is None else output,
            "usage": USAGE, "error": None, "incomplete_details": None, "instructions": None,
            "metadata": {}, "parallel_tool_calls": True, "temperature": 1.0, "top_p": 1.0,
            "tool_choice": "auto", "tools": [], **extra}


def events(*pairs: tuple[str, dict]) -> list[dict]:
    return [{"type": name, "sequence_number": i, **data} for i, (name, data) in enumerate(pairs)]


def text_events(text_parts: tuple[str, ...] = ("Paris", " is the capital."),
                last: str = "response.completed", final: dict | None = None) -> list[dict]:
    started = response("in_progress", [], usage=None)
    text = "".join(text_parts)
    message = {**MESSAGE, "content": [{"type": "output_text", "text": text, "annotations": []}]}
    where = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    return events(
        ("response.created", {"response": started}),
        ("response.in_progress", {"response": started}),
        ("response.output_item.added", {"output_index": 0,
                                        "item": {**message, "status": "in_progress", "content": []}}),
        ("response.content_part.added", {**where, "part": {"type": "output_text", "text": "",
                                                           "annotations": []}}),
        *(("response.output_text.delta", {**where, "delta": part, "logprobs": []})
          for part in text_parts),
        ("response.output_text.done", {**where, "text": text, "logprobs": []}),
        ("response.output_item.done", {"output_index": 0, "item": message}),
        (last, {"response": final or response(last.split(".")[1], [message])}),
    )


def call_events() -> list[dict]:
    where = {"item_id": "fc_1", "output_index": 0}
    return events(
        ("response.created", {"response": response("in_progress", [], usage=None)}),
        ("response.output_item.added", {"output_index": 0,
                                        "item": {**CALL, "arguments": "", "status": "in_progress"}}),
        ("response.function_call_arguments.delta", {**where, "delta": '{"city": '}),
        ("response.function_call_arguments.delta", {**where, "delta": '"Paris"}'}),
        ("response.function_call_arguments.done", {**where, "name": "get_weather",
                                                   "arguments": CALL["arguments"]}),
        ("response.output_item.done", {"output_index": 0, "item": CALL}),
        ("response.completed", {"response": response("completed", [CALL])}),
    )


def sse(event_list: list[dict]) -> bytes:
    """Framed as OpenAI frames them: an `event:` line naming the type, then the data."""
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in event_list)
