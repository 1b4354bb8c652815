"""CPU time and resident memory of a process and its descendants, read from /proc (Linux)."""

from __future__ import annotations

import os

TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: split after the last ')'.
    return raw[raw.rindex(")") + 2:].split()


def tree(pid: int) -> list[int]:
    """`pid` and every live descendant (multi-process servers fork workers)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = _stat(int(name))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of each process (all its threads, and its reaped children)."""
    total = 0
    for pid in pids:
        fields = _stat(pid)
        if fields is not None:
            # fields[11:15]: utime, stime, cutime, cstime (after pid and comm were removed)
            total += sum(int(x) for x in fields[11:15])
    return total / TICK


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm", "rb") as f:
                total += int(f.read().split()[1])
        except OSError:
            pass
    return total * PAGE / 2**20


class Watch:
    """A process tree, sampled at the edges of a measured phase."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid

    def sample(self) -> tuple[float, float]:
        if not self.pid:
            return 0.0, 0.0
        pids = tree(self.pid)
        return cpu_seconds(pids), rss_mb(pids)
