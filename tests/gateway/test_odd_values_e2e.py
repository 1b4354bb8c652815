"""Odd values outside chat bodies (/v1/logs and /v1/usage queries, /admin/keys fields): a 400
naming the parameter, never a 500 (nor a 503 from a database that refused the value), on
SQLite and on PostgreSQL."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from tests.databases import database
from tests.gateway_process import MASTER_KEY, GatewayProcess

MASTER = {"authorization": f"Bearer {MASTER_KEY}"}


def _cursor(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


ODD_LOGS = [  # (query string, the parameter the 400 names)
    ("status=%C2%B2", "status"),
    ("status=99999999999999999999", "status"),
    ("status=2OO", "status"),
    ("status=%00", "status"),
    ("limit=%C2%B2", "limit"),
    ("limit=99999999999999999999", "limit"),
    ("limit=" + "9" * 5000, "limit"),
    ("limit=0", "limit"),
    ("limit=-5", "limit"),
    ("since=garbage", "since"),
    ("since=nan", "since"),
    ("since=inf", "since"),
    ("since=1e999", "since"),
    ("until=%00", "until"),
    ("since=99999999999999999999999999", "since"),
    ("cursor=garbage", "cursor"),
    ("cursor=%00", "cursor"),
    ("cursor=" + _cursor([1, "a\u0000b"]), "cursor"),
    ("cursor=" + _cursor(["nan", "x"]), "cursor"),
    ("cursor=" + _cursor([[1], "x"]), "cursor"),
    ("model=a%00b", "model"),
    ("app_id=%00", "app_id"),
    ("key_id=%00", "key_id"),
    ("endpoint=Chat", "endpoint"),
    ("endpoint=%00", "endpoint"),
    ("endpoint=" + "messages" * 500, "endpoint"),
]
ODD_USAGE = [
    ("since=garbage", "since"),
    ("until=1e999", "until"),
    ("model=%00", "model"),
    ("app_id=x%00", "app_id"),
    ("group_by=%C2%B2", "group_by"),
    ("group_by=endpoint,%00", "group_by"),
]


def check(base: str, path: str, query: str, param: str) -> None:
    r = httpx.get(f"{base}{path}?{query}" if query else base + path, headers=MASTER, timeout=30)
    assert r.status_code == 400, (query, r.status_code, r.text)
    error = r.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error", (query, error)
    assert param in error["message"]


def check_all(base: str) -> None:
    for query, param in ODD_LOGS:
        check(base, "/v1/logs", query, param)
    for query, param in ODD_USAGE:
        check(base, "/v1/usage", query, param)
    check(base, "/v1/logs/chatcmpl-%00", "", "id")
    ok = httpx.get(f"{base}/v1/logs?status=200&limit=500&since=2020-01-01&until=4102444800"
                   "&endpoint=messages", headers=MASTER)
    assert ok.status_code == 200, ok.text  # the ordinary values still work
    for field, value in [("rpm", 2**63), ("tpm", 10**20), ("budget_usd", 1e300), ("expires_at", "1e999"),
                         ("expires_at", "nan")]:
        r = httpx.post(f"{base}/admin/keys", headers=MASTER, json={"name": "odd", field: value})
        assert r.status_code == 400 and r.json()["error"]["param"] == field, (field, value, r.text)


def test_odd_values_are_400_on_sqlite(gateway):
    check_all(gateway.url)


@pytest.fixture
def postgres_gateway(standins, tmp_path):
    with database("postgresql", tmp_path) as url:
        g = GatewayProcess(tmp_path / "gw", {**standins.env(), "LUNOS_DATABASE_URL": url}).start()
        yield g
        g.stop()


def test_odd_values_are_400_on_postgresql(postgres_gateway):
    check_all(postgres_gateway.url)
