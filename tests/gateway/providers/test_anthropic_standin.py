"""The Anthropic adapter against the strict stand-in, without the gateway:
`build_request` -> httpx -> stand-in -> `parse_response` / the stream translator; and proof
that the stand-in rejects what the real Messages API rejects."""

from __future__ import annotations

import json

import httpx
import pytest

from lunos._sse import SSEDecoder
from lunos.gateway.catalog import COMMON_PARAMETERS, ModelInfo
from lunos.gateway.errors import GatewayError
from lunos.gateway.providers.anthropic import AnthropicAdapter
from lunos.gateway.providers.base import ChatRequest, ProviderConfig
from tests.standins.anthropic_api import AnthropicStandIn
from tests.standins.harness import ServerThread, send_sse

KEY = "sk-ant-test"
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFQ5AAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
OPENAI_ONLY = {"frequency_penalty", "presence_penalty", "seed", "n", "logprobs", "top_logprobs", "logit_bias"}
SONNET = ModelInfo("anthropic/claude-sonnet-4-5", "anthropic", max_output=64000,
                   supported_parameters=COMMON_PARAMETERS - OPENAI_ONLY,
                   constraints={"temperature": {"max": 1}, "exclusive": [["temperature", "top_p"]]},
                   features={"thinking": "budget"})
HAIKU = ModelInfo("anthropic/claude-haiku-4-5", "anthropic", max_output=64000,
                  supported_parameters=SONNET.supported_parameters, constraints=SONNET.constraints)
OPUS_47 = ModelInfo("anthropic/claude-opus-4-7", "anthropic", max_output=128000,
                    supported_parameters=COMMON_PARAMETERS - OPENAI_ONLY - {"temperature", "top_p"},
                    features={"thinking": "adaptive"})
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather",
    "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}


class Api:
    """Talk to the stand-in through the adapter, as the engine would."""

    def __init__(self, app: AnthropicStandIn, url: str) -> None:
        self.app = app
        self.url = url

    def adapter(self, key: str = KEY, **options) -> AnthropicAdapter:
        return AnthropicAdapter(ProviderConfig("anthropic", "anthropic", self.url, api_key=key, options=options))

    @staticmethod
    def request(body: dict, info: ModelInfo | None, stream: bool = False) -> ChatRequest:
        model = info.id if info else "anthropic/claude-sonnet-4-5"
        body = {"model": model, **body}
        return ChatRequest(body, model, "anthropic", model.split("/", 1)[1], info, stream=stream)

    def complete(self, body: dict, info: ModelInfo | None = SONNET, adapter: AnthropicAdapter | None = None) -> dict:
        adapter = adapter or self.adapter()
        req = self.request(body, info)
        up = adapter.build_request(req)
        r = httpx.post(up.url, headers=up.headers, content=up.body)
        if r.status_code != 200:
            raise adapter.parse_error(r.status_code, r.content, r.headers)
        return adapter.parse_response(req, r.status_code, r.content)

    def stream(self, body: dict, info: ModelInfo | None = SONNET) -> tuple[list[dict], GatewayError | None]:
        adapter = self.adapter()
        req = self.request({**body, "stream": True}, info, stream=True)
        up = adapter.build_request(req)
        chunks: list[dict] = []
        with httpx.stream("POST", up.url, headers=up.headers, content=up.body) as r:
            if r.status_code != 200:
                r.read()
                return chunks, adapter.parse_error(r.status_code, r.content, r.headers)
            assert r.headers["content-type"].startswith("text/event-stream")
            decoder, translator = SSEDecoder(), adapter.stream_translator(req)
            try:
                for data in r.iter_bytes():
                    for event in decoder.feed(data):
                        chunks.extend(translator.feed(event))
                for event in decoder.flush():
                    chunks.extend(translator.feed(event))
                chunks.extend(translator.finish())
            except GatewayError as exc:
                return chunks, exc
        return chunks, None

    def post(self, body: dict, version: str | None = "2023-06-01", path: str = "/v1/messages",
             **headers: str) -> httpx.Response:
        sent = {"content-type": "application/json", "x-api-key": KEY}
        if version:
            sent["anthropic-version"] = version
        sent.update({k.replace("_", "-"): v for k, v in headers.items()})
        return httpx.post(self.url + path, headers={k: v for k, v in sent.items() if v is not None},
                          content=json.dumps(body))

    @property
    def sent(self) -> dict:
        return self.app.last.json


