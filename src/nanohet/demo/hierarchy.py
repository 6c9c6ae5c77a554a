"""The truth of the demo cohort's variance decomposition: the configured level SDs and the true fields.

Each demo section's fields are its phantom's multiplied by its uptake factor ``1 + a + t + s``, the effects of its
animal, tumour and section (normal, SDs ``demo.level_sd`` as fractions of the group mean;
:func:`nanohet.demo.cohort.level_effects`). A section's true mean is ``b (1 + a + t + s)``, with ``b`` its mean at
factor 1, so the variance the configuration puts at a level, in the field's units, is ``sd_level² E[b²]``.
The pixel level is not configured: it is the pooled within-section variance of the true field, as the analysis
grid sees it. That is the **configured truth**.

The sections also differ by their geometry (vessels, necrosis, macrophage patches are drawn per section), which
spreads ``b`` and adds to the section level; the configuration does not hold it. The **realised truth** is the
same nested ANOVA (:func:`nanohet.quantify.variance.variance_components`) run on the true fields' section
summaries: what a measurement without noise, blur or registration error would estimate on this cohort.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import InputError
from ..quantify.variance import LEVELS, design_table, folded_into, variance_components

COLUMNS = ["modality", "analyte", "region", "level", "configured_sd", "configured_share", "realised_share",
           "estimated_share", "share_ci_low", "share_ci_high", "configured_in_ci", "realised_in_ci", "n_units",
           "note"]


def configured_components(summaries: pd.DataFrame, level_sd: dict) -> dict:
    """The variance each level holds by the configuration, in the field's units.

    Parameters
    ----------
    summaries : DataFrame
        One row per section: the true ``mean``, ``cv`` and ``n_pixels`` of the field in a region and the section's
        ``uptake_factor``.
    level_sd : dict
        ``demo.level_sd``: SD of the ``animal``, ``tumour`` and ``section`` effects (fractions of the group mean).

    Returns
    -------
    dict
        ``{level: variance}`` for ``animal``, ``tumour``, ``section`` (``sd² E[b²]``, ``b`` the section's mean at
        uptake factor 1) and ``pixel`` (the true within-section variances pooled over the sections, weighted by
        their degrees of freedom).
    """
    base_sq = float(((summaries["mean"] / summaries["uptake_factor"]) ** 2).mean())
    out = {lv: float(level_sd.get(lv, 0.0)) ** 2 * base_sq for lv in ("animal", "tumour", "section")}
    dof = summaries["n_pixels"].astype(float) - 1
    out["pixel"] = float((dof * (summaries["cv"] * summaries["mean"]) ** 2).sum() / dof.sum())
    return out


def fold_levels(components: dict, present) -> dict:
    """Components of absent levels (one unit per parent in the design) added to the nearest present level above
    them, as the nested ANOVA counts them: with one section per tumour, the tumour level holds both."""
    out, carried = {}, 0.0
    for level in reversed(LEVELS):  # pixel, section, tumour, animal
        carried += components.get(level, 0.0)
        if level in present:
            out[level], carried = carried, 0.0
    return out


def variance_truth(summaries: pd.DataFrame, estimates: pd.DataFrame, level_sd: dict, n_draws: int = 2000,
                   seed: int = 0) -> pd.DataFrame:
    """The cohort's estimated variance shares beside their configured and realised truth.

    Parameters
    ----------
    summaries : DataFrame
        Every section's true summaries (:func:`nanohet.demo.validation.true_section_summaries`): ``sample,
        group, subject, tumour, modality, analyte, region, mean, cv, n_pixels, uptake_factor``.
    estimates : DataFrame
        The workflow's ``variance_components.tsv`` (:func:`nanohet.quantify.variance.cohort_variance`).
    level_sd : dict
        ``demo.level_sd``.

    Returns
    -------
    DataFrame
        :data:`COLUMNS`, one row per field, region and level the workflow estimated: the configured and realised
        shares (module docstring), the estimate with its interval, and whether each truth lies in the interval.
    """
    rows = []
    keys = ["modality", "analyte", "region"]
    for key, sub in summaries.groupby(keys, sort=True):
        est = estimates[np.logical_and.reduce([estimates[k] == v for k, v in zip(keys, key)])]
        est = est[est["level"].fillna("").astype(str) != ""].set_index("level")
        sub = sub.dropna(subset=["mean", "cv", "n_pixels", "uptake_factor"])
        if est.empty or sub.empty:
            continue
        try:
            realised = variance_components(design_table(sub), n_draws=n_draws, seed=seed).set_index("level")
        except InputError as exc:
            rows.append(dict(zip(keys, key)) | {"level": "", "note": f"no realised truth: {exc}"})
            continue
        present = [lv for lv in LEVELS if lv in est.index]
        configured = fold_levels(configured_components(sub, level_sd), present)
        total = sum(configured.values())
        for level in present:
            e = est.loc[level]
            conf = configured[level] / total if total > 0 else np.nan
            real = float(realised.loc[level, "share"]) if level in realised.index else np.nan
            lo, hi = float(e["share_ci_low"]), float(e["share_ci_high"])
            folded = folded_into(level, present)
            rows.append(dict(zip(keys, key)) | {
                "level": level, "configured_sd": float(level_sd.get(level, np.nan)) if level != "pixel" else np.nan,
                "configured_share": conf, "realised_share": real, "estimated_share": float(e["share"]),
                "share_ci_low": lo, "share_ci_high": hi, "configured_in_ci": bool(lo <= conf <= hi),
                "realised_in_ci": bool(lo <= real <= hi), "n_units": e.get("n_units"),
                "note": f"holds the {' and '.join(folded)} level(s)" if folded else ""})
    return pd.DataFrame(rows, columns=COLUMNS)
