"""Trace payloads are stored as sent and read back in SPEC §7's shape."""

import orjson

from lunos.gateway.traces import public_request
from lunos.gateway.usage import Output, completion_output


def test_a_request_body_reads_back_as_messages_and_params():
    body = {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}],
            "temperature": 0.2, "observability": True, "models": ["anthropic/claude-sonnet-4-5"],
            "fallback_model": "google/gemini-2.5-flash", "drop_params": True,
            "web_search_options": {"search_context_size": "low"}}
    assert public_request(body) == {"messages": [{"role": "user", "content": "hi"}],
                                    "params": {"model": "openai/gpt-4o", "temperature": 0.2}}


def test_a_completion_is_traced_as_its_output():
    completion = orjson.loads(orjson.dumps({
        "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": None, "reasoning_content": "think",
            "tool_calls": [{"id": "c1", "type": "function",
                            "function": {"name": "f", "arguments": "{}"}}],
            "annotations": [{"type": "url_citation", "url_citation": {"url": "https://a.example"}}]}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}}))
    assert completion_output(completion) == {
        "content": "", "finish_reason": "tool_calls", "reasoning": "think",
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
        "annotations": [{"type": "url_citation", "url_citation": {"url": "https://a.example"}}]}


def test_rows_already_in_the_public_shape_are_unchanged():
    request = {"messages": [], "params": {"model": "m"}}
    assert public_request(request) == request
    assert public_request(None) is None


def test_completion_output_is_what_a_folded_stream_gives():
    folded = Output()
    folded.fold_delta({"content": "Hel"})
    folded.fold_delta({"content": "lo", "reasoning_content": "r",
                       "tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": "{}"}}]})
    folded.finish_reason = "tool_calls"
    completion = {"choices": [{"finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": [{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}],
        "reasoning_content": "r",
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}}]}
    assert completion_output(completion) == folded.to_dict()
    assert completion_output({"choices": []}) == {"content": "", "finish_reason": None}