@pytest.fixture(scope="module")
def server():
    app = AnthropicStandIn(KEY)
    thread = ServerThread(app).start()
    yield app, thread.url
    thread.stop()


@pytest.fixture
def api(server) -> Api:
    app, url = server
    app.reset()
    return Api(app, url)


def message(out: dict) -> dict:
    return out["choices"][0]["message"]


def accumulate(chunks: list[dict]) -> dict:
    """Fold stream chunks into one message (as an SDK would)."""
    result: dict = {"content": "", "reasoning_content": "", "reasoning_details": [], "tool_calls": {},
                    "finish_reason": None, "usage": None, "roles": []}
    for chunk in chunks:
        if chunk.get("usage"):
            result["usage"] = chunk["usage"]
        for choice in chunk["choices"]:
            delta = choice["delta"]
            if "role" in delta:
                result["roles"].append(delta["role"])
            result["content"] += delta.get("content") or ""
            result["reasoning_content"] += delta.get("reasoning_content") or ""
            result["reasoning_details"] += delta.get("reasoning_details") or []
            for call in delta.get("tool_calls") or ():
                entry = result["tool_calls"].setdefault(call["index"], {"id": None, "name": None, "arguments": ""})
                entry["id"] = call.get("id") or entry["id"]
                entry["name"] = call.get("function", {}).get("name") or entry["name"]
                entry["arguments"] += call["function"].get("arguments") or ""
            if choice["finish_reason"]:
                result["finish_reason"] = choice["finish_reason"]
    return result


HELLO = {"messages": [{"role": "user", "content": "Hello there"}]}

# ================================================================ round trips


def test_plain_chat(api: Api):
    out = api.complete(HELLO)
    assert message(out) == {"role": "assistant", "content": "You said: Hello there"}
    assert out["choices"][0]["finish_reason"] == "stop"
    assert out["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7,
                            "prompt_tokens_details": {"cached_tokens": 0},
                            "completion_tokens_details": {"reasoning_tokens": 0}}
    rec = api.app.last
    assert (rec.path, rec.headers["anthropic-version"], rec.headers["x-api-key"]) == ("/v1/messages", "2023-06-01", KEY)
    assert rec.json == {"model": "claude-sonnet-4-5", "max_tokens": 8192,
                        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello there"}]}]}


def test_plain_chat_streamed(api: Api):
    chunks, error = api.stream(HELLO)
    assert error is None
    assert chunks[0] == {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}
    folded = accumulate(chunks)
    assert (folded["roles"], folded["content"], folded["finish_reason"]) == (["assistant"], "You said: Hello there", "stop")
    assert len([c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]) == 4  # word by word
    assert chunks[-1] == {"choices": [], "usage": api.complete(HELLO)["usage"]}


def test_system_and_multi_turn(api: Api):
    out = api.complete({"messages": [
        {"role": "system", "content": "Be brief"},
        {"role": "developer", "content": "Answer in English"},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "How are you"},
    ]})
    assert message(out)["content"] == "You said: How are you"
    assert api.sent["system"] == [{"type": "text", "text": "Be brief"}, {"type": "text", "text": "Answer in English"}]
    assert [m["role"] for m in api.sent["messages"]] == ["user", "assistant", "user"]
    assert out["usage"]["prompt_tokens"] == 5 + 2 + 2 + 4  # system words, then words + 1 per turn


def test_sampling_parameters_reach_the_model(api: Api):
    api.complete({**HELLO, "temperature": 0.3, "stop": ["zzz"], "user": "user-7", "max_tokens": 50})
    sent = api.sent
    assert (sent["temperature"], sent["stop_sequences"], sent["metadata"], sent["max_tokens"]) == (
        0.3, ["zzz"], {"user_id": "user-7"}, 50)
    assert "top_p" not in sent
    api.complete({**HELLO, "top_p": 0.5}, info=HAIKU)
    assert api.sent["top_p"] == 0.5 and "temperature" not in api.sent


