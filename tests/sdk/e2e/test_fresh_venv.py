"""`pip install lunos` alone: a clean virtualenv holding the project and only the
dependencies it declares (httpx, pydantic) imports the SDK, runs the client commands against
the gateway, and says what is missing for the server commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gateway_process import MASTER_KEY

REPO = Path(__file__).resolve().parents[3]
GATEWAY_ONLY = ("uvicorn", "orjson", "sqlalchemy", "yaml", "jinja2", "redis", "asyncpg")


def clean_env(**extra: str) -> dict[str, str]:
    """No PYTHONPATH, no virtualenv of the caller: the venv's own packages only."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV") and not k.startswith("LUNOS_")}
    return {**env, "PIP_DISABLE_PIP_VERSION_CHECK": "1", **extra}


@pytest.fixture(scope="session")
def venv(tmp_path_factory) -> Path:
    """Built once per test session (a few seconds: venv, then pip resolves the declared
    dependencies and installs a wheel of the working tree)."""
    root = tmp_path_factory.mktemp("sdk-venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True, env=clean_env(),
                   capture_output=True, timeout=300)
    pip = subprocess.run([str(root / "bin" / "python"), "-m", "pip", "install", "-q", str(REPO)],
                         env=clean_env(), capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    return root


def run(venv: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(venv / "bin" / args[0]), *args[1:]], env=clean_env(**env),
                          capture_output=True, text=True, timeout=120, cwd=venv)


def test_import_lunos_needs_only_httpx_and_pydantic(venv):
    code = (
        "import importlib.util, json, sys\n"
        "import lunos\n"
        "client = lunos.Lunos(api_key='x')\n"
        "print(json.dumps({'file': lunos.__file__, 'modules': sorted(sys.modules),\n"
        f"  'installed': [m for m in {GATEWAY_ONLY!r} if importlib.util.find_spec(m)]}}))\n"
    )
    result = run(venv, "python", "-c", code)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert Path(report["file"]).is_relative_to(venv)  # the installed copy, not the work tree
    assert report["installed"] == []  # the venv really holds the SDK's dependencies only
    modules = set(report["modules"])
    assert {"lunos", "httpx", "pydantic"} <= modules
    leaked = sorted(m for m in modules if m.startswith("lunos.gateway") or m == "lunos.cli"
                    or m.split(".")[0] in GATEWAY_ONLY)
    assert leaked == []


def test_client_commands_work_without_the_gateway_packages(venv, gateway, upstreams):
    env = {"LUNOS_BASE_URL": gateway.url, "LUNOS_API_KEY": MASTER_KEY}
    chat = run(venv, "lunos", "chat", "openai/gpt-4o", "from a clean venv", **env)
    assert chat.returncode == 0, chat.stderr
    assert chat.stdout == "You said: from a clean venv\n"
    models = run(venv, "lunos", "models", **env)
    assert models.returncode == 0 and "openai/gpt-4o" in models.stdout.split()


@pytest.mark.parametrize("command", [["serve"], ["keys", "list"]])
def test_server_commands_say_what_to_install(venv, command):
    result = run(venv, "lunos", *command)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and 'pip install "lunos[gateway]"' in result.stderr
    assert "Traceback" not in result.stderr
