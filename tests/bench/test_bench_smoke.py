"""The benchmark harness works: the stand-in speaks OpenAI's (chat, Responses, legacy
completions, images, speech) and Anthropic's JSON and SSE,
the load generator counts requests, streams and latencies right against it, and the report
renders.

No performance is asserted here; the gateways themselves are not started.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from bench.load import percentiles
from bench.procstat import Watch, _stat, rss_mb, tree

from bench import report

ROOT = Path(__file__).resolve().parents[2]
CHUNKS = 8
DELAY_MS = 2.0


@pytest.fixture(scope="module")
def standin():
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "standin.py"), "--port", "0", "--chunks",
         str(CHUNKS), "--chunk-delay-ms", str(DELAY_MS)],
        stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    match = re.search(r"listening on (\d+)", line)
    assert match, f"stand-in did not start: {line!r}"
    base = f"http://127.0.0.1:{match.group(1)}"
    yield proc, base
    proc.terminate()
    proc.wait(10)


def chat(base: str, **body) -> httpx.Response:
    body = {"model": "gpt-bench", "messages": [{"role": "user", "content": "hi"}], **body}
    return httpx.post(base + "/v1/chat/completions", json=body, timeout=10)


def events_of(text: str) -> list[str]:
    return [block[len("data: "):] for block in text.split("\n\n") if block.startswith("data: ")]


def stats(base: str) -> dict:
    return httpx.get(base + "/stats", timeout=5).json()


def load(base: str, *args: str, path: str = "/v1/chat/completions") -> dict:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "load.py"), "--url", base + path, *args],
        capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_standin_json_completion(standin):
    _, base = standin
    r = chat(base)
    assert r.status_code == 200
    assert 800 <= len(r.content) <= 1600  # about a kilobyte, as a short real answer
    body = r.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "gpt-bench"
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert body["choices"][0]["message"]["content"]
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["total_tokens"] == (body["usage"]["prompt_tokens"]
                                             + body["usage"]["completion_tokens"])
    assert chat(base).json()["id"] != body["id"]


def test_standin_stream_with_usage(standin):
    _, base = standin
    r = chat(base, stream=True, stream_options={"include_usage": True})
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/event-stream"
    events = events_of(r.text)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    contents = [c["choices"][0]["delta"]["content"] for c in chunks[1:1 + CHUNKS]]
    assert all(re.fullmatch(r" t\d+", c) for c in contents)
    stamps = [int(c[2:]) for c in contents]
    assert stamps == sorted(stamps)
    # Paced: consecutive chunks leave the stand-in at least one tick apart (minus slack).
    assert stamps[-1] - stamps[0] >= (CHUNKS - 1) * DELAY_MS * 1e6 * 0.5
    assert chunks[1 + CHUNKS]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] > 0
    assert len(chunks) == CHUNKS + 3


def test_standin_stream_without_usage_and_failure(standin):
    _, base = standin
    events = events_of(chat(base, stream=True).text)
    assert events[-1] == "[DONE]"
    assert all("usage" not in json.loads(e) for e in events[:-1])
    assert len(events) == CHUNKS + 3  # role, contents, finish, [DONE]
    r = chat(base, model="gpt-bench-fail")
    assert r.status_code == 500
    assert r.json()["error"]["type"] == "server_error"
    assert httpx.get(base + "/health", timeout=5).status_code == 200


def named_events(text: str) -> list[tuple[str, dict]]:
    out = []
    for block in text.strip().split("\n\n"):
        name, data = block.split("\n")
        assert name.startswith("event: ") and data.startswith("data: ")
        out.append((name[len("event: "):], json.loads(data[len("data: "):])))
    return out


def test_standin_speaks_messages(standin):
    _, base = standin
    body = {"model": "claude-bench", "max_tokens": 16,
            "messages": [{"role": "user", "content": "hi"}]}
    r = httpx.post(base + "/v1/messages", json=body, timeout=10)
    assert r.status_code == 200
    assert 800 <= len(r.content) <= 1600
    message = r.json()
    assert (message["type"], message["role"], message["model"]) == ("message", "assistant",
                                                                     "claude-bench")
    assert message["content"][0]["type"] == "text" and message["content"][0]["text"]
    assert message["stop_reason"] == "end_turn"
    assert message["usage"]["input_tokens"] > 0 and message["usage"]["output_tokens"] > 0
    assert message["id"].startswith("msg_")

    r = httpx.post(base + "/v1/messages", json={**body, "stream": True}, timeout=10)
    assert r.headers["content-type"] == "text/event-stream"
    events = named_events(r.text)
    names = [name for name, _ in events]
    assert names == ["message_start", "content_block_start", "ping",
                     *["content_block_delta"] * CHUNKS,
                     "content_block_stop", "message_delta", "message_stop"]
    assert all(name == data["type"] for name, data in events)
    assert events[0][1]["message"]["model"] == "claude-bench"
    assert events[0][1]["message"]["id"] != message["id"]
    texts = [data["delta"]["text"] for name, data in events if name == "content_block_delta"]
    assert all(re.fullmatch(r" t\d+", t) for t in texts)
    stamps = [int(t[2:]) for t in texts]
    assert stamps == sorted(stamps)
    assert stamps[-1] - stamps[0] >= (CHUNKS - 1) * DELAY_MS * 1e6 * 0.5  # paced as chat
    assert events[-2][1]["delta"]["stop_reason"] == "end_turn"
    assert events[-2][1]["usage"]["output_tokens"] > 0


def test_load_counts_messages_requests_and_streams(standin):
    _, base = standin
    before = stats(base)
    j = load(base, "--concurrency", "2", "--requests", "40", path="/v1/messages")
    s = load(base, "--mix", "stream=1", "--concurrency", "3", "--requests", "9",
             "--expect-content", str(CHUNKS), path="/v1/messages")
    after = stats(base)
    assert j["totals"]["ok"] == j["totals"]["sent"] >= 40
    assert s["kinds"]["stream"]["content_events"] == {str(CHUNKS): 9}
    # Complete: message_stop seen, every text delta counted, nothing taken for an error.
    assert s["totals"]["ok"] == s["totals"]["sent"]
    assert s["totals"].get("incomplete", 0) == 0
    assert after["streams"] - before["streams"] == s["totals"]["sent"]
    assert after["requests"] - before["requests"] == j["totals"]["sent"] + s["totals"]["sent"]
    # message_start, content_block_start, ping, the deltas, block stop, delta, stop.
    assert s["events"] >= 9 * (CHUNKS + 6)
    assert s["kinds"]["stream"]["relay_ms"]["n"] >= 9 * CHUNKS


def test_standin_speaks_responses(standin):
    _, base = standin
    body = {"model": "gpt-bench", "input": "hi", "store": False}
    r = httpx.post(base + "/v1/responses", json=body, timeout=10)
    assert r.status_code == 200
    response = r.json()
    assert (response["object"], response["status"], response["model"]) == ("response", "completed",
                                                                            "gpt-bench")
    assert response["id"].startswith("resp_")
    [item] = response["output"]
    assert (item["type"], item["role"]) == ("message", "assistant")
    assert item["content"][0]["type"] == "output_text" and item["content"][0]["text"]
    assert response["usage"]["input_tokens"] > 0 and response["usage"]["output_tokens"] > 0

    r = httpx.post(base + "/v1/responses", json={**body, "stream": True}, timeout=10)
    assert r.headers["content-type"] == "text/event-stream"
    events = named_events(r.text)
    names = [name for name, _ in events]
    assert names == ["response.created", "response.in_progress", "response.output_item.added",
                     "response.content_part.added", *["response.output_text.delta"] * CHUNKS,
                     "response.output_text.done", "response.content_part.done",
                     "response.output_item.done", "response.completed"]
    assert all(name == data["type"] for name, data in events)
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    assert events[0][1]["response"]["id"] == events[-1][1]["response"]["id"] != response["id"]
    assert events[0][1]["response"]["status"] == "in_progress"
    deltas = [data["delta"] for name, data in events if name == "response.output_text.delta"]
    assert all(re.fullmatch(r" t\d+", d) for d in deltas)
    stamps = [int(d[2:]) for d in deltas]
    assert stamps == sorted(stamps)
    assert stamps[-1] - stamps[0] >= (CHUNKS - 1) * DELAY_MS * 1e6 * 0.5  # paced as chat
    final = events[-1][1]["response"]
    assert final["status"] == "completed" and final["usage"]["output_tokens"] > 0


def test_load_counts_responses_requests_and_streams(standin):
    _, base = standin
    before = stats(base)
    j = load(base, "--concurrency", "2", "--requests", "40", path="/v1/responses")
    s = load(base, "--mix", "stream=1", "--concurrency", "3", "--requests", "9",
             "--expect-content", str(CHUNKS), path="/v1/responses")
    after = stats(base)
    assert j["totals"]["ok"] == j["totals"]["sent"] >= 40
    # Only the text deltas are content: the done events' whole text is not counted again.
    assert s["kinds"]["stream"]["content_events"] == {str(CHUNKS): 9}
    # Complete: response.completed seen, nothing taken for an error (`"error": null` is not).
    assert s["totals"]["ok"] == s["totals"]["sent"]
    assert s["totals"].get("incomplete", 0) == 0
    assert after["streams"] - before["streams"] == s["totals"]["sent"]
    assert after["requests"] - before["requests"] == j["totals"]["sent"] + s["totals"]["sent"]
    assert s["events"] >= 9 * (CHUNKS + 8)  # four opening events, the deltas, four closing
    assert s["kinds"]["stream"]["relay_ms"]["n"] >= 9 * CHUNKS


def test_load_sends_responses_bodies():
    from bench.load import build_plan, wire_for

    url = "http://127.0.0.1:1/v1/responses"
    assert wire_for(url).end == b"event: response.completed"
    args = type("Args", (), dict(url=url, model="openai/gpt-bench", header=["Authorization: Bearer k"],
                                 extra='{"store": true}', fail_model=None, mix="stream=1", concurrency=1,
                                 warmup=0, duration=1, warmup_requests=None, requests=None, drain=1,
                                 expect_content=None, cut_after=5, stagger=0))()
    plan = build_plan(args)
    head, _, body = plan.requests["stream"].partition(b"\r\n\r\n")
    assert head.startswith(b"POST /v1/responses HTTP/1.1") and b"Authorization: Bearer k" in head
    sent = json.loads(body)
    assert (sent["model"], sent["stream"], sent["store"]) == ("openai/gpt-bench", True, True)
    assert isinstance(sent["input"], str) and "messages" not in sent
    assert json.loads(plan.requests["json"].partition(b"\r\n\r\n")[2])["stream"] is False


def test_standin_speaks_media_routes(standin):
    _, base = standin
    body = {"model": "gpt-bench", "prompt": "hi", "max_tokens": 16}
    r = httpx.post(base + "/v1/completions", json=body, timeout=10)
    assert r.status_code == 200
    completion = r.json()
    assert (completion["object"], completion["model"]) == ("text_completion", "gpt-bench")
    assert completion["id"].startswith("cmpl-")
    assert completion["choices"][0]["text"] and completion["choices"][0]["finish_reason"] == "stop"
    assert completion["usage"]["total_tokens"] == (completion["usage"]["prompt_tokens"]
                                                   + completion["usage"]["completion_tokens"])

    r = httpx.post(base + "/v1/completions", json={**body, "stream": True,
                                                   "stream_options": {"include_usage": True}},
                   timeout=10)
    assert r.headers["content-type"] == "text/event-stream"
    events = events_of(r.text)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert {c["object"] for c in chunks} == {"text_completion"} and len(chunks) == CHUNKS + 2
    texts = [c["choices"][0]["text"] for c in chunks[:CHUNKS]]  # no role chunk first
    assert all(re.fullmatch(r" t\d+", t) for t in texts)
    stamps = [int(t[2:]) for t in texts]
    assert stamps == sorted(stamps) and stamps[-1] - stamps[0] >= (CHUNKS - 1) * DELAY_MS * 1e6 * 0.5
    assert chunks[CHUNKS]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0

    r = httpx.post(base + "/v1/images/generations", json={"model": "gpt-image-1", "prompt": "a cat"},
                   timeout=10)
    assert r.status_code == 200
    images = r.json()
    [image] = images["data"]
    assert isinstance(images["created"], int) and images["usage"]["output_tokens"] > 0
    png = base64.b64decode(image["b64_json"])
    assert png.startswith(b"\x89PNG") and 70_000 <= len(png) <= 80_000

    r = httpx.post(base + "/v1/audio/speech", json={"model": "tts-1", "input": "hi", "voice": "alloy"},
                   timeout=10)
    assert r.status_code == 200 and r.headers["content-type"] == "audio/mpeg"
    assert 90_000 <= len(r.content) <= 110_000
    # Each route's required fields, as OpenAI answers without them.
    r = httpx.post(base + "/v1/audio/speech", json={"model": "tts-1", "input": "hi"}, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["param"] == "voice"
    r = httpx.post(base + "/v1/images/generations", json={"model": "gpt-image-1"}, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["param"] == "prompt"

    # Transcriptions: a multipart upload (as the openai SDK and httpx build it), JSON back.
    r = httpx.post(base + "/v1/audio/transcriptions", data={"model": "gpt-4o-transcribe"},
                   files={"file": ("a.mp3", b"ID3" + bytes(1000), "audio/mpeg")}, timeout=10)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.json()["text"] and r.json()["usage"]["type"] == "tokens"
    r = httpx.post(base + "/v1/audio/transcriptions", data={"model": "gpt-4o-transcribe"}, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["param"] == "file"


@pytest.mark.parametrize("path", ["/v1/completions", "/v1/images/generations", "/v1/audio/speech",
                                  "/v1/audio/transcriptions"])
def test_load_counts_media_requests(standin, path):
    _, base = standin
    before = stats(base)
    j = load(base, "--concurrency", "2", "--requests", "20", path=path)
    after = stats(base)
    assert j["totals"]["ok"] == j["totals"]["sent"] >= 20  # every body accepted (a 400 is not ok)
    assert after["requests"] - before["requests"] == j["totals"]["sent"]
    if path != "/v1/completions":
        return
    s = load(base, "--mix", "stream=1", "--concurrency", "3", "--requests", "9",
             "--expect-content", str(CHUNKS), path=path)
    # Complete: [DONE] seen and every text chunk counted.
    assert s["kinds"]["stream"]["content_events"] == {str(CHUNKS): 9}
    assert s["totals"]["ok"] == s["totals"]["sent"] and s["totals"].get("incomplete", 0) == 0
    assert s["events"] >= 9 * (CHUNKS + 2)  # the texts, the finish and the usage chunk
    assert s["kinds"]["stream"]["relay_ms"]["n"] >= 9 * CHUNKS


def test_door_scenarios_parse():
    from bench.run import parse_args

    args = parse_args(["--scenarios", "responses", "--quick"])
    assert args.door_lists == {"messages": [], "media": [],
                               "responses": ["responses-json-c64", "responses-stream-128"]}
    assert args.scenario_list == [] and args.targets == []
    args = parse_args(["--scenarios", "messages-json-c64,responses-stream-128"])
    assert args.door_lists == {"messages": ["messages-json-c64"],
                               "responses": ["responses-stream-128"], "media": []}
    args = parse_args(["--scenarios", "media"])
    assert args.door_lists["media"] == ["media-json-c64", "media-stream-128"]


def test_load_counts_json_requests(standin):
    _, base = standin
    before = stats(base)
    result = load(base, "--concurrency", "4", "--warmup-requests", "20", "--requests", "300")
    after = stats(base)
    assert result["answered"] == 300
    assert result["kinds"]["json"]["count"] == 300
    lat = result["kinds"]["json"]["latency_ms"]
    assert lat["n"] == 300
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    totals = result["totals"]
    # Every request the generator sent reached the stand-in and was answered with 200.
    assert totals["sent"] == after["requests"] - before["requests"]
    assert totals["ok"] == totals["sent"] == result["statuses"]["200"]
    assert totals.get("unfinished", 0) == 0
    assert 300 <= totals["sent"] <= 300 + 20 + 4
    assert result["rps"] > 0 and result["window_s"] > 0


def test_load_counts_streams_events_and_relay(standin):
    proc, base = standin
    before = stats(base)
    result = load(base, "--mix", "stream=1", "--concurrency", "4", "--requests", "20",
                  "--expect-content", str(CHUNKS), "--standin-pid", str(proc.pid),
                  "--pid", str(proc.pid))
    after = stats(base)
    s = result["kinds"]["stream"]
    assert s["count"] == 20
    assert s["content_events"] == {str(CHUNKS): 20}
    assert result["totals"]["ok"] == result["totals"]["sent"]
    assert result["totals"]["sent"] == after["streams"] - before["streams"]
    assert result.get("totals", {}).get("incomplete", 0) == 0
    # Each stream: role + contents + finish + usage events (the [DONE] is not an event).
    assert result["events"] >= 20 * (CHUNKS + 3)
    assert s["relay_ms"]["n"] >= 20 * CHUNKS
    assert s["relay_ms"]["p50"] >= 0  # same clock on both sides: never negative
    assert s["ttfb_ms"]["n"] >= 20
    assert s["duration_ms"]["p50"] >= (CHUNKS - 1) * DELAY_MS * 0.5
    assert s["latency_ms"]["p50"] >= s["ttfb_ms"]["p50"]
    # --pid: the watched process's CPU and RSS are read.
    assert result["gateway"]["rss_end_mb"] > 0
    assert result["gateway"]["cpu_us_per_event"] is not None


def test_load_mix_of_errors_and_disconnects(standin):
    _, base = standin
    result = load(base, "--mix", "json=1,fail=1,disconnect=1", "--concurrency", "3",
                  "--requests", "60", "--expect-content", str(CHUNKS), "--cut-after", "2")
    totals = result["totals"]
    assert sum(k["count"] for k in result["kinds"].values()) == 60
    assert totals["failed_as_expected"] > 0
    assert totals["disconnected"] > 0
    assert totals.get("http_error", 0) == totals.get("fail_unexpected", 0) == 0
    assert totals["sent"] == (totals["ok"] + totals["failed_as_expected"]
                              + totals["disconnected"])
    # The stand-in survives clients that hang up mid-stream.
    assert chat(base).status_code == 200


def test_report_renders_points(standin):
    _, base = standin
    j = load(base, "--concurrency", "2", "--requests", "50")
    s = load(base, "--mix", "stream=1", "--concurrency", "2", "--requests", "4",
             "--expect-content", str(CHUNKS))
    for point in (j, s):
        point["gateway"] = dict.fromkeys(point["gateway"])
    lunos = json.loads(json.dumps(j))
    lunos["gateway"].update(cpu_ms_per_request=0.25, cpu_pct=80.0, rss_start_mb=70.0,
                            rss_end_mb=72.0)
    results = {
        "meta": {"date": "today", "command": "python bench/run.py --quick",
                 "machine": {"cpu": "cpu", "cores": 2, "memory_gb": 1.0, "kernel": "k"},
                 "versions": {"python": "3"}, "placement": "pinned", "warmup": 1,
                 "duration": 2, "chunks": CHUNKS, "chunk_delay_ms": DELAY_MS},
        "targets": {
            "direct": {"points": {"json-c1": j, "stream-16": s}},
            "lunos": {"points": {"json-c1": lunos}, "rss_idle_mb": 60.0,
                      "rss_final_mb": 72.0, "history": {"rows": 50, "sent": 50}},
        },
    }
    text = report.markdown(results, notes="\nhand-written\n")
    assert "| direct (stand-in) | 1 |" in text
    assert "| Lunos | 1 |" in text
    assert "| direct (stand-in) | 16 |" in text
    stream_row = next(line for line in text.splitlines()
                      if line.startswith("| direct (stand-in) | 16 |"))
    assert re.search(r"\| (\d+)/\1 \|", stream_row)  # every stream complete
    assert "a history row for every request | 50 / 50 | yes" in text
    assert report.kept_notes(text).strip() == "hand-written"


def test_percentiles_and_slope():
    p = percentiles([float(x) for x in range(1, 101)])
    assert (p["p50"], p["p90"], p["p99"], p["max"], p["n"]) == (50.0, 90.0, 99.0, 100.0, 100)
    assert percentiles([]) is None
    assert report.slope_per_minute([(0, 100.0), (60, 100.0), (120, 100.0)]) == 0
    assert report.slope_per_minute([(0, 100.0), (30, 101.0), (60, 102.0)]) == pytest.approx(2.0)


def test_procstat_reads_a_process_tree():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        deadline = time.monotonic() + 5
        while child.pid not in tree(os.getpid()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert child.pid in tree(os.getpid())
        assert rss_mb([os.getpid()]) > 1
        cpu, rss = Watch(os.getpid()).sample()
        assert cpu > 0 and rss >= rss_mb([os.getpid()]) * 0.5
        assert Watch(None).sample() == (0.0, 0.0)
    finally:
        child.kill()
        child.wait()


def test_pipe_passes_json_and_streams_through(standin):
    """The floor target relays bytes unchanged, keep-alive requests included."""
    _, base = standin
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "pipe.py"), "--port", "0",
         "--upstream", base.split("://", 1)[1]], stdout=subprocess.PIPE, text=True)
    try:
        match = re.search(r"listening on (\d+)", proc.stdout.readline())
        assert match
        piped = f"http://127.0.0.1:{match.group(1)}"
        with httpx.Client(timeout=10) as client:  # one connection, several requests
            for _ in range(3):
                r = client.post(piped + "/v1/chat/completions",
                                json={"model": "gpt-bench", "messages": [{"role": "user", "content": "hi"}]})
                assert r.status_code == 200 and r.json()["object"] == "chat.completion"
        r = chat(piped, stream=True)
        events = events_of(r.text)
        assert events[-1] == "[DONE]" and len(events) == CHUNKS + 3
    finally:
        proc.terminate()
        proc.wait(10)


def test_take_turns_runs_one_process_at_a_time_and_leaves_both_running():
    from bench.history_overhead import take_turns

    def state(pid: int) -> str:
        return _stat(pid)[0]  # "T": stopped

    spin = [sys.executable, "-c", "while True: pass"]
    workers = [subprocess.Popen(spin) for _ in range(2)]
    load = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.6)"])
    seen: set[tuple[str, str]] = set()
    try:
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                seen.add(tuple(state(w.pid) for w in workers))
                time.sleep(0.01)

        watcher = threading.Thread(target=watch)
        watcher.start()
        take_turns([w.pid for w in workers], [load], 0.1)
        done.set()
        watcher.join()
        assert ("T", "T") not in seen  # never both paused
        assert any(s[0] == "T" for s in seen) and any(s[1] == "T" for s in seen)  # each paused in turn
        assert all(state(w.pid) != "T" for w in workers)  # both running at the end
    finally:
        for w in [*workers, load]:
            w.kill()
            w.wait()


def test_messages_summary_ratios_and_section():
    from bench.doors import summarise

    def point(cost: float | None, rps: float, **totals) -> dict:
        return {"rps": rps, "totals": {"sent": 10, "ok": 10, **totals},
                "gateway": {"cpu_ms_per_request": cost, "cpu_us_per_event": None}}

    points = {"messages-json-c64": {
        "chat": [point(0.20, 900), point(0.30, 800), point(0.25, 850)],
        "messages-anthropic": [point(0.21, 880), point(0.30, 790), point(0.30, 700)],
        "messages-openai": [point(0.30, 600), point(0.36, 500), point(0.25, 700, http_error=3)],
    }}
    summary = summarise(points)["messages-json-c64"]
    assert summary["chat"]["ratio"] is None
    assert summary["chat"]["cpu_ms_per_request"] == 0.25
    assert summary["messages-anthropic"]["ratios"] == pytest.approx([1.05, 1.0, 1.2])
    assert summary["messages-anthropic"]["ratio"] == pytest.approx(1.05)  # within each round
    assert summary["messages-openai"]["ratio"] == pytest.approx(1.2)
    messages = {"command": "python bench/run.py --scenarios messages", "date": "today",
                "rounds": 3, "slice_s": 0.05, "points": points,
                "summary": summarise(points),
                "history": {"chat": {"rows": 30, "sent": 30}}}
    text = "\n".join(report.door_section(messages))
    assert "python bench/run.py --scenarios messages" in text
    assert "| Messages → Anthropic (pass-through) | json-c64 | 790 | 0.300 | - | 1.05 (1.05, 1.00, 1.20) | yes | 0 |" in text
    # A door with errors does not meet the target, whatever its ratio.
    assert "| 1.20 (1.50, 1.20, 1.00) | NO | 3 http error |" in text
    assert "chat 30 / 30" in text


def door_point(cost: float) -> dict:
    return {"rps": 100.0, "totals": {"sent": 10, "ok": 10},
            "gateway": {"cpu_ms_per_request": cost, "cpu_us_per_event": None}}


def door_run(group: str, points: dict) -> dict:
    """A one-round door measurement of `group` with these points, as doors.measure gives it;
    the first scenario's doors cost 0.2 ms, then 10% more per door."""
    from bench.doors import GROUPS, summarise

    first = f"{group}-json-c64"
    points = {first: {door: [door_point(0.2 * (1 + n / 10))]
                      for n, door in enumerate(GROUPS[group])}, **points}
    return {"command": f"python bench/run.py --scenarios {group}", "date": "today", "rounds": 1,
            "slice_s": 0.05, "points": points, "summary": summarise(points), "history": {}}


