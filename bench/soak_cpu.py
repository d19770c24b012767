"""CPU seconds per process tree and for the whole machine, from ``/proc``.

A minute whose p99 jumps is explained, or not, by who took the cores in it: serve, the
worker, the broker, ClickHouse, the generator, or something else on a shared machine.
"""

from __future__ import annotations

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


def trees_cpu(roots: dict[str, int]) -> dict[str, float]:
    """CPU seconds used by each root process and its descendants alive now, by name."""
    processes = _processes()
    below: dict[int, list[int]] = {}
    for pid, (parent, _cpu) in processes.items():
        below.setdefault(parent, []).append(pid)

    def tree(pid: int) -> float:
        own = processes[pid][1] if pid in processes else 0.0
        return own + sum(tree(child) for child in below.get(pid, []))

    return {name: tree(pid) for name, pid in roots.items()}


def machine_busy() -> float:
    """CPU seconds the whole machine spent busy since boot (all cores, not idle or iowait)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / TICKS
