"""The provider stand-ins as the Messages door's tests use them, without the gateway:
Anthropic's count_tokens, betas and beta-only fields, mid-conversation system messages and
a stream that breaks with `event: error`; Gemini's countTokens; an OpenAI stream cut short.
Each stand-in must accept what its real API accepts and refuse what it refuses."""

from __future__ import annotations

import json

import anthropic
import httpx
import pytest

from tests.conftest import ANTHROPIC_KEY, GEMINI_KEY, OPENAI_KEY

VERSION = {"anthropic-version": "2023-06-01"}
CONTEXT_BETA = "context-management-2025-06-27"
CLEAR_THINKING = {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]}
WEATHER = {"name": "get_weather", "description": "Current weather", "input_schema": {
    "type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}


def hello(text: str = "hello there", **extra) -> dict:
    return {"model": "claude-sonnet-4-5", "max_tokens": 100,
            "messages": [{"role": "user", "content": text}], **extra}


@pytest.fixture
def anthropic_url(upstreams) -> str:
    return upstreams.servers["anthropic"].url


def post(url: str, path: str, body: dict, beta: str | None = None, key: str = ANTHROPIC_KEY) -> httpx.Response:
    headers = {**VERSION, "x-api-key": key, **({"anthropic-beta": beta} if beta else {})}
    return httpx.post(url + path, json=body, headers=headers, timeout=10)


def refused(r: httpx.Response, message: str, status: int = 400, kind: str = "invalid_request_error") -> None:
    assert r.status_code == status, r.text
    error = r.json()
    assert error["type"] == "error" and error["error"]["type"] == kind
    assert message in error["error"]["message"], error


def events(raw: str) -> list[tuple[str, dict]]:
    out = []
    for block in raw.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            out.append((lines["event"], json.loads(lines["data"])))
    return out


# ---------------------------------------------------------------- Anthropic: count_tokens

def test_count_tokens_is_the_prompt_count_messages_reports(anthropic_url):
    system = [{"type": "text", "text": "You are terse and kind."},
              {"type": "text", "text": "Cache me please", "cache_control": {"type": "ephemeral"}}]
    body = hello("what is the weather", system=system, tools=[WEATHER])
    answered = post(anthropic_url, "/v1/messages", body).json()["usage"]
    prompt = answered["input_tokens"] + answered["cache_creation_input_tokens"] + answered["cache_read_input_tokens"]
    counted = post(anthropic_url, "/v1/messages/count_tokens",
                   {k: v for k, v in body.items() if k != "max_tokens"})
    assert counted.status_code == 200, counted.text
    assert counted.json() == {"input_tokens": prompt}
    assert prompt == 5 + 3 + 1 + 4  # system words, the question's words, one per turn


def test_count_tokens_refuses_what_only_answering_takes(anthropic_url):
    for name, value in (("max_tokens", 10), ("stream", True), ("metadata", {"user_id": "u"}),
                        ("stop_sequences", ["x"]), ("temperature", 0.5)):
        body = {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}], name: value}
        refused(post(anthropic_url, "/v1/messages/count_tokens", body), f"{name}: Extra inputs are not permitted")
    refused(post(anthropic_url, "/v1/messages/count_tokens", {"model": "claude-sonnet-4-5"}),
            "messages: Field required")
    refused(post(anthropic_url, "/v1/messages/count_tokens", {"model": "claude-sonnet-4-5", "messages": []},
                 key="sk-ant-wrong"), "invalid x-api-key", 401, "authentication_error")


def test_count_tokens_checks_the_body_like_messages(anthropic_url):
    thinking = {"type": "enabled", "budget_tokens": 1024}
    body = {"model": "claude-sonnet-4-5", "thinking": thinking, "messages": [{"role": "user", "content": "hi"}]}
    assert post(anthropic_url, "/v1/messages/count_tokens", body).json() == {"input_tokens": 2}
    bad_image = {"role": "user", "content": [{"type": "image", "source": {
        "type": "base64", "media_type": "image/bmp", "data": "AAAA"}}]}
    refused(post(anthropic_url, "/v1/messages/count_tokens", {**body, "messages": [bad_image]}),
            "media_type")
    refused(post(anthropic_url, "/v1/messages/count_tokens", {**body, "model": "gpt-4o"}),
            "model: gpt-4o", 404, "not_found_error")


