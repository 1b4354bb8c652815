"""Tables from a benchmark run's results (pure: a results dict in, Markdown out)."""

from __future__ import annotations

JSON_SCENARIOS = {"json-c1": 1, "json-c16": 16, "json-c64": 64, "json-c256": 256}
STREAM_SCENARIOS = {"stream-16": 16, "stream-128": 128, "stream-512": 512}
SCENARIOS = {**JSON_SCENARIOS, **STREAM_SCENARIOS}
# The Messages and Responses doors and the media routes against chat, in one gateway
# configuration (bench/doors.py).
MESSAGES_SCENARIOS = {"messages-json-c64": 64, "messages-stream-128": 128}
RESPONSES_SCENARIOS = {"responses-json-c64": 64, "responses-stream-128": 128}
MEDIA_SCENARIOS = {"media-json-c64": 64, "media-stream-128": 128}
DOOR_SCENARIOS = {"messages": MESSAGES_SCENARIOS, "responses": RESPONSES_SCENARIOS,
                  "media": MEDIA_SCENARIOS}
DOOR_TITLES = {"messages": "Messages", "responses": "Responses", "media": "media"}
DOOR_NAMES = {
    "chat": "chat (`/v1/chat/completions`)",
    "messages-anthropic": "Messages → Anthropic (pass-through)",
    "messages-openai": "Messages → OpenAI (translated)",
    "responses-openai": "Responses → OpenAI (pass-through)",
    "chat-anthropic": "chat → Anthropic (translated)",
    "responses-anthropic": "Responses → Anthropic (translated)",
    "responses-openai-store": "Responses → OpenAI, `store: true`",
    "completions": "completions → OpenAI (`/v1/completions`)",
    "images": "images → OpenAI (`/v1/images/generations`, ~100 KB)",
    "speech": "speech → OpenAI (`/v1/audio/speech`, ~100 KB)",
    "transcriptions": "transcriptions → OpenAI (`/v1/audio/transcriptions`, ~100 KB upload)",
}
MESSAGES_LIMIT = 1.25  # a door's CPU per request, at most this times chat's
BULK_DOORS = {"images", "speech", "transcriptions"}  # ~100 KB bodies: measured, no target
TARGET_NAMES = {
    "direct": "direct (stand-in)",
    "pipe": "byte pipe (floor)",
    "lunos": "Lunos",
    "lunos-trace": "Lunos, traces on",
    "litellm": "LiteLLM proxy",
    "portkey": "Portkey",
}
NOTES_MARK = "<!-- notes: everything below this line is kept when the file is regenerated -->"


def _f(value, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value >= 1000:
        return f"{value:,.0f}"
    if isinstance(value, float) and value >= 100:
        return f"{value:.0f}"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _pct(stats: dict | None, key: str):
    return None if not stats else stats.get(key)


def _added(value, base):
    if value is None or base is None:
        return None
    return value - base


def _signed(value) -> str:
    return "-" if value is None else f"{value:+.2f}"


def problems(point: dict) -> str:
    """A short note of what went wrong in a point, or '0'."""
    t = point.get("totals", {})
    bad = {k: t[k] for k in ("http_error", "incomplete", "connection_error", "connect_error",
                             "unfinished", "fail_unexpected", "disconnect_not_cut")
           if t.get(k)}
    return ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in bad.items()) or "0"


def _rows(results: dict, scenarios: dict[str, int], kind: str):
    """(target, concurrency, point, the direct point's `kind` figures) for every measured
    point of these scenarios, target by target."""
    for name, target in results["targets"].items():
        for scenario, conc in scenarios.items():
            point = target.get("points", {}).get(scenario)
            if point is not None:
                direct = _point(results, "direct", scenario) or {}
                yield name, conc, point, direct.get("kinds", {}).get(kind, {})


