"""How many threads a step may use for its numerical kernels (FFTs), and independent tasks run in processes."""

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


def run_parallel(tasks: list, workers: int) -> list:
    """Run ``tasks`` (``(function, kwargs)`` pairs) in ``workers`` processes at a time and return their results
    in order; the first error is raised. Processes are forked (Linux), so they start without importing anything
    again; with one worker, or elsewhere, the tasks run here, one after the other. Each task must depend on its
    own arguments only (e.g. its own seed), so the results do not depend on the number of workers."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    workers = max(1, min(int(workers), len(tasks)))
    if workers == 1 or "fork" not in multiprocessing.get_all_start_methods():
        return [func(**kwargs) for func, kwargs in tasks]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        futures = [pool.submit(func, **kwargs) for func, kwargs in tasks]
        return [f.result() for f in futures]