def test_the_anthropic_sdk_speaks_to_the_stand_in(anthropic_url):
    client = anthropic.Anthropic(base_url=anthropic_url, api_key=ANTHROPIC_KEY, max_retries=0)
    count = client.messages.count_tokens(model="claude-sonnet-4-5", system="be brief",
                                         messages=[{"role": "user", "content": "one two three"}])
    assert count.input_tokens == 2 + 3 + 1
    # The beta client adds ?beta=true and the anthropic-beta header.
    message = client.beta.messages.create(model="claude-sonnet-4-5", max_tokens=50, betas=[CONTEXT_BETA],
                                          context_management={"edits": [{"type": "clear_tool_uses_20250919"}]},
                                          messages=[{"role": "user", "content": "hi"}])
    assert message.content[0].text == "You said: hi"
    assert message.context_management.applied_edits == []


# ---------------------------------------------------------------- Anthropic: betas

def test_a_beta_field_needs_its_beta(anthropic_url):
    body = hello(context_management=CLEAR_THINKING)
    refused(post(anthropic_url, "/v1/messages", body), "context_management: Extra inputs are not permitted")
    refused(post(anthropic_url, "/v1/messages", body, beta="interleaved-thinking-2025-05-14"),
            "context_management: Extra inputs are not permitted")
    ok = post(anthropic_url, "/v1/messages", body, beta=f"interleaved-thinking-2025-05-14, {CONTEXT_BETA}")
    assert ok.status_code == 200, ok.text
    assert ok.json()["context_management"] == {"applied_edits": []}
    streamed = post(anthropic_url, "/v1/messages", {**body, "stream": True}, beta=CONTEXT_BETA)
    (delta,) = [data for name, data in events(streamed.text) if name == "message_delta"]
    assert delta["context_management"] == {"applied_edits": []}
    edit = {"edits": [{"type": "clear_everything"}]}
    refused(post(anthropic_url, "/v1/messages", hello(context_management=edit), beta=CONTEXT_BETA),
            "context_management.edits.0: Input tag 'clear_everything'")


def test_unknown_betas_are_refused_and_known_ones_taken(anthropic_url):
    refused(post(anthropic_url, "/v1/messages", hello(), beta="claude-code-20250219,made-up-2099-01-01"),
            "Unexpected value(s) `made-up-2099-01-01` for the `anthropic-beta` header")
    known = "claude-code-20250219,interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14"
    assert post(anthropic_url, "/v1/messages", hello(), beta=known).status_code == 200


def test_mcp_servers_need_their_beta_and_a_url(anthropic_url):
    server = {"type": "url", "url": "https://mcp.example.com/sse", "name": "example"}
    refused(post(anthropic_url, "/v1/messages", hello(mcp_servers=[server])), "mcp_servers: Extra inputs")
    beta = "mcp-client-2025-04-04"
    assert post(anthropic_url, "/v1/messages", hello(mcp_servers=[server]), beta=beta).status_code == 200
    refused(post(anthropic_url, "/v1/messages", hello(mcp_servers=[{"type": "url", "name": "x"}]), beta=beta),
            "mcp_servers.0.url: Field required")


def test_generally_available_fields_need_no_beta(anthropic_url):
    tool = {**WEATHER, "eager_input_streaming": True, "defer_loading": False, "strict": True}
    body = hello(diagnostics={"previous_message_id": "msg_1"}, speed="standard", tools=[tool])
    assert post(anthropic_url, "/v1/messages", body).status_code == 200
    refused(post(anthropic_url, "/v1/messages", hello(speed="warp")), "speed: Input should be")
    refused(post(anthropic_url, "/v1/messages", hello(tools=[{**WEATHER, "color": "red"}])),
            "tools.0.custom.color: Extra inputs are not permitted")
    refused(post(anthropic_url, "/v1/messages", hello(output_config={"task_budget": {"type": "tokens", "total": 9}})),
            "output_config.task_budget: Extra inputs are not permitted")


# ---------------------------------------------------------------- Anthropic: role "system" messages

