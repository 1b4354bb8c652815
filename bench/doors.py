"""The Messages and Responses doors, and the media routes, against chat: what each door of
one Lunos configuration costs per request.

    python bench/run.py --scenarios messages [--quick] [--rounds N]
    python bench/run.py --scenarios responses [--quick] [--rounds N]
    python bench/run.py --scenarios media [--quick] [--rounds N]

One `lunos serve` process per door, configured as the `lunos` target (history on, traces off)
with `openai/...` and `anthropic/...` both served by the stand-in:

- chat: `POST /v1/chat/completions`, `openai/gpt-bench` (the `lunos` row), in both groups;
- Messages → Anthropic: `POST /v1/messages`, `anthropic/claude-bench`, passed through;
- Messages → OpenAI: `POST /v1/messages`, `openai/gpt-bench`, translated both ways;
- Responses → OpenAI: `POST /v1/responses`, `openai/gpt-bench`, passed through (`"store":
  false`), and once more with `"store": true` (Lunos saves each response before the end);
- Responses → Anthropic: `POST /v1/responses`, `anthropic/claude-bench`, translated;
- the media routes, all `openai/gpt-bench`, passed through: `POST /v1/completions` (legacy
  text completions, JSON and streams), `POST /v1/images/generations` (one ~100 KB `b64_json`
  image), `POST /v1/audio/speech` (~100 KB of audio relayed) and `POST
  /v1/audio/transcriptions` (a ~100 KB multipart upload, its `model` renamed). Those three
  have no SSE stream: `media-stream-128` loads chat and completions only (`JSON_ONLY`).

JSON at c=64 (`<group>-json-c64`) and streams at 128 (`<group>-stream-128`): in each round
a group's doors are loaded in the same seconds, all on CPU 0, and take turns of `SLICE`
seconds (`history_overhead.take_turns`): each is alone on the core while it runs, and the
host's swings fall on all of them alike. Each round gives every door's CPU per request and its ratio
to chat's in that round; the table gives medians over the rounds.

Streams in turns are not the stream row's regime: a paused gateway's upstream events wait in
its sockets, so it relays them in bursts and its CPU per event is lower than alone. The
per-request work (and a translator's per-event work) is not amortised that way, so the
ratio to chat comes out, if anything, higher than alone. Measured one door after the other
instead (four rounds each way, 2026-12-04), the ratios agreed within the noise, which was
twice as wide as in turns.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import time

from bench import report, run, targets
from bench.history_overhead import take_turns

SLICE = 0.05  # seconds per turn in the JSON rounds
SETTLE = 1.5  # seconds of rest before each round: history rows still being written
MESSAGES_HEADERS = ["anthropic-version: 2023-06-01"]
OPENAI, ANTHROPIC = f"openai/{targets.MODEL}", "anthropic/claude-bench"
CHAT = ("/v1/chat/completions", OPENAI, None)
GROUPS = {  # group: {door: (path, model, fields added to the body)}
    "messages": {
        "chat": CHAT,
        "messages-anthropic": ("/v1/messages", ANTHROPIC, None),
        "messages-openai": ("/v1/messages", OPENAI, None),
    },
    "responses": {  # the load generator sends `"store": false` unless told otherwise
        "chat": CHAT,
        "responses-openai": ("/v1/responses", OPENAI, None),
        "chat-anthropic": ("/v1/chat/completions", ANTHROPIC, None),  # the baseline of:
        "responses-anthropic": ("/v1/responses", ANTHROPIC, None),
        "responses-openai-store": ("/v1/responses", OPENAI, {"store": True}),
    },
    "media": {
        "chat": CHAT,
        "completions": ("/v1/completions", OPENAI, None),
        "images": ("/v1/images/generations", OPENAI, None),
        "speech": ("/v1/audio/speech", OPENAI, None),
        "transcriptions": ("/v1/audio/transcriptions", OPENAI, None),
    },
}
JSON_ONLY = {"images", "speech", "transcriptions"}  # doors without an SSE stream: not in the stream scenarios


def doors_in(group: str, scenario: str) -> list[str]:
    """The doors of `group` that `scenario` loads."""
    stream = scenario.split("-", 1)[1].startswith("stream")
    return [door for door in GROUPS[group] if not (stream and door in JSON_ONLY)]


# A translated door's fairer baseline: chat to the same provider, which pays for the same
# provider translation; the door's own cost is what it adds on top.
SAME_PROVIDER_CHAT = {"responses-anthropic": "chat-anthropic"}


def door_server(gateway: targets.Server, door: tuple) -> targets.Server:
    """What a client of `door` sends to `gateway`: Messages clients authenticate with
    `x-api-key` and send `anthropic-version`, as the anthropic SDK does."""
    path, model, extra = door
    if path == "/v1/chat/completions" and model == gateway.model:
        return gateway
    base = gateway.url.rsplit("/v1/", 1)[0]
    headers = gateway.headers
    if path == "/v1/messages":
        headers = [h.replace("Authorization: Bearer ", "x-api-key: ") for h in headers]
        headers += MESSAGES_HEADERS
    return targets.Server(gateway.name, gateway.proc, base + path, model=model,
                          headers=headers, extra=extra, home=gateway.home)


def measure(args, group: str, standin: targets.Server, gw_cpu: str | None,
            side_cpu: str | None) -> dict:
    """`group`'s doors in `args.door_lists[group]`'s scenarios."""
    doors = GROUPS[group]
    upstream = standin.url.rsplit("/v1/", 1)[0]
    servers: dict[str, targets.Server] = {}
    out: dict = {"rounds": args.rounds, "slice_s": SLICE, "points": {}}
    try:
        for door, spec in doors.items():
            gateway = targets.start_lunos(f"lunos-{door}", gw_cpu, upstream, trace=False)
            servers[door] = door_server(gateway, spec)
        time.sleep(1.0)
        for scenario in args.door_lists[group]:
            loaded = {door: servers[door] for door in doors_in(group, scenario)}
            rounds = out["points"][scenario] = {door: [] for door in loaded}
            for round_no in range(args.rounds):
                time.sleep(SETTLE)
                points = _in_turns(loaded, scenario, args, standin, side_cpu)
                for door, point in points.items():
                    rounds[door].append(point)
                print(_round_line(scenario, round_no + 1, points), flush=True)
                if any(s.proc.poll() is not None for s in servers.values()):
                    raise RuntimeError(f"a gateway exited during {scenario}")
        out["history"] = {door: run.wait_history(servers[door], sum(
            p["totals"].get("sent", 0) for rounds in out["points"].values()
            for p in rounds.get(door, ()))) for door in doors}
    finally:
        for server in servers.values():
            server.stop()
    out["summary"] = summarise(out["points"])
    return out


def _command(server: targets.Server, scenario: str, args, standin: targets.Server) -> list[str]:
    base = scenario.split("-", 1)[1]  # the chat scenario of the same shape
    return run.load_command(server, base, args, standin, server.pid)


def _in_turns(servers, scenario, args, standin, side_cpu) -> dict[str, dict]:
    """All doors loaded in the same seconds, their gateways running in turns."""
    procs = {door: subprocess.Popen(targets.pinned(_command(s, scenario, args, standin),
                                                   side_cpu),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for door, s in servers.items()}
    take_turns([s.pid for s in servers.values()], list(procs.values()), SLICE)
    points = {}
    for door, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=args.warmup + args.duration + args.drain + 60)
        if proc.returncode != 0 or not stdout.strip():
            raise RuntimeError(f"load generator failed for {door}:\n{stderr[-3000:]}")
        points[door] = json.loads(stdout)
    return points


def _cost(point: dict) -> float | None:
    return point["gateway"]["cpu_ms_per_request"]


def _round_line(scenario: str, round_no: int, points: dict[str, dict]) -> str:
    chat = _cost(points["chat"])
    parts = []
    for door, point in points.items():
        cost = _cost(point)
        text = f"{door} {point['rps']:,.0f}/s {cost:.3f} ms" if cost else f"{door} -"
        if cost and chat and door != "chat":
            text += f" ({cost / chat:.2f}x)"
        if report.problems(point) != "0":
            text += f" [{report.problems(point)}]"
        parts.append(text)
    return f"{scenario} round {round_no}: " + ", ".join(parts)


def summarise(points: dict[str, dict[str, list[dict]]]) -> dict:
    """Per scenario and door: medians over the rounds, and the per-round ratios to chat (and
    to chat to the same provider, where the group measures it)."""
    out: dict = {}
    for scenario, doors in points.items():
        chat = [_cost(p) for p in doors["chat"]]
        out[scenario] = {}
        for door, rounds in doors.items():
            costs = [_cost(p) for p in rounds]
            events = [p["gateway"]["cpu_us_per_event"] for p in rounds]
            ratios = _ratios(costs, chat)
            baseline = doors.get(SAME_PROVIDER_CHAT.get(door, ""))
            same = _ratios(costs, [_cost(p) for p in baseline]) if baseline else []
            out[scenario][door] = {
                "rps": statistics.median(p["rps"] for p in rounds),
                "cpu_ms_per_request": _median(costs),
                "cpu_us_per_event": _median(events),
                "ratios": ratios,
                "ratio": _median(ratios) if door != "chat" else None,
                "same_provider_ratio": _median(same),
                "errors": sum(1 for p in rounds if report.problems(p) != "0"),
                "problems": [report.problems(p) for p in rounds],
            }
    return out


def _ratios(costs: list, baseline: list) -> list[float]:
    return [c / b for c, b in zip(costs, baseline, strict=True) if c and b]


def _median(values) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None
