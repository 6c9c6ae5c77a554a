"""Cohort strip plots (one dot per sample, bar = group mean)."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..quantify.section import metric_region  # noqa: E402
from .style import save  # noqa: E402


def cohort_summary(path, cohort: pd.DataFrame, panels: list[tuple[str, str, str, str]]) -> None:
    """Strip plots of selected metrics per group: a dot per animal (the mean of its sections, the unit of
    replication) over small dots for its samples when an animal has several.

    Parameters
    ----------
    path : path-like or list of path-like
        Output file(s): .png, .svg or .pdf.
    cohort : DataFrame
        The tidy cohort table.
    panels : list of (modality, analyte, metric, title)
    """
    n = len(panels)
    cols = 3
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.6 * rows), squeeze=False)
    groups = sorted(cohort["group"].dropna().unique())
    for a, (modality, analyte, metric, title) in zip(axes.ravel(), panels):
        sub = cohort[(cohort.modality == modality) & (cohort.analyte == analyte) & (cohort.metric == metric)]
        if "region" in sub:  # sections: tissue or viable (per metric); section statistics; volumes: the tumour
            region = "tumour" if modality == "volume" else "section" if analyte == "section" else metric_region(metric)
            sub = sub[sub.region == region]
        for gi, g in enumerate(groups):
            in_group = sub[sub.group == g]
            per_animal = in_group.groupby("subject", sort=True)["value"] if "subject" in in_group else None
            v = (per_animal.mean() if per_animal is not None else in_group["value"]).to_numpy(dtype=float)
            x = gi + np.linspace(-0.12, 0.12, max(len(v), 1))[: len(v)]
            if per_animal is not None and len(in_group) > len(v):  # several samples per animal: show them too
                for xi, (_, values) in zip(x, per_animal):
                    a.scatter(np.full(len(values), xi), values, s=8, color="0.6", zorder=2)
            a.scatter(x, v, s=30, zorder=3)
            if len(v):
                a.hlines(np.nanmean(v), gi - 0.25, gi + 0.25, color="k", lw=1.5)
        a.set_xticks(range(len(groups)), groups, fontsize=8)
        unit = sub["unit"].iloc[0] if len(sub) else ""
        a.set_title(f"{title}", fontsize=9)
        a.set_ylabel(unit, fontsize=8)
    for a in axes.ravel()[n:]:
        a.axis("off")
    fig.suptitle("cohort summary (dot = animal, grey = its samples, bar = group mean of the animals)")
    fig.tight_layout()
    save(fig, *([path] if isinstance(path, (str, os.PathLike)) else path))


def cohort_panels(drug: str | None, has_volume: bool) -> list[tuple[str, str, str, str]]:
    """The cohort figure's panels: the drug's mean, CV, coverage and L50 (when an analyte has role drug), the
    nanoparticle's L50 and CV, necrotic fraction, vessel density and, with volumes, the in vivo uptake."""
    panels = []
    if drug:
        panels += [("msi", drug, "mean", f"{drug}: mean in tumour"), ("msi", drug, "cv", f"{drug}: CV"),
                   ("msi", drug, "coverage", f"{drug}: coverage"), ("msi", drug, "l50_um", f"{drug}: L50 (µm)")]
    panels += [("fluorescence", "nanoparticle", "l50_um", "nanoparticle: L50 (µm)"),
               ("fluorescence", "nanoparticle", "cv", "nanoparticle: CV"),
               ("fluorescence", "section", "necrotic_fraction", "necrotic fraction"),
               ("fluorescence", "section", "vessel_density_per_mm2", "vessel density (/mm² viable)")]
    if has_volume:
        panels.append(("volume", "uptake", "mean", "in vivo uptake: mean in tumour"))
    return panels
