"""Claude Code (npm `@anthropic-ai/claude-code`, pinned in tests/agents/package.json and
installed by ./scripts/test) pointed at a running gateway with `ANTHROPIC_BASE_URL` and a
Lunos key, in print mode, doing a task that needs one of its tools, on an Anthropic model
(pass-through) and on OpenAI and Gemini models (translated by the Messages door).

The stand-in model calls a tool when the prompt carries `[[call <tool> {json}]]` (see
tests/standins/fake_model.py), so the agent really runs its Write tool, sends the result
back, and prints the model's final answer, which quotes that result.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.agents.gateway_api import make_key, rows_of_app

CLAUDE = Path(__file__).parent / "node_modules" / ".bin" / "claude"
# No login, no telemetry, no update checks: the run talks to the gateway only.
QUIET = {
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "DISABLE_AUTOUPDATER": "1",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
}

# (model id given to Claude Code, provider that must answer, model in the row, the variable
# that carries the key: ANTHROPIC_API_KEY sends `x-api-key`, ANTHROPIC_AUTH_TOKEN a Bearer token)
MODELS = [
    ("claude-sonnet-4-5", "anthropic", "anthropic/claude-sonnet-4-5", "ANTHROPIC_API_KEY"),  # bare
    ("anthropic/claude-sonnet-5", "anthropic", "anthropic/claude-sonnet-5", "ANTHROPIC_API_KEY"),
    ("openai/gpt-4o", "openai", "openai/gpt-4o", "ANTHROPIC_AUTH_TOKEN"),
    ("google/gemini-2.5-flash", "google", "google/gemini-2.5-flash", "ANTHROPIC_API_KEY"),
]
STANDIN = {"anthropic": "anthropic", "openai": "openai", "google": "gemini"}  # provider -> `upstreams` field


def claude_code_env(base_url: str, key_var: str, key: str, home: Path, app_id: str) -> dict[str, str]:
    """A clean environment: a throwaway HOME (Claude Code keeps its config there, and needs
    no login with a key given), the gateway as its API, the Lunos key, an app id header."""
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "ANTHROPIC_BASE_URL": base_url,
        key_var: key,
        "ANTHROPIC_CUSTOM_HEADERS": f"x-app-id: {app_id}",
        **QUIET,
    }


def run_claude(prompt: str, model: str, env: dict[str, str], cwd: Path) -> dict:
    """`claude -p` with edits allowed (its Write tool runs without asking); returns the
    final result object of `--output-format json`."""
    assert CLAUDE.exists(), f"{CLAUDE} is missing: run ./scripts/test, which installs Claude Code"
    done = subprocess.run(
        [str(CLAUDE), "-p", prompt, "--model", model, "--permission-mode", "acceptEdits",
         "--output-format", "json"],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, f"claude exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout)


@pytest.mark.parametrize(("model", "provider", "row_model", "key_var"), MODELS, ids=[m[0] for m in MODELS])
def test_claude_code_writes_a_file_through_the_gateway(gateway, upstreams, tmp_path, model, provider,
                                                       row_model, key_var):
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    target = work / "hello.txt"
    content = f"Written by Claude Code through Lunos on {model}.\nSecond line ✓"
    call = json.dumps({"file_path": str(target), "content": content}, ensure_ascii=False)
    app_id = "claude-code-" + model.replace("/", "-").replace(".", "-")
    env = claude_code_env(gateway.url, key_var, make_key(gateway.url, app_id), home, app_id)

    result = run_claude(f"Create the file. [[call Write {call}]]", model, env, work)

    assert target.read_text(encoding="utf-8") == content
    assert result["is_error"] is False and result["subtype"] == "success", result
    assert result["num_turns"] == 2 and result["permission_denials"] == []
    # The model's last answer quotes the tool result Claude Code sent back.
    assert result["result"].startswith("Tool results: ")
    assert f"File created successfully at: {target}" in result["result"]

    # Both turns went through the Messages door to the model's own provider, once each:
    # Claude Code resends a request without a feature the server refused, so more than
    # two would mean the gateway (or the upstream behind it) refused something it sent.
    rows = rows_of_app(gateway.url, app_id, at_least=2)
    assert len(rows) == 2, rows
    for row in rows:
        assert row["status"] == 200 and row["endpoint"] == "messages", row
        assert row["provider"] == provider and row["model"] == row_model, row
    upstream = getattr(upstreams, STANDIN[provider])
    assert len(upstream.requests) == 2
    assert f"File created successfully at: {target}".encode() in upstream.requests[-1].body
    if provider == "anthropic":  # passed through: what only Anthropic reads arrives as sent
        first = upstream.requests[0]
        assert first.json["context_management"] and first.json["metadata"]["user_id"]
        assert any(tool.get("defer_loading") for tool in first.json["tools"])
        assert "claude-code-20250219" in first.headers["anthropic-beta"].split(",")
