"""Prices: long-context tiers and Anthropic's 1-hour cache writes, in `cost` and budgets."""

from __future__ import annotations

import pytest

from lunos.gateway.catalog import Catalog
from lunos.gateway.limits import worst_case
from lunos.gateway.providers.anthropic.response import usage_from
from lunos.gateway.usage import TokenCounts, cost_of

CATALOG = Catalog.load()


def test_long_context_tier_bills_the_whole_request():
    pro = CATALOG.get("google/gemini-2.5-pro")
    assert cost_of(TokenCounts(prompt=200_000, completion=1_000), pro) == pytest.approx(
        (200_000 * 1.25 + 1_000 * 10.0) / 1e6)
    assert cost_of(TokenCounts(prompt=200_001, completion=1_000), pro) == pytest.approx(
        (200_001 * 2.5 + 1_000 * 15.0) / 1e6)
    sonnet = CATALOG.get("anthropic/claude-sonnet-4-5")
    big = TokenCounts(prompt=300_000, completion=10, cached=100_000)
    assert cost_of(big, sonnet) == pytest.approx((200_000 * 6.0 + 100_000 * 0.6 + 10 * 22.5) / 1e6)


def test_tiers_are_data_in_the_catalog_and_listed():
    entry = CATALOG.get("google/gemini-2.5-pro").public()["pricing"]
    assert entry["tiers"] == [{"above_input_tokens": 200_000, "input": 2.5, "output": 15.0,
                               "cached_input": 0.25}]
    assert CATALOG.get("anthropic/claude-opus-5-5").public()["pricing"]["cache_write_1h"] == 8.0


def test_a_tier_left_out_keeps_the_base_price():
    grok = CATALOG.get("xai/grok-4.3")  # above 200K only input changes
    assert cost_of(TokenCounts(prompt=250_000, completion=1_000, cached=50_000), grok) == pytest.approx(
        (200_000 * 2.5 + 50_000 * 0.2 + 1_000 * 2.5) / 1e6)


def test_config_overrides_take_tiers_and_refuse_unknown_keys():
    catalog = Catalog.load([{"id": "openai/gpt-4o", "pricing": {
        "tiers": [{"above_input_tokens": 10, "input": 100.0}]}}])
    assert cost_of(TokenCounts(prompt=11), catalog.get("openai/gpt-4o")) == pytest.approx(11 * 100.0 / 1e6)
    with pytest.raises(ValueError, match="unknown key 'inptu'"):
        Catalog.load([{"id": "openai/gpt-4o", "pricing": {"tiers": [{"above_input_tokens": 1, "inptu": 1}]}}])
    with pytest.raises(ValueError, match="above_input_tokens"):
        Catalog.load([{"id": "openai/gpt-4o", "pricing": {"tiers": [{"input": 1}]}}])


def test_one_hour_cache_writes_cost_twice_the_input():
    usage = usage_from({"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 0,
                        "cache_creation_input_tokens": 3000,
                        "cache_creation": {"ephemeral_5m_input_tokens": 1000,
                                           "ephemeral_1h_input_tokens": 2000}})
    assert usage["prompt_tokens_details"]["cache_write_1h_tokens"] == 2000
    tokens = TokenCounts.of(usage)
    opus = CATALOG.get("anthropic/claude-opus-5-5")  # input $4, 5m write $5, 1h write $8
    assert cost_of(tokens, opus) == pytest.approx((10 * 4.0 + 1000 * 5.0 + 2000 * 8.0 + 5 * 20.0) / 1e6)
    five_minutes = usage_from({"input_tokens": 10, "output_tokens": 5, "cache_creation_input_tokens": 3000})
    assert cost_of(TokenCounts.of(five_minutes), opus) == pytest.approx(
        (10 * 4.0 + 3000 * 5.0 + 5 * 20.0) / 1e6)


def test_reservations_price_the_dearest_case():
    opus = CATALOG.get("anthropic/claude-opus-5-5")
    body = {"model": "anthropic/claude-opus-5-5", "max_tokens": 100,
            "messages": [{"role": "user", "content": "x" * 984}]}  # 984 + 16 = 1000 tokens
    tokens, cost = worst_case(body, [opus])
    assert tokens == 1100
    assert cost == pytest.approx((1000 * 8.0 + 100 * 20.0) / 1e6)  # every prompt token a 1h write
    _, three = worst_case({**body, "n": 3}, [opus])
    assert three == pytest.approx((1000 * 8.0 + 300 * 20.0) / 1e6)
    pro = CATALOG.get("google/gemini-2.5-pro")
    long = {**body, "messages": [{"role": "user", "content": "x" * 250_000}]}
    _, cost = worst_case(long, [pro])
    assert cost == pytest.approx(((250_000 + 16) * 2.5 + 100 * 15.0) / 1e6)