def _with_system(model: str, *messages: dict) -> dict:
    return {"model": model, "max_tokens": 100, "messages": list(messages)}


USER = {"role": "user", "content": "hello"}
SYSTEM = {"role": "system", "content": "Answer in one word"}
ASSISTANT = {"role": "assistant", "content": "Hi"}


def test_system_messages_mid_conversation_on_models_that_take_them(anthropic_url):
    r = post(anthropic_url, "/v1/messages", _with_system("claude-opus-4-8", USER, SYSTEM))
    assert r.status_code == 200, r.text
    assert r.json()["usage"]["input_tokens"] == 4 + 1 + 1  # the system message counts as system text
    later = _with_system("claude-opus-4-8", USER, SYSTEM, ASSISTANT, {"role": "user", "content": "again"})
    assert post(anthropic_url, "/v1/messages", later).json()["content"][0]["text"] == "You said: again"
    refused(post(anthropic_url, "/v1/messages", _with_system("claude-sonnet-4-5", USER, SYSTEM)),
            "messages.1.role: Input should be 'user' or 'assistant'")


@pytest.mark.parametrize(("messages", "message"), [
    ((SYSTEM, USER), "the first message cannot have role `system`"),
    ((USER, ASSISTANT, SYSTEM), "messages.2: a `system` message must immediately follow a `user` message"),
    ((USER, SYSTEM, {"role": "user", "content": "x"}), "messages.1: a `system` message must be the last"),
    ((USER, SYSTEM, SYSTEM), "messages.2: consecutive `system` messages are not allowed"),
    ((USER, {"role": "system", "content": [{"type": "image", "source": {}}]}), "may only contain `text` blocks"),
    ((USER, {**SYSTEM, "clear_at": "never"}), "messages.1.system.clear_at: Extra inputs are not permitted"),
])
def test_system_messages_follow_the_placement_rules(anthropic_url, messages, message):
    refused(post(anthropic_url, "/v1/messages", _with_system("claude-opus-4-8", *messages)), message)


def test_a_system_message_field_with_its_beta(anthropic_url):
    body = _with_system("claude-opus-4-8", USER, {**SYSTEM, "clear_at": "next_user_message"})
    assert post(anthropic_url, "/v1/messages", body, beta="mid-conversation-system-clear-at-2026-08-21").status_code == 200


# ---------------------------------------------------------------- Anthropic: documents and citations

DOCUMENT = {"type": "document", "title": "Lunos notes", "citations": {"enabled": True},
            "source": {"type": "text", "media_type": "text/plain", "data": "Lunos is a gateway. It routes calls."}}


def test_a_document_with_citations_is_quoted_and_cited(anthropic_url):
    body = hello(messages=[{"role": "user", "content": [DOCUMENT, {"type": "text", "text": "What is Lunos?"}]}])
    content = post(anthropic_url, "/v1/messages", body).json()["content"]
    assert [b["text"] for b in content] == ["According to the document: ", "Lunos is a gateway."]
    assert content[1]["citations"] == [{"type": "char_location", "cited_text": "Lunos is a gateway.",
                                        "document_index": 0, "document_title": "Lunos notes",
                                        "start_char_index": 0, "end_char_index": 19}]
    streamed = events(post(anthropic_url, "/v1/messages", {**body, "stream": True}).text)
    deltas = [d["delta"] for n, d in streamed if n == "content_block_delta"]
    assert [d["citation"] for d in deltas if d["type"] == "citations_delta"] == content[1]["citations"]
    uncited = {**DOCUMENT, "citations": {"enabled": False}}
    plain = hello(messages=[{"role": "user", "content": [uncited, {"type": "text", "text": "What is Lunos?"}]}])
    assert post(anthropic_url, "/v1/messages", plain).json()["content"][0]["text"] == "You said: What is Lunos?"
    pdf = {"type": "document", "source": {"type": "base64", "media_type": "text/html", "data": "AAAA"}}
    refused(post(anthropic_url, "/v1/messages", hello(messages=[{"role": "user", "content": [pdf]}])),
            "media_type: Input should be 'application/pdf'")


# ---------------------------------------------------------------- Anthropic: a stream that breaks

