"""resume.py's pure parts: the continuation request and the summed usage."""

from __future__ import annotations

from lunos.gateway.providers.base import ChatRequest
from lunos.gateway.resume import CONTINUE, Resume

BODY = {"model": "anthropic/claude-haiku-4-5", "messages": [{"role": "user", "content": "hi"}], "stream": True}


def request() -> ChatRequest:
    return ChatRequest(dict(BODY), BODY["model"], "anthropic", "claude-haiku-4-5", stream=True)


def test_a_prefill_without_trailing_whitespace_and_an_instruction_only_where_needed():
    resume = Resume()
    resume.text += ["You", " said: ", "\n"]
    native = resume.request(request(), continues_prefill=True)
    assert native.body["messages"][1:] == [{"role": "assistant", "content": "You said:"}]
    assert resume.trim  # the client already has the whitespace: the continuation's is dropped
    instructed = resume.request(request(), continues_prefill=False)
    assert instructed.body["messages"][1:] == [{"role": "assistant", "content": "You said:"},
                                               {"role": "user", "content": CONTINUE}]
    assert BODY["messages"] == [{"role": "user", "content": "hi"}]  # the original untouched


def test_nothing_said_yet_is_the_original_request():
    req = request()
    assert Resume().request(req, continues_prefill=False) is req


def test_usage_adds_the_earlier_attempts():
    resume = Resume()
    resume.tokens.prompt, resume.tokens.completion, resume.tokens.cached = 10, 3, 4
    resume.cost = 0.5
    total = resume.total({"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12, "cost": 0.25})
    assert total == {"prompt_tokens": 17, "completion_tokens": 8, "total_tokens": 25, "cost": 0.75,
                     "prompt_tokens_details": {"cached_tokens": 4}}


def test_a_paused_answer_and_its_continuation_are_one_completion():
    resume = Resume()
    resume.text = ["Found it: "]
    resume.request(request(), continues_prefill=True)  # the prefill left the space out
    earlier = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Found it: "},
                            "finish_reason": "stop"}],
               "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}
    note = {"type": "url_citation", "url_citation": {"url": "https://a.example", "start_index": 1, "end_index": 6}}
    later = {"choices": [{"index": 0, "message": {"role": "assistant", "content": " Lunos 1.0", "annotations": [note]},
                          "finish_reason": "stop"}],
             "usage": {"prompt_tokens": 6, "completion_tokens": 3, "total_tokens": 9}}
    joined = resume.joined(earlier, later)
    message = joined["choices"][0]["message"]
    assert message["content"] == "Found it: Lunos 1.0"
    span = message["annotations"][0]["url_citation"]
    assert message["content"][span["start_index"]:span["end_index"]] == "Lunos"
    assert joined["usage"] == {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16}