def test_responses_section_names_its_doors():
    text = "\n".join(report.door_section(door_run("responses", {}), "responses"))
    assert "five `lunos serve` processes" in text and "a fifth of the core" in text
    assert "a Responses door spends at most 1.25x" in text
    assert "| Responses → OpenAI (pass-through) | json-c64 | 100 | 0.220 | - | 1.10 (1.10) | yes | - | 0 |" in text
    assert "| chat → Anthropic (translated) | json-c64 | 100 | 0.240 | - | 1.20 (1.20) | yes | - | 0 |" in text
    # Translated to Anthropic: against chat, and against chat to Anthropic (0.26 / 0.24),
    # which the target judges (the provider's translation is chat's cost as well).
    assert "| ≤ 1.25x (same provider where measured) |" in text
    assert "| Responses → Anthropic (translated) | json-c64 | 100 | 0.260 | - | 1.30 (1.30) | yes | 1.08 | 0 |" in text
    assert "| Responses → OpenAI, `store: true` | json-c64 |" in text


def test_a_translated_door_over_the_target_against_its_own_provider_is_not_met():
    from bench.doors import GROUPS

    costs = {"chat": 0.2, "chat-anthropic": 0.24, "responses-anthropic": 0.31}
    stream = {door: [door_point(costs.get(door, 0.2))] for door in GROUPS["responses"]}
    text = "\n".join(report.door_section(door_run("responses", {"responses-stream-128": stream}),
                                         "responses"))
    assert "| Responses → Anthropic (translated) | stream-128 | 100 | 0.310 | - | 1.55 (1.55) | NO | 1.29 | 0 |" in text


