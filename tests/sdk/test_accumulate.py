"""`accumulate`: stream chunks folded into the completion they add up to."""

from __future__ import annotations

import json
from functools import reduce

from lunos import ChatCompletion, ChatCompletionChunk, accumulate


def chunks(*choice_deltas: dict, **top) -> list[ChatCompletionChunk]:
    base = {"id": "chatcmpl-7", "object": "chat.completion.chunk", "created": 1700, "model": "m"}
    return [
        ChatCompletionChunk.model_validate({**base, "choices": [delta], **top})
        for delta in choice_deltas
    ]


def fold(items: list[ChatCompletionChunk]) -> ChatCompletion:
    return reduce(accumulate, items, None)


def delta(index: int = 0, finish_reason: str | None = None, **fields) -> dict:
    return {"index": index, "delta": fields, "finish_reason": finish_reason}


def test_text():
    result = fold(
        chunks(delta(role="assistant", content=""), delta(content="Hello"),
               delta(content=", world"), delta(finish_reason="stop"))
    )
    assert isinstance(result, ChatCompletion)
    assert result.object == "chat.completion"
    assert (result.id, result.model, result.created) == ("chatcmpl-7", "m", 1700)
    choice = result.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "Hello, world"
    assert choice.finish_reason == "stop"
    assert choice.message.tool_calls is None


def test_parallel_tool_calls_by_index():
    items = chunks(
        delta(role="assistant"),
        delta(tool_calls=[{"index": 0, "id": "call_a", "type": "function",
                           "function": {"name": "get_weather", "arguments": ""}}]),
        delta(tool_calls=[{"index": 1, "id": "toolu_b", "type": "function",
                           "function": {"name": "get_time", "arguments": '{"tz'}}]),
        delta(tool_calls=[{"index": 0, "function": {"arguments": '{"city": '}}]),
        delta(tool_calls=[{"index": 1, "function": {"arguments": '": "UTC"}'}}]),
        delta(tool_calls=[{"index": 0, "function": {"arguments": '"Paris"}'}}]),
        delta(finish_reason="tool_calls"),
    )
    result = fold(items)
    calls = result.choices[0].message.tool_calls
    assert [(c.id, c.type, c.function.name) for c in calls] == [
        ("call_a", "function", "get_weather"),
        ("toolu_b", "function", "get_time"),
    ]
    assert json.loads(calls[0].function.arguments) == {"city": "Paris"}
    assert json.loads(calls[1].function.arguments) == {"tz": "UTC"}
    assert result.choices[0].finish_reason == "tool_calls"
    assert result.choices[0].message.content is None
    # The stream index is bookkeeping, not part of the message sent back next turn.
    assert "index" not in result.choices[0].message.model_dump()["tool_calls"][0]


def test_tool_call_arriving_out_of_index_order_and_repeated_id_and_name():
    items = chunks(
        delta(tool_calls=[{"index": 1, "id": "b", "function": {"name": "g", "arguments": "{}"}}]),
        delta(tool_calls=[{"index": 0, "id": "a", "function": {"name": "f", "arguments": "{"}}]),
        delta(tool_calls=[{"index": 0, "id": "a", "function": {"name": "f", "arguments": "}"}}]),
    )
    calls = fold(items).choices[0].message.tool_calls
    assert [(c.id, c.function.name, c.function.arguments) for c in calls] == [
        ("a", "f", "{}"), ("b", "g", "{}"),
    ]


def test_tool_call_extra_content_is_kept():
    signature = {"google": {"thought_signature": "c2ln"}}
    items = chunks(
        delta(tool_calls=[{"index": 0, "id": "call_1", "type": "function",
                           "function": {"name": "f", "arguments": "{}"},
                           "extra_content": signature}]),
    )
    call = fold(items).choices[0].message.tool_calls[0]
    assert call.extra_content == signature


