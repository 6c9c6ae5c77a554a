"""The run's QC flags: one tidy table of every check that can flag a sample, and the summary a user sees.

Each stage that checks its own result writes a QC table with a ``flagged`` and a ``flag_reason`` column
(registration edges, volume edges); :func:`flag_table` gathers them into one table (``results/tables/
qc_flags.tsv``), :func:`sample_flags` marks each sample for the cohort table, and :func:`summary_lines` is
what the end-of-run summary prints.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

COLUMNS = ["sample", "stage", "item", "flagged", "reason", "source"]


def flag_rows(qc: pd.DataFrame, stage: str, source: str) -> pd.DataFrame:
    """The rows of one stage's QC table (columns ``sample``, ``edge``, ``flagged``, optional ``flag_reason``)."""
    reason = qc["flag_reason"] if "flag_reason" in qc else pd.Series([""] * len(qc), index=qc.index)
    flagged = qc["flagged"].astype(str).str.lower().isin(["true", "1"])
    reason = reason.astype(object).where(reason.notna(), "").astype(str).where(flagged, "")
    reason = reason.where(~flagged | (reason != ""), "flagged (see the QC table)")
    return pd.DataFrame({"sample": qc["sample"].astype(str), "stage": stage, "item": qc["edge"].astype(str),
                         "flagged": flagged, "reason": reason, "source": source})[COLUMNS]


def flag_table(tables: dict[str, list[str]]) -> pd.DataFrame:
    """Every QC row of the run: ``{stage: [QC table paths]}`` -> one table, flagged rows first."""
    frames = [flag_rows(pd.read_csv(path, sep="\t"), stage, str(path))
              for stage, paths in tables.items() for path in paths]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    return df.sort_values(["flagged", "sample", "stage", "item"], ascending=[False, True, True, True],
                          kind="stable").reset_index(drop=True)


def sample_flags(flags: pd.DataFrame) -> pd.DataFrame:
    """Per sample: ``qc`` (``ok`` or ``flagged``) and ``qc_reason`` (``item: reason`` of every flag, ``; ``-joined)."""
    out = []
    flagged = flags["flagged"].astype(str).str.lower().isin(["true", "1"])
    for sample, sub in flags.assign(flagged=flagged).groupby("sample", sort=True):
        bad = sub[sub.flagged]
        out.append({"sample": sample, "qc": "flagged" if len(bad) else "ok",
                    "qc_reason": "; ".join(f"{r.item}: {r.reason}" for r in bad.itertuples())})
    return pd.DataFrame(out, columns=["sample", "qc", "qc_reason"])


def summary_lines(results: str | Path = "results") -> list[str]:
    """The end-of-run summary: every flagged check found in the run's QC tables (also after a failed run)."""
    results = Path(results)
    tables = {"registration": sorted(map(str, results.glob("registration/*/*_qc.tsv"))),
              "volume registration": sorted(map(str, results.glob("registration/*/volumes/*_qc.tsv"))),
              "msi target": sorted(map(str, results.glob("msi/*/msi_qc.tsv")))}
    flags = flag_table(tables)
    bad = flags[flags.flagged]
    if not len(flags):
        return []
    lines = [f"nanohet QC: {len(bad)} of {len(flags)} checks flagged"
             + (" (all passed)" if not len(bad) else "; see results/tables/qc_flags.tsv and the report:")]
    lines += [f"  FLAGGED {r.sample} {r.stage} {r.item}: {r.reason}" for r in bad.itertuples()]
    return lines
