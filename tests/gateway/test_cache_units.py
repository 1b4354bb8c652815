"""The response cache's pure parts: what is in the key (cache/keys.py) and the replay of a
cached completion as chunks folding back into the same completion (cache/replay.py)."""

from __future__ import annotations

from lunos.gateway.cache.keys import exact_key, has_tools, prompt_text, semantic_scope
from lunos.gateway.cache.replay import Fold, to_chunks
from lunos.gateway.validation import ChatOptions, WebSearchOptions

BODY = {"model": "openai/gpt-4o", "temperature": 0.2,
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]}


def test_exact_key_covers_scope_model_messages_and_parameters_but_not_streaming():
    o = ChatOptions()
    base = exact_key("key_a", BODY, o)
    assert exact_key("key_a", dict(BODY), o) == base
    assert exact_key("key_a", {**BODY, "stream": True, "stream_options": {"include_usage": True}}, o) == base
    for changed in ({**BODY, "temperature": 0.3}, {**BODY, "model": "openai/gpt-4o-mini"},
                    {**BODY, "seed": 1}, {**BODY, "messages": BODY["messages"][1:]}):
        assert exact_key("key_a", changed, o) != base
    assert exact_key("key_b", BODY, o) != base
    assert exact_key("key_a", BODY, ChatOptions(web_search=WebSearchOptions())) != base


def test_semantic_scope_leaves_out_only_the_last_message():
    o = ChatOptions()
    other_question = {**BODY, "messages": [BODY["messages"][0], {"role": "user", "content": "hello"}]}
    assert semantic_scope("k", other_question, o) == semantic_scope("k", BODY, o)
    other_system = {**BODY, "messages": [{"role": "system", "content": "x"}, BODY["messages"][1]]}
    assert semantic_scope("k", other_system, o) != semantic_scope("k", BODY, o)
    assert semantic_scope("k", {**BODY, "temperature": 1}, o) != semantic_scope("k", BODY, o)


def test_prompt_text_and_tools():
    assert prompt_text(BODY) == "hi"
    parts = {"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]}
    assert prompt_text(parts) == "a\nb"
    image = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}
    assert prompt_text(image) is None
    assert prompt_text({"messages": [{"role": "assistant", "content": "hi"}]}) is None
    assert has_tools({"tools": [{"type": "function"}]}, ChatOptions())
    assert has_tools({}, ChatOptions(web_search=WebSearchOptions()))
    assert not has_tools(BODY, ChatOptions())


def test_replayed_chunks_fold_back_into_the_completion():
    completion = {
        "id": "chatcmpl-1", "created": 5, "model": "openai/gpt-4o", "provider": "openai",
        "object": "chat.completion",
        "choices": [
            {"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": "Looking.", "reasoning_content": "think",
                "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "a", "arguments": "{\"x\":1}"}},
                               {"id": "call_2", "type": "function", "function": {"name": "b", "arguments": "{}"}}]}},
            {"index": 1, "finish_reason": "stop", "message": {"role": "assistant", "content": "Other."}},
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7, "cost": 0.0},
    }
    stamp = {"id": "r1", "object": "chat.completion.chunk", "created": 9, "model": "openai/gpt-4o", "provider": "openai"}
    chunks = to_chunks(completion, stamp)
    assert all(c["id"] == "r1" for c in chunks) and chunks[-1]["choices"] == []
    fold = Fold()
    fold.feed(chunks)
    folded = fold.completion()
    assert folded["choices"] == completion["choices"]
    assert folded["usage"] == completion["usage"] and folded["id"] == "r1"