def json_table(results: dict) -> list[str]:
    lines = ["| target | conc. | req/s | p50 ms | p90 ms | p99 ms | added p50 | added p99 "
             "| CPU ms/req | CPU % | RSS MB | errors |",
             "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|"]
    for name, conc, point, direct in _rows(results, JSON_SCENARIOS, "json"):
        lat = point["kinds"]["json"]["latency_ms"]
        base = direct.get("latency_ms")
        gw = point["gateway"]
        added = ("-", "-") if name == "direct" else (
            _signed(_added(_pct(lat, "p50"), _pct(base, "p50"))),
            _signed(_added(_pct(lat, "p99"), _pct(base, "p99"))))
        lines.append(
            f"| {TARGET_NAMES.get(name, name)} | {conc} | {_f(point['rps'], 0)} "
            f"| {_f(_pct(lat, 'p50'))} | {_f(_pct(lat, 'p90'))} | {_f(_pct(lat, 'p99'))} "
            f"| {added[0]} | {added[1]} "
            f"| {_f(gw['cpu_ms_per_request'], 3)} | {_f(gw['cpu_pct'], 0)} "
            f"| {_f(gw['rss_start_mb'], 0)}→{_f(gw['rss_end_mb'], 0)} | {problems(point)} |")
    return lines


def stream_table(results: dict) -> list[str]:
    lines = ["| target | streams | streams/s | events/s | TTFB p50 ms | TTFB p99 ms "
             "| added TTFB p50 | relay p50 ms | relay p99 ms | added relay p50 "
             "| CPU µs/event | CPU % | RSS MB | complete | errors |",
             "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|"]
    for name, conc, point, base in _rows(results, STREAM_SCENARIOS, "stream"):
        s = point["kinds"]["stream"]
        gw = point["gateway"]
        t = point["totals"]
        started = sum(t.get(k, 0) for k in ("ok", "incomplete", "http_error",
                                            "connection_error", "unfinished"))
        if name == "direct":
            added = ("-", "-")
        else:
            added = (_signed(_added(_pct(s["ttfb_ms"], "p50"), _pct(base.get("ttfb_ms"), "p50"))),
                     _signed(_added(_pct(s["relay_ms"], "p50"),
                                    _pct(base.get("relay_ms"), "p50"))))
        lines.append(
            f"| {TARGET_NAMES.get(name, name)} | {conc} | {_f(s['rps'], 1)} "
            f"| {_f(point['events_per_s'], 0)} "
            f"| {_f(_pct(s['ttfb_ms'], 'p50'))} | {_f(_pct(s['ttfb_ms'], 'p99'))} | {added[0]} "
            f"| {_f(_pct(s['relay_ms'], 'p50'))} | {_f(_pct(s['relay_ms'], 'p99'))} | {added[1]} "
            f"| {_f(gw['cpu_us_per_event'], 1)} | {_f(gw['cpu_pct'], 0)} "
            f"| {_f(gw['rss_start_mb'], 0)}→{_f(gw['rss_end_mb'], 0)} "
            f"| {t.get('ok', 0)}/{started} | {problems(point)} |")
    return lines


def memory_table(results: dict) -> list[str]:
    lines = ["| target | RSS idle MB | RSS after load MB | peak MB | history rows / requests |",
             "|---|--:|--:|--:|---|"]
    for name, target in results["targets"].items():
        points = target.get("points", {}).values()
        seen = [p["gateway"]["rss_end_mb"] for p in points] + [target.get("rss_final_mb")]
        peak = max((v for v in seen if v is not None), default=None)
        hist = target.get("history")
        rows = f"{hist['rows']} / {hist['sent']}" if hist else "-"
        lines.append(f"| {TARGET_NAMES.get(name, name)} | {_f(target.get('rss_idle_mb'), 0)} "
                     f"| {_f(target.get('rss_final_mb'), 0)} | {_f(peak, 0)} | {rows} |")
    return lines


def _point(results: dict, target: str, scenario: str) -> dict | None:
    return results["targets"].get(target, {}).get("points", {}).get(scenario)


def _events(results: dict, name: str) -> list[tuple[int, float]]:
    """(streams, CPU µs per relayed event) of each stream point a target has."""
    points = [(n, _point(results, name, s)) for s, n in STREAM_SCENARIOS.items()]
    return [(n, pt["gateway"]["cpu_us_per_event"]) for n, pt in points
            if pt and pt["gateway"]["cpu_us_per_event"]]


