"""Lunos options as `x-lunos-*` headers, and `x-api-key` authentication, on the chat route
(SPEC §9: for clients that cannot add body fields or send only Anthropic's key header)."""

from __future__ import annotations

import httpx

from tests.gateway.test_reliability_e2e import ask, rows_for
from tests.gateway_process import MASTER_KEY

KEY = {"x-api-key": MASTER_KEY}


def test_x_api_key_authenticates_like_bearer(gateway, upstreams):
    r = httpx.post(f"{gateway.url}/v1/chat/completions", headers=KEY, json=ask("hi"))
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "You said: hi"
    bad = httpx.post(f"{gateway.url}/v1/chat/completions", headers={"x-api-key": "sk-nope"}, json=ask("hi"))
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "invalid_api_key"
    missing = httpx.post(f"{gateway.url}/v1/chat/completions", json=ask("hi"))
    assert missing.status_code == 401 and "x-api-key" in missing.json()["error"]["message"]


def test_fallback_models_header(gateway, upstreams):
    r = httpx.post(f"{gateway.url}/v1/chat/completions", json={**ask("hi"), "model": "xai/grok-4.7"},
                   headers={**KEY, "x-lunos-fallback-models": "google/gemini-2.5-flash, ,openai/gpt-4o"})
    assert r.status_code == 200 and r.json()["model"] == "google/gemini-2.5-flash"


def test_observability_header_traces_the_request(gateway, upstreams):
    r = httpx.post(f"{gateway.url}/v1/chat/completions", json=ask("trace me"),
                   headers={**KEY, "x-lunos-observability": "true"})
    assert r.status_code == 200
    (row,) = rows_for(gateway.url, r.headers["x-request-id"])
    assert row["trace"] is True
    detail = httpx.get(f"{gateway.url}/v1/logs/{row['id']}", headers=KEY).json()
    assert detail["request"]["messages"] == [{"role": "user", "content": "trace me"}]


def test_drop_params_header_drops_what_the_model_cannot_take(gateway, upstreams):
    body = {**ask("hi"), "model": "anthropic/claude-haiku-4-5", "logit_bias": {"50256": -100}}
    refused = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, headers=KEY)
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "logit_bias"
    r = httpx.post(f"{gateway.url}/v1/chat/completions", json=body,
                   headers={**KEY, "x-lunos-drop-params": "true"})
    assert r.status_code == 200 and r.headers["x-lunos-dropped-params"] == "logit_bias"


def test_a_body_field_wins_over_its_header(gateway, upstreams):
    body = {**ask("hi"), "model": "anthropic/claude-haiku-4-5", "logit_bias": {"1": 1}, "drop_params": False}
    r = httpx.post(f"{gateway.url}/v1/chat/completions", json=body,
                   headers={**KEY, "x-lunos-drop-params": "true"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "logit_bias"


def test_a_bad_header_value_is_a_400_naming_the_header(gateway, upstreams):
    r = httpx.post(f"{gateway.url}/v1/chat/completions", json=ask("hi"),
                   headers={**KEY, "x-lunos-observability": "maybe"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "x-lunos-observability"
