"""AnthropicAdapter.check: what the Messages API (and each model) cannot honour."""

from __future__ import annotations

import pytest

from lunos.gateway.catalog import COMMON_PARAMETERS, ModelInfo
from lunos.gateway.errors import GatewayError
from lunos.gateway.providers.anthropic import AnthropicAdapter
from lunos.gateway.providers.base import ChatRequest, ProviderConfig

OPENAI_ONLY = {"frequency_penalty", "presence_penalty", "seed", "n", "logprobs", "top_logprobs", "logit_bias"}
# Entries shaped like the catalog's: a Claude 4.5 model (temperature up to 1, not with top_p) ...
SONNET = ModelInfo("anthropic/claude-sonnet-4-5", "anthropic", max_output=64000,
                   supported_parameters=COMMON_PARAMETERS - OPENAI_ONLY,
                   constraints={"temperature": {"max": 1}, "exclusive": [["temperature", "top_p"]]},
                   features={"thinking": "budget"})
# ... and a Claude 5-style one: no sampling at all, adaptive thinking, no forced tool use.
SONNET_55 = ModelInfo("anthropic/claude-sonnet-5-5", "anthropic", max_output=128000,
                      supported_parameters=COMMON_PARAMETERS - OPENAI_ONLY - {"temperature", "top_p"},
                      features={"thinking": "adaptive", "forced_tool_choice": False})


def check(info: ModelInfo | None = None, version: str | None = None, **fields) -> dict[str, str]:
    options = {"anthropic_version": version} if version else {}
    adapter = AnthropicAdapter(ProviderConfig("anthropic", "anthropic", "https://api.anthropic.com",
                                              api_key="k", options=options))
    model = info.id if info else "anthropic/claude-future-1"
    body = {"model": model, "messages": [{"role": "user", "content": "Hi"}], **fields}
    found = adapter.check(ChatRequest(body, model, "anthropic", model.split("/", 1)[1], info))
    names = [u.param for u in found]
    assert len(names) == len(set(names)), "a parameter is reported twice"
    return {u.param: u.message for u in found}


@pytest.mark.parametrize("messages", [
    [{"role": "system", "content": "Be brief."}],
    [{"role": "user", "content": ""}],
    [{"role": "user", "content": [{"type": "text", "text": ""}]}],
    [{"role": "system", "content": "Be brief."},
     {"role": "assistant", "content": [{"type": "text", "text": ""}, {"type": "text", "text": ""}]}],
    [{"role": "assistant", "content": [{"type": "refusal", "refusal": "I can't help with that."}]}],
])
def test_a_conversation_with_nothing_to_send_is_a_400_naming_messages(messages):
    """The Messages API refuses an empty `messages`; empty text and refusal parts are left
    out of it."""
    with pytest.raises(GatewayError) as err:
        check(messages=messages)
    assert err.value.status == 400 and err.value.param == "messages"
    assert "at least one user or assistant message" in err.value.message


def test_an_image_beside_an_empty_text_part_is_a_turn():
    image = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
    assert check(messages=[{"role": "user", "content": [{"type": "text", "text": ""}, image]}]) == {}


def test_parameter_set():
    assert AnthropicAdapter.parameters == {
        "temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "user", "tools", "tool_choice",
        "parallel_tool_calls", "response_format", "stream_options", "reasoning_effort", "metadata"}
    assert AnthropicAdapter.kind == "anthropic"
    assert AnthropicAdapter.fetches_image_urls is True


def test_everything_supported_passes():
    assert check(SONNET, temperature=0.5, max_tokens=100, stop=["x"], user="u", stream_options={"include_usage": True},
                 tools=[{"type": "function", "function": {"name": "f"}}], tool_choice="auto",
                 parallel_tool_calls=False, response_format={"type": "text"}, metadata={"a": "b"}) == {}


