"""How many threads a step may use for its numerical kernels (FFTs)."""

from __future__ import annotations

import os


def available_cpus() -> int:
    """The CPUs this process may use: ``OMP_NUM_THREADS`` when set (a scheduler's or the user's limit), else the
    CPUs the process is pinned to (a Slurm job's allocation, a container's quota), never ``os.cpu_count()`` of
    a shared node. Results do not depend on it: the FFTs split independent lines between threads."""
    limit = os.environ.get("OMP_NUM_THREADS", "")
    if limit.isdigit() and int(limit) > 0:
        return int(limit)
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
