"""Real clients against a running `lunos serve`: every reasoning effort on every provider,
`parallel_tool_calls: false` on Gemini (the official openai SDK and langchain-openai), bare
model ids (the openai SDK and the OpenAI Agents SDK), model ids that try to change the
upstream URL, and `/v1/models` advertising only what the gateway accepts.
"""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from lunos.gateway.catalog import Catalog
from lunos.gateway.validation import REASONING_EFFORTS
from tests.conftest import OPENAI_KEY
from tests.gateway.test_chat_e2e import TIME, WEATHER
from tests.gateway_process import MASTER_KEY, GatewayProcess

HI = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def client(gateway):
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=MASTER_KEY, max_retries=0)


def refused(exc: openai.BadRequestError, param: str) -> None:
    assert exc.value.status_code == 400
    error = exc.value.body
    assert error["param"] == param, error
    assert error["type"] == "invalid_request_error"


# ---------------------------------------------------------------- reasoning_effort

# model -> effort -> what the upstream receives (the value at `where`), or None for a 400
# naming reasoning_effort before anything goes upstream.
DISABLED = {"type": "disabled"}
EFFORT_CASES = {
    # OpenAI-compatible: the effort goes through when the model takes it.
    ("openai/gpt-5.6-sol", "openai"): {"none": "none", "minimal": None, "low": "low",
                                       "medium": "medium", "high": "high", "xhigh": "xhigh"},
    ("openai/gpt-5", "openai"): {"none": None, "minimal": "minimal", "low": "low",
                                 "medium": "medium", "high": "high", "xhigh": None},
    ("openai/gpt-4o", "openai"): dict.fromkeys(REASONING_EFFORTS),
    # Anthropic, budget thinking (Claude 4.5).
    ("anthropic/claude-sonnet-4-5", "anthropic"): {
        "none": DISABLED, "minimal": {"type": "enabled", "budget_tokens": 1024},
        "low": {"type": "enabled", "budget_tokens": 2048},
        "medium": {"type": "enabled", "budget_tokens": 8192},
        "high": {"type": "enabled", "budget_tokens": 16384},
        "xhigh": {"type": "enabled", "budget_tokens": 32768}},
    # Anthropic, adaptive thinking: the effort is output_config.effort.
    ("anthropic/claude-opus-4-7", "anthropic"): {
        "none": DISABLED, "minimal": "low", "low": "low", "medium": "medium", "high": "high",
        "xhigh": "xhigh"},
    ("anthropic/claude-sonnet-4-6", "anthropic"): {"xhigh": "high", "none": DISABLED},
    # A model that always thinks cannot take "none".
    ("anthropic/claude-fable-5", "anthropic"): {"none": None, "xhigh": "xhigh", "low": "low"},
    # Gemini 2.5: thinkingBudget.
    ("google/gemini-2.5-flash", "gemini"): {"none": 0, "minimal": 0, "low": 1024, "medium": 8192,
                                            "high": 24576, "xhigh": 24576},
    ("google/gemini-2.5-pro", "gemini"): {"none": None, "minimal": 128, "low": 1024,
                                          "medium": 8192, "high": 24576, "xhigh": 32768},
    # Gemini 3 and later: thinkingLevel, moved to a level the model has.
    ("google/gemini-3.5-flash", "gemini"): {"none": "MINIMAL", "minimal": "MINIMAL", "low": "LOW",
                                            "medium": "MEDIUM", "high": "HIGH", "xhigh": "HIGH"},
    ("google/gemini-3-pro-preview", "gemini"): {"none": None, "minimal": "LOW", "low": "LOW",
                                                "medium": "HIGH", "high": "HIGH", "xhigh": "HIGH"},
    ("google/gemini-4-neon", "gemini"): {"none": None, "minimal": "LOW", "low": "LOW",
                                         "medium": "MEDIUM", "high": "HIGH", "xhigh": "XHIGH"},
}


def _sent(standin: str, model: str, body: dict):
    if standin == "openai":
        return body.get("reasoning_effort")
    if standin == "anthropic":
        if model == "anthropic/claude-sonnet-4-5" or body.get("thinking") == DISABLED:
            return body.get("thinking")
        return body["output_config"]["effort"]
    thinking = body["generationConfig"]["thinkingConfig"]
    return thinking.get("thinkingLevel", thinking.get("thinkingBudget"))


@pytest.mark.parametrize(("model", "standin", "effort", "expected"), [
    (model, standin, effort, expected)
    for (model, standin), efforts in EFFORT_CASES.items() for effort, expected in efforts.items()
])
def test_every_reasoning_effort_is_translated_or_refused(client, upstreams, model, standin,
                                                         effort, expected):
    upstream = getattr(upstreams, standin)
    if expected is None:
        with pytest.raises(openai.BadRequestError) as exc:
            client.chat.completions.create(model=model, messages=HI, reasoning_effort=effort)
        refused(exc, "reasoning_effort")
        assert upstream.requests == []
        return
    r = client.chat.completions.create(model=model, messages=HI, reasoning_effort=effort)
    assert r.choices[0].message.content
    assert _sent(standin, model, upstream.last.json) == expected