def target_checks(results: dict, name: str = "lunos") -> list[str]:
    """The issue's targets, checked on this run's numbers (one run; judge on the median of
    several)."""
    rows: list[tuple[str, str, bool | None]] = []

    def add(what: str, value, limit, ok) -> None:
        rows.append((what, "-" if value is None else value, None if value is None else ok))

    p, d = _point(results, name, "json-c1"), _point(results, "direct", "json-c1")
    if p and d:
        lat, base = p["kinds"]["json"]["latency_ms"], d["kinds"]["json"]["latency_ms"]
        a50, a99 = lat["p50"] - base["p50"], lat["p99"] - base["p99"]
        add("added latency p50 at c=1 <= 0.5 ms", f"{a50:.2f} ms", 0.5, a50 <= 0.5)
        add("added latency p99 at c=1 <= 2 ms", f"{a99:.2f} ms", 2, a99 <= 2)
    sat, one = _point(results, name, "json-c64"), _point(results, name, "json-c1")
    if sat and sat["gateway"]["cpu_ms_per_request"]:
        value = sat["gateway"]["cpu_ms_per_request"]
        text = f"{value:.3f} ms"
        if one and one["gateway"]["cpu_ms_per_request"]:
            text += f" (c=1: {one['gateway']['cpu_ms_per_request']:.3f})"
        add("CPU <= 0.3 ms per request at saturation (c=64)", text, 0.3, value <= 0.3)
    if sat:
        add(">= 3,000 req/s at c=64", f"{sat['rps']:,.0f}", 3000, sat["rps"] >= 3000)
    events = _events(results, name)
    if events:
        worst = max(v for _, v in events)
        add("CPU <= 20 µs per relayed event (every stream point)",
            ", ".join(f"{n}: {v:.1f} µs" for n, v in events), 20, worst <= 20)
        floor = _events(results, "pipe")
        if floor:
            add("for comparison: the byte pipe (floor), CPU per relayed event",
                ", ".join(f"{n}: {v:.1f} µs" for n, v in floor), None, None)
    p, d = _point(results, name, "stream-16"), _point(results, "direct", "stream-16")
    if p and d and p["kinds"]["stream"]["ttfb_ms"] and d["kinds"]["stream"]["ttfb_ms"]:
        a = p["kinds"]["stream"]["ttfb_ms"]["p50"] - d["kinds"]["stream"]["ttfb_ms"]["p50"]
        add("added TTFB p50 at 16 streams <= 2 ms", f"{a:.2f} ms", 2, a <= 2)
    p = _point(results, name, "stream-512")
    if p:
        t = p["totals"]
        bad = sum(t.get(k, 0) for k in ("incomplete", "http_error", "connection_error",
                                        "unfinished"))
        add("512 streams: none dropped", f"{t.get('ok', 0)} complete, {bad} not", 0, bad == 0)
    hist = results["targets"].get(name, {}).get("history")
    if hist:
        add("a history row for every request", f"{hist['rows']} / {hist['sent']}", 0,
            hist["rows"] >= hist["sent"])
    final = results["targets"].get(name, {}).get("rss_final_mb")
    if final is not None:
        add("RSS <= 150 MB after the load", f"{final:.0f} MB", 150, final <= 150)
    ours = _point(results, name, "json-c64")
    for other, factor in (("litellm", 50), ("portkey", 5)):
        theirs = _point(results, other, "json-c64")
        if ours and theirs and theirs["rps"]:
            ratio = ours["rps"] / theirs["rps"]
            add(f"c=64 throughput >= {factor}x {TARGET_NAMES[other]}", f"{ratio:.1f}x", factor,
                ratio >= factor)
    lines = ["| target | this run | met |", "|---|--:|:-:|"]
    for what, value, ok in rows:
        lines.append(f"| {what} | {value} | {'-' if ok is None else ('yes' if ok else 'NO')} |")
    return lines


def door_table(door_run: dict) -> list[str]:
    """Each door's medians over the rounds, and its CPU per request against chat's."""
    same = any(s.get("same_provider_ratio") for doors in door_run["summary"].values()
               for s in doors.values())
    lines = ["| door | scenario | req/s | CPU ms/req | CPU µs/event | CPU/req vs chat "
             "(median; rounds) | ≤ 1.25x" + (" (same provider where measured)" if same else "")
             + " | " + ("vs chat, same provider | " if same else "")
             + "errors |", "|---|---|--:|--:|--:|---|:-:|" + ("--:|" if same else "") + "---|"]
    for scenario, doors in door_run["summary"].items():
        for door, s in doors.items():
            ratio = "-"
            met = "-"
            if s["ratio"] is not None:
                ratio = (f"{s['ratio']:.2f} ({', '.join(f'{r:.2f}' for r in s['ratios'])})")
                # A translated door is judged against chat to its own provider where the group
                # measures that: the provider's translation is chat's cost as much as the door's.
                judged = s.get("same_provider_ratio") or s["ratio"]
                met = "yes" if judged <= MESSAGES_LIMIT and not s["errors"] else "NO"
                met = "-" if door in BULK_DOORS else met
            errors = "; ".join(p for p in s["problems"] if p != "0") or "0"
            versus = f"{_f(s.get('same_provider_ratio'))} | " if same else ""
            lines.append(
                f"| {DOOR_NAMES.get(door, door)} | {scenario.split('-', 1)[1]} "
                f"| {_f(s['rps'], 0)} | {_f(s['cpu_ms_per_request'], 3)} "
                f"| {_f(s['cpu_us_per_event'], 1)} | {ratio} | {met} | {versus}{errors} |")
    return lines


