"""Prometheus metrics, in the text exposition format, kept in process (per worker).

Counters and histograms are folded from each finished history row (`observe`), so the hot
path pays one dictionary update per metric; gauges (breakers, queue depth, in-flight) are
read when `/metrics` is scraped. With `--workers N` each worker reports its own numbers,
labelled with its `pid`.
"""

from __future__ import annotations

import bisect
import os
from collections import defaultdict

from .records import CallRecord

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

HELP = {
    "lunos_requests_total": ("counter", "Requests by endpoint, final status, provider and "
                             "streaming"),
    "lunos_request_duration_seconds": ("histogram", "Request latency by endpoint and provider"),
    "lunos_time_to_first_token_seconds": ("histogram", "Time to the first streamed token, by endpoint "
                                          "and provider"),
    "lunos_tokens_total": ("counter", "Tokens by provider and kind"),
    "lunos_cost_usd_total": ("counter", "Cost in USD by provider"),
    "lunos_upstream_attempts_total": ("counter", "Upstream calls by provider and outcome"),
    "lunos_retries_total": ("counter", "Upstream calls repeated on the same model"),
    "lunos_fallbacks_total": ("counter", "Requests answered by a fallback model"),
    "lunos_cache_hits_total": ("counter", "Requests answered from the response cache, by endpoint"),
    "lunos_cache_misses_total": ("counter", "Requests that asked the response cache and missed, by "
                                 "endpoint"),
    "lunos_cache_saved_usd_total": ("counter", "What cache hits would have cost upstream, in USD"),
    "lunos_limited_total": ("counter", "Requests refused by a limit, by reason"),
    "lunos_breaker_state": ("gauge", "Circuit breaker per deployment: 0 closed, 1 open, 2 half-open"),
    "lunos_in_flight_requests": ("gauge", "Requests being served"),
    "lunos_history_queue_depth": ("gauge", "History rows waiting to be written"),
    "lunos_history_dropped_total": ("counter", "History rows dropped because the queue was full"),
    "lunos_history_written_total": ("counter", "History rows written"),
    "lunos_history_rows_failed_total": ("counter", "History rows the database refused, set aside "
                                        "in $LUNOS_HOME/history-failed.jsonl"),
    "lunos_history_store_up": ("gauge", "1 when the last history write succeeded"),
    "lunos_spend_settle_pending": ("gauge", "Spend settlements waiting for Redis (retried)"),
    "lunos_spend_unsettled_total": ("counter", "Spend settlements Redis never took (logged)"),
    "lunos_otel_spans_dropped_total": ("counter", "OpenTelemetry spans the collector did not "
                                       "take or the full export queue pushed out"),
}


def _labels(pairs: tuple[tuple[str, str], ...]) -> str:
    if not pairs:
        return ""
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)
    return "{" + inner + "}"


def _escape(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Histogram:
    __slots__ = ("buckets", "count", "counts", "sum")

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sum += value
        self.count += 1


class Metrics:
    def __init__(self) -> None:
        self.counters: dict[str, dict[tuple, float]] = defaultdict(lambda: defaultdict(float))
        self.histograms: dict[str, dict[tuple, Histogram]] = defaultdict(dict)

    def inc(self, name: str, labels: tuple = (), value: float = 1.0) -> None:
        self.counters[name][labels] += value

    def observe_value(self, name: str, labels: tuple, value: float) -> None:
        series = self.histograms[name]
        hist = series.get(labels)
        if hist is None:
            hist = series[labels] = Histogram(LATENCY_BUCKETS)
        hist.observe(value)

    def observe(self, record: CallRecord) -> None:
        """Fold one finished request, of any endpoint."""
        provider = record.provider or "none"
        endpoint = ("endpoint", record.endpoint)
        self.inc("lunos_requests_total", (endpoint, ("status", str(record.status)), ("provider", provider),
                                          ("stream", "true" if record.stream else "false")))
        if record.latency_ms is not None:
            self.observe_value("lunos_request_duration_seconds", (endpoint, ("provider", provider)),
                               record.latency_ms / 1000)
        if record.ttft_ms is not None and record.stream:
            self.observe_value("lunos_time_to_first_token_seconds", (endpoint, ("provider", provider)),
                               record.ttft_ms / 1000)
        t = record.tokens
        for kind, value in (("prompt", t.prompt), ("completion", t.completion),
                            ("cached", t.cached), ("reasoning", t.reasoning)):
            if value:
                self.inc("lunos_tokens_total", (("provider", provider), ("kind", kind)), value)
        if record.cost:
            self.inc("lunos_cost_usd_total", (("provider", provider),), record.cost)
        models_tried: list[str] = []
        for attempt in record.attempts:
            outcome = "ok" if attempt.error is None and attempt.status and attempt.status < 400 else "error"
            self.inc("lunos_upstream_attempts_total", (("provider", attempt.provider), ("outcome", outcome)))
            if attempt.model in models_tried:
                self.inc("lunos_retries_total", (("provider", attempt.provider),))
            else:
                models_tried.append(attempt.model)
        if len(models_tried) > 1 and record.status < 400:
            self.inc("lunos_fallbacks_total")
        if record.cache == "hit":
            self.inc("lunos_cache_hits_total", (endpoint,))
            if record.extra.get("cache_saved_usd"):
                self.inc("lunos_cache_saved_usd_total", (), record.extra["cache_saved_usd"])
        elif record.cache == "miss":
            self.inc("lunos_cache_misses_total", (endpoint,))

    def render(self, gauges: dict[str, dict[tuple, float]]) -> str:
        pid = (("pid", str(os.getpid())),)
        lines: list[str] = []
        names = sorted(set(self.counters) | set(self.histograms) | set(gauges))
        for name in names:
            kind, text = HELP.get(name, ("untyped", name))
            lines.append(f"# HELP {name} {text}")
            lines.append(f"# TYPE {name} {kind}")
            for labels, value in sorted(self.counters.get(name, {}).items()):
                lines.append(f"{name}{_labels(pid + labels)} {value:g}")
            for labels, value in sorted(gauges.get(name, {}).items()):
                lines.append(f"{name}{_labels(pid + labels)} {value:g}")
            for labels, hist in sorted(self.histograms.get(name, {}).items()):
                cumulative = 0
                for bound, count in zip((*hist.buckets, float("inf")), hist.counts, strict=True):
                    cumulative += count
                    le = "+Inf" if bound == float("inf") else f"{bound:g}"
                    lines.append(f"{name}_bucket{_labels(pid + labels + (('le', le),))} {cumulative}")
                lines.append(f"{name}_sum{_labels(pid + labels)} {hist.sum:g}")
                lines.append(f"{name}_count{_labels(pid + labels)} {hist.count}")
        return "\n".join(lines) + "\n"
