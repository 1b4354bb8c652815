"""What history and traces cost: the same gateway with them on, then off, in alternation.

    python bench/history_overhead.py [--rounds 5] [--duration 5] [--concurrency 64]

Starts the fast stand-in and two `lunos serve` processes (one with history and
`observability: true` traces, one with `LUNOS_HISTORY=off`), then measures them in turn,
round after round, at the same concurrency with the same load generator. Prints each round's
requests/s and the median of the per-round ratios (on / off). Pinned like `bench/run.py`:
the gateway measured on CPU 0, stand-in and load on CPU 1.

`--together` loads both gateways at once instead, both on CPU 0, and compares the CPU each
spends per request in the same seconds (off / on: the throughput a gateway bound by its one
core reaches is the inverse of that cost). On a machine whose speed swings from second to
second, alternating turns measure the swings; shared seconds see the same ones.

`--together --slice 0.05` keeps both loaded but lets one run at a time: each gateway is
paused (SIGSTOP) while the other has the core, in turns of 0.05 s (these spread least). Alternating runs in
slices short enough that the machine's swings fall on both alike, and each gateway alone on
its core while it runs, as in alternation.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import run, targets


def queue_depth(server: targets.Server) -> int | None:
    """Rows the gateway's history writer still holds (its /metrics gauge): a writer that
    keeps up holds about one batch when a round ends; one that falls behind holds more."""
    url = server.url.replace("/v1/chat/completions", "/metrics")
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {targets.LUNOS_MASTER}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("lunos_history_queue_depth"):
            return int(float(line.rsplit(" ", 1)[1]))
    return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--no-trace", action="store_true", help="history on, but without traces")
    p.add_argument("--database-url", help="LUNOS_DATABASE_URL for both gateways (default: each "
                   "its own SQLite file); a PostgreSQL database is emptied of Lunos's tables first")
    p.add_argument("--together", action="store_true",
                   help="load both gateways at once and compare their CPU per request")
    p.add_argument("--settle", type=float, default=3.0,
                   help="seconds of rest before each measurement: both gateways share CPU 0, "
                        "so one still writing its history must not slow the other's turn")
    p.add_argument("--slice", type=float,
                   help="with --together: run one gateway at a time, the other paused, in "
                        "turns of this many seconds")
    args = p.parse_args(argv)
    load_args = argparse.Namespace(warmup=args.warmup, duration=args.duration, drain=10.0,
                                   chunks=64, chunk_delay_ms=10.0)
    db = {}
    if args.database_url:
        db = {"LUNOS_DATABASE_URL": args.database_url}
        if args.database_url.startswith(("postgresql://", "postgres://")):
            targets.reset_postgres(args.database_url)
    standin = targets.start_standin("1", load_args.chunks, load_args.chunk_delay_ms)
    upstream = standin.url.rsplit("/v1/", 1)[0]
    gateways = {
        "history+traces on": targets.start_lunos("lunos-history-on", "0", upstream,
                                                 trace=not args.no_trace, extra_env=db),
        "history off": targets.start_lunos("lunos-history-off", "0", upstream, trace=False,
                                           extra_env={**db, "LUNOS_HISTORY": "off"}),
    }
    rps: dict[str, list[float]] = {name: [] for name in gateways}
    try:
        if args.together:
            return together(gateways, standin, load_args, args)
        for round_no in range(1, args.rounds + 1):
            order = list(gateways) if round_no % 2 else list(reversed(gateways))
            for name in order:
                server = gateways[name]
                time.sleep(args.settle)
                cmd = run.load_command(server, "json", load_args, standin, server.pid,
                                       concurrency=args.concurrency)
                point = run.run_load(cmd, "1", args.warmup + args.duration + 60)
                rps[name].append(point["rps"])
                depth = queue_depth(server) if name != "history off" else None
                print(f"round {round_no}: {name:<18} {point['rps']:8,.0f} req/s "
                      f"({point['gateway']['cpu_ms_per_request']:.3f} ms CPU/req)"
                      + (f", {depth} rows queued at the end" if depth is not None else ""),
                      flush=True)
    finally:
        for server in gateways.values():
            server.stop()
        standin.stop()
    ratios = [on / off for on, off in zip(rps["history+traces on"], rps["history off"], strict=True)]
    report(ratios, "on/off", args.no_trace)
    return 0


def report(ratios: list[float], what_ratio: str, no_trace: bool) -> None:
    median = statistics.median(ratios)
    print(f"\nper-round ratio {what_ratio}: {', '.join(f'{r:.3f}' for r in ratios)}")
    what = "history on, traces off" if no_trace else "history and traces on"
    print(f"median ratio: {median:.3f}  (throughput change with {what}: {(median - 1) * 100:+.1f}%)")


def together(gateways: dict[str, targets.Server], standin: targets.Server, load_args, args) -> int:
    """Both gateways under load in the same seconds; the ratio of their CPU per request."""
    ratios = []
    for round_no in range(1, args.rounds + 1):
        time.sleep(args.settle)
        procs = {name: subprocess.Popen(
            targets.pinned(run.load_command(server, "json", load_args, standin, server.pid,
                                            concurrency=args.concurrency), "1"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for name, server in gateways.items()}
        if args.slice:
            take_turns([server.pid for server in gateways.values()], list(procs.values()), args.slice)
        points = {}
        for name, proc in procs.items():
            out, err = proc.communicate(timeout=args.warmup + args.duration + 60)
            if proc.returncode != 0:
                raise RuntimeError(f"load generator failed for {name}:\n{err[-3000:]}")
            points[name] = json.loads(out)
        on, off = points["history+traces on"], points["history off"]
        cost_on, cost_off = (p["gateway"]["cpu_ms_per_request"] for p in (on, off))
        ratios.append(cost_off / cost_on)
        print(f"round {round_no}: on {on['rps']:6,.0f} req/s {cost_on:.3f} ms CPU/req, "
              f"off {off['rps']:6,.0f} req/s {cost_off:.3f} ms CPU/req, ratio {ratios[-1]:.3f}",
              flush=True)
    report(ratios, "(CPU per request off / on)", args.no_trace)
    return 0


def take_turns(pids: list[int], loads: list[subprocess.Popen], seconds: float) -> None:
    """Let one of `pids` run at a time, the others paused, in turns, until the loads end."""
    turn = 0
    try:
        while any(load.poll() is None for load in loads):
            running = pids[turn % len(pids)]
            os.kill(running, signal.SIGCONT)
            for pid in pids:
                if pid != running:
                    os.kill(pid, signal.SIGSTOP)
            time.sleep(seconds)
            turn += 1
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


if __name__ == "__main__":
    sys.exit(main())
