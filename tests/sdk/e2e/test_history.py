"""History, keys and the catalog through the SDK against a running gateway: observability
traces read back with `client.logs`, filters and paging, `app_id`, revoked keys,
`client.models`, and configuration from the environment (both client kinds)."""

from __future__ import annotations

import pytest

import lunos
from lunos import AsyncLunos, Lunos
from tests.gateway_process import MASTER_KEY
from tests.sdk.conftest import resolve
from tests.sdk.e2e.conftest import make_key, revoke_key, unique, wait_for_log


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


async def chat(client, text: str, model: str = "openai/gpt-4o", **params):
    return await resolve(client.chat.completions.create(model=model, messages=user(text), **params))


async def test_observability_trace_read_back(client, upstreams):
    r = await chat(client, "remember this trace", observability=True, temperature=0.5)
    log = await wait_for_log(client, r.id)
    assert isinstance(log, lunos.LogEntry)
    assert log.id == r.id and log.status == 200 and log.trace is True
    assert (log.model, log.provider) == ("openai/gpt-4o", "openai")
    assert log.request["messages"] == user("remember this trace")
    assert log.request["params"]["temperature"] == 0.5
    assert log.response["content"] == "You said: remember this trace"
    assert log.response["finish_reason"] == "stop"
    assert log.usage.prompt_tokens == r.usage.prompt_tokens
    assert log.usage.completion_tokens == r.usage.completion_tokens
    assert log.usage.cost == pytest.approx(r.usage.cost)
    assert log.latency_ms > 0 and log.stream is False and log.created_at is not None
    assert log.requested_model == "openai/gpt-4o" and log.replay_of is None
    assert log.attempts[0]["started_ms"] >= 0


async def test_without_observability_the_row_has_no_trace(client, upstreams):
    r = await chat(client, "private words")
    log = await wait_for_log(client, r.id)
    assert log.trace is False and log.request is None and log.response is None
    assert log.usage.cost == pytest.approx(r.usage.cost)


async def test_app_id_reaches_the_history_row(clients, upstreams):
    app = unique("sdk-app")
    client = clients(app_id=app)
    r = await chat(client, "attributed")
    assert (await wait_for_log(client, r.id)).app_id == app
    plain = await chat(clients(), "not attributed")
    assert (await wait_for_log(client, plain.id)).app_id == "unknown"


async def test_logs_list_filters_and_cursor(clients, gateway, upstreams):
    key = make_key(gateway, unique("sdk-logs"))
    app = unique("sdk-list")
    client = clients(key["key"], app_id=app)
    made = [await chat(client, f"request {i}") for i in range(3)]
    made.append(await chat(client, "on claude", model="anthropic/claude-sonnet-4-5"))
    other_app = await chat(clients(key["key"], app_id=unique("elsewhere")), "other app")
    for r in [*made, other_app]:
        await wait_for_log(client, r.id)

    page = await resolve(client.logs.list(app_id=app))
    assert isinstance(page, lunos.LogList)
    assert [row.id for row in page.data] == [r.id for r in reversed(made)]  # newest first
    assert {row.key_id for row in page.data} == {key["id"]} and not page.has_more
    assert page.total == len(made)

    paged, cursor = [], None
    while True:
        page = await resolve(client.logs.list(app_id=app, limit=1, cursor=cursor))
        assert len(page) <= 1
        paged += [row.id for row in page]
        if not page.has_more:
            break
        cursor = page.next_cursor
    assert paged == [r.id for r in reversed(made)]

    claude = await resolve(client.logs.list(model="anthropic/claude-sonnet-4-5"))
    assert [row.id for row in claude] == [made[-1].id]
    everything = await resolve(client.logs.list(limit=100))
    assert {row.id for row in everything} == {r.id for r in [*made, other_app]}  # its own only


async def test_another_keys_row_is_not_found(clients, gateway, upstreams):
    mine = clients(make_key(gateway, unique("sdk-mine"))["key"])
    theirs = clients(make_key(gateway, unique("sdk-theirs"))["key"])
    r = await chat(theirs, "not yours")
    await wait_for_log(theirs, r.id)
    with pytest.raises(lunos.NotFoundError) as info:
        await resolve(mine.logs.retrieve(r.id))
    assert info.value.status_code == 404


async def test_revoked_key_is_401_and_not_retried(clients, gateway, upstreams):
    key = make_key(gateway, unique("sdk-revoked"))
    client = clients(key["key"])
    assert (await chat(client, "still valid")).choices[0].message.content == "You said: still valid"
    revoke_key(gateway, key["id"])
    sent_before = len(clients.sent)
    with pytest.raises(lunos.AuthenticationError) as info:
        await chat(client, "revoked now")
    assert info.value.status_code == 401 and info.value.type == "authentication_error"
    assert len(clients.sent) == sent_before + 1
    assert [r.json["messages"][-1]["content"] for r in upstreams.openai.requests] == ["still valid"]
    with pytest.raises(lunos.AuthenticationError):
        await resolve(client.logs.list())


async def test_models_list(client):
    models = await resolve(client.models.list())
    assert isinstance(models, lunos.ModelList) and len(models) > 10
    by_id = {m.id: m for m in models}
    gpt = by_id["openai/gpt-4o"]
    assert isinstance(gpt, lunos.Model) and gpt.provider == "openai"
    assert gpt.context_length > 0 and gpt.max_output_tokens > 0
    assert gpt.pricing.input > 0 and gpt.pricing.output > gpt.pricing.input
    assert "image" in gpt.input_modalities and "tools" in gpt.supported_parameters
    assert {"openai", "anthropic", "google", "groq"} <= {m.provider for m in models}


@pytest.mark.parametrize("suffix", ["", "/", "/v1"])
async def test_configuration_from_the_environment(kind, gateway, upstreams, monkeypatch, suffix):
    monkeypatch.setenv("LUNOS_API_KEY", MASTER_KEY)
    monkeypatch.setenv("LUNOS_BASE_URL", gateway.url + suffix)
    if kind == "sync":
        with Lunos() as client:
            r = client.chat.completions.create(model="openai/gpt-4o", messages=user("from env"))
    else:
        async with AsyncLunos() as client:
            r = await client.chat.completions.create(model="openai/gpt-4o", messages=user("from env"))
    assert r.choices[0].message.content == "You said: from env"
    assert upstreams.openai.last.headers["authorization"] == "Bearer sk-openai-test"
