"""The cohort: every sample's metrics in one tidy table, and a per-group summary."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .spatial import homogenisation_scale

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


def pooled_scale_curves(scales: pd.DataFrame, samples: pd.DataFrame, target_cv: float) -> pd.DataFrame:
    """Heterogeneity versus scale pooled over each group's sections: the CV of all their block means together.

    At a block size the pooled variance is the law of total variance over the sections' blocks,
    ``sum_i n_i (s_i² + (m_i - M)²) / sum_i n_i`` with ``n_i`` a section's block count, ``m_i`` the mean and
    ``s_i = cv_i m_i`` the (population) SD of its block means and ``M`` the mean of all blocks; the pooled CV is its
    square root over ``M``. Small blocks show the within-section heterogeneity; once the blocks are as large as
    the sections, what is left is the spread between sections, animals and tumours: the curve flattens at the
    between-section CV instead of falling to 0 (the multiscale picture of the variance decomposition,
    :mod:`nanohet.quantify.variance`).

    Parameters
    ----------
    scales : DataFrame
        Every section's curve (``scale_profiles.tsv``: ``sample, modality, analyte, region, block_um, cv,
        n_blocks, block_mean``).
    samples : DataFrame
        ``sample`` and ``group`` of each sample.
    target_cv : float
        ``quantify.homogenisation_cv``: the pooled curve's homogenisation scale is where it falls to this CV.

    Returns
    -------
    DataFrame
        ``group, modality, analyte, region, block_um, cv, n_blocks, n_sections, homogenisation_scale_um`` (the
        last the same on every row of a curve; NaN when it is never reached).
    """
    columns = ["group", "modality", "analyte", "region", "block_um", "cv", "n_blocks", "n_sections",
               "homogenisation_scale_um"]
    df = scales.merge(samples[["sample", "group"]].drop_duplicates("sample"), on="sample", how="inner")
    df = df[np.isfinite(df["cv"]) & np.isfinite(df["block_mean"]) & (df["n_blocks"] > 0)]
    rows = []
    for key, sub in df.groupby(["group", "modality", "analyte", "region", "block_um"], sort=True):
        n, m, sd = sub["n_blocks"].to_numpy(float), sub["block_mean"].to_numpy(float), \
            (sub["cv"] * sub["block_mean"]).to_numpy(float)
        total = (n * m).sum() / n.sum()
        var = (n * (sd ** 2 + (m - total) ** 2)).sum() / n.sum()
        rows.append(dict(zip(columns[:5], key)) | {"cv": float(np.sqrt(var) / total) if total else np.nan,
                                                   "n_blocks": int(n.sum()), "n_sections": len(sub)})
    out = pd.DataFrame(rows, columns=columns[:-1])
    scale = {key: homogenisation_scale(list(zip(c["block_um"], c["cv"])), target_cv)
             for key, c in out.groupby(["group", "modality", "analyte", "region"], sort=True)}
    out["homogenisation_scale_um"] = [scale[k] for k in zip(out["group"], out["modality"], out["analyte"],
                                                             out["region"])]
    return out[columns]