def door_section(door_run: dict, group: str = "messages") -> list[str]:
    rounds, slice_ms = door_run["rounds"], door_run["slice_s"] * 1000
    doors = next(iter(door_run["summary"].values()), {})
    count = {3: ("three", "a third"), 4: ("four", "a quarter"), 5: ("five", "a fifth")}.get(
        len(doors), (str(len(doors)), f"1/{len(doors)}"))
    extra = (" `store: true` is the Responses → OpenAI door with Lunos saving each response "
             "before the client sees its end (the other Responses rows send `store: false`). "
             "Responses → Anthropic is judged against chat → Anthropic, which pays for the "
             "same provider translation; its ratio to chat → OpenAI is shown beside it."
             if "responses-openai-store" in doors else "")
    if "images" in doors:
        extra += (" The media routes are passed through to the stand-in's OpenAI routes; images "
                  "(one ~100 KB `b64_json` image), speech (~100 KB of audio) and transcriptions "
                  "(a ~100 KB upload) carry a hundred times chat's bodies, so their ratio is "
                  "mostly the cost of those bytes, and the target is not theirs. They have no SSE stream: the stream scenario "
                  "loads chat and completions only, two processes taking turns (half of the core "
                  "each).")
    return [
        f"`{door_run['command']}` ({door_run['date']}): {count[0]} `lunos serve` processes "
        "configured as the Lunos row, one per door, all on CPU 0, loaded in the same "
        f"seconds and taking turns of {slice_ms:g} ms on the core, so req/s is each one's "
        f"rate with {count[1]} of the core, and streams are relayed in bursts (less CPU per "
        f"event than in the stream table). {rounds} round{'s' * (rounds != 1)}; CPU per "
        "request is the median over them, the ratio to chat's is taken within each round. "
        f"The target: a {DOOR_TITLES[group]} door spends at most {MESSAGES_LIMIT:g}x chat's "
        f"CPU per request.{extra}",
        "",
        *door_table(door_run),
        "",
        "History rows / requests sent: " + ", ".join(
            f"{DOOR_NAMES.get(door, door).split(' (')[0]} {h['rows']} / {h['sent']}"
            for door, h in (door_run.get("history") or {}).items()) + ".",
    ]


def soak_table(soak: dict) -> list[str]:
    r = soak["result"]
    t = r["totals"]
    lines = [
        f"`{soak.get('command', 'python bench/run.py --soak')}`: {soak['seconds']:.0f} s "
        f"against Lunos (traces on) at concurrency {r['concurrency']}, mix `{soak['mix']}`; "
        f"RSS sampled every {soak['every']:.0f} s.",
        "",
        "| RSS after warm-up MB | RSS at end MB | max MB | slope after warm-up MB/min "
        "| requests | ok | upstream errors answered | client disconnects | other errors "
        "| history rows / requests |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
        f"| {_f(soak['rss_after_warmup_mb'], 1)} | {_f(soak['rss_end_mb'], 1)} "
        f"| {_f(soak['rss_max_mb'], 1)} | {soak['slope_mb_per_min']:+.2f} "
        f"| {t.get('sent', 0)} | {t.get('ok', 0)} | {t.get('failed_as_expected', 0)} "
        f"| {t.get('disconnected', 0)} | {problems(r)} "
        f"| {soak['history']['rows'] if soak.get('history') else '-'} / "
        f"{soak['history']['sent'] if soak.get('history') else '-'} |",
    ]
    return lines


