"""Finding and understanding requests (SPEC §12) through running gateways, on SQLite (traces
in files beside the database) and PostgreSQL: search, sessions, requested model, attempts
on a timeline, usage percentiles and groups, replay."""

from __future__ import annotations

import itertools
import secrets
import time

import httpx
import pytest

from tests.databases import database
from tests.gateway.test_history_e2e import wait_for_row
from tests.gateway_process import MASTER_KEY, GatewayProcess
from tests.standins.harness import send_json

MASTER = {"authorization": f"Bearer {MASTER_KEY}"}


def ask(text: str, **extra) -> dict:
    return {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": text}], **extra}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def gw(request, standins, tmp_path_factory):
    home = tmp_path_factory.mktemp("finding")
    with database(request.param, home) as url:
        env = {**standins.env(), "LUNOS_RETRY_BACKOFF": "0.05", "LUNOS_BREAKER_THRESHOLD": "1000"}
        if request.param == "postgresql":
            env["LUNOS_DATABASE_URL"] = url
        g = GatewayProcess(home / "gw", env).start()
        yield g
        g.stop()


def post(g, body: dict, headers=None, path="/v1/chat/completions") -> httpx.Response:
    return httpx.post(g.url + path, headers={**MASTER, **(headers or {})}, json=body, timeout=30)


def logs(g, headers=MASTER, **params) -> dict:
    r = httpx.get(f"{g.url}/v1/logs", headers=headers, params=params, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def row(g, row_id: str) -> dict:
    return wait_for_row(g.url, row_id, within=2)


def settled(g, ids: list[str]) -> None:
    for row_id in ids:
        row(g, row_id)


def test_q_finds_exactly_the_request_with_a_unique_word(gw, upstreams):
    word = "zebra" + secrets.token_hex(4)
    ids = [post(gw, ask(f"tell me about {w}", observability=True)).headers["x-request-id"]
           for w in ("cats", f"the {word.upper()} crossing", "dogs")]
    untraced = post(gw, ask(f"untraced {word}")).headers["x-request-id"]
    failed = post(gw, ask("x [[status:400]]", observability=True)).headers["x-request-id"]
    settled(gw, [*ids, untraced, failed])
    found = logs(gw, q=word)
    assert [r["id"] for r in found["data"]] == [ids[1]] and found["total"] == 1
    # words of the output are found too (the fake model echoes), and every word must match
    assert [r["id"] for r in logs(gw, q=f"said {word}")["data"]] == [ids[1]]
    assert logs(gw, q=f"{word} nowhere-else")["data"] == []
    # and words of error messages, traced or not
    error = row(gw, failed)["error"]
    assert any(r["id"] == failed for r in logs(gw, q=error.split()[-1])["data"])
    # LIKE's own characters are taken literally
    assert logs(gw, q="%")["total"] == 0 or all("%" in (r["error"] or "") or r["trace"]
                                                 for r in logs(gw, q="%")["data"])


def test_session_groups_a_conversations_turns(gw, upstreams):
    session = "sess-" + secrets.token_hex(4)
    one = post(gw, ask("turn one"), {"x-lunos-session-id": session})
    two = post(gw, {**ask("turn one"), "messages": [
        {"role": "user", "content": "turn one"}, {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "turn two"}]}, {"x-lunos-session-id": session})
    other = post(gw, ask("elsewhere"))
    settled(gw, [one.headers["x-request-id"], two.headers["x-request-id"], other.headers["x-request-id"]])
    page = logs(gw, session_id=session, order="oldest")
    assert [r["id"] for r in page["data"]] == [one.headers["x-request-id"], two.headers["x-request-id"]]
    assert all(r["session_id"] == session for r in page["data"]) and page["total"] == 2


def test_fallback_row_keeps_the_requested_model_and_a_timeline(gw, upstreams):
    upstreams.openai.scripted += [_status(500)] * 3
    r = post(gw, ask("hello", fallback_model="anthropic/claude-haiku-4-5"))
    assert r.status_code == 200 and r.json()["model"] == "anthropic/claude-haiku-4-5"
    got = row(gw, r.headers["x-request-id"])
    assert got["requested_model"] == "openai/gpt-4o" and got["model"] == "anthropic/claude-haiku-4-5"
    attempts = got["attempts"]
    assert [(a["model"], a["provider"], a["status"]) for a in attempts] == [
        ("openai/gpt-4o", "openai", 500)] * 3 + [("anthropic/claude-haiku-4-5", "anthropic", 200)]
    starts = [a["started_ms"] for a in attempts]
    assert starts == sorted(starts) and starts[0] >= 0
    # backoff shows: each retry starts after the previous attempt ended
    for before, after in itertools.pairwise(attempts):
        assert after["started_ms"] >= before["started_ms"] + before["latency_ms"]
    assert all(a["error"] for a in attempts[:3]) and attempts[3]["error"] is None
    by_requested = logs(gw, requested_model="openai/gpt-4o", model="anthropic/claude-haiku-4-5")
    assert r.headers["x-request-id"] in [x["id"] for x in by_requested["data"]]
    by_prefix = logs(gw, model="anthropic/*", limit=500)["data"]
    assert r.headers["x-request-id"] in [x["id"] for x in by_prefix]
    assert all(x["model"].startswith("anthropic/") for x in by_prefix)
    assert logs(gw, model="anthropic/_*")["total"] == 0  # `_` is no wildcard


def test_failed_and_refused_rows_name_provider_and_model(gw, upstreams):
    failed = post(gw, ask("x [[status:500]]"))
    refused = post(gw, {**ask("hi"), "model": "anthropic/claude-haiku-4-5", "temperature": 9})
    assert (failed.status_code, refused.status_code) == (502, 400)
    failed_row, refused_row = row(gw, failed.headers["x-request-id"]), row(gw, refused.headers["x-request-id"])
    assert failed_row["provider"] == "openai" and failed_row["requested_model"] == "openai/gpt-4o"
    assert refused_row["model"] == refused_row["requested_model"] == "anthropic/claude-haiku-4-5"


def test_orders_and_key_filter(gw, upstreams):
    key = httpx.post(f"{gw.url}/admin/keys", headers=MASTER, json={"name": "orderly-" + secrets.token_hex(3)}).json()
    auth = {"authorization": f"Bearer {key['key']}"}
    ids = [post(gw, ask(f"order {i} " + "word " * (i * 40)), auth).headers["x-request-id"] for i in range(3)]
    settled(gw, ids)
    for value in (key["id"], key["name"]):
        assert {r["id"] for r in logs(gw, key=value)["data"]} == set(ids)
    costs = [r["usage"]["cost"] for r in logs(gw, key=key["name"], order="cost")["data"]]
    assert costs == sorted(costs, reverse=True) and costs[0] > costs[-1]
    latencies = [r["latency_ms"] for r in logs(gw, key=key["id"], order="latency")["data"]]
    assert latencies == sorted(latencies, reverse=True)
    assert [r["id"] for r in logs(gw, key=key["id"], order="oldest")["data"]] == ids
    # pages in any order: two pages of two and one hold all three, in order
    first = logs(gw, key=key["id"], order="cost", limit=2)
    second = logs(gw, key=key["id"], order="cost", limit=2, cursor=first["next_cursor"])
    assert [r["usage"]["cost"] for r in first["data"] + second["data"]] == costs
    assert first["total"] == 3 and second["next_cursor"] is None
    # a key may not filter by key, nor group usage by key
    r = httpx.get(f"{gw.url}/v1/logs", headers=auth, params={"key": "x"})
    assert r.status_code == 403 and r.json()["error"]["param"] == "key"
    r = httpx.get(f"{gw.url}/v1/logs", headers=auth, params={"order": "random"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "order"


def test_usage_percentiles_and_groups(gw, upstreams):
    key = httpx.post(f"{gw.url}/admin/keys", headers=MASTER, json={"name": "usage-" + secrets.token_hex(3)}).json()
    auth = {"authorization": f"Bearer {key['key']}"}
    ids = [post(gw, ask(f"u{i}"), auth).headers["x-request-id"] for i in range(4)]
    ids.append(post(gw, ask("x [[status:400]]"), auth).headers["x-request-id"])
    settled(gw, ids)
    latencies = sorted(row(gw, i)["latency_ms"] for i in ids)
    r = httpx.get(f"{gw.url}/v1/usage", headers=auth, params={"group_by": "model"}).json()
    (only,) = r["data"]
    assert only["requests"] == 5 and only["error_rate"] == 0.2
    assert only["latency_p50_ms"] == pytest.approx(latencies[2], abs=0.01)  # nearest rank
    assert only["latency_p95_ms"] == pytest.approx(latencies[4], abs=0.01)
    assert only["ttft_p50_ms"] is not None or only["ttft_p50_ms"] is None  # present
    hourly = httpx.get(f"{gw.url}/v1/usage", headers=auth, params={"group_by": "hour,endpoint"}).json()
    (hour,) = hourly["data"]
    assert hour["hour"].endswith(":00:00Z") and hour["endpoint"] == "chat" and hour["requests"] == 5
    now = time.gmtime()
    assert hour["hour"].startswith(time.strftime("%Y-%m-%dT", now))
    by_key = httpx.get(f"{gw.url}/v1/usage", headers=MASTER, params={"group_by": "key"}).json()
    mine = [g for g in by_key["data"] if g["key"] == key["id"]]
    assert mine and mine[0]["key_name"] == key["name"] and mine[0]["requests"] == 5
    denied = httpx.get(f"{gw.url}/v1/usage", headers=auth, params={"group_by": "key"})
    assert denied.status_code == 403


def test_replay_on_two_models(gw, upstreams):
    original = post(gw, ask("replay me please", observability=True, temperature=0.5),
                    {"x-lunos-session-id": "s-replay"})
    original_id = original.headers["x-request-id"]
    row(gw, original_id)
    models = ["anthropic/claude-haiku-4-5", "google/gemini-2.5-flash"]
    r = post(gw, {"models": models, "overrides": {"max_tokens": 50}}, path=f"/v1/logs/{original_id}/replay")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "list" and [c["model"] for c in body["data"]] == models
    for completion in body["data"]:
        assert completion["object"] == "chat.completion"
        assert completion["choices"][0]["message"]["content"] == "You said: replay me please"
        replayed = row(gw, completion["id"])
        assert replayed["replay_of"] == original_id and replayed["session_id"] is None
        assert replayed["request"]["params"]["max_tokens"] == 50
        assert replayed["request"]["params"]["temperature"] == 0.5
    # what the providers got: the original's parameters with the overrides
    assert upstreams.anthropic.requests[-1].json["max_tokens"] == 50
    assert {x["id"] for x in logs(gw, q="replay me please")["data"]} >= {c["id"] for c in body["data"]}
    # bad input: a clear 400 naming the parameter; another key's row is a 404
    bad = post(gw, {"models": []}, path=f"/v1/logs/{original_id}/replay")
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "models"
    bad = post(gw, {"models": models, "overrides": {"model": "x"}}, path=f"/v1/logs/{original_id}/replay")
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "overrides.model"
    untraced = post(gw, ask("not traced")).headers["x-request-id"]
    row(gw, untraced)
    bad = post(gw, {"models": models}, path=f"/v1/logs/{untraced}/replay")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "log_not_traced"
    key = httpx.post(f"{gw.url}/admin/keys", headers=MASTER, json={"name": "stranger"}).json()
    r = httpx.post(f"{gw.url}/v1/logs/{original_id}/replay", json={"models": models},
                   headers={"authorization": f"Bearer {key['key']}"})
    assert r.status_code == 404


def _status(code: int):
    async def reply(rec, send):
        await send_json(send, code, {"error": {"message": f"stand-in {code}"}})
    return reply


def test_rows_refused_at_validation_keep_the_model_on_every_door(gw, upstreams):
    messages = httpx.post(f"{gw.url}/v1/messages", headers=MASTER, timeout=10, json={
        "model": "anthropic/claude-haiku-4-5", "max_tokens": -1,
        "messages": [{"role": "user", "content": "hi"}]})
    responses = post(gw, {"model": "openai/gpt-4o", "input": "hi", "temperature": 9},
                     path="/v1/responses")
    assert (messages.status_code, responses.status_code) == (400, 400)
    assert row(gw, messages.headers["x-request-id"])["requested_model"] == "anthropic/claude-haiku-4-5"
    assert row(gw, responses.headers["x-request-id"])["requested_model"] == "openai/gpt-4o"
