"""The servers under test: the stand-in, and each gateway in front of it.

Each target knows how to install itself (into bench/.work/, reused on later runs), start
as one process (optionally pinned to a CPU with taskset), and what a client must send it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORK = BENCH / ".work"
LITELLM_SPEC = "litellm[proxy]==1.108.7"
LITELLM_KEY = "sk-bench-litellm-0123456789abcdef0123456789abcdef"
LUNOS_MASTER = "sk-lunos-bench-master-0123456789abcdef"
UPSTREAM_KEY = "sk-bench-upstream"
MODEL = "gpt-bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinned(cmd: list[str], cpu: str | None) -> list[str]:
    return ["taskset", "-c", cpu, *cmd] if cpu is not None else cmd


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the server exited ({proc.returncode}); see {log}:\n"
                               + log.read_text()[-3000:])
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status < 500:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url}: no answer after {timeout:.0f} s; see {log}")


def spawn(cmd: list[str], log: Path, **kw) -> subprocess.Popen:
    """Start a server with its output in `log` (the child keeps its own descriptor)."""
    with open(log, "wb") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, **kw)


def run_quiet(cmd: list[str], log: Path, **kw) -> None:
    with open(log, "ab") as out:
        rc = subprocess.call(cmd, stdout=out, stderr=subprocess.STDOUT, **kw)
    if rc != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({rc}); see {log}:\n" + log.read_text()[-3000:])


@dataclass
class Server:
    """A started process and what clients send it."""

    name: str
    proc: subprocess.Popen
    url: str
    model: str = MODEL
    headers: list[str] = field(default_factory=list)
    extra: dict | None = None
    fail_model: str | None = None
    home: Path | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_standin(cpu: str | None, chunks: int, delay_ms: float) -> Server:
    WORK.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = WORK / "standin.log"
    cmd = [sys.executable, str(BENCH / "standin.py"), "--port", str(port),
           "--chunks", str(chunks), "--chunk-delay-ms", str(delay_ms)]
    proc = spawn(pinned(cmd, cpu), log)
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/health", proc, log, 10)
    return Server("standin", proc, base + "/v1/chat/completions")


def start_pipe(cpu: str | None, upstream: str) -> Server:
    """The byte pipe in front of the stand-in: the floor of any gateway (bench/pipe.py)."""
    port = free_port()
    log = WORK / "pipe.log"
    hostport = upstream.split("://", 1)[1]
    cmd = [sys.executable, str(BENCH / "pipe.py"), "--port", str(port), "--upstream", hostport]
    proc = spawn(pinned(cmd, cpu), log)
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/health", proc, log, 10)
    return Server("pipe", proc, base + "/v1/chat/completions")


# --- Lunos -----------------------------------------------------------------------------------


def lunos_env(home: Path, upstream: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LUNOS_")}
    env.update(LUNOS_HOME=str(home), LUNOS_MASTER_KEY=LUNOS_MASTER,
               OPENAI_BASE_URL=upstream + "/v1", OPENAI_API_KEY=UPSTREAM_KEY,
               ANTHROPIC_BASE_URL=upstream, ANTHROPIC_API_KEY=UPSTREAM_KEY,
               PYTHONPATH=str(ROOT / "src"))
    return env


def start_lunos(name: str, cpu: str | None, upstream: str, trace: bool,
                extra_env: dict[str, str] | None = None) -> Server:
    """`lunos serve` from this repository: one worker, SQLite, a fresh home each start."""
    home = WORK / f"home-{name}"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    env = {**lunos_env(home, upstream), **(extra_env or {})}
    # A second provider on the same stand-in for the error path, so that its circuit
    # breaker opening (by design, after repeated 500s) leaves the main one alone.
    (home / "lunos.yaml").write_text(
        f"providers:\n  flaky:\n    kind: openai\n    base_url: {upstream}/v1\n"
        f"    api_key: {UPSTREAM_KEY}\n")
    lunos = [sys.executable, "-m", "lunos.cli"]
    out = subprocess.run([*lunos, "--help"], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"lunos CLI does not start:\n{out.stderr[-2000:]}")
    created = subprocess.run([*lunos, "keys", "--config", str(home / "lunos.yaml"), "create",
                              "--name", "bench"], env=env, capture_output=True, text=True,
                             cwd=home)
    if created.returncode != 0:
        raise RuntimeError(f"lunos keys create failed:\n{created.stderr[-2000:]}")
    key = json.loads(created.stdout)["key"]
    port = free_port()
    log = home / "gateway.log"
    cmd = [*lunos, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
           "--config", str(home / "lunos.yaml")]
    proc = spawn(pinned(cmd, cpu), log, env=env, cwd=home)
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/healthz", proc, log)
    return Server(name, proc, base + "/v1/chat/completions", model=f"openai/{MODEL}",
                  headers=[f"Authorization: Bearer {key}"],
                  extra={"observability": True} if trace else None,
                  fail_model=f"flaky/{MODEL}-fail", home=home)


def reset_postgres(url: str) -> None:
    """Drop Lunos's tables from a PostgreSQL database, so a run starts from an empty one."""
    import asyncio

    import asyncpg

    async def drop() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("DROP TABLE IF EXISTS lunos_requests, lunos_keys, lunos_meta, "
                               "lunos_migrations CASCADE")
        finally:
            await conn.close()

    asyncio.run(drop())


