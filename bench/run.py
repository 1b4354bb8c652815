"""The benchmark: one command that installs, starts, measures and writes the table.

    python bench/run.py                 # full run (~10 min): every target, every scenario
    python bench/run.py --quick         # ~3 min, shorter phases
    python bench/run.py --only lunos --scenarios json-c1,json-c64,stream-128
    python bench/run.py --scenarios messages   # the Messages door against chat (~3 min)
    python bench/run.py --scenarios responses  # the Responses door against chat (~3 min)
    python bench/run.py --scenarios media      # the media routes against chat (~3 min)
    python bench/run.py --soak 600      # 10 min mixed load against Lunos, RSS over time

Targets: direct (the stand-in itself), pipe (a byte pipe: the floor), lunos, lunos-trace,
litellm, portkey. `direct` always runs: every other row is compared with it. The `messages`,
`responses` and `media` scenarios measure Lunos's doors against chat (bench/doors.py). Results go to
bench/.work/results/ (JSON and Markdown); a full run or a soak run (or --write-docs) also
rewrites docs/benchmarks.md with the newest comparison, door measurements and soak, keeping
its notes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata as md
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import report, targets
from bench.procstat import Watch

ALL_TARGETS = ("direct", "pipe", "lunos", "lunos-trace", "portkey", "litellm")
GROUPS = {"json": list(report.JSON_SCENARIOS), "stream": list(report.STREAM_SCENARIOS),
          **{group: list(scenarios) for group, scenarios in report.DOOR_SCENARIOS.items()}}
DOOR_SCENARIOS = [s for scenarios in report.DOOR_SCENARIOS.values() for s in scenarios]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Lunos gateway benchmark (see bench/README.md)")
    p.add_argument("--quick", action="store_true", help="short phases (~2-3 minutes in all)")
    p.add_argument("--only", help=f"comma list of targets: {', '.join(ALL_TARGETS)}")
    p.add_argument("--scenarios", help="comma list of scenarios or groups (json, stream, "
                   "messages, responses, media): " + ", ".join([*report.SCENARIOS, *DOOR_SCENARIOS]))
    p.add_argument("--warmup", type=float, help="seconds of warm-up per point")
    p.add_argument("--duration", type=float, help="measured seconds per point")
    p.add_argument("--drain", type=float, help="max seconds to wait for in-flight requests")
    p.add_argument("--rounds", type=int, help="rounds of the door scenarios (default 5; "
                   "3 with --quick)")
    p.add_argument("--chunks", type=int, default=64, help="content chunks per stream")
    p.add_argument("--chunk-delay-ms", type=float, default=10.0, help="stand-in token pacing")
    p.add_argument("--no-pin", action="store_true",
                   help="do not pin the gateway and the load to separate CPUs")
    p.add_argument("--soak", type=float, metavar="SECONDS",
                   help="run the soak against Lunos for this long (alone, unless --only/"
                        "--scenarios are also given)")
    p.add_argument("--soak-concurrency", type=int, default=32)
    p.add_argument("--profile", action="store_true",
                   help="record each Lunos point with py-spy into bench/.work/profiles/ "
                        "(slows the gateway: the numbers of such a run are not written)")
    p.add_argument("--write-docs", action="store_true", help="rewrite docs/benchmarks.md")
    p.add_argument("--no-docs", action="store_true", help="never rewrite docs/benchmarks.md")
    args = p.parse_args(argv)
    full_default = not (args.quick or args.only or args.scenarios)
    args.targets = list(ALL_TARGETS)
    if args.only:
        wanted = [t.strip() for t in args.only.split(",") if t.strip()]
        unknown = set(wanted) - set(ALL_TARGETS)
        if unknown:
            p.error(f"unknown target(s): {', '.join(sorted(unknown))}")
        args.targets = [t for t in ALL_TARGETS if t == "direct" or t in wanted]
    scen = []
    for item in (args.scenarios or ",".join(GROUPS)).split(","):
        item = item.strip()
        if item in GROUPS:
            scen += GROUPS[item]
        elif item in report.SCENARIOS or item in DOOR_SCENARIOS:
            scen.append(item)
        elif item:
            p.error(f"unknown scenario {item!r}")
    args.scenario_list = [s for s in report.SCENARIOS if s in scen]
    args.door_lists = {group: [s for s in scenarios if s in scen and "lunos" in args.targets]
                       for group, scenarios in report.DOOR_SCENARIOS.items()}
    if not args.scenario_list:
        args.targets = []
    if args.soak and not (args.only or args.scenarios):
        args.targets, args.scenario_list, args.door_lists = [], [], {}
    args.rounds = args.rounds or (3 if args.quick else 5)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 3.0)
    args.duration = args.duration if args.duration is not None else (2.0 if args.quick else 10.0)
    args.drain = args.drain if args.drain is not None else (5.0 if args.quick else 20.0)
    args.docs = (full_default or args.write_docs) and not args.no_docs and not args.profile
    return args


# --- environment description -----------------------------------------------------------------


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": mem, "kernel": platform.release()}


def versions() -> dict:
    def ver(name: str) -> str | None:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return None

    node = None
    if shutil.which("node"):
        node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return {"python": platform.python_version(), "uvicorn": ver("uvicorn"),
            "uvloop": ver("uvloop"), "httptools": ver("httptools"), "lunos": ver("lunos"),
            "litellm": targets.litellm_version(), **targets.portkey_versions(), "node": node}


# --- one measured point ----------------------------------------------------------------------


def load_command(server: targets.Server, scenario: str, args, standin: targets.Server,
                 gateway_pid: int | None, mix: str | None = None, **over) -> list[str]:
    conc = report.SCENARIOS.get(scenario, over.pop("concurrency", 1))
    stream = scenario.startswith("stream")
    cmd = [sys.executable, str(targets.BENCH / "load.py"), "--url", server.url,
           "--model", server.model, "--mix", mix or ("stream=1" if stream else "json=1"),
           "--concurrency", str(conc),
           "--warmup", str(over.get("warmup", args.warmup + (0.5 if stream else 0))),
           "--duration", str(over.get("duration", args.duration)),
           "--drain", str(over.get("drain", args.drain)),
           "--expect-content", str(args.chunks),
           "--standin-pid", str(standin.pid)]
    if stream or mix:
        # Spread the clients over one stream's length so they do not move in step.
        cmd += ["--stagger", str(min(args.warmup, args.chunks * args.chunk_delay_ms / 1000))]
    if gateway_pid:
        cmd += ["--pid", str(gateway_pid)]
    if server.fail_model:
        cmd += ["--fail-model", server.fail_model]
    for h in server.headers:
        cmd += ["--header", h]
    if server.extra:
        cmd += ["--extra", json.dumps(server.extra)]
    for flag in ("rss_every",):
        if flag in over:
            cmd += ["--" + flag.replace("_", "-"), str(over[flag])]
    return cmd


def run_load(cmd: list[str], cpu: str | None, timeout: float) -> dict:
    out = subprocess.run(targets.pinned(cmd, cpu), capture_output=True, text=True,
                         timeout=timeout)
    if out.returncode != 0 or not out.stdout.strip():
        raise RuntimeError(f"load generator failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout)


def summary(name: str, scenario: str, point: dict) -> str:
    gw = point["gateway"]
    if scenario.startswith("stream"):
        s = point["kinds"]["stream"]
        ttfb, relay = s["ttfb_ms"] or {}, s["relay_ms"] or {}
        text = (f"{s['rps']:.1f} streams/s, {point['events_per_s']:,.0f} events/s, "
                f"TTFB p50 {ttfb.get('p50', 0):.2f} p99 {ttfb.get('p99', 0):.2f} ms, "
                f"relay p50 {relay.get('p50', 0):.2f} p99 {relay.get('p99', 0):.2f} ms")
        if gw["cpu_us_per_event"]:
            text += f", {gw['cpu_us_per_event']:.1f} µs CPU/event"
    else:
        lat = point["kinds"]["json"]["latency_ms"] or {}
        text = (f"{point['rps']:,.0f} req/s, p50 {lat.get('p50', 0):.2f} p90 "
                f"{lat.get('p90', 0):.2f} p99 {lat.get('p99', 0):.2f} ms")
        if gw["cpu_ms_per_request"]:
            text += f", {gw['cpu_ms_per_request']:.3f} ms CPU/req"
    if gw.get("rss_end_mb"):
        text += f", RSS {gw['rss_start_mb']:.0f}→{gw['rss_end_mb']:.0f} MB"
    text += (f" [load CPU {point['load_cpu_pct']:.0f}%, stand-in CPU "
             f"{point['standin_cpu_pct']:.0f}%; errors: {report.problems(point)}]")
    return f"{name:>12} {scenario:<11} {text}"


def profile_start(pid: int, name: str, scenario: str, seconds: float):
    spy = shutil.which("py-spy")
    if spy is None:
        log("py-spy is not installed (pip install py-spy): no profile")
        return None
    out = targets.WORK / "profiles" / f"{name}-{scenario}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([spy, "record", "--gil", "--format", "raw", "--pid", str(pid), "--duration",
                             str(int(seconds + 0.999)), "--rate", "200", "-o", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, out


def profile_finish(handle) -> None:
    if handle is None:
        return
    proc, out = handle
    proc.wait(60)
    if not out.exists():
        return
    self_time: Counter = Counter()
    total: Counter = Counter()
    samples = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        samples += n
        self_time[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    lines = [f"{samples} samples", "", "self time:"]
    lines += [f"{100 * n / samples:6.1f}%  {f}" for f, n in self_time.most_common(40)]
    lines += ["", "inclusive time:"]
    lines += [f"{100 * n / samples:6.1f}%  {f}" for f, n in total.most_common(60)]
    out.with_suffix(".top.txt").write_text("\n".join(lines) + "\n")
    log(f"profile: {out.with_suffix('.top.txt')}")


def start_target(name: str, cpu: str | None, standin: targets.Server) -> targets.Server:
    upstream = standin.url.rsplit("/v1/", 1)[0]
    if name == "direct":
        return standin
    if name == "pipe":
        return targets.start_pipe(cpu, upstream)
    if name in ("lunos", "lunos-trace", "lunos-soak"):
        return targets.start_lunos(name, cpu, upstream, trace=name != "lunos")
    if name == "litellm":
        return targets.start_litellm(cpu, upstream)
    if name == "portkey":
        return targets.start_portkey(cpu, upstream)
    raise ValueError(name)


def measure_target(name: str, args, standin: targets.Server, gw_cpu, side_cpu) -> dict:
    entry: dict = {"points": {}}
    server = start_target(name, gw_cpu, standin)
    gateway_pid = None if name == "direct" else server.pid
    try:
        time.sleep(1.0)
        watch = Watch(gateway_pid)
        entry["rss_idle_mb"] = watch.sample()[1] if gateway_pid else None
        sent = 0
        for scenario in args.scenario_list:
            cmd = load_command(server, scenario, args, standin, gateway_pid)
            handle = None
            if args.profile and name.startswith("lunos"):
                handle = profile_start(server.pid, name, scenario, args.warmup + args.duration)
            try:
                point = run_load(cmd, side_cpu, args.warmup + args.duration + args.drain + 120)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                log(f"{name} {scenario}: {exc}")
                entry.setdefault("errors", {})[scenario] = str(exc)[-500:]
                continue
            finally:
                profile_finish(handle)
            if gateway_pid is None:
                point["gateway"] = dict.fromkeys(point["gateway"])
            entry["points"][scenario] = point
            sent += point["totals"].get("sent", 0)
            print(summary(name, scenario, point), flush=True)
            if server.proc.poll() is not None:
                raise RuntimeError(f"{name} exited during {scenario}")
            time.sleep(0.5)
        if gateway_pid:
            entry["rss_final_mb"] = watch.sample()[1]
        if server.home is not None:
            entry["history"] = wait_history(server, sent)
    finally:
        if name != "direct":
            server.stop()
    return entry


def wait_history(server: targets.Server, sent: int, timeout: float = 15.0) -> dict:
    """History rows are written in the background: wait for them to catch up."""
    deadline = time.monotonic() + timeout
    rows = targets.history_rows(server)
    while rows is not None and rows < sent and time.monotonic() < deadline:
        time.sleep(0.5)
        rows = targets.history_rows(server)
    return {"rows": rows, "sent": sent}


def soak(args, standin: targets.Server, gw_cpu, side_cpu) -> dict:
    seconds = args.soak
    warmup = min(60.0, seconds / 5)
    every = 5.0 if seconds >= 60 else 1.0
    mix = "json=60,stream=25,fail=10,disconnect=5"
    server = start_target("lunos-soak", gw_cpu, standin)
    try:
        time.sleep(1.0)
        cmd = load_command(server, "soak", args, standin, server.pid, mix=mix,
                           concurrency=args.soak_concurrency, warmup=warmup,
                           duration=seconds - warmup, drain=30, rss_every=every)
        log(f"soak: {seconds:.0f} s, mix {mix}, concurrency {args.soak_concurrency}")
        result = run_load(cmd, side_cpu, seconds + 300)
        history = wait_history(server, result["totals"].get("sent", 0))
    finally:
        server.stop()
    samples = result.get("rss_samples", [])
    after = [(t, v) for t, v in samples if t >= warmup] or samples
    out = {
        "command": "python bench/run.py --soak " + f"{seconds:g}",
        "seconds": seconds, "mix": mix, "every": every, "result": result, "history": history,
        "rss_after_warmup_mb": after[0][1] if after else None,
        "rss_end_mb": after[-1][1] if after else None,
        "rss_max_mb": max((v for _, v in samples), default=None),
        "slope_mb_per_min": report.slope_per_minute(after),
    }
    print("\n".join(report.soak_table(out)), flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cores = os.cpu_count() or 1
    pin = not args.no_pin and cores >= 2 and shutil.which("taskset") is not None
    gw_cpu, side_cpu = ("0", "1") if pin else (None, None)
    placement = ("gateway pinned to CPU 0; stand-in and load generator pinned to CPU 1 "
                 "(taskset)" if pin else "not pinned")
    started = time.monotonic()
    if "litellm" in args.targets:
        targets.setup_litellm(log)
    if "portkey" in args.targets:
        targets.setup_portkey(log)
    results: dict = {
        "meta": {
            "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "command": "python bench/run.py" + "".join(" " + shlex.quote(a)
                                                       for a in (argv or sys.argv[1:])),
            "machine": machine(), "versions": versions(), "placement": placement,
            "warmup": args.warmup, "duration": args.duration, "chunks": args.chunks,
            "chunk_delay_ms": args.chunk_delay_ms, "scenarios": args.scenario_list,
        },
        "targets": {},
    }
    log(f"placement: {placement}; scenarios: {', '.join(args.scenario_list) or '-'}")
    standin = targets.start_standin(side_cpu, args.chunks, args.chunk_delay_ms)
    try:
        if args.targets:
            # The stand-in's own ceiling: the load generator on the other CPU.
            cap = run_load(load_command(standin, "json-c64", args, standin, None,
                                        warmup=1, duration=3), gw_cpu, 60)
            results["standin_capacity"] = cap
            log(f"stand-in capacity: {cap['rps']:,.0f} req/s at c=64 "
                f"(stand-in CPU {cap['standin_cpu_pct']:.0f}%, load CPU {cap['load_cpu_pct']:.0f}%)")
        for name in args.targets:
            log(f"target {name}")
            try:
                results["targets"][name] = measure_target(name, args, standin, gw_cpu, side_cpu)
            except RuntimeError as exc:
                log(f"{name}: {exc}")
                results["targets"][name] = {"points": {}, "failed": str(exc)[-2000:]}
        for group, scenarios in args.door_lists.items():
            if not scenarios:
                continue
            from bench import doors  # it imports this module (load_command, run_load)

            log(f"the {report.DOOR_TITLES[group]} door against chat: {', '.join(scenarios)}")
            results[group] = {
                "command": results["meta"]["command"], "date": results["meta"]["date"],
                **doors.measure(args, group, standin, gw_cpu, side_cpu)}
        if args.soak:
            results["soak"] = soak(args, standin, gw_cpu, side_cpu)
    finally:
        standin.stop()
    results["meta"]["elapsed_s"] = time.monotonic() - started
    write_results(results, args)
    log(f"done in {results['meta']['elapsed_s']:.0f} s")
    return 0


def write_results(results: dict, args) -> None:
    out_dir = targets.WORK / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    text = report.markdown(results)
    (out_dir / f"{stamp}.json").write_text(json.dumps(results, indent=1))
    (out_dir / f"{stamp}.md").write_text(text)
    tables = []
    if results["targets"]:
        tables += [report.json_table(results), report.stream_table(results),
                   report.memory_table(results)]
    if results["targets"].get("lunos"):
        tables.append(report.target_checks(results))
    for group in report.DOOR_SCENARIOS:
        if results.get(group):
            tables.append(report.door_section(results[group], group))
    if results.get("soak"):
        tables.append(report.soak_table(results["soak"]))
    for table in tables:
        print()
        print("\n".join(table))
    log(f"results: {out_dir / stamp}.json and .md")
    if args.docs:
        write_docs(results)


def latest_results(key: str) -> dict | None:
    """The newest saved run that holds `key` ("targets" or "soak")."""
    for path in sorted((targets.WORK / "results").glob("*.json"), reverse=True):
        data = json.loads(path.read_text())
        if data.get(key):
            return data
    return None


def write_docs(results: dict) -> None:
    """docs/benchmarks.md: the newest comparison run, door measurements and soak, notes kept."""
    docs_path = targets.ROOT / "docs" / "benchmarks.md"
    main_run = results if results["targets"] else latest_results("targets")
    if main_run is None:
        log("no comparison run yet: docs/benchmarks.md not written")
        return
    combined = dict(main_run)
    for part in (*report.DOOR_SCENARIOS, "soak"):
        newest = results if results.get(part) else latest_results(part)
        combined[part] = newest[part] if newest else None
    notes = report.kept_notes(docs_path.read_text()) if docs_path.exists() else ""
    docs_path.write_text(report.markdown(combined, notes))
    log(f"wrote {docs_path}")


if __name__ == "__main__":
    sys.exit(main())
