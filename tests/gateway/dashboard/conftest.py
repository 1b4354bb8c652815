"""An in-process gateway whose `/dashboard` paths go to `dashboard.handle`, for page tests."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from lunos.gateway import dashboard
from lunos.gateway.app import create_app
from lunos.gateway.asgi import Request
from lunos.gateway.config import Settings
from lunos.gateway.records import CallRecord
from lunos.gateway.store import row_values
from lunos.gateway.usage import TokenCounts

MASTER = "sk-lunos-dashboard-tests-master-key"
HOST = "lunos.test"


class Site:
    def __init__(self, app) -> None:
        self.app = app
        self.gw = app.gw

    async def asgi(self, scope, receive, send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and (path == "/dashboard" or path.startswith("/dashboard/")):
            await dashboard.handle(self.gw, Request(scope, receive), send)
            return
        await self.app(scope, receive, send)

    def client(self, scheme: str = "http") -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.asgi),
                                 base_url=f"{scheme}://{HOST}")

    async def sign_in(self, client: httpx.AsyncClient, key: str) -> httpx.Response:
        page = await client.get("/dashboard/login")
        response = await client.post("/dashboard/login",
                                     data={"csrf": csrf_of(page.text), "key": key})
        assert response.status_code == 303, response.text
        return response

    async def new_key(self, name: str) -> tuple[dict, str]:
        row, raw = await self.gw.store.create_key(name)
        await self.gw.keysync.refresh()
        return row, raw

    async def add_row(self, row_id: str, key_id: str | None, **fields) -> CallRecord:
        record = CallRecord(row_id, key_id, fields.pop("app_id", "app-a"),
                            fields.pop("model", "openai/gpt-4o-mini"))
        record.created_at = fields.pop("created_at", time.time())
        record.status = fields.pop("status", 200)
        record.provider = "openai"
        record.tokens = TokenCounts(prompt=12, completion=7, cached=2)
        record.cost = fields.pop("cost", 0.0004)
        record.latency_ms = 321.5
        for name, value in fields.items():
            setattr(record, name, value)
        await self.gw.store.insert_rows([row_values(record)])
        return record


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field in the page"
    return match.group(1)


@pytest.fixture(scope="module")
async def site(tmp_path_factory):
    app = create_app(Settings(home=tmp_path_factory.mktemp("dashboard"), master_key=MASTER))
    await app.startup()
    yield Site(app)
    await app.shutdown()
