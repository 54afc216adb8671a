"""CPU time of server processes from /proc/<pid>/stat (Linux only).

CPU per request is the honest cost figure when the load generator and the servers
share the same cores: req/s alone moves with whatever else the machine is doing.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["cpu_seconds", "process_tree"]

_TICKS = os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its live descendants (uvicorn workers, reloaders)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                todo.extend(int(c) for c in (task / "children").read_text().split())
            except OSError:  # the task ended while we looked
                continue
    return found


def _stat_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
        raw = fh.read()
    # Field 2 (comm) may hold spaces and parentheses: split after its closing one.
    fields = raw[raw.rindex(")") + 2:].split()
    # utime, stime, cutime, cstime are fields 14-17; fields[0] here is field 3.
    # cutime/cstime keep the CPU of children that already exited and were reaped.
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime + cutime + cstime) / _TICKS


def cpu_seconds(pids: Iterable[int], *, children: bool = True) -> float:
    """Total user+system CPU seconds of ``pids`` (and, by default, their descendants).

    Processes that vanish between listing and reading count as zero; read before
    and after a run and subtract.
    """
    total = 0.0
    seen: set[int] = set()
    for pid in pids:
        for member in process_tree(pid) if children else [pid]:
            if member in seen:
                continue
            seen.add(member)
            try:
                total += _stat_seconds(member)
            except (OSError, ValueError):
                continue
    return total