@pytest.mark.parametrize("model", ["google/gemini-4-neon", "anthropic/claude-opus-4-7",
                                   "google/gemini-2.5-flash"])
def test_xhigh_streams_too(client, upstreams, model):
    chunks = list(client.chat.completions.create(model=model, messages=HI, reasoning_effort="xhigh",
                                                 stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


# ---------------------------------------------------------------- parallel_tool_calls on Gemini

ASK_BOTH = [{"role": "user", "content": "call get_weather and get_time"}]


def test_gemini_returns_only_the_first_call_without_parallel_tool_calls(client, upstreams):
    r = client.chat.completions.create(model="google/gemini-2.5-flash", messages=ASK_BOTH,
                                       tools=[WEATHER, TIME], parallel_tool_calls=False)
    calls = r.choices[0].message.tool_calls
    assert [c.function.name for c in calls] == ["get_weather"]
    assert r.choices[0].finish_reason == "tool_calls"
    # The one answer goes back like any other.
    back = [*ASK_BOTH, r.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": calls[0].id, "content": "18C"}]
    r2 = client.chat.completions.create(model="google/gemini-2.5-flash", messages=back,
                                        tools=[WEATHER, TIME], parallel_tool_calls=False)
    assert r2.choices[0].message.content == "Tool results: get_weather=18C"
    # Left at its default, both calls come back.
    r3 = client.chat.completions.create(model="google/gemini-2.5-flash", messages=ASK_BOTH,
                                        tools=[WEATHER, TIME])
    assert len(r3.choices[0].message.tool_calls) == 2


@pytest.mark.parametrize("model", ["google/gemini-2.5-flash", "google/gemini-3.5-flash"])
def test_gemini_streams_only_the_first_call_without_parallel_tool_calls(client, upstreams, model):
    chunks = list(client.chat.completions.create(model=model, messages=ASK_BOTH, tools=[WEATHER, TIME],
                                                 parallel_tool_calls=False, stream=True))
    deltas = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or ()]
    assert {tc.index for tc in deltas} == {0}
    assert [tc.function.name for tc in deltas if tc.function and tc.function.name] == ["get_weather"]
    arguments = "".join(tc.function.arguments or "" for tc in deltas if tc.function)
    assert json.loads(arguments) == {"location": "Paris"}
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["tool_calls"]


def test_langchain_structured_output_by_function_calling_works_on_gemini(gateway, upstreams):
    from langchain_openai import ChatOpenAI
    from pydantic import BaseModel

    class Weather(BaseModel):
        location: str
        degrees: int

    llm = ChatOpenAI(model="google/gemini-2.5-flash", base_url=gateway.url + "/v1",
                     api_key=MASTER_KEY, max_retries=0)
    result = llm.with_structured_output(Weather, method="function_calling").invoke(
        "What is the weather in Paris?")
    assert result == Weather(location="Paris", degrees=1)
    sent = upstreams.gemini.last.json
    assert sent["toolConfig"]["functionCallingConfig"]["allowedFunctionNames"] == ["Weather"]


# ---------------------------------------------------------------- bare model ids


def test_a_bare_id_resolves_through_the_catalog(client, upstreams):
    for bare, standin, full in [("gpt-4o", "openai", "openai/gpt-4o"),
                                ("claude-sonnet-4-5", "anthropic", "anthropic/claude-sonnet-4-5"),
                                ("gemini-2.5-flash", "gemini", "google/gemini-2.5-flash")]:
        r = client.chat.completions.create(model=bare, messages=HI)
        assert r.model == full
        assert r.choices[0].message.content == "You said: hello"
        assert getattr(upstreams, standin).requests


def test_a_key_allowed_a_model_may_ask_for_it_by_its_bare_id(gateway, upstreams):
    made = httpx.post(f"{gateway.url}/admin/keys", headers={"Authorization": f"Bearer {MASTER_KEY}"},
                      json={"name": "agents", "allowed_models": ["openai/gpt-4o"]}, timeout=10)
    assert made.status_code == 201, made.text
    limited = openai.OpenAI(base_url=gateway.url + "/v1", api_key=made.json()["key"], max_retries=0)
    assert limited.chat.completions.create(model="gpt-4o", messages=HI).model == "openai/gpt-4o"
    with pytest.raises(openai.PermissionDeniedError) as exc:
        limited.chat.completions.create(model="gpt-4o-mini", messages=HI)
    assert exc.value.body["code"] == "model_not_allowed"


def test_a_bare_id_the_catalog_does_not_know_names_no_provider(client, upstreams):
    with pytest.raises(openai.NotFoundError) as exc:
        client.chat.completions.create(model="my-local-model", messages=HI)
    assert exc.value.body["param"] == "model"
    assert "default provider" in exc.value.body["message"]


@pytest.fixture(scope="module")
def defaulted(standins, tmp_path_factory):
    """A gateway whose default provider is `openai` (the OpenAI stand-in)."""
    env = {**standins.env(), "LUNOS_DEFAULT_PROVIDER": "openai"}
    g = GatewayProcess(tmp_path_factory.mktemp("defaulted"), env).start()
    yield g
    g.stop()


def test_the_default_provider_takes_what_the_catalog_cannot_place(defaulted, upstreams):
    client = openai.OpenAI(base_url=defaulted.url + "/v1", api_key=MASTER_KEY, max_retries=0)
    r = client.chat.completions.create(model="my-local-model", messages=HI)
    assert r.model == "openai/my-local-model"
    assert upstreams.openai.last.json["model"] == "my-local-model"
    r = client.chat.completions.create(model="meta-llama/llama-3", messages=HI)  # no such provider
    assert upstreams.openai.last.json["model"] == "meta-llama/llama-3"
    r = client.chat.completions.create(model="claude-sonnet-4-5", messages=HI)  # the catalog first
    assert r.model == "anthropic/claude-sonnet-4-5"


def test_the_openai_agents_sdk_with_a_bare_model_id(gateway, upstreams):
    from agents import Agent, OpenAIChatCompletionsModel, Runner, set_tracing_disabled

    set_tracing_disabled(True)
    client = openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key=MASTER_KEY, max_retries=0)
    for model in ("gpt-4o", "gemini-2.5-flash"):
        agent = Agent(name="echo", instructions="Be brief.",
                      model=OpenAIChatCompletionsModel(model=model, openai_client=client))
        result = Runner.run_sync(agent, "hello")
        assert result.final_output == "You said: hello"


def test_the_openai_agents_sdk_calls_a_tool_on_gemini(gateway, upstreams):
    """The Agents SDK sends `parallel_tool_calls: false` with its tools when asked to."""
    from agents import Agent, ModelSettings, OpenAIChatCompletionsModel, Runner, function_tool

    @function_tool
    def get_weather(location: str) -> str:
        """Weather for a place."""
        return f"18C in {location}"

    client = openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key=MASTER_KEY, max_retries=0)
    agent = Agent(name="weather", instructions="Use tools.", tools=[get_weather],
                  model=OpenAIChatCompletionsModel(model="gemini-2.5-flash", openai_client=client),
                  model_settings=ModelSettings(parallel_tool_calls=False))
    result = Runner.run_sync(agent, "call get_weather please")
    assert result.final_output == "Tool results: get_weather=18C in Paris"


