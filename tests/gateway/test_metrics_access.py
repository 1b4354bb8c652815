"""/metrics behind a key (LUNOS_METRICS_AUTH) or on its own address (LUNOS_METRICS_ADDRESS)."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from tests.gateway_process import MASTER_KEY, GatewayProcess
from tests.standins.harness import free_port

MASTER = {"authorization": f"Bearer {MASTER_KEY}"}


def start(standins, tmp_path, args=(), **env) -> GatewayProcess:
    return GatewayProcess(tmp_path / "home", {**standins.env(), **env}, args=list(args)).start(timeout=60)


def user_key(gw: GatewayProcess) -> dict:
    response = httpx.post(gw.url + "/admin/keys", headers=MASTER, json={"name": "reader"})
    return {"authorization": f"Bearer {response.json()['key']}"}


@pytest.mark.parametrize("mode,no_key,user,master", [
    ("master", 401, 403, 200),
    ("key", 401, 200, 200),
    ("none", 200, 200, 200),
])
def test_metrics_auth(standins, tmp_path, mode, no_key, user, master):
    gw = start(standins, tmp_path, LUNOS_METRICS_AUTH=mode)
    try:
        assert httpx.get(gw.url + "/metrics").status_code == no_key
        assert httpx.get(gw.url + "/metrics", headers=user_key(gw)).status_code == user
        response = httpx.get(gw.url + "/metrics", headers=MASTER)
        assert response.status_code == master and "lunos_in_flight_requests" in response.text
    finally:
        gw.stop()


@pytest.mark.parametrize("workers", [1, 2])
def test_metrics_on_their_own_address(standins, tmp_path, workers):
    port = free_port()
    gw = start(standins, tmp_path, ["--workers", str(workers)],
               LUNOS_METRICS_ADDRESS=f"127.0.0.1:{port}", LUNOS_METRICS_AUTH="master")
    try:
        metrics = f"http://127.0.0.1:{port}"
        response = httpx.get(metrics + "/metrics")  # the private address needs no key
        assert response.status_code == 200 and "lunos_in_flight_requests" in response.text
        assert response.headers["x-request-id"]
        other = httpx.get(metrics + "/v1/models")  # nothing else is served there
        assert other.status_code == 404 and other.json()["error"]["code"] == "route_not_found"
        api = httpx.get(gw.url + "/metrics", headers=MASTER)  # and the API port has no /metrics
        assert api.status_code == 404
        assert httpx.get(gw.url + "/v1/models").status_code == 200
    finally:
        gw.stop()


def test_bad_metrics_settings_are_one_line(standins, tmp_path):
    for env, name in (({"LUNOS_METRICS_AUTH": "sometimes"}, "LUNOS_METRICS_AUTH"),
                      ({"LUNOS_METRICS_ADDRESS": "nowhere"}, "LUNOS_METRICS_ADDRESS")):
        done = subprocess.run([sys.executable, "-m", "lunos.cli", "serve", "--port", str(free_port())],
                              env={**standins.env(), **env, "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
                                   "LUNOS_HOME": str(tmp_path)},
                              capture_output=True, text=True, timeout=60, cwd=tmp_path)
        assert done.returncode == 2
        assert name in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