@pytest.mark.parametrize("info", [None, SONNET], ids=["unknown-model", "catalog-model"])
def test_openai_only_parameters_are_refused(info):
    found = check(info, seed=1, frequency_penalty=0.5, presence_penalty=-1, n=2, logprobs=True,
                  logit_bias={"1": 2}, top_logprobs=2)
    assert set(found) == {"seed", "frequency_penalty", "presence_penalty", "n", "logprobs", "logit_bias",
                          "top_logprobs"}
    assert "'seed' is not supported" in found["seed"]


def test_openai_defaults_are_never_unsupported():
    assert check(SONNET, n=1, frequency_penalty=0, presence_penalty=0, parallel_tool_calls=True, logprobs=False) == {}


def test_catalog_constraints_apply():
    found = check(SONNET, temperature=1.5)
    assert "at most 1" in found["temperature"]
    found = check(SONNET, temperature=0.5, top_p=0.9)
    assert set(found) == {"top_p"}


def test_models_without_sampling_refuse_it():
    found = check(SONNET_55, temperature=0.5, top_p=0.9, max_tokens=10)
    assert set(found) == {"temperature", "top_p"}


@pytest.mark.parametrize("kind", ["json_object", "json_schema"])
@pytest.mark.parametrize("info", [None, SONNET, SONNET_55], ids=["unknown-model", "claude-4-5", "claude-5-5"])
def test_json_response_formats_are_accepted(kind, info):
    fmt = {"type": kind} if kind == "json_object" else {"type": kind, "json_schema": {"name": "x", "schema": {}}}
    assert check(info, response_format=fmt) == {}


@pytest.mark.parametrize("info", [None, SONNET], ids=["unknown-model", "catalog-model"])
def test_version_2026_10_21_refuses_sampling_even_at_defaults(info):
    found = check(info, version="2026-10-21", temperature=1, top_p=1)
    assert set(found) == {"temperature", "top_p"}
    assert "2026-10-21" in found["temperature"]
    assert check(info, version="2023-06-01", temperature=1) == {}


def test_thinking_allows_only_temperature_one_and_high_top_p():
    assert check(SONNET, reasoning_effort="low", temperature=1) == {}
    assert set(check(SONNET, reasoning_effort="low", temperature=0.3)) == {"temperature"}
    unknown = check(None, reasoning_effort="high", top_p=0.5)
    assert set(unknown) == {"top_p"} and "0.95" in unknown["top_p"]
    assert check(None, reasoning_effort="high", top_p=0.97) == {}


@pytest.mark.parametrize("choice", ["required", {"type": "function", "function": {"name": "f"}}])
def test_thinking_cannot_be_combined_with_forced_tool_use(choice):
    tools = [{"type": "function", "function": {"name": "f"}}]
    found = check(SONNET, reasoning_effort="medium", tools=tools, tool_choice=choice)
    assert set(found) == {"reasoning_effort"}
    assert check(SONNET, reasoning_effort="medium", tools=tools, tool_choice="auto") == {}
    assert check(SONNET, tools=tools, tool_choice=choice) == {}


@pytest.mark.parametrize("choice", ["required", {"type": "function", "function": {"name": "f"}}])
def test_models_that_refuse_forced_tool_use(choice):
    tools = [{"type": "function", "function": {"name": "f"}}]
    found = check(SONNET_55, tools=tools, tool_choice=choice, reasoning_effort="low")
    assert set(found) == {"tool_choice"}
    assert "use 'auto'" in found["tool_choice"]
    assert check(SONNET_55, tools=tools, tool_choice="auto") == {}


def test_effort_none_is_refused_where_thinking_cannot_be_turned_off():
    always = ModelInfo("anthropic/claude-fable-5", "anthropic",
                       supported_parameters=COMMON_PARAMETERS - OPENAI_ONLY,
                       features={"thinking": "adaptive", "thinking_always_on": True})
    assert "always thinks" in check(always, reasoning_effort="none")["reasoning_effort"]
    assert check(always, reasoning_effort="xhigh") == {}
    assert check(SONNET, reasoning_effort="none") == {}
    # xhigh thinks, so the extended-thinking rules apply to it as to the other efforts.
    assert "temperature" in check(SONNET, reasoning_effort="xhigh", temperature=0.5)
