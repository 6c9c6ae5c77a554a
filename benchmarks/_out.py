"""A benchmark's figures as a TSV stamped with the commit it ran on (read by tools/validation_doc.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd


def write_rows(rows: list[dict], path: Path) -> None:
    repo = Path(__file__).resolve().parents[1]
    commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "unknown"
    df = pd.DataFrame(rows)
    df.insert(0, "commit", commit)
    df.to_csv(path, sep="\t", index=False)
    print(f"wrote {path}")


def reset_peak_memory() -> None:
    """Restart the process's peak resident memory count (Linux), so that what came before is not counted."""
    reset = Path("/proc/self/clear_refs")
    if reset.exists():
        reset.write_text("5")


def peak_memory_gb() -> float:
    """Peak resident memory of this process (GB) since :func:`reset_peak_memory` (Linux), else since its start."""
    status = Path("/proc/self/status")
    if status.exists():
        return next(int(line.split()[1]) for line in status.read_text().splitlines()
                    if line.startswith("VmHWM")) / 1024 ** 2
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2  # kB on Linux


def in_fresh_process(script: str, size: int) -> dict:
    """Run ``script --child size`` in a new Python process and return the JSON it prints last."""
    import json
    import sys

    res = subprocess.run([sys.executable, script, "--child", str(size)], capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(res.stderr)
    return json.loads(res.stdout.strip().splitlines()[-1])
