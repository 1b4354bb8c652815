"""GoogleAdapter against the strict Gemini stand-in, over real HTTP, without the gateway;
and the stand-in's own strictness (it must refuse what the real API refuses)."""

from __future__ import annotations

import base64
import copy
import json

import httpx
import pytest

from lunos._sse import SSEDecoder
from lunos.gateway.errors import GatewayError
from lunos.gateway.providers.base import ChatRequest, ProviderConfig
from lunos.gateway.providers.google import GoogleAdapter
from tests.standins.gemini_api import GeminiStandIn
from tests.standins.harness import ServerThread

KEY = "gm-test"
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 60).decode()  # 68 bytes
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather",
    "parameters": {"type": "object", "properties": {"location": {"type": "string"}},
                   "required": ["location"], "additionalProperties": False}}}
TIME = {"type": "function", "function": {
    "name": "get_time", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}


@pytest.fixture(scope="module")
def server():
    standin = GeminiStandIn(api_key=KEY)
    thread = ServerThread(standin).start()
    yield standin, thread.url
    thread.stop()


@pytest.fixture
def standin(server) -> GeminiStandIn:
    server[0].reset()
    return server[0]


@pytest.fixture
def url(server) -> str:
    return server[1]


@pytest.fixture
def adapter(url) -> GoogleAdapter:
    return GoogleAdapter(ProviderConfig("google", "google", url, KEY))


def chat(model: str, stream: bool = False, **body) -> ChatRequest:
    return ChatRequest({"model": f"google/{model}", **body}, f"google/{model}", "google", model,
                       stream=stream)


def send(adapter: GoogleAdapter, req: ChatRequest) -> httpx.Response:
    up = adapter.build_request(req)
    assert KEY not in up.url and "key=" not in up.url
    return httpx.post(up.url, headers=up.headers, content=up.body, timeout=10)


def complete(adapter: GoogleAdapter, model: str, **body) -> dict:
    req = chat(model, **body)
    response = send(adapter, req)
    if response.status_code != 200:
        raise adapter.parse_error(response.status_code, response.content, response.headers)
    return adapter.parse_response(req, 200, response.content)


def stream(adapter: GoogleAdapter, model: str, **body) -> list[dict]:
    req = chat(model, stream=True, **body)
    response = send(adapter, req)
    if response.status_code != 200:
        raise adapter.parse_error(response.status_code, response.content, response.headers)
    assert response.headers["content-type"].startswith("text/event-stream")
    decoder, translator, out = SSEDecoder(), adapter.stream_translator(req), []
    for piece in response.iter_bytes(5):
        for event in decoder.feed(piece):
            out.extend(translator.feed(event))
    for event in decoder.flush():
        out.extend(translator.feed(event))
    return out + list(translator.finish())


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def message_of(chunks: list[dict], index: int = 0) -> dict:
    """Fold stream chunks of one choice into a message (like an SDK accumulator)."""
    message: dict = {"content": "", "tool_calls": {}, "finish_reason": None}
    for chunk in chunks:
        for choice in chunk["choices"]:
            if choice["index"] != index:
                continue
            delta = choice["delta"]
            message["content"] += delta.get("content") or ""
            for call in delta.get("tool_calls", ()):
                entry = message["tool_calls"].setdefault(
                    call["index"], {"id": call.get("id"), "type": "function",
                                    "function": {"name": "", "arguments": ""}})
                if "extra_content" in call:
                    entry["extra_content"] = call["extra_content"]
                entry["function"]["name"] += call.get("function", {}).get("name") or ""
                entry["function"]["arguments"] += call.get("function", {}).get("arguments") or ""
            if choice["finish_reason"]:
                message["finish_reason"] = choice["finish_reason"]
    message["tool_calls"] = [message["tool_calls"][k] for k in sorted(message["tool_calls"])]
    return message


def usage_of(chunks: list[dict]) -> dict:
    (usage,) = [c["usage"] for c in chunks if not c["choices"]]
    return usage


# -- round trips ----------------------------------------------------------------------------


def test_plain_chat(adapter, standin):
    out = complete(adapter, "gemini-2.0-flash", messages=user("Hello there"))
    assert out["choices"] == [{"index": 0, "message": {"role": "assistant", "content": "You said: Hello there"},
                               "finish_reason": "stop"}]
    assert out["usage"]["prompt_tokens"] == 3
    assert out["usage"]["completion_tokens"] == 4
    assert standin.last.headers["x-goog-api-key"] == KEY
    assert "key" not in standin.last.query


def test_system_and_multi_turn(adapter, standin):
    out = complete(adapter, "gemini-2.5-flash", messages=[
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "You said: first"},
        {"role": "user", "content": "second question"},
    ])
    assert out["choices"][0]["message"]["content"] == "You said: second question"
    received = standin.last.json
    assert received["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert [c["role"] for c in received["contents"]] == ["user", "model", "user"]
    # a thinking model: thoughts are counted inside completion tokens
    usage = out["usage"]
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 16
    assert usage["completion_tokens"] == 4 + 16  # "You said: second question"


def test_every_sampling_parameter_reaches_generation_config(adapter, standin):
    complete(adapter, "gemini-2.5-flash", messages=user("Hi"), temperature=0.2, top_p=0.8,
             max_completion_tokens=50, stop=["zzz"], presence_penalty=0.4, frequency_penalty=0.3,
             seed=11, n=2, response_format={"type": "json_object"}, reasoning_effort="low")
    assert standin.last.json["generationConfig"] == {
        "temperature": 0.2, "topP": 0.8, "seed": 11, "maxOutputTokens": 50, "stopSequences": ["zzz"],
        "presencePenalty": 0.4, "frequencyPenalty": 0.3, "candidateCount": 2,
        "responseMimeType": "application/json", "thinkingConfig": {"thinkingBudget": 1024}}


def test_max_tokens_and_stop_finish_reasons(adapter):
    out = complete(adapter, "gemini-2.0-flash", messages=user("one two three four"), max_tokens=2)
    assert out["choices"][0]["message"]["content"] == "You said:"
    assert out["choices"][0]["finish_reason"] == "length"
    out = complete(adapter, "gemini-2.0-flash", messages=user("one two three four"), stop="three")
    assert out["choices"][0]["message"]["content"] == "You said: one two "
    assert out["choices"][0]["finish_reason"] == "stop"
    chunks = stream(adapter, "gemini-3-flash-preview", messages=user("one two three four five"), max_tokens=4)
    assert message_of(chunks)["content"] == "You said: one two"
    assert message_of(chunks)["finish_reason"] == "length"


def test_stream_text_matches_the_non_stream_answer(adapter):
    text = "tell me about the lunos gateway and its many providers please"
    out = complete(adapter, "gemini-3-pro-preview", messages=user(text))
    chunks = stream(adapter, "gemini-3-pro-preview", messages=user(text))
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    content_deltas = [c["choices"][0]["delta"]["content"] for c in chunks
                      if c["choices"] and c["choices"][0]["delta"].get("content")]
    assert len(content_deltas) > 1  # really streamed in pieces
    assert message_of(chunks)["content"] == out["choices"][0]["message"]["content"]
    assert message_of(chunks)["finish_reason"] == "stop"
    # the text signature arrives once, as reasoning_details, and it is the non-stream one
    details = [d for c in chunks if c["choices"] for d in c["choices"][0]["delta"].get("reasoning_details", ())]
    assert details == out["choices"][0]["message"]["reasoning_details"]
    assert usage_of(chunks) == out["usage"]


def test_tool_call_round_trip_with_thought_signature_on_gemini3(adapter, standin):
    messages = user("What is the weather? use get_weather")
    out = complete(adapter, "gemini-3-pro-preview", messages=messages, tools=[WEATHER, TIME])
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    (call,) = choice["message"]["tool_calls"]
    assert call["function"] == {"name": "get_weather", "arguments": '{"location":"Paris"}'}
    signature = call["extra_content"]["google"]["thought_signature"]
    assert signature
    messages = [*messages, choice["message"],
                {"role": "tool", "tool_call_id": call["id"], "content": '{"temp_c": 21}'}]
    out = complete(adapter, "gemini-3-pro-preview", messages=messages, tools=[WEATHER, TIME])
    assert out["choices"][0]["message"]["content"] == 'Tool results: get_weather={"temp_c":21}'
    sent = standin.last.json["contents"]
    assert sent[1]["parts"][0]["thoughtSignature"] == signature
    assert sent[2]["parts"] == [{"functionResponse": {"name": "get_weather",
                                                      "response": {"result": {"temp_c": 21}}}}]


def test_client_that_drops_the_signature_still_gets_an_answer(adapter, standin):
    messages = user("use get_weather")
    out = complete(adapter, "gemini-3-pro-preview", messages=messages, tools=[WEATHER])
    message = copy.deepcopy(out["choices"][0]["message"])
    del message["tool_calls"][0]["extra_content"]
    messages = [*messages, message,
                {"role": "tool", "tool_call_id": message["tool_calls"][0]["id"], "content": "sunny"}]
    out = complete(adapter, "gemini-3-pro-preview", messages=messages, tools=[WEATHER])
    assert out["choices"][0]["message"]["content"] == "Tool results: get_weather=sunny"
    assert standin.last.json["contents"][1]["parts"][0]["thoughtSignature"] == "skip_thought_signature_validator"


def test_streamed_parallel_tool_calls_parse_and_go_back(adapter, standin):
    messages = user("call get_weather and get_time")
    chunks = stream(adapter, "gemini-3-flash-preview", messages=messages, tools=[WEATHER, TIME])
    message = message_of(chunks)
    assert message["finish_reason"] == "tool_calls"
    assert message["content"] == ""
    calls = message["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["get_weather", "get_time"]
    assert [json.loads(c["function"]["arguments"]) for c in calls] == [{"location": "Paris"}, {"city": "Paris"}]
    assert len({c["id"] for c in calls}) == 2
    assert "extra_content" in calls[0] and "extra_content" not in calls[1]  # only the first is signed
    assistant = {"role": "assistant", "content": None, "tool_calls": calls}
    results = [{"role": "tool", "tool_call_id": calls[1]["id"], "content": "noon"},
               {"role": "tool", "tool_call_id": calls[0]["id"], "content": "rain"}]
    chunks = stream(adapter, "gemini-3-flash-preview", messages=[*messages, assistant, *results],
                    tools=[WEATHER, TIME])
    assert message_of(chunks)["content"] == "Tool results: get_weather=rain; get_time=noon"
    assert usage_of(chunks)["prompt_tokens"] > 0


def test_two_sequential_steps_keep_both_signatures(adapter, standin):
    tools = [WEATHER, TIME]
    messages = user("use get_weather")
    first = complete(adapter, "gemini-3-pro-preview", messages=messages, tools=tools)["choices"][0]["message"]
    # the fake model answers tool results with text; the second step is what Gemini would send
    second_signature = standin.sign_call("get_time", {"city": "Paris"})
    second = {"role": "assistant", "content": None, "tool_calls": [{
        "id": "call_step2", "type": "function",
        "function": {"name": "get_time", "arguments": '{"city": "Paris"}'},
        "extra_content": {"google": {"thought_signature": second_signature}}}]}
    messages += [first, {"role": "tool", "tool_call_id": first["tool_calls"][0]["id"], "content": "rain"},
                 second, {"role": "tool", "tool_call_id": "call_step2", "content": "noon"}]
    out = complete(adapter, "gemini-3-pro-preview", messages=messages, tools=tools)
    assert out["choices"][0]["message"]["content"] == "Tool results: get_time=noon"
    sent = [p.get("thoughtSignature") for c in standin.last.json["contents"] for p in c["parts"]
            if "functionCall" in p]
    assert sent == [first["tool_calls"][0]["extra_content"]["google"]["thought_signature"],
                    second_signature]


@pytest.mark.parametrize(("choice", "mode", "expected"), [
    ("none", {"mode": "NONE"}, None),
    ("required", {"mode": "ANY"}, "get_weather"),
    ({"type": "function", "function": {"name": "get_time"}},
     {"mode": "ANY", "allowedFunctionNames": ["get_time"]}, "get_time"),
    ("auto", {"mode": "AUTO"}, None),
])
def test_tool_choice(adapter, standin, choice, mode, expected):
    text = "use get_weather" if choice == "none" else "hello"
    out = complete(adapter, "gemini-2.5-flash", messages=user(text), tools=[WEATHER, TIME], tool_choice=choice)
    assert standin.last.json["toolConfig"] == {"functionCallingConfig": mode}
    message = out["choices"][0]["message"]
    if expected is None:
        assert "tool_calls" not in message and message["content"] == f"You said: {text}"
    else:
        assert [c["function"]["name"] for c in message["tool_calls"]] == [expected]


def test_data_url_image(adapter, standin):
    out = complete(adapter, "gemini-2.5-flash", messages=[{"role": "user", "content": [
        {"type": "text", "text": "What is in it?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "high"}}]}])
    assert out["choices"][0]["message"]["content"] == "I see 1 image: image/png 68 bytes"
    assert standin.last.json["contents"][0]["parts"][1] == {"inlineData": {"mimeType": "image/png", "data": PNG}}


def test_json_schema_response(adapter, standin):
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "n": {"type": "integer"}},
              "required": ["city", "n"], "additionalProperties": False}
    out = complete(adapter, "gemini-2.5-flash", messages=user("Give JSON"),
                   response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}})
    assert json.loads(out["choices"][0]["message"]["content"]) == {"city": "Paris", "n": 1}
    assert standin.last.json["generationConfig"]["responseJsonSchema"] == schema


@pytest.mark.parametrize("model", ["gemini-3-pro-preview", "gemini-3-flash-preview", "gemini-2.5-pro",
                                   "gemini-2.5-flash"])
@pytest.mark.parametrize("effort", ["minimal", "low", "medium", "high"])
def test_every_reasoning_effort_is_accepted_by_every_thinking_model(adapter, model, effort):
    out = complete(adapter, model, messages=user("Hi"), reasoning_effort=effort)
    assert out["choices"][0]["message"]["content"] == "You said: Hi"


def test_reasoning_effort_changes_reasoning_tokens(adapter):
    def reasoning(model, effort):
        usage = complete(adapter, model, messages=user("Hi"), reasoning_effort=effort)["usage"]
        return usage["completion_tokens_details"]["reasoning_tokens"]

    assert reasoning("gemini-2.5-flash", "minimal") == 0
    assert reasoning("gemini-3-flash-preview", "low") < reasoning("gemini-3-flash-preview", "high")


def test_n_candidates(adapter):
    out = complete(adapter, "gemini-2.0-flash", messages=user("Hi"), n=2)
    assert [c["index"] for c in out["choices"]] == [0, 1]
    chunks = stream(adapter, "gemini-2.0-flash", messages=user("Hi you"), n=2)
    assert message_of(chunks, 0)["content"] == message_of(chunks, 1)["content"] == "You said: Hi you"


def test_blocked_prompt_and_safety_stop_are_content_filter(adapter):
    out = complete(adapter, "gemini-2.5-flash", messages=user("[[block]] this"))
    assert out["choices"][0]["finish_reason"] == "content_filter"
    assert out["choices"][0]["message"]["content"] == ""
    chunks = stream(adapter, "gemini-2.5-flash", messages=user("[[block]] this"))
    assert message_of(chunks)["finish_reason"] == "content_filter"
    chunks = stream(adapter, "gemini-2.5-flash", messages=user("[[unsafe]] this"))
    assert message_of(chunks) == {"content": "", "tool_calls": [], "finish_reason": "content_filter"}


def test_wrong_key_becomes_a_credentials_error(url):
    bad = GoogleAdapter(ProviderConfig("google", "google", url, "gm-wrong"))
    with pytest.raises(GatewayError) as err:
        complete(bad, "gemini-2.5-flash", messages=user("Hi"))
    assert err.value.status == 502 and err.value.code == "upstream_auth_failed"
    assert "gm-wrong" not in err.value.message


def test_upstream_refusal_reaches_the_client_as_400(adapter):
    with pytest.raises(GatewayError) as err:
        complete(adapter, "gemini-2.5-flash", messages=user("Hi"), stop=["a", "b", "c", "d", "e", "f"])
    assert err.value.status == 400 and "stop_sequences" in err.value.message


# -- the stand-in refuses what the real API refuses ------------------------------------------


def post(url: str, body, model: str = "gemini-2.5-flash", method: str = "generateContent",
         query: str = "", headers: dict | None = None) -> httpx.Response:
    headers = {"x-goog-api-key": KEY} if headers is None else headers
    target = f"{url}/v1beta/models/{model}:{method}" + (f"?{query}" if query else "")
    return httpx.post(target, json=body, headers=headers, timeout=10)


def error_of(response: httpx.Response) -> dict:
    return response.json()["error"]


BASE = {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}


def test_a_minimal_request_is_accepted(url, standin):
    response = post(url, BASE)
    assert response.status_code == 200
    body = response.json()
    assert body["candidates"][0]["content"]["role"] == "model"
    assert body["usageMetadata"]["totalTokenCount"] >= body["usageMetadata"]["promptTokenCount"]
    assert body["modelVersion"] == "gemini-2.5-flash" and body["responseId"]


def test_key_in_the_url_is_refused_even_with_the_header(url):
    response = post(url, BASE, query=f"key={KEY}")
    assert response.status_code == 400
    assert "URL" in error_of(response)["message"]


def test_missing_and_wrong_keys(url):
    response = post(url, BASE, headers={})
    assert response.status_code == 403 and error_of(response)["status"] == "PERMISSION_DENIED"
    response = post(url, BASE, headers={"x-goog-api-key": "nope"})
    assert response.status_code == 400
    assert error_of(response)["details"][0]["reason"] == "API_KEY_INVALID"
    response = post(url, BASE, headers={"authorization": f"Bearer {KEY}"})
    assert response.status_code == 403


def test_stream_needs_alt_sse_and_unknown_models_are_404(url):
    assert post(url, BASE, method="streamGenerateContent").status_code == 400
    response = post(url, BASE, method="streamGenerateContent", query="alt=sse")
    assert response.status_code == 200
    events = [e.data for e in SSEDecoder().feed(response.content)]
    assert all(json.loads(e)["usageMetadata"]["promptTokenCount"] == 2 for e in events)
    assert json.loads(events[-1])["candidates"][0]["finishReason"] == "STOP"
    response = post(url, BASE, model="gpt-4o")
    assert response.status_code == 404 and error_of(response)["status"] == "NOT_FOUND"


def test_snake_case_fields_are_accepted_like_the_real_api(url, standin):
    response = post(url, {**BASE, "generation_config": {"max_output_tokens": 2}})
    assert response.status_code == 200
    assert response.json()["candidates"][0]["finishReason"] == "MAX_TOKENS"


def with_(path: str, value) -> dict:
    """BASE with `value` set at a dotted path (list indexes as numbers)."""
    body = copy.deepcopy(BASE)
    keys = [int(k) if k.isdigit() else k for k in path.split(".")]
    target = body
    for key in keys[:-1]:
        target = target.setdefault(key, {}) if isinstance(key, str) else target[key]
    target[keys[-1]] = value
    return body


FUNCTIONS = {"functionDeclarations": [{"name": "f", "parametersJsonSchema": {"type": "object"}}]}


@pytest.mark.parametrize(("body", "message"), [
    (with_("temprature", 1), 'Unknown name "temprature": Cannot find field.'),
    (with_("generationConfig", {"maxTokens": 5}),
     "Unknown name \"maxTokens\" at 'generation_config': Cannot find field."),
    (with_("contents.0.parts.0.cache_control", {}),
     "Unknown name \"cache_control\" at 'contents[0].parts[0]': Cannot find field."),
    (with_("contents.0.name", "bob"), "Unknown name \"name\" at 'contents[0]'"),
    ({**BASE, "tools": [FUNCTIONS], "toolConfig": {"functionCallingConfig": {"mode": "ANY"}, "tool_choice": 1}},
     "Unknown name \"tool_choice\" at 'tool_config'"),
    ({**BASE, "tools": [{"functionDeclarations": [{"name": "f", "strict": True}]}]},
     "Unknown name \"strict\" at 'tools[0].function_declarations[0]'"),
    (with_("generationConfig", {"thinkingConfig": {"effort": "low"}}),
     "Unknown name \"effort\" at 'generation_config.thinking_config'"),
    (with_("generationConfig", {"temperature": "hot"}),
     "Invalid value at 'generation_config.temperature' (TYPE_FLOAT), \"hot\""),
    ({**BASE, "tools": [FUNCTIONS], "toolConfig": {"functionCallingConfig": {"mode": "AUTOMATIC"}}},
     "Invalid value at 'tool_config.function_calling_config.mode'"),
    (with_("contents.0.parts.0", {"inlineData": {"mimeType": "image/png", "data": "%%%"}}),
     "Base64 decoding failed"),
    (with_("contents.0.role", "assistant"), "Please use a valid role: user, model."),
    (with_("contents.0.role", "system"), "Please use a valid role: user, model."),
    ({"contents": []}, "contents is not specified"),
    ({"systemInstruction": {"parts": [{"text": "x"}]}}, "contents is not specified"),
    (with_("contents.0.parts", []), "contents.parts must not be empty"),
    (with_("contents.0.parts.0.text", ""), "empty text parameter"),
    (with_("contents.0.parts.0", {"thought": True}), "required oneof field 'data'"),
    (with_("contents.0.parts.0.inlineData", {"mimeType": "image/png", "data": PNG}),
     "oneof field 'data' is already set"),
])
def test_malformed_requests_are_refused(url, body, message):
    response = post(url, body)
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["status"] == "INVALID_ARGUMENT" and error["code"] == 400
    assert message in error["message"]


def turns(*contents) -> dict:
    return {"contents": list(contents), "tools": [{"functionDeclarations": [
        {"name": "f", "parametersJsonSchema": {"type": "object", "properties": {"a": {"type": "string"}}}}]}]}


U = {"role": "user", "parts": [{"text": "go"}]}
CALL = {"functionCall": {"name": "f", "args": {"a": "x"}}}
RESULT = {"functionResponse": {"name": "f", "response": {"result": "ok"}}}


@pytest.mark.parametrize(("body", "message"), [
    (turns(U, {"role": "model", "parts": [CALL]}), "number of function response parts"),
    (turns(U, {"role": "model", "parts": [CALL, CALL]}, {"role": "user", "parts": [RESULT]}),
     "number of function response parts"),
    (turns(U, {"role": "user", "parts": [RESULT]}), "function response turn comes immediately after a function call"),
    (turns({"role": "model", "parts": [CALL]}, {"role": "user", "parts": [RESULT]}),
     "function call turn comes immediately after a user turn"),
])
def test_function_turns_out_of_order_are_refused(url, body, message):
    response = post(url, body)
    assert response.status_code == 400 and message in error_of(response)["message"]


def test_matching_function_turns_are_accepted(url):
    body = turns(U, {"role": "model", "parts": [CALL, CALL]}, {"role": "user", "parts": [RESULT, RESULT]})
    response = post(url, body)
    assert response.status_code == 200
    assert response.json()["candidates"][0]["content"]["parts"][0]["text"] == "Tool results: f=ok; f=ok"


def declaration(**fields) -> dict:
    return {**BASE, "tools": [{"functionDeclarations": [{"name": "f", **fields}]}]}


CLASSIC = {"type": "OBJECT", "properties": {"a": {"type": "STRING"}}}


@pytest.mark.parametrize(("body", "message"), [
    (declaration(parameters={**CLASSIC, "additionalProperties": False}),
     "Unknown name \"additionalProperties\" at 'tools[0].function_declarations[0].parameters'"),
    (declaration(parameters={"type": "OBJECT", "properties": {"a": {"const": "x", "type": "STRING"}}}),
     "Unknown name \"const\" at 'tools[0].function_declarations[0].parameters.properties[0].value'"),
    (declaration(parameters={"type": "OBJECT", "properties": {"a": {"$ref": "#/$defs/A"}}, "$defs": {}}),
     'Unknown name "$ref"'),
    (declaration(parameters={"type": "OBJECT", "properties": {"a": {"type": "STRING"}}, "$schema": "x"}),
     'Unknown name "$schema"'),
    (declaration(parameters={"type": "OBJECT", "properties": {"a": {"description": "no type"}}}),
     "properties[0].value.type: must be specified"),
    (declaration(parameters={"type": "OBJECT"}), "should be non-empty for OBJECT type"),
    (declaration(parameters=CLASSIC, parametersJsonSchema={"type": "object"}), "mutually exclusive"),
    (declaration(parametersJsonSchema={"type": "string"}), "must describe an object"),
    ({**BASE, "tools": [{"functionDeclarations": [{"name": "get weather"}]}]}, "Invalid function name"),
    ({**BASE, "tools": [{"functionDeclarations": [{"name": "1abc"}]}]}, "Invalid function name"),
    ({**BASE, "tools": [FUNCTIONS], "toolConfig": {"functionCallingConfig": {
        "mode": "AUTO", "allowedFunctionNames": ["f"]}}}, "only be set when mode is ANY"),
    ({**BASE, "tools": [FUNCTIONS], "toolConfig": {"functionCallingConfig": {
        "mode": "ANY", "allowedFunctionNames": ["g"]}}}, "function 'g' is not declared"),
    ({**BASE, "toolConfig": {"functionCallingConfig": {"mode": "ANY"}}}, "without function_declarations"),
])
def test_tool_declarations_are_checked(url, body, message):
    response = post(url, body)
    assert response.status_code == 400, response.text
    assert message in error_of(response)["message"]


def test_classic_schema_and_full_json_schema_are_both_accepted(url):
    assert post(url, declaration(parameters=CLASSIC)).status_code == 200
    schema = {"type": "object", "properties": {"a": {"$ref": "#/$defs/A"}}, "$defs": {"A": {"const": "x"}},
              "additionalProperties": False, "$schema": "https://json-schema.org/draft/2020-12/schema"}
    assert post(url, declaration(parametersJsonSchema=schema)).status_code == 200


@pytest.mark.parametrize(("model", "config", "message"), [
    ("gemini-2.5-flash", {"candidateCount": 9}, "candidate_count"),
    ("gemini-2.5-flash", {"temperature": 2.5}, "temperature"),
    ("gemini-2.5-flash", {"topP": 1.5}, "top_p"),
    ("gemini-2.5-flash", {"maxOutputTokens": 0}, "max_output_tokens"),
    ("gemini-2.5-flash", {"stopSequences": list("abcdef")}, "stop_sequences"),
    ("gemini-2.5-flash", {"responseJsonSchema": {"type": "object"}}, "must be application/json"),
    ("gemini-2.5-flash", {"responseMimeType": "application/json", "responseJsonSchema": {"type": "object"},
                          "responseSchema": {"type": "OBJECT", "properties": {"a": {"type": "STRING"}}}},
     "cannot both be set"),
    ("gemini-2.5-flash", {"responseMimeType": "application/json", "responseJsonSchema": {
        "type": "object", "properties": {"a": {"$ref": "#/$defs/A", "description": "d"}}}}, "$ref is set"),
    ("gemini-2.5-flash", {"responseMimeType": "application/json",
                          "responseSchema": {"type": "OBJECT", "additionalProperties": False}},
     "Unknown name \"additionalProperties\" at 'generation_config.response_schema'"),
    ("gemini-3-pro-preview", {"thinkingConfig": {"thinkingLevel": "LOW", "thinkingBudget": 100}}, "cannot set both"),
    ("gemini-2.5-flash", {"thinkingConfig": {"thinkingLevel": "LOW"}}, "Thinking level is not supported"),
    ("gemini-3-pro-preview", {"thinkingConfig": {"thinkingLevel": "MINIMAL"}}, "MINIMAL is not supported"),
    ("gemini-3-pro-preview", {"thinkingConfig": {"thinkingLevel": "MEDIUM"}}, "MEDIUM is not supported"),
    ("gemini-2.5-pro", {"thinkingConfig": {"thinkingBudget": 0}}, "only works in thinking mode"),
    ("gemini-2.5-flash", {"thinkingConfig": {"thinkingBudget": 40000}}, "between 0 and 24576"),
    ("gemini-2.0-flash", {"thinkingConfig": {"thinkingBudget": 1024}}, "Thinking is not enabled"),
])
def test_generation_config_is_checked(url, model, config, message):
    response = post(url, {**BASE, "generationConfig": config}, model=model)
    assert response.status_code == 400, response.text
    assert message in error_of(response)["message"]


# -- thought signatures (gemini-3) ------------------------------------------------------------


def signed_call(standin: GeminiStandIn, args: dict) -> dict:
    return {"functionCall": {"name": "f", "args": args}, "thoughtSignature": standin.sign_call("f", args)}


def test_gemini3_refuses_a_current_turn_call_without_signature(url):
    body = turns(U, {"role": "model", "parts": [CALL]}, {"role": "user", "parts": [RESULT]})
    response = post(url, body, model="gemini-3-pro-preview")
    assert response.status_code == 400
    assert "missing a thought_signature" in error_of(response)["message"]
    assert "`default_api:f`" in error_of(response)["message"]
    assert post(url, body, model="gemini-2.5-flash").status_code == 200  # older models do not check


def test_gemini3_checks_only_the_first_call_of_each_current_step(url, standin):
    args2 = {"a": "y"}
    parallel = {"role": "model", "parts": [signed_call(standin, {"a": "x"}),
                                           {"functionCall": {"name": "f", "args": args2}}]}
    body = turns(U, parallel, {"role": "user", "parts": [RESULT, RESULT]})
    assert post(url, body, model="gemini-3-pro-preview").status_code == 200
    # a previous turn (before the last real user message) is not checked
    body = turns(U, {"role": "model", "parts": [CALL]}, {"role": "user", "parts": [RESULT]},
                 {"role": "model", "parts": [{"text": "done"}]}, U)
    assert post(url, body, model="gemini-3-pro-preview").status_code == 200
    # the second step of the current turn is checked too
    body = turns(U, parallel, {"role": "user", "parts": [RESULT, RESULT]},
                 {"role": "model", "parts": [CALL]}, {"role": "user", "parts": [RESULT]})
    response = post(url, body, model="gemini-3-pro-preview")
    assert response.status_code == 400 and "position 4" in error_of(response)["message"]


def test_forged_or_moved_signatures_are_corrupted(url, standin):
    for part in (
        {**CALL, "thoughtSignature": base64.b64encode(b"forged").decode()},
        {**CALL, "thoughtSignature": standin.sign_call("f", {"a": "other"})},  # signed for another call
        {**CALL, "thoughtSignature": GeminiStandIn(KEY).sign_call("f", {"a": "x"})},  # another issuer
    ):
        body = turns(U, {"role": "model", "parts": [part]}, {"role": "user", "parts": [RESULT]})
        response = post(url, body, model="gemini-3-pro-preview")
        assert response.status_code == 400 and error_of(response)["message"] == "Corrupted thought signature."
    for placeholder in ("skip_thought_signature_validator", "context_engineering_is_the_way_to_go"):
        body = turns(U, {"role": "model", "parts": [{**CALL, "thoughtSignature": placeholder}]},
                     {"role": "user", "parts": [RESULT]})
        assert post(url, body, model="gemini-3-pro-preview").status_code == 200


def test_gemini3_signs_calls_and_text(url, standin):
    body = turns({"role": "user", "parts": [{"text": "call f and f please"}]})
    parts = post(url, body, model="gemini-3-pro-preview").json()["candidates"][0]["content"]["parts"]
    assert parts[0]["thoughtSignature"] == standin.sign_call("f", parts[0]["functionCall"]["args"])
    text = post(url, BASE, model="gemini-3-pro-preview").json()["candidates"][0]["content"]["parts"]
    assert text[-1]["thoughtSignature"] == standin.sign_text("You said: Hi")
    plain = post(url, body, model="gemini-2.5-flash").json()["candidates"][0]["content"]["parts"]
    assert "thoughtSignature" not in plain[0]


def test_gemini3_stream_ends_with_an_empty_signed_part(url, standin):
    response = post(url, BASE, model="gemini-3-pro-preview", method="streamGenerateContent", query="alt=sse")
    assert b"\r\n\r\n" in response.content
    events = [json.loads(e.data) for e in SSEDecoder().feed(response.content)]
    last = events[-1]["candidates"][0]
    assert last["finishReason"] == "STOP"
    assert last["content"]["parts"] == [{"text": "", "thoughtSignature": standin.sign_text("You said: Hi")}]
    assert all("finishReason" not in e["candidates"][0] for e in events[:-1])
    assert [e["usageMetadata"]["thoughtsTokenCount"] for e in events] == [16] * len(events)


def test_include_thoughts_adds_a_thought_part(url, standin):
    body = {**BASE, "generationConfig": {"thinkingConfig": {"includeThoughts": True, "thinkingBudget": 512}}}
    parts = post(url, body).json()["candidates"][0]["content"]["parts"]
    assert parts[0]["thought"] is True and parts[1] == {"text": "You said: Hi"}
