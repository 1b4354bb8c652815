"""Codex CLI (npm `@openai/codex`, pinned in tests/agents/package.json and installed by
./scripts/test) pointed at a running gateway as a model provider with `wire_api = "responses"`,
in `codex exec` mode, doing a task that needs one of its tools, on an OpenAI model (passed
through to OpenAI's Responses API) and on an Anthropic model (translated by the Responses door).

The config is the README's "Codex" snippet with the gateway's address and the model filled in,
so the README shows a config that works. The stand-in model calls a tool when the prompt
carries `[[call <tool> {json}]]` (see tests/standins/fake_model.py): Codex writes files with
its shell tool `exec_command`, sends the command's output back, and ends with the model's
answer quoting it.

What Codex sends (recorded from 0.171.0): no `instructions` (its system prompt is a
`developer` message), `client_metadata`, `prompt_cache_key`, `include:
["reasoning.encrypted_content"]`, `store: false`, `reasoning: {"summary": "auto"}`, function
tools with `strict: false`, a `namespace` tool and a `web_search` tool. A 400 from the gateway
ends `codex exec` at once with exit code 1; a 5xx or a broken stream is retried up to 5 times.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.agents.gateway_api import make_key, rows_of_app

ROOT = Path(__file__).resolve().parents[2]
CODEX = Path(__file__).parent / "node_modules" / ".bin" / "codex"
# No update check, analytics, plugin sync (a git clone from GitHub) or apps: the run talks to
# the gateway only, as a run without network must.
# (top-level keys go before the README's tables, the tables after)
QUIET_KEYS = "check_for_update_on_startup = false\n\n"
QUIET_TABLES = """
[analytics]
enabled = false

[features]
plugins = false
remote_plugin = false
apps = false
"""

# (model id given to Codex, provider that must answer, the stand-in that serves it, the path it is asked on)
MODELS = [
    ("openai/gpt-5", "openai", "openai", "/v1/responses"),
    ("anthropic/claude-sonnet-4-5", "anthropic", "anthropic", "/v1/messages"),
]


def readme_config() -> str:
    """The ```toml block of the README's "Codex" section."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("\n## Codex\n"):]
    section = section[: section.find("\n## ", 1)]
    return re.search(r"^```toml\n(.*?)^```$", section, re.M | re.S).group(1)


def codex_config(base_url: str, model: str, app_id: str) -> str:
    """The README's config.toml pointed at this gateway, for `model`, with the test's app id
    (Codex reads it with `--strict-config`, so a key it does not know fails the run)."""
    text = readme_config()
    text = text.replace("http://127.0.0.1:8000", base_url)
    text = re.sub(r'^model = ".*"$', f'model = "{model}"', text, count=1, flags=re.M)
    text = text.replace('"x-app-id" = "codex"', f'"x-app-id" = "{app_id}"')
    for line in (f'model = "{model}"', 'model_provider = "lunos"', "[model_providers.lunos]",
                 f'base_url = "{base_url}/v1"', 'wire_api = "responses"', 'env_key = "LUNOS_API_KEY"'):
        assert re.search(rf"^{re.escape(line)}(\s|$)", text, re.M), f"README's Codex config lacks {line!r}"
    assert f'"x-app-id" = "{app_id}"' in text
    return QUIET_KEYS + text + QUIET_TABLES


def codex_env(home: Path, key: str) -> dict[str, str]:
    """A clean environment: throwaway HOME and CODEX_HOME (Codex keeps its config, sessions and
    logs there) and the Lunos key in the variable the config's `env_key` names."""
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "CODEX_HOME": str(home / ".codex"),
        "LANG": "C.UTF-8",
        "LUNOS_API_KEY": key,
    }


def run_codex(prompt: str, env: dict[str, str], cwd: Path) -> str:
    """`codex exec` outside a git repository, its commands sandboxed to the working directory
    (Codex's bundled bubblewrap) and run without asking (exec mode never asks for approval).
    Returns the agent's last message."""
    assert CODEX.exists(), f"{CODEX} is missing: run ./scripts/test, which installs Codex CLI"
    last = cwd.parent / "last-message.txt"
    done = subprocess.run(
        [str(CODEX), "exec", "--strict-config", "--skip-git-repo-check", "--sandbox", "workspace-write",
         "--color", "never", "--output-last-message", str(last), prompt],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, f"codex exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    return last.read_text(encoding="utf-8")


@pytest.mark.parametrize(("model", "provider", "standin", "upstream_path"), MODELS, ids=[m[0] for m in MODELS])
def test_codex_writes_a_file_through_the_gateway(gateway, upstreams, tmp_path, model, provider, standin,
                                                 upstream_path):
    home, work = tmp_path / "home", tmp_path / "work"
    (home / ".codex").mkdir(parents=True)
    work.mkdir()
    target = work / "hello.txt"
    lines = [f"Written by Codex through Lunos on {model}.", "Second line ✓"]
    command = "printf '%s\\n' " + " ".join(f"'{line}'" for line in lines) + f" > {target}"
    call = json.dumps({"cmd": command}, ensure_ascii=False)
    app_id = "codex-" + model.replace("/", "-").replace(".", "-")
    (home / ".codex" / "config.toml").write_text(codex_config(gateway.url, model, app_id), encoding="utf-8")

    answer = run_codex(f"Create the file. [[call exec_command {call}]]", codex_env(home, make_key(gateway.url, app_id)),
                       work)

    assert target.read_text(encoding="utf-8") == "\n".join(lines) + "\n"
    # The model's last answer quotes the command's output Codex sent back.
    assert answer.startswith("Tool results: "), answer
    assert "Process exited with code 0" in answer

    # Both turns went through the Responses door to the model's own provider, once each
    # (Codex retries a failed request, so more rows would mean a failure it got past).
    rows = rows_of_app(gateway.url, app_id, at_least=2)
    assert len(rows) == 2, rows
    for row in rows:
        assert row["status"] == 200 and row["endpoint"] == "responses", row
        assert row["provider"] == provider and row["model"] == model, row
    upstream = getattr(upstreams, standin)
    assert [r.path for r in upstream.requests] == [upstream_path, upstream_path]
    assert b"Process exited with code 0" in upstream.requests[-1].body
    first = upstream.requests[0].json
    if provider == "openai":  # passed through: what only OpenAI's Responses API reads arrives as sent
        assert first["include"] == ["reasoning.encrypted_content"] and first["store"] is False
        assert first["client_metadata"]["thread_id"] and first["prompt_cache_key"]
        assert any(tool["type"] == "namespace" for tool in first["tools"])
        assert upstream.requests[-1].json["input"][-1]["type"] == "function_call_output"
    else:  # translated: Codex's developer message is the system prompt, its tools are functions
        assert "Codex CLI" in json.dumps(first["system"])
        assert "exec_command" in [tool["name"] for tool in first["tools"]]
