"""Start the real gateway (`lunos serve`) as a separate process for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.standins.harness import free_port

MASTER_KEY = "sk-lunos-test-master-key-0123456789"


@dataclass
class GatewayProcess:
    home: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    args: list[str] = field(default_factory=list)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.home / "gateway.log"

    def start(self, timeout: float = 20.0) -> GatewayProcess:
        self.home.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "LUNOS_HOME": str(self.home), **self.env}
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "lunos.cli", "serve", "--host", "127.0.0.1",
                 "--port", str(self.port), *self.args],
                env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.home,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited early:\n{self.log_path.read_text()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"gateway did not start:\n{self.log_path.read_text()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