# ---------------------------------------------------------------- model ids and upstream URLs

TRICKS = [
    "google/../../v1beta/models/gemini-2.5-flash",
    "google/gemini-2.5-flash/..",
    "google/./gemini-2.5-flash",
    "google/..%2F..%2Fx",
    "google/gemini%2F..%2Fx",
    "google/gemini-2.5-flash%3AstreamGenerateContent",
    "google/..\\..\\x",
    "google/gemini-2.5-flash\\x",
    "google/gemini-2.5-flash\x00",
    "google/gemini-2.5-flash\r\nx-injected: 1",
    "google/gemini\x7f",
    "openai/../gpt-4o",
    "anthropic/claude-sonnet-4-5%2F..",
]


@pytest.mark.parametrize("model", TRICKS, ids=repr)
def test_a_model_id_cannot_change_the_upstream_path(client, upstreams, model):
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model=model, messages=HI)
    refused(exc, "model")
    assert upstreams.gemini.requests == [] and upstreams.openai.requests == []
    assert upstreams.anthropic.requests == []


def test_fallback_model_ids_are_checked_the_same_way(client, upstreams):
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model="google/gemini-2.5-flash", messages=HI,
                                       extra_body={"models": ["google/../x"]})
    refused(exc, "models[0]")
    assert upstreams.gemini.requests == []


def test_slashes_inside_a_model_id_still_go_upstream_unchanged(client, upstreams):
    r = client.chat.completions.create(model="groq/meta-llama/llama-4-scout", messages=HI)
    assert r.choices[0].message.content == "You said: hello"
    assert upstreams.openai.last.json["model"] == "meta-llama/llama-4-scout"


# ---------------------------------------------------------------- /v1/models