def test_model_limits_are_caught_by_check_and_enforced_upstream(api: Api):
    body = {**HELLO, "temperature": 0.3, "top_p": 0.5}
    assert [u.param for u in api.adapter().check(api.request(body, HAIKU))] == ["top_p"]
    with pytest.raises(GatewayError) as info:
        api.complete(body, info=HAIKU)
    assert info.value.status == 400
    assert "`temperature` and `top_p` cannot both be specified for this model" in info.value.message
    body = {**HELLO, "temperature": 0.3}
    assert [u.param for u in api.adapter().check(api.request(body, OPUS_47))] == ["temperature"]
    with pytest.raises(GatewayError) as info:
        api.complete(body, info=OPUS_47)
    assert "`temperature` is deprecated for this model." in info.value.message


def test_version_2026_10_21_never_receives_sampling(api: Api):
    adapter = api.adapter(anthropic_version="2026-10-21")
    body = {**HELLO, "temperature": 0.5, "top_p": 0.9}
    assert {u.param for u in adapter.check(api.request(body, None))} == {"temperature", "top_p"}
    out = api.complete(body, info=None, adapter=adapter)  # had the params been dropped, it works
    assert message(out)["content"] == "You said: Hello there"
    assert api.app.last.headers["anthropic-version"] == "2026-10-21"
    assert "temperature" not in api.sent


@pytest.mark.parametrize("streamed", [False, True])
def test_stop_sequence_and_max_tokens_finish_reasons(api: Api, streamed: bool):
    def run(extra):
        if streamed:
            folded = accumulate(api.stream({**HELLO, **extra})[0])
            return folded["content"], folded["finish_reason"]
        out = api.complete({**HELLO, **extra})
        return message(out)["content"], out["choices"][0]["finish_reason"]

    assert run({"stop": "there"}) == ("You said: Hello ", "stop")
    assert api.sent["stop_sequences"] == ["there"]
    assert run({"max_tokens": 2}) == ("You said:", "length")
    assert run({"max_completion_tokens": 3}) == ("You said: Hello", "length")


# ---------------------------------------------------------------- tools


def test_tool_call_and_tool_result_round_trip(api: Api):
    ask = {"role": "user", "content": "Use get_weather for Paris"}
    out = api.complete({"messages": [ask], "tools": [WEATHER, TIME]})
    assert out["choices"][0]["finish_reason"] == "tool_calls"
    assistant = message(out)
    assert assistant["content"] is None
    [call] = assistant["tool_calls"]
    assert call["id"].startswith("toolu_")
    assert (call["function"]["name"], json.loads(call["function"]["arguments"])) == ("get_weather", {"location": "Paris"})
    assert api.sent["tools"][0] == {"name": "get_weather", "description": "Current weather",
                                    "input_schema": WEATHER["function"]["parameters"]}

    out = api.complete({"messages": [ask, assistant, {"role": "tool", "tool_call_id": call["id"], "content": "Sunny, 21C"}],
                        "tools": [WEATHER, TIME]})
    assert message(out)["content"] == "Tool results: get_weather=Sunny, 21C"
    sent = api.sent["messages"]
    assert sent[1]["content"] == [{"type": "tool_use", "id": call["id"], "name": "get_weather",
                                   "input": {"location": "Paris"}}]
    assert sent[2] == {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["id"],
                                                    "content": "Sunny, 21C"}]}


