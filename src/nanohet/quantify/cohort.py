"""The cohort: every sample's metrics in one tidy table, and a per-group summary."""

from __future__ import annotations

import pandas as pd

SECTION_STAT_UNITS = {"tissue_area_mm2": "mm2", "necrotic_fraction": "fraction", "vessel_count": "count",
                      "vessel_density_per_mm2": "1/mm2", "vessel_area_fraction": "fraction"}


def cohort_metrics(metric_tables: list[pd.DataFrame], section_stats: list[pd.DataFrame],
                   sheet: pd.DataFrame, flags: pd.DataFrame | None = None) -> pd.DataFrame:
    """One tidy table: ``sample, subject, group, tumour, modality, analyte, region, metric, value, unit, ibsi``
    and, with
    ``flags`` (:func:`nanohet.flags.sample_flags`), ``qc`` (``ok`` or ``flagged``) and ``qc_reason``.

    Section statistics (one wide row per sample) become rows of modality ``fluorescence``, analyte
    ``section``. Sorted by sample, modality, analyte and metric.
    """
    frames = list(metric_tables)
    for s in section_stats:
        long = s.melt(id_vars=["sample"], var_name="metric", value_name="value")
        long.insert(1, "modality", "fluorescence")
        long.insert(2, "analyte", "section")
        long.insert(3, "region", "section")
        long["unit"] = long["metric"].map(SECTION_STAT_UNITS)
        frames.append(long)
    df = pd.concat(frames, ignore_index=True)
    df["ibsi"] = df["ibsi"].fillna("") if "ibsi" in df else ""
    info = sheet.drop_duplicates("sample")[["sample", "subject", "group", "tumour"]]
    df = info.merge(df, on="sample", how="right")
    if flags is not None:
        df = df.merge(flags, on="sample", how="left")
        df["qc"] = df["qc"].fillna("ok")
        df["qc_reason"] = df["qc_reason"].fillna("")
    return df.sort_values(["sample", "modality", "analyte", "region", "metric"], kind="stable").reset_index(drop=True)


def group_summary(cohort: pd.DataFrame) -> pd.DataFrame:
    """Per group, modality, analyte, region and metric: number of samples, mean, SD and the between-sample CV
    (SD / mean: interpatient heterogeneity)."""
    g = cohort.groupby(["group", "modality", "analyte", "region", "metric", "unit"], sort=True)["value"]
    summary = g.agg(n="count", mean="mean", sd="std").reset_index()
    summary["between_sample_cv"] = summary["sd"] / summary["mean"]
    return summary
