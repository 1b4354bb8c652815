"""The OpenAI Agents SDK on the Responses door, as the README shows it: a Lunos model id through
OpenAIResponsesModel, and a bare OpenAI id through the default client (which reaches OpenAI's
own Responses API)."""

from tests.gateway_process import MASTER_KEY


def test_the_agents_sdk_runs_on_the_responses_door(gateway, upstreams):
    from openai import AsyncOpenAI

    from agents import (
        Agent,
        OpenAIResponsesModel,
        Runner,
        set_default_openai_client,
        set_tracing_disabled,
    )
    gw = AsyncOpenAI(base_url=gateway.url + "/v1", api_key=MASTER_KEY)
    set_tracing_disabled(True)
    agent = Agent(name="helper", instructions="Be brief.", model=OpenAIResponsesModel(model="google/gemini-2.5-flash", openai_client=gw))
    out = Runner.run_sync(agent, "Name a colour").final_output
    assert out == "You said: Name a colour"
    set_default_openai_client(gw)
    out = Runner.run_sync(Agent(name="h", model="gpt-5"), "Hi there").final_output
    assert out == "You said: Hi there", out
    assert upstreams.openai.last.path.endswith("/responses")