def test_stream_error_marker_breaks_the_stream_after_its_first_delta(anthropic_url):
    body = hello("tell me more [[stream-error:overloaded_error]]", stream=True)
    got = events(post(anthropic_url, "/v1/messages", body).text)
    assert [name for name, _ in got] == ["message_start", "content_block_start", "ping",
                                        "content_block_delta", "error"]
    assert got[-1][1] == {"type": "error", "error": {"type": "overloaded_error",
                                                     "message": "stand-in overloaded_error"}}
    refused(post(anthropic_url, "/v1/messages", hello("x [[stream-error:overloaded_error]]")),
            "stand-in overloaded_error", 529, "overloaded_error")
    refused(post(anthropic_url, "/v1/messages", hello("x [[stream-error:api_error]]")),
            "stand-in api_error", 500, "api_error")


# ---------------------------------------------------------------- Gemini: countTokens

@pytest.fixture
def gemini_url(upstreams) -> str:
    return upstreams.servers["gemini"].url


def gemini(url: str, method: str, body: dict, key: str = GEMINI_KEY) -> httpx.Response:
    return httpx.post(f"{url}/v1beta/models/gemini-2.5-flash:{method}", json=body,
                      headers={"x-goog-api-key": key}, timeout=10)


CONTENTS = [{"role": "user", "parts": [{"text": "what is the weather"}]}]


def test_count_tokens_of_contents_and_of_a_whole_request(gemini_url):
    request = {"contents": CONTENTS, "systemInstruction": {"parts": [{"text": "be brief"}]}}
    prompt = gemini(gemini_url, "generateContent", request).json()["usageMetadata"]["promptTokenCount"]
    whole = gemini(gemini_url, "countTokens",
                   {"generateContentRequest": {"model": "models/gemini-2.5-flash", **request}})
    assert whole.status_code == 200, whole.text
    assert whole.json()["totalTokens"] == prompt == 2 + 4 + 1
    alone = gemini(gemini_url, "countTokens", {"contents": CONTENTS}).json()
    assert alone == {"totalTokens": 5, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 5}]}


@pytest.mark.parametrize(("body", "message"), [
    ({"contents": CONTENTS, "generateContentRequest": {"model": "models/gemini-2.5-flash", "contents": CONTENTS}},
     "mutually exclusive"),
    ({"generateContentRequest": {"contents": CONTENTS}}, "generate_content_request.model"),
    ({"contents": CONTENTS, "temperature": 1}, 'Unknown name "temperature"'),
    ({"contents": []}, "contents is not specified"),
    ({"contents": [{"role": "user", "parts": [{"text": ""}]}]}, "empty text parameter"),
])
def test_count_tokens_refuses_what_the_api_refuses(gemini_url, body, message):
    r = gemini(gemini_url, "countTokens", body)
    assert r.status_code == 400 and message in r.json()["error"]["message"], r.text


def test_count_tokens_needs_the_key(gemini_url):
    r = gemini(gemini_url, "countTokens", {"contents": CONTENTS}, key="wrong")
    assert r.status_code == 400 and r.json()["error"]["details"][0]["reason"] == "API_KEY_INVALID"


# ---------------------------------------------------------------- OpenAI: a stream cut short

def test_cut_marker_drops_the_stream_after_that_many_pieces(upstreams):
    url = upstreams.servers["openai"].url + "/v1/chat/completions"
    body = {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "one two three [[cut:2]]"}]}
    received = []
    with (pytest.raises(httpx.RemoteProtocolError),
          httpx.stream("POST", url, json=body, headers={"authorization": f"Bearer {OPENAI_KEY}"}) as r):
        received.extend(r.iter_lines())
    pieces = [json.loads(line[6:])["choices"][0]["delta"].get("content") for line in received
              if line.startswith("data: {")]
    assert pieces == ["", "You", " said:"]
    assert "data: [DONE]" not in received


# ---------------------------------------------------------------- Anthropic: Claude Code's requests
# The shape Claude Code (print mode) sends, as captured from it: `?beta=true`, its betas,
# omitted thinking, context management, a JSON string as metadata.user_id, cached system
# blocks, tools with `$schema` and a deferred placeholder, and for newer models adaptive
# thinking with an effort and a mid-conversation system message.

