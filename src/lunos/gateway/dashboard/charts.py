"""Fold usage rows (grouped by day or hour, model and app) into chart series and tables.

The chart data goes to the page as JSON and is drawn by static/dashboard.js with uPlot:
one x axis of days or hours (unix seconds, UTC) and, per chart, one series per label.
Counts are drawn as stacked bars, cost as lines; a model has the same colour on every
chart (the script picks it from the label).
"""

from __future__ import annotations

import datetime
from collections import defaultdict

TOP = 6  # series per chart; the rest are summed into "other"
FIELDS = ("requests", "errors", "prompt_tokens", "completion_tokens", "cached_tokens", "cost",
          "cache_hits", "cache_lookups", "cache_saved_usd")


def day_list(first: datetime.date, last: datetime.date) -> list[str]:
    count = (last - first).days + 1
    return [(first + datetime.timedelta(days=i)).isoformat() for i in range(max(count, 0))]


def hour_list(first: datetime.datetime, hours: int) -> list[str]:
    """`hours` hours from `first` (UTC), as the store names them ("2030-01-01T09:00:00Z")."""
    return [(first + datetime.timedelta(hours=i)).strftime("%Y-%m-%dT%H:00:00Z")
            for i in range(hours)]


def _epoch(bucket: str) -> int:
    """A day ("2030-01-01") or an hour ("2030-01-01T09:00:00Z") as unix seconds."""
    if "T" not in bucket:
        bucket += "T00:00:00Z"
    return int(datetime.datetime.fromisoformat(bucket.replace("Z", "+00:00")).timestamp())


def _key(row: dict) -> str:
    return row["hour"] if "hour" in row else row["day"]


def _series(rows: list[dict], days: list[str], group: str, field: str) -> list[dict]:
    index = {day: i for i, day in enumerate(days)}
    per_label: dict[str, list[float]] = defaultdict(lambda: [0] * len(days))
    for row in rows:
        i = index.get(_key(row))
        if i is not None:
            per_label[str(row[group])][i] += row[field]
    ranked = sorted(per_label.items(), key=lambda item: (-sum(item[1]), item[0]))
    series = [{"label": label, "values": values} for label, values in ranked[:TOP]]
    if len(ranked) > TOP:
        other = [sum(values[i] for _, values in ranked[TOP:]) for i in range(len(days))]
        series.append({"label": "other", "values": other})
    return series


def _daily(rows: list[dict], days: list[str], field: str) -> list[float]:
    index = {day: i for i, day in enumerate(days)}
    values = [0] * len(days)
    for row in rows:
        i = index.get(_key(row))
        if i is not None:
            values[i] += row[field]
    return values


def hit_rate(entry: dict) -> float | None:
    """The response cache's hits / lookups; None when no request asked the cache."""
    return entry["cache_hits"] / entry["cache_lookups"] if entry["cache_lookups"] else None


def _table(rows: list[dict], group: str) -> list[dict]:
    totals: dict[str, dict] = {}
    for row in rows:
        entry = totals.setdefault(str(row[group]), {"label": str(row[group]),
                                                    **dict.fromkeys(FIELDS, 0)})
        for field in FIELDS:
            entry[field] += row[field]
    return sorted(totals.values(), key=lambda e: (-e["requests"], e["label"]))


def usage_view(rows: list[dict], days: list[str]) -> dict:
    """Charts (by day, or by hour when `days` are hours: see hour_list), tables (by model,
    by app) and totals for the Usage page."""
    wanted = set(days)
    kept = [r for r in rows if _key(r) in wanted]
    per = "hour" if days and "T" in days[0] else "day"
    charts = [
        {"id": "requests", "title": f"Requests per {per}, by model", "unit": "", "bars": True,
         "series": _series(kept, days, "model", "requests")},
        {"id": "tokens", "title": f"Tokens per {per}", "unit": "", "bars": True,
         "series": [{"label": "prompt", "values": _daily(kept, days, "prompt_tokens")},
                    {"label": "completion", "values": _daily(kept, days, "completion_tokens")}]},
        {"id": "cost", "title": f"Cost per {per} (USD), by model", "unit": "$", "bars": False,
         "series": _series(kept, days, "model", "cost")},
        {"id": "apps", "title": f"Requests per {per}, by app", "unit": "", "bars": True,
         "series": _series(kept, days, "app_id", "requests")},
    ]
    totals = dict.fromkeys(FIELDS, 0)
    for row in kept:
        for field in FIELDS:
            totals[field] += row[field]
    totals["cache_hit_rate"] = hit_rate(totals)
    return {
        "chart_data": {"x": [_epoch(d) for d in days], "per": per, "charts": charts},
        "by_model": _table(kept, "model"),
        "by_app": _table(kept, "app_id"),
        "totals": totals,
    }


def ranked_table(rows: list[dict], field: str, ranks: dict) -> list[dict]:
    """Rows folded by `field` (model, endpoint, key), largest first, each with its error
    rate, cache hit rate and its latency and TTFT percentiles from `ranks`
    ({value: (p50, p95, ttft p50)})."""
    out = []
    for entry in _table(rows, field):
        value = next(r[field] for r in rows if str(r[field]) == entry["label"])
        p50, p95, ttft = ranks.get(value, (None, None, None))
        out.append({**entry, field: value, "error_rate": entry["errors"] / entry["requests"],
                    "cache_hit_rate": hit_rate(entry),
                    "latency_p50_ms": p50, "latency_p95_ms": p95, "ttft_p50_ms": ttft})
    return out
