"""What the machine spent while a benchmark ran: busy CPU seconds over every process (from /proc/stat),
so a wall-time figure can say whether the cores were the limit (a 20-host fleet on 2 cores is)."""

from __future__ import annotations

import os


def busy_cpu_seconds() -> float:
    """CPU seconds all cores spent not idle (user, nice, system, irq, softirq, steal) since boot."""
    with open("/proc/stat", encoding="ascii") as handle:
        fields = [int(value) for value in handle.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def cores() -> int:
    return len(os.sched_getaffinity(0))