def test_parallel_tool_results_go_back_in_one_user_message(api: Api):
    ask = {"role": "user", "content": "call get_weather and get_time"}
    assistant = message(api.complete({"messages": [ask], "tools": [WEATHER, TIME]}))
    calls = assistant["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["get_weather", "get_time"]
    results = [{"role": "tool", "tool_call_id": calls[0]["id"], "content": "rain"},
               {"role": "tool", "tool_call_id": calls[1]["id"], "content": [{"type": "text", "text": "noon"}]},
               {"role": "user", "content": "and tomorrow?"}]
    out = api.complete({"messages": [ask, assistant, *results], "tools": [WEATHER, TIME]})
    sent = api.sent["messages"]
    assert len(sent) == 3
    assert [b["type"] for b in sent[2]["content"]] == ["tool_result", "tool_result", "text"]
    assert [b.get("tool_use_id") for b in sent[2]["content"][:2]] == [calls[0]["id"], calls[1]["id"]]
    assert message(out)["content"] == "Tool results: get_weather=rain; get_time=noon"


def test_parallel_tool_calls_false_allows_one_call(api: Api):
    out = api.complete({"messages": [{"role": "user", "content": "call get_weather and get_time"}],
                        "tools": [WEATHER, TIME], "parallel_tool_calls": False})
    assert len(message(out)["tool_calls"]) == 1
    assert api.sent["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}


def test_streamed_tool_call_arguments_reassemble_into_valid_json(api: Api):
    chunks, error = api.stream({"messages": [{"role": "user", "content": "call get_weather and get_time"}],
                                "tools": [WEATHER, TIME]})
    assert error is None
    folded = accumulate(chunks)
    assert folded["finish_reason"] == "tool_calls"
    calls = folded["tool_calls"]
    assert sorted(calls) == [0, 1]
    assert [(c["name"], json.loads(c["arguments"])) for c in calls.values()] == [
        ("get_weather", {"location": "Paris"}), ("get_time", {"city": "Paris"})]
    assert all(c["id"].startswith("toolu_") for c in calls.values())
    pieces = [c for c in chunks if c["choices"] and "tool_calls" in c["choices"][0]["delta"]]
    assert len(pieces) > 4  # arguments arrived in several pieces


@pytest.mark.parametrize(("choice", "text", "expected_call"), [
    ("none", "Use get_weather for Paris", None),
    ("required", "Hello", "get_weather"),
    ({"type": "function", "function": {"name": "get_time"}}, "Use get_weather for Paris", "get_time"),
    ("auto", "Hello", None),
])
def test_tool_choice(api: Api, choice, text, expected_call):
    out = api.complete({"messages": [{"role": "user", "content": text}], "tools": [WEATHER, TIME],
                        "tool_choice": choice})
    calls = message(out).get("tool_calls") or []
    assert [c["function"]["name"] for c in calls] == ([expected_call] if expected_call else [])
    if not expected_call:
        assert message(out)["content"] == f"You said: {text}"


# ---------------------------------------------------------------- images


def test_images_data_url_and_https_url(api: Api):
    out = api.complete({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "low"}}]}]})
    assert message(out)["content"] == "I see 1 image: image/png 68 bytes"
    out = api.complete({"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        {"type": "text", "text": "And this?"}]}]})
    assert message(out)["content"] == "I see 1 image: url https://example.com/cat.png"
    assert api.sent["messages"][0]["content"][0] == {"type": "image",
                                                     "source": {"type": "url", "url": "https://example.com/cat.png"}}


# ---------------------------------------------------------------- thinking


def test_thinking_is_returned_signed_and_counted(api: Api):
    out = api.complete({"messages": [{"role": "user", "content": "What is 2+2?"}], "reasoning_effort": "low"})
    assert api.sent["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    msg = message(out)
    thought = "The user asked about 'What is 2+2?'. I will answer."
    assert msg["reasoning_content"] == thought
    assert msg["reasoning_details"] == [{"type": "reasoning.text", "text": thought, "signature": api.app.sign(thought),
                                         "format": "anthropic-claude-v1", "index": 0}]
    assert msg["content"] == "You said: What is 2+2?"
    assert out["usage"]["completion_tokens_details"] == {"reasoning_tokens": 10}  # words of the thought
    assert out["usage"]["completion_tokens"] == 5 + 10


def tool_loop(api: Api, assistant: dict) -> dict:
    return {"messages": [{"role": "user", "content": "Use get_weather for Paris"}, assistant,
                         {"role": "tool", "tool_call_id": assistant["tool_calls"][0]["id"], "content": "Sunny"}],
            "tools": [WEATHER], "reasoning_effort": "medium"}


def test_thinking_signature_round_trip_through_a_tool_loop(api: Api):
    first = api.complete({"messages": [{"role": "user", "content": "Use get_weather for Paris"}],
                          "tools": [WEATHER], "reasoning_effort": "medium"})
    assistant = message(first)
    assert assistant["reasoning_details"][0]["signature"]
    assert assistant["tool_calls"][0]["function"]["name"] == "get_weather"

    out = api.complete(tool_loop(api, assistant))
    assert message(out)["content"] == "Tool results: get_weather=Sunny"
    blocks = api.sent["messages"][1]["content"]
    assert [b["type"] for b in blocks] == ["thinking", "tool_use"]
    assert blocks[0]["signature"] == assistant["reasoning_details"][0]["signature"]

    without = {k: v for k, v in assistant.items() if k not in ("reasoning_details", "reasoning_content")}
    with pytest.raises(GatewayError) as info:
        api.complete(tool_loop(api, without))
    assert "Expected `thinking` or `redacted_thinking`, but found `tool_use`" in info.value.message

    forged = {**assistant, "reasoning_details": [{**assistant["reasoning_details"][0], "text": "something else"}]}
    with pytest.raises(GatewayError) as info:
        api.complete(tool_loop(api, forged))
    assert info.value.status == 400
    assert "messages.1.content.0: Invalid `signature` in `thinking` block" in info.value.message


def test_streamed_thinking_round_trip(api: Api):
    chunks, error = api.stream({"messages": [{"role": "user", "content": "Use get_weather for Paris"}],
                                "tools": [WEATHER], "reasoning_effort": "high"})
    assert error is None
    folded = accumulate(chunks)
    [detail] = folded["reasoning_details"]
    assert detail["text"] == folded["reasoning_content"] == "The user asked about 'Use get_weather for Paris'. I will answer."
    assert detail["signature"] == api.app.sign(detail["text"])
    assert folded["usage"]["completion_tokens_details"]["reasoning_tokens"] == len(detail["text"].split())
    call = folded["tool_calls"][0]
    assistant = {"role": "assistant", "content": folded["content"] or None,
                 "reasoning_content": folded["reasoning_content"], "reasoning_details": folded["reasoning_details"],
                 "tool_calls": [{"id": call["id"], "type": "function",
                                 "function": {"name": call["name"], "arguments": call["arguments"]}}]}
    out = api.complete(tool_loop(api, assistant))
    assert message(out)["content"] == "Tool results: get_weather=Sunny"


def test_redacted_thinking_round_trip(api: Api):
    ask = {"role": "user", "content": "please redact your notes"}
    first = message(api.complete({"messages": [ask], "reasoning_effort": "low"}))
    kinds = [d["type"] for d in first["reasoning_details"]]
    assert kinds == ["reasoning.text", "reasoning.encrypted"]
    follow = {"role": "user", "content": "thanks"}
    out = api.complete({"messages": [ask, first, follow], "reasoning_effort": "low"})
    assert message(out)["content"] == "You said: thanks"
    assert [b["type"] for b in api.sent["messages"][1]["content"]] == ["thinking", "redacted_thinking", "text"]

    tampered = {**first, "reasoning_details": [first["reasoning_details"][0],
                                               {**first["reasoning_details"][1], "data": "abc.def"}]}
    with pytest.raises(GatewayError) as info:
        api.complete({"messages": [ask, tampered, follow], "reasoning_effort": "low"})
    assert "Invalid `data` in `redacted_thinking` block" in info.value.message


def test_adaptive_models_get_adaptive_thinking(api: Api):
    out = api.complete({"messages": [{"role": "user", "content": "Hi"}], "reasoning_effort": "medium"}, info=OPUS_47)
    assert (api.sent["thinking"], api.sent["output_config"]) == ({"type": "adaptive"}, {"effort": "medium"})
    assert message(out)["reasoning_content"]
    # Without the catalog's feature the adapter would send a budget, which these models refuse.
    with pytest.raises(GatewayError) as info:
        api.complete({"messages": [{"role": "user", "content": "Hi"}], "reasoning_effort": "medium"},
                     info=ModelInfo("anthropic/claude-opus-4-7", "anthropic"))
    assert "thinking.type.enabled is not supported for this model" in info.value.message


# ---------------------------------------------------------------- caching, errors


def test_prompt_cache_write_then_read(api: Api):
    body = {"messages": [
        {"role": "system", "content": [{"type": "text", "text": "A long shared policy document of ten words here",
                                        "cache_control": {"type": "ephemeral"}}]},
        {"role": "user", "content": "Summarise it"}]}
    first = api.complete(body)["usage"]
    second = api.complete(body)["usage"]
    assert first["prompt_tokens"] == second["prompt_tokens"] == 9 + 3
    assert first["prompt_tokens_details"] == {"cached_tokens": 0, "cache_write_tokens": 9}
    assert second["prompt_tokens_details"] == {"cached_tokens": 9}
    chunks, _ = api.stream(body)
    assert chunks[-1]["usage"]["prompt_tokens_details"] == {"cached_tokens": 9}


def test_error_in_the_middle_of_a_stream(api: Api):
    async def overloaded(rec, send):
        await send_sse(send, [
            b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_x","type":"message",'
            b'"role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":null,'
            b'"usage":{"input_tokens":3,"output_tokens":1}}}\n\n',
            b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
            b'"content_block":{"type":"text","text":""}}\n\n',
            b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
            b'"delta":{"type":"text_delta","text":"Partial"}}\n\n',
            b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n',
        ])

    api.app.scripted.append(overloaded)
    chunks, error = api.stream(HELLO)
    assert accumulate(chunks)["content"] == "Partial"
    assert error is not None and (error.status, error.retryable) == (502, True)
    assert "Overloaded" in error.message


def test_stream_that_stops_early_is_an_error(api: Api):
    async def cut(rec, send):
        await send_sse(send, [b'event: message_start\ndata: {"type":"message_start","message":{"id":"m",'
                              b'"content":[],"usage":{"input_tokens":1,"output_tokens":1}}}\n\n'])

    api.app.scripted.append(cut)
    _, error = api.stream(HELLO)
    assert error is not None and error.code == "upstream_incomplete_stream"


def test_wrong_key_is_an_upstream_auth_failure_without_the_key(api: Api):
    with pytest.raises(GatewayError) as info:
        api.complete(HELLO, adapter=api.adapter(key="sk-ant-wrong-key"))
    assert (info.value.status, info.value.code) == (502, "upstream_auth_failed")
    assert "invalid x-api-key" in info.value.message
    assert "sk-ant-wrong-key" not in info.value.message


def test_unknown_model_is_a_404(api: Api):
    with pytest.raises(GatewayError) as info:
        api.complete(HELLO, info=ModelInfo("anthropic/gpt-4o", "anthropic"))
    assert info.value.status == 404


# ================================================================ the stand-in is strict

VALID = {"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": [{"role": "user", "content": "Hi"}]}
TOOL_USE = {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}]}
TOOLS = [{"name": "f", "input_schema": {"type": "object", "properties": {}}}]


def image(source: dict) -> list[dict]:
    return [{"role": "user", "content": [{"type": "image", "source": source}, {"type": "text", "text": "?"}]}]


def test_valid_requests_are_accepted(api: Api):
    for body, version in [(VALID, "2023-06-01"), (VALID, "2026-10-21"),
                          ({**VALID, "temperature": 0.5}, "2023-06-01"),
                          ({**VALID, "model": "claude-sonnet-4-20250514", "temperature": 0.5, "top_p": 0.9}, "2023-06-01"),
                          ({**VALID, "messages": [VALID["messages"][0], TOOL_USE, {"role": "user", "content": [
                              {"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}]}],
                            "tools": TOOLS}, "2023-06-01")]:
        r = api.post(body, version)
        assert r.status_code == 200, r.text
        assert r.json()["type"] == "message"


def test_bearer_auth_is_accepted_but_x_api_key_wins(api: Api):
    assert api.post(VALID, x_api_key=None, authorization=f"Bearer {KEY}").status_code == 200
    r = api.post(VALID, x_api_key="sk-ant-other", authorization=f"Bearer {KEY}")
    assert r.status_code == 401
    assert r.json()["error"] == {"type": "authentication_error", "message": "invalid x-api-key"}
    assert api.post(VALID, x_api_key=None).status_code == 401


def test_version_header_and_path(api: Api):
    r = api.post(VALID, version=None)
    assert (r.status_code, r.json()["error"]["message"]) == (400, "anthropic-version: header is required")
    assert "is not a valid version" in api.post(VALID, version="2024-01-01").json()["error"]["message"]
    assert api.post(VALID, path="/v1/chat/completions").status_code == 404


def messages(*items: dict) -> dict:
    return {"messages": list(items)}


REJECTIONS = [
    ("unknown-field", {"frequency_penalty": 0.5}, "frequency_penalty: Extra inputs are not permitted"),
    ("missing-max-tokens", {"max_tokens": None}, "max_tokens: Field required"),
    ("system-role", messages({"role": "system", "content": "x"}, {"role": "user", "content": "Hi"}),
     "messages.0.role: Input should be 'user' or 'assistant'"),
    ("tool-role", messages({"role": "tool", "content": "x"}), "messages.0.role: Input should be 'user' or 'assistant'"),
    ("empty-messages", messages(), "messages: at least one message is required"),
    ("openai-field-in-message", messages({"role": "user", "content": "Hi", "name": "bob"}),
     "messages.0.name: Extra inputs are not permitted"),
    ("empty-text-block", messages({"role": "user", "content": [{"type": "text", "text": ""}]}),
     "messages: text content blocks must be non-empty"),
    ("empty-user-message", messages({"role": "user", "content": []}), "messages.0: all messages must have non-empty"),
    ("temperature-range", {"temperature": 1.5}, "temperature: Input should be less than or equal to 1"),
    ("top-p-range", {"top_p": -0.1}, "top_p: Input should be greater than or equal to 0"),
    ("orphan-tool-result", messages({"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
                                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_9"}]}),
     "messages.2.content.0: unexpected `tool_use_id` found in `tool_result` blocks: toolu_9"),
    ("tool-use-without-result", {**messages({"role": "user", "content": "Hi"}, TOOL_USE, {"role": "user", "content": "?"}),
                                 "tools": TOOLS},
     "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_1"),
    ("tool-use-last", {**messages({"role": "user", "content": "Hi"}, TOOL_USE), "tools": TOOLS},
     "`tool_use` ids were found without `tool_result` blocks immediately after: toolu_1"),
    ("image-media-type", messages(*image({"type": "base64", "media_type": "image/bmp", "data": PNG})),
     "messages.0.content.0.image.source.base64.media_type: Input should be 'image/jpeg'"),
    ("image-base64", messages(*image({"type": "base64", "media_type": "image/png", "data": "not base64!"})),
     "The image data is not valid base64"),
    ("image-url-scheme", messages(*image({"type": "url", "url": "ftp://example.com/a.png"})),
     "only http and https are supported"),
    ("image-source-type", messages(*image({"type": "file", "file_id": "f"})), "source: Input tag 'file'"),
    ("image-in-assistant", messages({"role": "user", "content": "Hi"}, {"role": "assistant", "content": [
        {"type": "image", "source": {"type": "url", "url": "https://a.b/c.png"}}]}), "Input tag 'image'"),
    ("tool-without-schema", {"tools": [{"name": "f"}]}, "tools.0.custom.input_schema: Field required"),
    ("openai-tool-shape", {"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools.0: Input tag 'function'"),
    ("tool-with-parameters", {"tools": [{"name": "f", "parameters": {}, "input_schema": {"type": "object"}}]},
     "tools.0.custom.parameters: Extra inputs are not permitted"),
    ("tool-choice-unknown", {"tools": TOOLS, "tool_choice": {"type": "tool", "name": "nope"}}, "Tool 'nope' not found"),
    ("tool-choice-shape", {"tools": TOOLS, "tool_choice": {"type": "required"}}, "tool_choice: Input tag 'required'"),
    ("thinking-unsigned", messages({"role": "user", "content": "Hi"}, {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "hmm"}, {"type": "text", "text": "Hello"}]}, {"role": "user", "content": "?"}),
     "messages.1.content.0.thinking.signature: Field required"),
    ("thinking-forged", messages({"role": "user", "content": "Hi"}, {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "hmm", "signature": "c2lnbmF0dXJl"}, {"type": "text", "text": "Hello"}]},
        {"role": "user", "content": "?"}), "messages.1.content.0: Invalid `signature` in `thinking` block"),
    ("metadata-extra", {"metadata": {"user_id": "u", "foo": "bar"}}, "metadata.foo: Extra inputs are not permitted"),
    ("cache-control-limit", messages({"role": "user", "content": [
        {"type": "text", "text": f"part {i}", "cache_control": {"type": "ephemeral"}} for i in range(5)]}),
     "A maximum of 4 blocks with cache_control may be provided. Found 5."),
    ("thinking-temperature", {"thinking": {"type": "enabled", "budget_tokens": 1024}, "max_tokens": 2000,
                              "temperature": 0.5}, "`temperature` may only be set to 1 when thinking is enabled"),
    ("thinking-forced-tool", {"thinking": {"type": "enabled", "budget_tokens": 1024}, "max_tokens": 2000,
                              "tools": TOOLS, "tool_choice": {"type": "any"}},
     "Thinking may not be enabled when tool_choice forces tool use."),
    ("thinking-budget-min", {"thinking": {"type": "enabled", "budget_tokens": 512}},
     "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"),
    ("thinking-budget-max", {"thinking": {"type": "enabled", "budget_tokens": 2048}, "max_tokens": 2048},
     "`max_tokens` must be greater than `thinking.budget_tokens`"),
    ("adaptive-on-4-5", {"thinking": {"type": "adaptive"}}, "adaptive thinking is not supported on this model"),
    ("enabled-on-opus-4-7", {"model": "claude-opus-4-7", "thinking": {"type": "enabled", "budget_tokens": 1024},
                             "max_tokens": 4000}, "thinking.type.enabled is not supported for this model"),
    ("effort-value", {"output_config": {"effort": "minimal"}}, "output_config.effort: Input should be 'low'"),
]
SAMPLING_FREE = [(model, param) for model in ("claude-opus-4-7", "claude-opus-4-8", "claude-sonnet-5",
                                               "claude-sonnet-5-5", "claude-haiku-5-5", "claude-opus-5")
                 for param in ("temperature", "top_p", "top_k")]
EXCLUSIVE = ["claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-5", "claude-opus-4-1",
             "claude-sonnet-4-5-20250929", "claude-sonnet-4-6"]


def rejected(api: Api, body: dict, version: str = "2023-06-01") -> str:
    r = api.post({k: v for k, v in body.items() if v is not None}, version)
    assert r.status_code == 400, r.text
    payload = r.json()
    assert payload["type"] == "error" and payload["error"]["type"] == "invalid_request_error"
    return payload["error"]["message"]


@pytest.mark.parametrize(("change", "fragment"), [(c, f) for _, c, f in REJECTIONS], ids=[i for i, _, _ in REJECTIONS])
def test_rejects_what_the_messages_api_rejects(api: Api, change: dict, fragment: str):
    assert fragment in rejected(api, {**VALID, **change})


@pytest.mark.parametrize(("model", "param"), SAMPLING_FREE)
def test_models_without_sampling_reject_it(api: Api, model: str, param: str):
    value = 5 if param == "top_k" else 0.5
    assert rejected(api, {**VALID, "model": model, param: value}) == f"`{param}` is deprecated for this model."
    assert api.post({**VALID, "model": model}).status_code == 200


@pytest.mark.parametrize("model", EXCLUSIVE)
def test_models_that_take_temperature_or_top_p_not_both(api: Api, model: str):
    message = rejected(api, {**VALID, "model": model, "temperature": 0.5, "top_p": 0.9})
    assert message == "`temperature` and `top_p` cannot both be specified for this model. Please use only one."
    assert api.post({**VALID, "model": model, "temperature": 0.5}).status_code == 200
    assert api.post({**VALID, "model": model, "top_p": 0.9}).status_code == 200


@pytest.mark.parametrize("param", ["temperature", "top_p", "top_k"])
def test_version_2026_10_21_rejects_sampling_even_at_defaults(api: Api, param: str):
    value = 1 if param != "top_k" else 40
    assert rejected(api, {**VALID, param: value}, "2026-10-21") == f"{param}: Extra inputs are not permitted"
    assert api.post({**VALID, param: value}, "2023-06-01").status_code == 200


def test_version_2026_10_21_rejects_citations_on_user_text(api: Api):
    body = {**VALID, "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi", "citations": [
        {"type": "char_location", "cited_text": "x", "document_index": 0, "start_char_index": 0, "end_char_index": 1}]}]}]}
    assert "citations" in rejected(api, body, "2026-10-21")
    assert api.post(body, "2023-06-01").status_code == 200
