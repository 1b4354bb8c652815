"""Client configuration and the requests it sends: URL, headers, body, query, timeouts."""

from __future__ import annotations

import inspect
import json

import httpx
import pytest

from lunos import AsyncLunos, ChatCompletion, LogEntry, LogList, Lunos, LunosError, ModelList
from lunos.resources.chat import CHAT_PARAMS, AsyncCompletions, Completions
from tests.sdk.conftest import Server, make_client, resolve

COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "openai/gpt-4o",
    "provider": "openai",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                        "extra_content": {"google": {"thought_signature": "sig"}},
                    }
                ],
                "future_field": {"kept": True},
            },
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
        "prompt_tokens_details": {"cached_tokens": 4},
        "completion_tokens_details": {"reasoning_tokens": 2},
        "cost": 0.00012,
    },
}
MESSAGES = [{"role": "user", "content": "Hi"}]
SPEC_PARAMS = {
    "model", "messages", "temperature", "max_tokens", "max_completion_tokens", "top_p", "stop",
    "frequency_penalty", "presence_penalty", "seed", "n", "user", "tools", "tool_choice",
    "parallel_tool_calls", "response_format", "stream", "stream_options", "reasoning_effort",
    "observability", "models", "fallback_model", "drop_params",
}


def ok(payload: dict = COMPLETION, **headers: str) -> httpx.Response:
    return httpx.Response(200, json=payload, headers=headers)


async def create(client, **params):
    params.setdefault("model", "openai/gpt-4o")
    params.setdefault("messages", MESSAGES)
    return await resolve(client.chat.completions.create(**params))


# --- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, "http://127.0.0.1:8000/v1/chat/completions"),
        ("http://gw.example:9000", "http://gw.example:9000/v1/chat/completions"),
        ("http://gw.example:9000/", "http://gw.example:9000/v1/chat/completions"),
        ("http://gw.example:9000/v1", "http://gw.example:9000/v1/chat/completions"),
        ("http://gw.example:9000/v1/", "http://gw.example:9000/v1/chat/completions"),
        ("https://lunos.example/api", "https://lunos.example/api/v1/chat/completions"),
    ],
)
async def test_base_url_with_or_without_v1(kind, given, expected):
    server = Server(ok())
    client = make_client(kind, server, base_url=given)
    await create(client)
    assert str(server.last.url) == expected


async def test_env_vars_supply_key_and_base_url(kind, monkeypatch):
    monkeypatch.setenv("LUNOS_API_KEY", "sk-from-env")
    monkeypatch.setenv("LUNOS_BASE_URL", "http://env.example:1234/v1")
    server = Server(ok())
    client = make_client(kind, server, api_key=None)
    await create(client)
    assert server.last.headers["authorization"] == "Bearer sk-from-env"
    assert str(server.last.url) == "http://env.example:1234/v1/chat/completions"


async def test_arguments_win_over_env_vars(kind, monkeypatch):
    monkeypatch.setenv("LUNOS_API_KEY", "sk-from-env")
    monkeypatch.setenv("LUNOS_BASE_URL", "http://env.example:1234")
    server = Server(ok())
    client = make_client(kind, server, api_key="sk-arg", base_url="http://arg.example")
    await create(client)
    assert server.last.headers["authorization"] == "Bearer sk-arg"
    assert server.last.url.host == "arg.example"


@pytest.mark.parametrize("cls", [Lunos, AsyncLunos])
def test_missing_key_is_a_clear_error(cls):
    with pytest.raises(LunosError, match="LUNOS_API_KEY"):
        cls()


@pytest.mark.parametrize("cls", [Lunos, AsyncLunos])
@pytest.mark.parametrize("bad", [-1, 1.5, None, True])
def test_max_retries_must_be_a_count(cls, bad):
    with pytest.raises(ValueError, match="max_retries"):
        cls(api_key="k", max_retries=bad)


def test_http_client_kind_must_match():
    with pytest.raises(TypeError):
        Lunos(api_key="k", http_client=httpx.AsyncClient())
    with pytest.raises(TypeError):
        AsyncLunos(api_key="k", http_client=httpx.Client())


def test_repr_never_shows_the_key():
    client = Lunos(api_key="sk-secret-value", app_id="shop")
    assert "sk-secret-value" not in repr(client)
    assert "shop" in repr(client)
    client.close()


# --- headers ------------------------------------------------------------------------------


async def test_default_headers_app_id_and_user_agent(kind):
    server = Server(ok())
    client = make_client(kind, server, app_id="billing-bot", default_headers={"X-Team": "core"})
    await create(client)
    headers = server.last.headers
    assert headers["authorization"] == "Bearer sk-test"
    assert headers["x-app-id"] == "billing-bot"
    assert headers["x-team"] == "core"
    assert headers["user-agent"].startswith("lunos-python/")
    assert headers["accept"] == "application/json"
    assert headers["content-type"] == "application/json"


async def test_no_app_id_header_without_app_id(kind):
    server = Server(ok())
    await create(make_client(kind, server))
    assert "x-app-id" not in server.last.headers