def test_get_one_model_in_openai_shape(client, gateway):
    model = client.models.retrieve("openai/gpt-4o")
    assert model.id == "openai/gpt-4o" and model.object == "model" and model.owned_by == "openai"
    assert isinstance(model.created, int) and model.created > 0
    extra = model.model_extra
    assert extra["provider"] == "openai" and "pricing" in extra and "supported_parameters" in extra
    listed = {m.id: m for m in client.models.list()}
    assert listed["openai/gpt-4o"].model_dump() == model.model_dump()
    with pytest.raises(openai.NotFoundError) as exc:
        client.models.retrieve("openai/no-such-model")
    assert exc.value.body["code"] == "model_not_found"
    raw = httpx.get(gateway.url + "/v1/models/nope")
    assert raw.status_code == 404 and raw.json()["error"]["type"] == "not_found_error"


def test_no_model_advertises_what_its_provider_refuses(client):
    models = {m.id: m.model_extra["supported_parameters"] for m in client.models.list()}
    assert "store" not in models["anthropic/claude-sonnet-4-5"]
    assert "metadata" not in models["google/gemini-2.5-flash"]
    assert "parallel_tool_calls" in models["google/gemini-2.5-flash"]


OPENAI_COMPATIBLE = ("openrouter", "groq", "xai", "mistral", "deepseek", "together", "fireworks")


@pytest.fixture(scope="module")
def everywhere(standins, tmp_path_factory):
    """A gateway whose every catalog provider is a stand-in."""
    env = dict(standins.env())
    for name in OPENAI_COMPATIBLE:
        env[f"{name.upper()}_BASE_URL"] = standins.servers["openai"].url + "/v1"
        env[f"{name.upper()}_API_KEY"] = OPENAI_KEY
    g = GatewayProcess(tmp_path_factory.mktemp("everywhere"), env).start()
    yield g
    g.stop()


def _sample(name: str, info) -> dict:
    """A request setting `name` to a value the model may take (and what it needs besides)."""
    efforts = [e for e in info.features.reasoning_efforts if e in REASONING_EFFORTS] or ["low"]
    limits = info.constraints.get("temperature", {})
    return {
        "temperature": {"temperature": max(limits.get("min", 0.5), min(limits.get("max", 2), 0.5))},
        "top_p": {"top_p": 0.9},
        "max_tokens": {"max_tokens": 50},
        "max_completion_tokens": {"max_completion_tokens": 50},
        "stop": {"stop": ["zzz"]},
        "frequency_penalty": {"frequency_penalty": 0.5},
        "presence_penalty": {"presence_penalty": 0.5},
        "seed": {"seed": 7},
        "n": {"n": 2},
        "user": {"user": "u1"},
        "tools": {"tools": [WEATHER]},
        "tool_choice": {"tools": [WEATHER], "tool_choice": "auto"},
        "parallel_tool_calls": {"tools": [WEATHER], "parallel_tool_calls": False},
        "response_format": {"response_format": {"type": "json_object"}},
        "stream_options": {"stream": True, "stream_options": {"include_usage": True}},
        "logprobs": {"logprobs": True},
        "top_logprobs": {"logprobs": True, "top_logprobs": 2},
        "logit_bias": {"logit_bias": {"50256": -100}},
        "reasoning_effort": {"reasoning_effort": efforts[0]},
        "metadata": {"metadata": {"team": "a"}},
        "store": {"store": True},
        "service_tier": {"service_tier": "auto"},
        "web_search_options": {"web_search_options": {}},
        "prediction": {"prediction": {"type": "content", "content": "x"}},
        "modalities": {"modalities": ["text"]},
        "audio": {"audio": {"voice": "alloy", "format": "wav"}},
        "verbosity": {"verbosity": "low"},
        "prompt_cache_key": {"prompt_cache_key": "k"},
        "safety_identifier": {"safety_identifier": "s"},
    }[name]


def test_every_advertised_parameter_is_accepted(everywhere, upstreams):
    """For every catalog model, a request setting each parameter /v1/models lists succeeds."""
    listed = httpx.get(everywhere.url + "/v1/models").json()["data"]
    catalog = Catalog.load()
    assert len(listed) == len(catalog)
    failures = []
    with httpx.Client(base_url=everywhere.url, headers={"authorization": f"Bearer {MASTER_KEY}"},
                      timeout=30) as http:
        for entry in listed:
            info = catalog.get(entry["id"])
            for name in entry["supported_parameters"]:
                body = {"model": entry["id"],
                        "messages": [{"role": "user", "content": "Reply in JSON: hello"}],
                        **_sample(name, info)}
                r = http.post("/v1/chat/completions", json=body)
                sent = upstreams.openai.requests[-1].json if upstreams.openai.requests else {}
                if info.features.seed_field in sent and "Unrecognized" in r.text:
                    continue  # Mistral's own name for `seed`, which only its real API knows
                if r.status_code != 200:
                    failures.append((entry["id"], name, r.status_code, r.text[:300]))
    assert failures == [], "\n".join(map(str, failures))