CLAUDE_CODE_BETAS = ("claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27,"
                     "thinking-token-count-2026-05-13,advanced-tool-use-2025-11-20")
WRITE = {"name": "Write", "description": "Write a file", "input_schema": {
    "$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
    "properties": {"file_path": {"type": "string"}, "content": {"type": "string"}},
    "required": ["file_path", "content"], "additionalProperties": False}}
PLACEHOLDER = {"name": "DeferredToolPlaceholder", "description": "deferred",
               "input_schema": {"type": "object", "properties": {}}, "defer_loading": True}
ASK = {"role": "user", "content": [
    {"type": "text", "text": "<system-reminder>be careful</system-reminder>"},
    {"type": "text", "text": "Use Write to create hello.txt", "cache_control": {"type": "ephemeral"}}]}


def claude_code_body(model: str, messages: list[dict]) -> dict:
    newer = model != "claude-sonnet-4-5"
    body = {
        "model": model, "messages": messages,
        "system": [{"type": "text", "text": "x-anthropic-billing-header: cc_version=2"},
                   {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
                   {"type": "text", "text": "Be helpful.", "cache_control": {"type": "ephemeral"}}],
        "tools": [WRITE, PLACEHOLDER],
        "metadata": {"user_id": json.dumps({"device_id": "d" * 64, "account_uuid": "", "session_id": "s"})},
        "max_tokens": 32000,
        "thinking": ({"type": "adaptive", "display": "omitted"} if newer
                     else {"type": "enabled", "budget_tokens": 31999, "display": "omitted"}),
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "stream": True,
    }
    if newer:
        body["output_config"] = {"effort": "high"}
    return body


@pytest.mark.parametrize("model", ["claude-sonnet-4-5", "claude-sonnet-5"])
def test_claude_codes_tool_round_trip(anthropic_url, model):
    headers = {**VERSION, "x-api-key": ANTHROPIC_KEY, "anthropic-beta": CLAUDE_CODE_BETAS + ",effort-2025-11-24"}
    environment = {"role": "system", "content": [
        {"type": "text", "text": "# Environment: linux", "cache_control": {"type": "ephemeral"}}]}
    first = [ASK, environment] if model == "claude-sonnet-5" else [ASK]
    r = httpx.post(anthropic_url + "/v1/messages?beta=true", json=claude_code_body(model, first), headers=headers)
    assert r.status_code == 200, r.text
    got = events(r.text)
    starts = [data["content_block"] for name, data in got if name == "content_block_start"]
    assert [b["type"] for b in starts] == ["thinking", "tool_use"]
    signature = next(d["delta"]["signature"] for n, d in got
                     if n == "content_block_delta" and d["delta"]["type"] == "signature_delta")
    assert not any(d["delta"].get("type") == "thinking_delta" for n, d in got if n == "content_block_delta")
    call = starts[1]
    assert call["name"] == "Write"
    answered = [{"type": "thinking", "thinking": "", "signature": signature},
                {"type": "tool_use", "id": call["id"], "name": "Write",
                 "input": {"file_path": "test", "content": "test"}}]
    result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["id"],
                                           "content": "File created successfully",
                                           "cache_control": {"type": "ephemeral"}}]}
    if model == "claude-sonnet-5":
        environment = {"role": "system", "content": "# Environment: linux"}
        second = [ASK, environment, {"role": "assistant", "content": answered}, result]
    else:
        second = [ASK, {"role": "assistant", "content": answered}, result]
    r = httpx.post(anthropic_url + "/v1/messages?beta=true", json=claude_code_body(model, second), headers=headers)
    assert r.status_code == 200, r.text
    text = "".join(d["delta"].get("text", "") for n, d in events(r.text) if n == "content_block_delta")
    assert text == "Tool results: Write=File created successfully"
    # A forged signature on omitted thinking is refused.
    answered[0]["signature"] = "forged"
    r = httpx.post(anthropic_url + "/v1/messages?beta=true", json=claude_code_body(model, second), headers=headers)
    refused(r, "Invalid `signature` in `thinking` block")
