"""The gateway calls the agent tests share: a key per test and the history rows of an app id."""

from __future__ import annotations

import time

import httpx

from tests.gateway_process import MASTER_KEY

MASTER = {"authorization": f"Bearer {MASTER_KEY}"}


def make_key(base: str, name: str) -> str:
    r = httpx.post(f"{base}/admin/keys", headers=MASTER, json={"name": name}, timeout=10)
    assert r.status_code == 201, r.text
    return r.json()["key"]


def rows_of_app(base: str, app_id: str, at_least: int) -> list[dict]:
    """The history rows of `app_id`, once `at_least` are there (SPEC §7: rows are readable
    within a second of the response)."""
    deadline = time.monotonic() + 2.0
    while True:
        r = httpx.get(f"{base}/v1/logs", headers=MASTER, params={"app_id": app_id, "limit": 100}, timeout=10)
        assert r.status_code == 200, r.text
        rows = r.json()["data"]
        if len(rows) >= at_least or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)
