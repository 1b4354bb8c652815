"""The history row of one chat request, filled in as the request goes (SPEC §7)."""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from .usage import TokenCounts


@lru_cache(maxsize=64)
def _day_of(day_number: int) -> str:
    return datetime.datetime.fromtimestamp(day_number * 86400, datetime.timezone.utc).strftime("%Y-%m-%d")


def utc_day(ts: float) -> str:
    """The UTC date of a Unix time, as "YYYY-MM-DD" (a row's `day`, a trace file's name)."""
    return _day_of(int(ts // 86400))


@dataclass  # not slots: orjson serializes a dataclass fastest through its __dict__
class Attempt:
    model: str
    provider: str
    status: int | None = None  # upstream HTTP status, None when no answer came
    error: str | None = None
    latency_ms: float = 0.0  # rounded to microseconds when set
    started_ms: float = 0.0  # offset from the request's start, so backoff shows (SPEC §12)


@dataclass(slots=True)
class CallRecord:
    id: str
    key_id: str | None
    app_id: str
    model: str  # requested first; the answering model once one answers
    endpoint: str = "chat"  # the route it came through, one of params.ENDPOINTS (SPEC §9)
    stream: bool = False
    provider: str | None = None
    status: int = 0
    error: str | None = None
    tokens: TokenCounts = field(default_factory=TokenCounts)
    cost: float | None = None
    started: float = field(default_factory=time.perf_counter)
    created_at: float = field(default_factory=time.time)
    latency_ms: float | None = None
    ttft_ms: float | None = None
    tokens_per_second: float | None = None
    attempts: list[Attempt] = field(default_factory=list)
    dropped_params: list[str] = field(default_factory=list)
    trace: bool = False
    request: bytes | None = None  # the body as received, kept only when trace is on
    response: dict | None = None  # the output (Output.to_dict's shape), kept only with trace
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. web searches made
    cache: str | None = None  # "hit" or "miss" when the response cache was asked (SPEC §10)
    responded: bool = False  # the response's last part is being sent: no longer cancellable
    requested_model: str | None = None  # what the caller named, kept after a fallback (§12)
    session_id: str | None = None  # header x-lunos-session-id (§12)
    replay_of: str | None = None  # the row this one replays (POST /v1/logs/{id}/replay)
    trace_id: str | None = None  # W3C trace id: the caller's `traceparent`, or the gateway's span's

    def attempt(self, model: str, provider: str) -> Attempt:
        """A new upstream attempt, starting now (its offset from the request's start)."""
        attempt = Attempt(model, provider, started_ms=round((time.perf_counter() - self.started) * 1000, 3))
        self.attempts.append(attempt)
        return attempt

    def finish(self, first_token_at: float | None = None) -> None:
        """Set latency, time to first token and output speed from the clock."""
        now = time.perf_counter()
        self.latency_ms = round((now - self.started) * 1000, 3)
        if first_token_at is not None:
            self.ttft_ms = round((first_token_at - self.started) * 1000, 3)
            generating = now - first_token_at
            if generating > 0 and self.tokens.completion:
                self.tokens_per_second = round(self.tokens.completion / generating, 3)
        elif self.tokens.completion and self.latency_ms:
            self.tokens_per_second = round(self.tokens.completion / (self.latency_ms / 1000), 3)