def test_media_section_names_its_doors():
    from bench.doors import doors_in

    assert doors_in("media", "media-json-c64") == ["chat", "completions", "images", "speech",
                                                   "transcriptions"]
    assert doors_in("media", "media-stream-128") == ["chat", "completions"]  # no SSE for the others
    run = door_run("media", {"media-stream-128": {"chat": [door_point(1.0)],
                                                  "completions": [door_point(1.1)]}})
    text = "\n".join(report.door_section(run, "media"))
    assert "five `lunos serve` processes" in text and "a fifth of the core" in text
    assert "a media door spends at most 1.25x" in text
    assert "the stream scenario loads chat and completions only" in text
    assert "| completions → OpenAI (`/v1/completions`) | json-c64 | 100 | 0.220 | - | 1.10 (1.10) | yes | 0 |" in text
    assert "| images → OpenAI (`/v1/images/generations`, ~100 KB) | json-c64 | 100 | 0.240 | - | 1.20 (1.20) | - | 0 |" in text
    assert "| speech → OpenAI (`/v1/audio/speech`, ~100 KB) | json-c64 | 100 | 0.260 | - | 1.30 (1.30) | - | 0 |" in text  # no target
    assert "| transcriptions → OpenAI (`/v1/audio/transcriptions`, ~100 KB upload) | json-c64 | 100 | 0.280 |" in text
    assert "| completions → OpenAI (`/v1/completions`) | stream-128 | 100 | 1.100 | - | 1.10 (1.10) | yes | 0 |" in text
    assert sum("| stream-128 |" in line for line in text.splitlines()) == 2  # chat, completions
    full = report.markdown({"meta": {"date": "today", "command": "c", "machine": {"cpu": "cpu", "cores": 2,
                                                                                   "memory_gb": 1.0, "kernel": "k"},
                                     "versions": {}, "placement": "pinned", "warmup": 1, "duration": 2,
                                     "chunks": CHUNKS, "chunk_delay_ms": DELAY_MS},
                            "targets": {}, "media": run}, notes="")
    assert "## Media door" in full
