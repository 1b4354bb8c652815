"""The request metrics tell the front doors apart by an `endpoint` label (SPEC §9)."""

from __future__ import annotations

import os

from lunos.gateway.metrics import Metrics
from lunos.gateway.records import CallRecord


def record(**fields) -> CallRecord:
    r = CallRecord("id", None, "app", "m")  # endpoint: chat unless a route says otherwise
    r.provider, r.status, r.stream = "anthropic", 200, True
    r.latency_ms, r.ttft_ms = 250.0, 40.0
    for name, value in fields.items():
        setattr(r, name, value)
    return r


def test_requests_latency_and_first_token_are_labelled_by_endpoint():
    metrics = Metrics()
    metrics.observe(record())
    metrics.observe(record(endpoint="messages"))
    metrics.observe(record(endpoint="messages", status=529))
    lines = metrics.render({}).splitlines()
    pid = f'pid="{os.getpid()}"'
    assert f'lunos_requests_total{{{pid},endpoint="chat",status="200",provider="anthropic",stream="true"}} 1' in lines
    assert f'lunos_requests_total{{{pid},endpoint="messages",status="200",provider="anthropic",stream="true"}} 1' in lines
    assert f'lunos_requests_total{{{pid},endpoint="messages",status="529",provider="anthropic",stream="true"}} 1' in lines
    assert f'lunos_request_duration_seconds_count{{{pid},endpoint="messages",provider="anthropic"}} 2' in lines
    assert f'lunos_time_to_first_token_seconds_count{{{pid},endpoint="chat",provider="anthropic"}} 1' in lines