def slope_per_minute(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) samples, in MB per minute."""
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mx = sum(t for t, _ in samples) / n
    my = sum(v for _, v in samples) / n
    var = sum((t - mx) ** 2 for t, _ in samples)
    if var == 0:
        return 0.0
    return 60 * sum((t - mx) * (v - my) for t, v in samples) / var


def capacity_lines(results: dict) -> list[str]:
    cap = results.get("standin_capacity")
    if not cap:
        return []
    return [f"- Stand-in alone (its own CPU, the load generator on the other): "
            f"{cap['rps']:,.0f} JSON req/s at concurrency {cap['concurrency']} "
            f"(stand-in CPU {cap['standin_cpu_pct']:.0f}%, load generator CPU "
            f"{cap['load_cpu_pct']:.0f}%)."]


def markdown(results: dict, notes: str = "") -> str:
    meta = results["meta"]
    v = meta["versions"]
    out = [
        "# Benchmarks",
        "",
        "What a gateway adds on top of a direct call to the model provider: latency, CPU per "
        "request and per streamed event, memory. Lunos, the LiteLLM proxy and the Portkey "
        "gateway are measured in the same run, on the same machine, against the same fast "
        "upstream stand-in, by the same load generator. The stand-in and the load generator "
        "live in `bench/` (see `bench/README.md` for the method).",
        "",
        "Rerun:",
        "",
        "```",
        meta["command"],
        "```",
        "",
        f"- Date: {meta['date']}",
        f"- Machine: {meta['machine']['cpu']} x {meta['machine']['cores']} cores, "
        f"{meta['machine']['memory_gb']:.0f} GB, Linux {meta['machine']['kernel']}",
        f"- Versions: Python {v.get('python')}, uvicorn {v.get('uvicorn')}, uvloop "
        f"{v.get('uvloop')}, Lunos {v.get('lunos')}, LiteLLM {v.get('litellm') or '-'}, "
        f"Portkey gateway {v.get('portkey') or '-'} (@hono/node-server {v.get('hono_node') or '-'}), "
        f"Node {v.get('node') or '-'}",
        f"- CPU placement: {meta['placement']}",
        f"- Each point: {meta['warmup']:g} s warm-up (not counted), then {meta['duration']:g} s "
        f"measured; closed loop, keep-alive connections, one per client. Streams: "
        f"{meta['chunks']} content chunks, one every {meta['chunk_delay_ms']:g} ms, plus role, "
        "finish and usage chunks.",
        "- Every gateway runs one worker process; the machine is shared, so numbers move "
        "about ±15% between runs: compare within one run.",
        "",
        "## Non-streaming requests",
        "",
        "Latency is send → last byte at the client. *Added* is the gateway's latency minus the "
        "direct latency at the same concurrency. CPU is the gateway process's (and its "
        "children's) user+system time during the measured phase, divided by the answers; "
        "RSS is read at the start and end of the phase.",
        "",
        *json_table(results),
        "",
        "## Streaming",
        "",
        "TTFB is send → first SSE event. *Relay* is, for each content chunk, its arrival at the "
        "client minus the moment the stand-in wrote it (the chunk carries that time); through "
        "a gateway it is the per-chunk delay the gateway adds. CPU per event divides the "
        "gateway's CPU by the SSE events the clients received. *Complete* counts streams that "
        "ended with `[DONE]` and every content chunk.",
        "",
        *stream_table(results),
        "",
        "## Memory and history",
        "",
        *memory_table(results),
        "",
    ]
    if results["targets"].get("lunos"):
        out += ["## Lunos against its targets", "", *target_checks(results), ""]
    for group, title in DOOR_TITLES.items():
        if results.get(group):
            out += [f"## {title.capitalize()} door", "", *door_section(results[group], group), ""]
    if results.get("soak"):
        out += ["## Soak", "", *soak_table(results["soak"]), ""]
    cap = capacity_lines(results)
    if cap:
        out += ["## The harness itself", "", *cap,
                "- The direct rows above are the ceiling of the stand-in and the load generator "
                "sharing one CPU, as they do in every gateway row.", ""]
    out += [NOTES_MARK, notes.strip("\n"), ""]
    return "\n".join(out)


def kept_notes(existing: str) -> str:
    """The hand-written part of an existing docs page (below the notes marker)."""
    _, mark, tail = existing.partition(NOTES_MARK)
    return tail if mark else ""
