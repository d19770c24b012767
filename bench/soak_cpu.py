"""CPU seconds per process tree and for the whole machine, from ``/proc``.

A minute whose p99 jumps is explained, or not, by who took the cores in it: serve, the
worker, the broker, ClickHouse, the generator, or something else on a shared machine.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command's name; None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def _processes() -> dict[int, tuple[int, float]]:
    """Every process now: pid to (parent's pid, CPU seconds used, user and system)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None:
                found[int(entry.name)] = (
                    int(fields[1]),
                    (int(fields[11]) + int(fields[12])) / TICKS,
                )
    return found


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``."""
    return [child for child, (parent, _cpu) in _processes().items() if parent == pid]


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def waiting(pid: int) -> float:
    """Seconds the threads of ``pid`` alive now spent runnable but waiting for a core.

    The second field of ``/proc/PID/task/TID/schedstat`` (nanoseconds): a service starved
    by its neighbours shows here, however little CPU it got.
    """
    total = 0
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, IndexError, ValueError):
                total += int((task / "schedstat").read_text().split()[1])
    return total / 1e9


def trees(roots: dict[str, int]) -> dict[str, tuple[float, float]]:
    """(CPU seconds used, seconds waiting for a core) of each root and its descendants alive
    now, by name."""
    processes = _processes()
    below: dict[int, list[int]] = {}
    for pid, (parent, _cpu) in processes.items():
        below.setdefault(parent, []).append(pid)

    def tree(pid: int) -> list[int]:
        return [pid, *(found for child in below.get(pid, []) for found in tree(child))]

    found = {}
    for name, root in roots.items():
        pids = [pid for pid in tree(root) if pid in processes]
        found[name] = (sum(processes[pid][1] for pid in pids), sum(map(waiting, pids)))
    return found


def machine_busy() -> float:
    """CPU seconds the whole machine spent busy since boot (all cores, not idle or iowait)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / TICKS
