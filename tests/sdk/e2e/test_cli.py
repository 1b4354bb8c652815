"""`lunos chat`, `lunos models` and `lunos logs` as subprocesses against the running gateway."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.gateway_process import MASTER_KEY
from tests.sdk.e2e.conftest import OVERLOADED, make_key, sse_chunk, sse_reply, unique
from tests.standins.harness import free_port

SRC = str(Path(__file__).resolve().parents[3] / "src")


def env(gateway, api_key: str | None = MASTER_KEY, base_url: str | None = None) -> dict[str, str]:
    # Without PYTHONUNBUFFERED: output must reach the pipe because the command flushes it.
    values = {k: v for k, v in os.environ.items()
              if not k.startswith("LUNOS_") and k != "PYTHONUNBUFFERED"}
    values["PYTHONPATH"] = os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")]))
    values["LUNOS_BASE_URL"] = base_url or gateway.url
    if api_key:
        values["LUNOS_API_KEY"] = api_key
    return values


def lunos(*args: str, environment: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lunos.cli", *args], env=environment,
                          capture_output=True, text=True, timeout=60)


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("lunos: "), result.stderr
    return lines[0]


def test_chat_prints_the_answer(gateway, upstreams):
    result = lunos("chat", "openai/gpt-4o", "hello from the shell", environment=env(gateway))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "You said: hello from the shell\n"


def test_chat_with_a_system_message_on_another_provider(gateway, upstreams):
    result = lunos("chat", "anthropic/claude-sonnet-4-5", "short please", "--system", "Be terse.",
                   environment=env(gateway))
    assert result.stdout == "You said: short please\n"
    body = upstreams.anthropic.last.json
    assert [block["text"] for block in body["system"]] == ["Be terse."]


def test_chat_stream_prints_as_it_arrives(gateway, upstreams):
    # The stand-in waits between events, so what arrives first is only the start of the answer.
    prompt = "one two three four five [[slow:0.3]]"
    answer = f"You said: {prompt}"
    proc = subprocess.Popen([sys.executable, "-m", "lunos.cli", "chat", "openai/gpt-4o", prompt,
                             "--stream"], env=env(gateway), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        first = os.read(proc.stdout.fileno(), 65536).decode()
        rest, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert first and answer.startswith(first) and len(first) < len(answer)
    assert first + rest.decode() == answer + "\n"
    assert upstreams.openai.last.json["stream"] is True


def test_chat_stream_failing_midway_ends_the_line_and_says_why(gateway, upstreams):
    upstreams.openai.scripted.append(sse_reply(
        sse_chunk({"role": "assistant", "content": ""}), sse_chunk({"content": "Hel"}),
        OVERLOADED))
    result = lunos("chat", "openai/gpt-4o-mini", "hi", "--stream", environment=env(gateway))
    assert result.stdout == "Hel\n"
    line = one_error_line(result)
    assert line.startswith("lunos: 502 ") and "model overloaded" in line


def test_chat_errors_are_one_line(gateway, upstreams):
    line = one_error_line(lunos("chat", "nope/model", "hi", environment=env(gateway)))
    assert line.startswith("lunos: 404 ") and "(param: model)" in line
    line = one_error_line(lunos("chat", "openai/gpt-4o", "hi", environment=env(gateway, "sk-lunos-wrong")))
    assert line.startswith("lunos: 401 ")
    line = one_error_line(lunos("chat", "openai/gpt-4o", "hi", environment=env(gateway, api_key=None)))
    assert "LUNOS_API_KEY" in line
    unreachable = f"http://127.0.0.1:{free_port()}"
    result = lunos("chat", "openai/gpt-4o", "hi", environment=env(gateway, base_url=unreachable))
    line = one_error_line(result)
    assert f"cannot reach the gateway at {unreachable}" in line
    assert upstreams.openai.requests == []
    usage = lunos("chat", "openai/gpt-4o", environment=env(gateway))
    assert usage.returncode == 2 and "prompt" in usage.stderr


def test_models_lists_the_catalog(gateway):
    result = lunos("models", environment=env(gateway))
    assert result.returncode == 0, result.stderr
    header, *lines = result.stdout.splitlines()
    assert header.split()[:2] == ["MODEL", "PROVIDER"]
    (gpt,) = [line.split() for line in lines if line.split()[0] == "openai/gpt-4o"]
    catalog = httpx.get(f"{gateway.url}/v1/models", timeout=10).json()["data"]
    assert len(lines) == len(catalog)
    entry = next(m for m in catalog if m["id"] == "openai/gpt-4o")
    assert gpt == ["openai/gpt-4o", "openai", str(entry["context_length"]),
                   str(entry["max_output_tokens"]), f"{entry['pricing']['input']:g}",
                   f"{entry['pricing']['output']:g}"]
    as_json = json.loads(lunos("models", "--json", environment=env(gateway)).stdout)
    assert [m["id"] for m in as_json["data"]] == [m["id"] for m in catalog]


def test_logs_shows_the_newest_rows_of_the_key(gateway, upstreams):
    key = make_key(gateway, unique("cli-logs"))
    environment = env(gateway, key["key"])
    ids = []
    for i in range(4):
        r = httpx.post(f"{gateway.url}/v1/chat/completions", timeout=10,
                       headers={"authorization": f"Bearer {key['key']}", "x-app-id": "cli-app"},
                       json={"model": "openai/gpt-4o", "messages": [{"role": "user", "content": f"n {i}"}]})
        ids.append(r.headers["x-request-id"])
    newest = list(reversed(ids))
    rows = wait_for_rows(environment, 4)
    assert [row["id"] for row in rows] == newest
    result = lunos("logs", "-n", "3", environment=environment)
    assert result.returncode == 0, result.stderr
    header, *lines = result.stdout.splitlines()
    assert header.split()[:5] == ["CREATED", "(UTC)", "ID", "ENDPOINT", "MODEL"]
    assert [line.split()[2] for line in lines] == newest[:3]
    assert all(line.split()[3:7] == ["chat", "openai/gpt-4o", "cli-app", "200"] for line in lines)
    assert lunos("logs", "-n", "0", environment=environment).returncode == 2


def wait_for_rows(environment: dict[str, str], count: int) -> list[dict]:
    """`lunos logs --json` once the key has `count` rows (written within a second)."""
    for _ in range(20):
        rows = json.loads(lunos("logs", "--json", environment=environment).stdout)
        if len(rows) >= count:
            return rows
    raise AssertionError(f"fewer than {count} rows: {rows}")
