"""Scale-out: one gateway process against two, both on one PostgreSQL database and one Redis.

    python bench/scale_out.py                      # json, c=32, 5 s measured per point
    python bench/scale_out.py --concurrency 64 --duration 10 --mix json=1

Starts the bench stand-in, a fresh PostgreSQL database (`--pg`, default the local server)
and Redis (`--redis`), then measures `bench/load.py` against gateway A alone, then against
A and B at once (two load processes, each with half the concurrency; no load balancer, so
the client side is split the way a round-robin balancer would split it). Both gateways
use one key with an rpm and a tpm too large to refuse anything, so every request takes
its rpm slot and reserves and settles its tokens in Redis (a budget would refuse the
bench model, which has no price), and writes its history row to
PostgreSQL. Prints one JSON object: rps and latency percentiles per point and the scaling ratio. On a
machine with fewer free cores than processes (2 gateways + stand-in + load) the ratio shows
the CPU contention, not the gateway's limit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import targets

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
LIMITS = {"rpm": 2**31 - 1}  # `--tpm` adds a tpm: its Redis script is measured then too


async def _sql(url: str, statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def _load(server: targets.Server, args, concurrency: int) -> subprocess.Popen:
    cmd = [sys.executable, str(targets.BENCH / "load.py"), "--url", server.url,
           "--model", server.model, "--mix", args.mix, "--concurrency", str(concurrency),
           "--warmup", str(args.warmup), "--duration", str(args.duration), "--pid",
           str(server.pid), *[f"--header={h}" for h in server.headers]]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _point(servers: list[targets.Server], args) -> dict:
    share = max(1, args.concurrency // len(servers))
    procs = [_load(s, args, share) for s in servers]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=args.warmup + args.duration + 120)
        if proc.returncode != 0:
            raise RuntimeError(f"load failed:\n{err[-2000:]}")
        result = json.loads(out)
        if set(result["statuses"]) != {"200"}:
            raise RuntimeError(f"the gateway refused requests: {result['statuses']}")
        results.append(result)
    return {
        "processes": len(servers),
        "concurrency": share * len(servers),
        "rps": round(sum(r["rps"] for r in results), 1),
        "latency_ms": [r["kinds"][k]["latency_ms"] for r in results for k in r["kinds"]],
        "gateway_cpu_pct": [round(r["gateway"]["cpu_pct"], 1) for r in results],
    }


def _limited_key(server: targets.Server) -> str:
    import time

    import httpx

    ready = server.url.replace("/v1/chat/completions", "/readyz")
    while httpx.get(ready).status_code != 200:  # migrated, keys loaded
        time.sleep(0.1)
    r = httpx.post(server.url.replace("/v1/chat/completions", "/admin/keys"),
                   headers={"authorization": f"Bearer {targets.LUNOS_MASTER}"},
                   json={"name": "bench-limited", **LIMITS})
    r.raise_for_status()
    return r.json()["key"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--concurrency", type=int, default=32, help="total, split over gateways")
    p.add_argument("--mix", default="json=1")
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--pg", default=PG_ADMIN, help="a PostgreSQL URL to create the database on")
    p.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    p.add_argument("--tpm", action="store_true", help="give the bench key a tpm as well")
    args = p.parse_args(argv)
    if args.tpm:
        LIMITS["tpm"] = 2**31 - 1

    name = "lunos_bench_" + secrets.token_hex(4)
    base = args.pg.rsplit("/", 1)[0]
    db = f"{base}/{name}"
    asyncio.run(_sql(args.pg, f'CREATE DATABASE "{name}"'))
    env = {"LUNOS_DATABASE_URL": db, "LUNOS_REDIS_URL": args.redis}
    started: list[targets.Server] = []
    try:
        standin = targets.start_standin(None, 64, 10.0)
        started.append(standin)
        upstream = standin.url.rsplit("/v1/", 1)[0]
        a = targets.start_lunos("scale-a", None, upstream, trace=False, extra_env=env)
        started.append(a)
        b = targets.start_lunos("scale-b", None, upstream, trace=False, extra_env=env)
        started.append(b)
        key = _limited_key(a)
        a.headers = b.headers = [f"Authorization: Bearer {key}"]
        one = _point([a], args)
        two = _point([a, b], args)
        print(json.dumps({"one": one, "two": two,
                          "scaling": round(two["rps"] / one["rps"], 3) if one["rps"] else None}))
    finally:
        for server in reversed(started):
            server.stop()
        asyncio.run(_sql(args.pg, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return 0


if __name__ == "__main__":
    sys.exit(main())