def test_usage_only_final_chunk_and_provider():
    items = chunks(delta(role="assistant", content="Hi"), provider="anthropic")
    usage = {
        "prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15,
        "prompt_tokens_details": {"cached_tokens": 8, "cache_write_tokens": 2},
        "completion_tokens_details": {"reasoning_tokens": 1}, "cost": 0.0021,
    }
    items.append(
        ChatCompletionChunk.model_validate(
            {"id": "chatcmpl-7", "model": "anthropic/claude-haiku-4-5", "choices": [], "usage": usage}
        )
    )
    result = fold(items)
    assert result.provider == "anthropic"
    assert result.model == "anthropic/claude-haiku-4-5"
    assert result.usage.total_tokens == 15
    assert result.usage.prompt_tokens_details.cached_tokens == 8
    assert result.usage.prompt_tokens_details.cache_write_tokens == 2
    assert result.usage.completion_tokens_details.reasoning_tokens == 1
    assert result.usage.cost == 0.0021
    assert result.choices[0].message.content == "Hi"


def test_annotations_and_reasoning():
    cite_a = {"type": "url_citation", "url_citation": {"url": "https://a.example", "title": "A",
                                                       "start_index": 0, "end_index": 5}}
    cite_b = {"type": "url_citation", "url_citation": {"url": "https://b.example", "title": "B",
                                                       "content": "snippet"}}
    detail = {"type": "reasoning.text", "text": "Let me think.", "signature": "sig",
              "format": "anthropic-claude-v1", "index": 0}
    items = chunks(
        delta(role="assistant", reasoning_content="Let me "),
        delta(reasoning_content="think."),
        delta(reasoning_details=[detail]),
        delta(content="Answer"),
        delta(annotations=[cite_a]),
        delta(annotations=[cite_b], finish_reason="stop"),
    )
    message = fold(items).choices[0].message
    assert message.reasoning_content == "Let me think."
    assert message.reasoning_details == [detail]
    assert message.content == "Answer"
    urls = [a.url_citation.url for a in message.annotations]
    assert urls == ["https://a.example", "https://b.example"]
    assert message.annotations[1].url_citation.content == "snippet"


def test_several_choices_and_refusal():
    items = chunks(
        delta(1, content="second"),
        delta(0, content="first"),
        delta(2, refusal="I can't"),
        delta(2, refusal=" help with that."),
    )
    result = fold(items)
    assert [c.index for c in result.choices] == [0, 1, 2]
    assert [c.message.content for c in result.choices[:2]] == ["first", "second"]
    assert result.choices[2].message.refusal == "I can't help with that."


def test_unknown_delta_fields_are_merged():
    items = chunks(delta(reasoning="a"), delta(reasoning="b"), delta(citations=["x"]),
                   delta(citations=["y"]), delta(meta={"k": 1}), delta(meta={"k": 2}))
    message = fold(items).choices[0].message
    assert message.reasoning == "ab"
    assert message.citations == ["x", "y"]
    assert message.meta == {"k": 2}


def test_accumulate_is_pure():
    items = chunks(
        delta(role="assistant", content="a"),
        delta(tool_calls=[{"index": 0, "id": "c", "function": {"name": "f", "arguments": "{"}}]),
    )
    first = accumulate(None, items[0])
    before = first.model_dump()
    chunk_before = items[1].model_dump()
    second = accumulate(first, items[1])
    third = accumulate(second, ChatCompletionChunk.model_validate(
        {"choices": [delta(content="b", tool_calls=[{"index": 0, "function": {"arguments": "}"}}])]}
    ))
    assert first.model_dump() == before  # the snapshot passed in is untouched
    assert items[1].model_dump() == chunk_before
    assert second.choices[0].message.content == "a"
    assert second.choices[0].message.tool_calls[0].function.arguments == "{"
    assert third.choices[0].message.content == "ab"
    assert third.choices[0].message.tool_calls[0].function.arguments == "{}"
    assert third.id == "chatcmpl-7"  # a chunk without an id keeps the known one


def test_no_chunks_means_no_choices():
    result = accumulate(None, ChatCompletionChunk.model_validate({"choices": []}))
    assert result.choices == [] and result.usage is None
