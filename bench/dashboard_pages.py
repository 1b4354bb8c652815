"""Server time of the dashboard's pages over a large history (issue 24's budget: Logs
<= 250 ms, Usage <= 350 ms at 50k rows).

    PYTHONPATH=src:. python bench/dashboard_pages.py [--rows 50000] [--db sqlite|postgresql]

Fills a fresh database with `--rows` history rows over 30 days (one in ten traced, a few
sessions, errors and fallbacks), then times each page in process (median of 5, after one
warm-up) through the ASGI app: the time the gateway spends, no network.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from tests.databases import database

from lunos.gateway import dashboard
from lunos.gateway.app import create_app
from lunos.gateway.asgi import Request
from lunos.gateway.config import Settings
from lunos.gateway.records import Attempt, CallRecord
from lunos.gateway.store import row_values
from lunos.gateway.usage import TokenCounts

MASTER = "sk-lunos-dashboard-bench-master-key"
PATHS = ("/dashboard/logs", "/dashboard/logs?order=cost", "/dashboard/logs?q=quarterly+report",
         "/dashboard/usage?days=30", "/dashboard/usage?days=1")
MODELS = ["openai/gpt-4o-mini", "openai/gpt-4o", "anthropic/claude-haiku-4-5", "google/gemini-2.5-flash"]


def record(i: int, now: float) -> CallRecord:
    r = CallRecord(f"chatcmpl-bench-{i:07d}", "master", f"app-{i % 7}", MODELS[i % 4])
    r.created_at = now - random.random() * 30 * 86400
    r.status = 500 if i % 50 == 0 else 200
    r.provider = r.model.split("/")[0]
    r.tokens = TokenCounts(prompt=100 + i % 900, completion=50 + i % 400)
    r.cost, r.latency_ms, r.ttft_ms = 0.0001 * (i % 13), 200 + i % 1500, 80 + i % 300
    if hasattr(r, "session_id"):  # (the same script times the version before them)
        r.requested_model = r.model
        r.session_id = f"s-{i // 4}" if i % 3 == 0 else None
    r.attempts = [Attempt(r.model, r.provider, r.status, None, r.latency_ms)]
    if i % 10 == 0:
        r.trace = True
        r.request = (b'{"model": "%s", "messages": [{"role": "user", "content": "question %d about '
                     b'invoices and refunds for the quarterly report"}]}' % (r.model.encode(), i))
        r.response = {"content": f"An answer {i} about the quarterly report.", "finish_reason": "stop"}
    return r


async def main(rows: int, kind: str) -> None:
    home = Path(tempfile.mkdtemp())
    with database(kind, home) as url:
        app = create_app(Settings(home=home, master_key=MASTER, database_url=url))
        await app.startup()
        try:
            now = time.time()
            for start in range(0, rows, 5000):
                await app.gw.store.insert_rows([row_values(record(i, now))
                                                for i in range(start, min(start + 5000, rows))])

            async def asgi(scope, receive, send):
                await dashboard.handle(app.gw, Request(scope, receive), send)

            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi),
                                         base_url="http://lunos.test") as client:
                page = await client.get("/dashboard/login")
                token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
                await client.post("/dashboard/login", data={"csrf": token, "key": MASTER})
                for path in (*PATHS, f"/dashboard/logs/chatcmpl-bench-{rows // 2:07d}"):
                    times = []
                    for _ in range(8):
                        began = time.perf_counter()
                        response = await client.get(path)
                        times.append((time.perf_counter() - began) * 1000)
                        assert response.status_code == 200, (path, response.status_code)
                    print(f"{kind} {rows} rows  {path:45s} median {statistics.median(times[1:]):7.1f} ms")
        finally:
            await app.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    asyncio.run(main(args.rows, args.db))