def history_rows(server: Server) -> int | None:
    """Rows in the gateway's request history (its SQLite file), or None if unreadable."""
    path = server.home / "lunos.db" if server.home else None
    if path is None or not path.exists():
        return None
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute("select count(*) from lunos_requests").fetchone()[0]
    except sqlite3.Error:
        return None
    finally:
        conn.close()


# --- LiteLLM ---------------------------------------------------------------------------------


def litellm_python() -> Path:
    return WORK / "litellm-venv" / "bin" / "python"


def setup_litellm(log) -> None:
    """A virtualenv with the pinned LiteLLM proxy (made once, reused)."""
    venv = WORK / "litellm-venv"
    marker = venv / ".installed"
    if marker.exists() and marker.read_text() == LITELLM_SPEC:
        return
    log(f"installing {LITELLM_SPEC} into {venv} (once; a few minutes)")
    WORK.mkdir(parents=True, exist_ok=True)
    run_quiet([sys.executable, "-m", "venv", str(venv)], WORK / "litellm-install.log")
    run_quiet([str(venv / "bin" / "pip"), "install", "-q", LITELLM_SPEC],
              WORK / "litellm-install.log")
    marker.write_text(LITELLM_SPEC)


def start_litellm(cpu: str | None, upstream: str) -> Server:
    """The LiteLLM proxy: one worker, no database, no callbacks, a master key (it refuses
    to start without one)."""
    home = WORK / "litellm"
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.yaml").write_text(
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        "    litellm_params:\n"
        f"      model: openai/{MODEL}\n"
        f"      api_base: {upstream}/v1\n"
        f"      api_key: {UPSTREAM_KEY}\n"
        "litellm_settings:\n"
        "  callbacks: []\n"
        "  success_callback: []\n"
        "  failure_callback: []\n"
        "  telemetry: false\n"
        "general_settings:\n"
        f"  master_key: {LITELLM_KEY}\n")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LITELLM", "DATABASE_URL", "OPENAI_"))}
    env.update(LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_LOG="ERROR")
    port = free_port()
    log = home / "proxy.log"
    cmd = [str(litellm_python()), str(WORK / "litellm-venv" / "bin" / "litellm"),
           "--config", str(home / "config.yaml"), "--host", "127.0.0.1", "--port", str(port),
           "--num_workers", "1"]
    proc = spawn(pinned(cmd, cpu), log, env=env, cwd=home)
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/health/liveliness", proc, log, 180)
    return Server("litellm", proc, base + "/v1/chat/completions",
                  headers=[f"Authorization: Bearer {LITELLM_KEY}"])


def litellm_version() -> str | None:
    if not litellm_python().exists():
        return None
    out = subprocess.run([str(litellm_python()), "-c",
                          "import importlib.metadata as m; print(m.version('litellm'))"],
                         capture_output=True, text=True)
    return out.stdout.strip() or None


# --- Portkey ---------------------------------------------------------------------------------

PORTKEY_DIR = WORK / "portkey"


def setup_portkey(log) -> None:
    """npm install of bench/portkey/package.json (pinned gateway + overrides), once."""
    spec = (BENCH / "portkey" / "package.json").read_text()
    marker = PORTKEY_DIR / ".installed"
    if marker.exists() and marker.read_text() == spec:
        return
    if shutil.which("npm") is None:
        raise RuntimeError("npm is needed for the Portkey gateway (apt-get install nodejs npm)")
    log("installing the Portkey gateway with npm (once)")
    PORTKEY_DIR.mkdir(parents=True, exist_ok=True)
    (PORTKEY_DIR / "package.json").write_text(spec)
    run_quiet(["npm", "install", "--no-audit", "--no-fund", "--omit=dev"],
              WORK / "portkey-install.log", cwd=PORTKEY_DIR)
    marker.write_text(spec)


def start_portkey(cpu: str | None, upstream: str) -> Server:
    """One Node process, headless, production mode. It has no host option: it listens on
    every interface, and only loopback traffic is sent to it."""
    port = free_port()
    log = PORTKEY_DIR / "gateway.log"
    entry = PORTKEY_DIR / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"
    env = {**os.environ, "NODE_ENV": "production"}
    cmd = ["node", str(entry), f"--port={port}", "--headless"]
    proc = spawn(pinned(cmd, cpu), log, env=env, cwd=PORTKEY_DIR)
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/", proc, log, 30)
    return Server("portkey", proc, base + "/v1/chat/completions",
                  headers=["x-portkey-provider: openai",
                           f"x-portkey-custom-host: {upstream}/v1",
                           f"Authorization: Bearer {UPSTREAM_KEY}"])


def portkey_versions() -> dict[str, str]:
    out = {}
    for name, key in (("@portkey-ai/gateway", "portkey"), ("@hono/node-server", "hono_node")):
        pkg = PORTKEY_DIR / "node_modules" / name / "package.json"
        if pkg.exists():
            out[key] = json.loads(pkg.read_text())["version"]
    return out
