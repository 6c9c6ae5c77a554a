"""In vivo to ex vivo: each tumour's in vivo uptake joined with the measures of its sections, and their
correlation across tumours.

The in vivo volume (PET, SPECT) sees the whole tumour at millimetre resolution; the sections see a slice of it
at micrometres. Whether the tumours that take up more in vivo are the ones whose sections hold more drug,
carrier or nanoparticle (and more evenly) is the link between the clinical and the microscopic scale. The join
is per tumour (``subject``, ``tumour``): the tumour's sections are averaged.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from scipy import stats

IN_VIVO = ("volume", "uptake", "tumour", "mean")
SECTION_MODALITIES = ("fluorescence", "msi", "msi_native", "cells")
SECTION_METRICS = ("mean", "median", "cv", "coverage", "gini", "l50_um", "fraction_of_cells_reached")


def join_invivo_exvivo(cohort: pd.DataFrame, in_vivo=IN_VIVO, modalities=SECTION_MODALITIES,
                       metrics=SECTION_METRICS) -> pd.DataFrame:
    """Per tumour, the in vivo measure ``in_vivo`` (``modality, analyte, region, metric`` of the cohort table)
    beside every section measure (``modalities`` x ``metrics``, regions ``tissue`` and ``viable``), each the mean
    over the tumour's sections.

    Returns
    -------
    DataFrame
        ``subject, tumour, group, in_vivo_value, in_vivo_unit, modality, analyte, region, metric, value, unit,
        n_sections``: one row per tumour and section measure; only tumours with both.
    """
    key = ["modality", "analyte", "region", "metric"]
    mask = np.logical_and.reduce([cohort[k] == v for k, v in zip(key, in_vivo)])
    vivo = (cohort[mask].groupby(["subject", "tumour", "group"], as_index=False)
            .agg(in_vivo_value=("value", "mean"), in_vivo_unit=("unit", "first")))
    sections = cohort[cohort["modality"].isin(modalities) & cohort["metric"].isin(metrics)
                      & cohort["region"].isin(["tissue", "viable"])]
    per_tumour = (sections.groupby(["subject", "tumour"] + key, as_index=False)
                  .agg(value=("value", "mean"), unit=("unit", "first"), n_sections=("sample", "nunique")))
    joined = vivo.merge(per_tumour, on=["subject", "tumour"], how="inner")
    return joined.sort_values(key + ["subject", "tumour"], kind="stable").reset_index(drop=True)


def invivo_exvivo_correlations(joined: pd.DataFrame) -> pd.DataFrame:
    """Across tumours, the correlation of the in vivo measure with each section measure of
    :func:`join_invivo_exvivo`: Pearson's r (two-sided p from the t distribution) and Spearman's rho (exact
    permutation p for fewer than 10 tumours, scipy), with the number of tumours. NaN with fewer than 3 tumours or
    a constant measure."""
    rows = []
    for key, sub in joined.groupby(["modality", "analyte", "region", "metric"], sort=True):
        sub = sub[np.isfinite(sub["value"]) & np.isfinite(sub["in_vivo_value"])]
        row = dict(zip(["modality", "analyte", "region", "metric"], key)) | {"n_tumours": len(sub)}
        x, y = sub["in_vivo_value"].to_numpy(), sub["value"].to_numpy()
        if len(sub) >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0:
            pr = stats.pearsonr(x, y)
            sr = stats.spearmanr(x, y)
            row |= {"pearson_r": float(pr.statistic), "pearson_p": float(pr.pvalue),
                    "spearman_rho": float(sr.statistic), "spearman_p": _spearman_p(x, y, float(sr.statistic))}
        else:
            row |= {"pearson_r": np.nan, "pearson_p": np.nan, "spearman_rho": np.nan, "spearman_p": np.nan}
        rows.append(row)
    return pd.DataFrame(rows, columns=["modality", "analyte", "region", "metric", "n_tumours", "pearson_r",
                                       "pearson_p", "spearman_rho", "spearman_p"])


def _spearman_p(x: np.ndarray, y: np.ndarray, rho: float) -> float:
    """Two-sided p of Spearman's rho: exact, over every permutation of y's ranks, below 10 values (the share of
    permutations whose |rho| is at least the observed one); scipy's t approximation from 10 values on."""
    n = len(x)
    if n >= 10:
        return float(stats.spearmanr(x, y).pvalue)
    rx, ry = stats.rankdata(x), stats.rankdata(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    perms = np.array(list(itertools.permutations(range(n))))
    rhos = ry[perms] @ rx / np.sqrt((rx @ rx) * (ry @ ry))
    return float((np.abs(rhos) >= abs(rho) - 1e-12).mean())
