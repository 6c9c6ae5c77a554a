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