async def test_extra_headers_override_defaults(kind):
    server = Server(ok())
    client = make_client(kind, server, app_id="a", default_headers={"X-Team": "core"})
    await create(client, extra_headers={"X-App-ID": "b", "X-Team": "edge", "X-Trace": "1"})
    headers = server.last.headers
    assert (headers["x-app-id"], headers["x-team"], headers["x-trace"]) == ("b", "edge", "1")


# --- request body -------------------------------------------------------------------------


def test_create_takes_every_spec_parameter_as_a_keyword():
    for method in (Completions.create, AsyncCompletions.create):
        params = inspect.signature(method).parameters
        keywords = {n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
        assert keywords >= SPEC_PARAMS | {"extra_body", "extra_headers", "extra_query", "timeout"}
        assert set(CHAT_PARAMS) >= SPEC_PARAMS  # and all of OpenAI's: test_openai_parity.py
        assert keywords - {"extra_body", "extra_headers", "extra_query", "timeout"} == set(CHAT_PARAMS)
    assert list(inspect.signature(Completions.create).parameters) == list(
        inspect.signature(AsyncCompletions.create).parameters
    )


async def test_unset_parameters_are_not_sent(kind):
    server = Server(ok())
    await create(make_client(kind, server))
    assert server.body() == {"model": "openai/gpt-4o", "messages": MESSAGES}


async def test_every_parameter_is_sent_as_given(kind):
    server = Server(ok())
    values = {
        "temperature": 0.7, "max_tokens": 256, "max_completion_tokens": 300, "top_p": 0.9,
        "stop": ["END"], "frequency_penalty": 0.1, "presence_penalty": 0.2, "seed": 7, "n": 1,
        "user": "u-1",
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
        "tool_choice": "auto", "parallel_tool_calls": False,
        "response_format": {"type": "json_object"}, "stream": False,
        "stream_options": {"include_usage": True}, "reasoning_effort": "low",
        "observability": True, "models": ["anthropic/claude-haiku-4-5"],
        "fallback_model": "openai/gpt-4o-mini", "drop_params": True,
    }
    await create(make_client(kind, server), **values)
    assert server.body() == {"model": "openai/gpt-4o", "messages": MESSAGES, **values}


async def test_extra_body_and_extra_query(kind):
    server = Server(ok())
    await create(
        make_client(kind, server),
        temperature=0.5,
        extra_body={"logprobs": True, "temperature": None},
        extra_query={"debug": "1"},
    )
    body = server.body()
    assert body["logprobs"] is True
    assert body["temperature"] is None  # extra_body can send an explicit null
    assert server.last.url.params["debug"] == "1"


async def test_messages_may_hold_sdk_results(kind):
    """The assistant message of one turn goes back in the next (tool round trip)."""
    server = Server(ok())
    client = make_client(kind, server)
    first = await create(client)
    call = first.choices[0].message.tool_calls[0]
    messages = [
        *MESSAGES,
        first.choices[0].message,
        {"role": "tool", "tool_call_id": call.id, "content": "18C"},
    ]
    await create(client, messages=(m for m in messages))
    sent = server.body()["messages"]
    assert sent[1]["role"] == "assistant"
    assert sent[1]["tool_calls"][0]["id"] == "call_1"
    assert sent[1]["tool_calls"][0]["extra_content"] == {"google": {"thought_signature": "sig"}}
    assert "content" not in sent[1]  # None fields are left out
    assert sent[2] == {"role": "tool", "tool_call_id": "call_1", "content": "18C"}


# --- results ------------------------------------------------------------------------------


async def test_result_is_typed_and_keeps_unknown_fields(kind):
    result = await create(make_client(kind, Server(ok())))
    assert isinstance(result, ChatCompletion)
    call = result.choices[0].message.tool_calls[0]
    assert call.function.arguments == '{"city": "Paris"}'
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert call.extra_content == {"google": {"thought_signature": "sig"}}
    assert result.choices[0].message.future_field == {"kept": True}
    assert result.provider == "openai"
    assert result.usage.cost == pytest.approx(0.00012)
    assert result.usage.prompt_tokens_details.cached_tokens == 4
    assert result.usage.completion_tokens_details.reasoning_tokens == 2
    assert result.to_dict()["choices"][0]["message"]["future_field"] == {"kept": True}


# --- timeouts -----------------------------------------------------------------------------


async def test_timeouts_client_default_and_per_request(kind):
    server = Server(ok())
    client = make_client(kind, server, timeout=12.0)
    await create(client)
    assert server.last.extensions["timeout"]["read"] == 12.0
    await create(client, timeout=httpx.Timeout(3.0, connect=1.0))
    assert server.last.extensions["timeout"] == {
        "connect": 1.0, "read": 3.0, "write": 3.0, "pool": 3.0,
    }


async def test_default_timeout_comes_from_a_given_http_client(kind):
    server = Server(ok())
    transport = httpx.MockTransport(server)
    if kind == "sync":
        client = Lunos(api_key="k", http_client=httpx.Client(transport=transport, timeout=42))
    else:
        client = AsyncLunos(
            api_key="k", http_client=httpx.AsyncClient(transport=transport, timeout=42)
        )
    await create(client)
    assert server.last.extensions["timeout"]["read"] == 42


async def test_default_timeout_without_http_client():
    client = Lunos(api_key="k")
    assert client.timeout.read == 600 and client.timeout.connect == 5
    client.close()


# --- lifecycle ----------------------------------------------------------------------------


def test_resources_are_built_once():
    client = Lunos(api_key="k")
    assert client.chat is client.chat
    assert client.chat.completions is client.chat.completions
    assert client.models is client.models and client.logs is client.logs
    assert "logs" not in vars(Lunos(api_key="k"))  # not built until used
    client.close()


def test_sync_context_manager_closes_its_own_pool():
    with Lunos(api_key="k") as client:
        pool = client._http
    assert pool.is_closed


def test_a_given_http_client_stays_open():
    given = httpx.Client()
    with Lunos(api_key="k", http_client=given):
        pass
    assert not given.is_closed
    given.close()


async def test_async_context_manager_closes_its_own_pool():
    async with AsyncLunos(api_key="k") as client:
        pool = client._http
    assert pool.is_closed


# --- models and logs ----------------------------------------------------------------------

MODELS = {
    "object": "list",
    "data": [
        {
            "id": "openai/gpt-4o", "object": "model", "provider": "openai",
            "context_length": 128000, "max_output_tokens": 16384,
            "pricing": {"input": 2.5, "output": 10.0, "cached_input": 1.25, "cache_write": None},
            "input_modalities": ["text", "image"], "output_modalities": ["text"],
            "supported_parameters": ["temperature", "tools"], "name": "GPT-4o",
        }
    ],
}
LOG = {
    "id": "chatcmpl-1", "key_id": "key_1", "app_id": "shop", "model": "openai/gpt-4o",
    "provider": "openai", "status": 200, "error": None,
    "usage": {"prompt_tokens": 10, "completion_tokens": 5, "cached_tokens": 0, "cost": 0.001},
    "latency_ms": 812.5, "ttft_ms": 120, "tokens_per_second": 41.2, "stream": True,
    "created_at": "2025-01-02T03:04:05Z",
    "request": {"messages": MESSAGES}, "response": {"text": "Hello"},
}


async def test_models_list(kind):
    server = Server(ok(MODELS))
    models = await resolve(make_client(kind, server).models.list())
    assert isinstance(models, ModelList)
    assert server.last.method == "GET" and server.last.url.path == "/v1/models"
    model = models.data[0]
    assert models[0] is model and len(models) == 1
    assert (model.id, model.provider, model.context_length) == ("openai/gpt-4o", "openai", 128000)
    assert model.max_output_tokens == 16384
    assert model.pricing.input == 2.5 and model.pricing.cache_write is None
    assert model.input_modalities == ["text", "image"]
    assert model.supported_parameters == ["temperature", "tools"]
    assert model.name == "GPT-4o"


async def test_logs_list_sends_only_given_filters(kind):
    server = Server(ok({"data": [LOG], "next_cursor": "abc"}))
    client = make_client(kind, server)
    page = await resolve(client.logs.list(model="openai/gpt-4o", limit=5, cursor="xyz"))
    assert isinstance(page, LogList)
    assert server.last.url.path == "/v1/logs"
    assert dict(server.last.url.params) == {"model": "openai/gpt-4o", "limit": "5", "cursor": "xyz"}
    assert page.next_cursor == "abc" and page.has_more
    entry = page.data[0]
    assert entry.usage.cost == 0.001 and entry.ttft_ms == 120 and entry.stream is True
    assert entry.created_at.year == 2025
    await resolve(client.logs.list(app_id="shop", status="error"))
    assert dict(server.last.url.params) == {"app_id": "shop", "status": "error"}


async def test_logs_last_page_has_no_cursor(kind):
    page = await resolve(make_client(kind, Server(ok({"data": []}))).logs.list())
    assert page.next_cursor is None and not page.has_more and len(page) == 0


async def test_logs_retrieve(kind):
    server = Server(ok(LOG))
    entry = await resolve(make_client(kind, server).logs.retrieve("chatcmpl-1"))
    assert isinstance(entry, LogEntry)
    assert server.last.url.path == "/v1/logs/chatcmpl-1"
    assert entry.request == {"messages": MESSAGES} and entry.response == {"text": "Hello"}
    assert entry.app_id == "shop" and entry.key_id == "key_1" and entry.status == 200


async def test_logs_retrieve_escapes_the_id(kind):
    server = Server(ok(LOG))
    await resolve(make_client(kind, server).logs.retrieve("a/../b?c"))
    assert server.last.url.raw_path == b"/v1/logs/a%2F..%2Fb%3Fc"


async def test_logs_retrieve_refuses_an_empty_id(kind):
    server = Server(ok(LOG))
    with pytest.raises(ValueError):
        await resolve(make_client(kind, server).logs.retrieve(""))
    assert server.requests == []
