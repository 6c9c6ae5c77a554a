"""Where the heterogeneity lives: the share of an analyte's variance at each level of the cohort's hierarchy.

The model of a value (a pixel of a section of a tumour of an animal of a group) is the nested random-effects
model ``y = mu_group + A_animal + T_tumour + S_section + e_pixel``, with the group fixed and the levels
independent, normal, with variances ``s2_animal``, ``s2_tumour``, ``s2_section`` and ``s2_pixel``. A level's
share is its variance over the sum.

Estimation: hierarchical (nested) analysis of variance, method of moments, on a balanced design (every animal
has the same number of tumours, every tumour the same number of sections) from each section's pixel mean,
variance and count. The pixel variance is the pooled within-section variance; the section means give the
mean squares of the upper levels, whose expectations are ``E[MS_section] = s2_section + s2_pixel / n``,
``E[MS_tumour] = E[MS_section] + n_s s2_tumour``, ``E[MS_animal] = E[MS_tumour] + n_t n_s s2_animal``
(Searle, Casella & McCulloch, Variance Components, 1992, ch. 4; Sokal & Rohlf, Biometry, nested ANOVA).
Negative estimates are set to 0.

Confidence intervals: generalized (fiducial) intervals from the generalized pivotal quantities of the mean
squares, ``MS_k df_k / chi2(df_k)`` (Weerahandi, J Am Stat Assoc 1993;88:899; Hannig, Iyer & Patterson,
J Am Stat Assoc 2006;101:254), combined like the estimators and turned into shares, their 2.5 and 97.5
percentiles over seeded draws. Why not a bootstrap over animals: with 3 animals per group the resampled
designs hold only a handful of distinct animals, and percentile intervals of a variance from so few clusters
are too narrow; the generalized intervals keep their coverage at these sizes, which
``tests/test_variance.py`` checks by simulating designs of the demo's shape.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import InputError

LEVELS = ("animal", "tumour", "section", "pixel")


def folded_into(level: str, present) -> list:
    """The absent levels whose variance the nested ANOVA counts in ``level``: those right below it down to the
    next present level (with one tumour per animal the tumour means are the animal means, so the tumour's
    variance is in the animal level). The pixel level holds no other."""
    out = []
    for below in LEVELS[LEVELS.index(level) + 1:-1]:
        if below in present:
            break
        out.append(below)
    return out if level != "pixel" else []


def design_table(sections: pd.DataFrame) -> pd.DataFrame:
    """The table :func:`variance_components` takes, from one row per section with ``group``, ``subject`` (the
    animal), ``tumour``, ``mean``, ``cv`` and ``n_pixels`` (as the cohort table reports them): the pixel
    variance is ``(cv x mean)²``."""
    return pd.DataFrame({"group": sections["group"], "animal": sections["subject"], "tumour": sections["tumour"],
                         "mean": sections["mean"], "variance": (sections["cv"] * sections["mean"]) ** 2,
                         "n": sections["n_pixels"].astype(float)})


def _mean_squares(table: pd.DataFrame) -> dict:
    """Degrees of freedom, mean squares and balanced sizes of a nested design of section summaries.

    ``table`` has one row per section: ``group``, ``animal``, ``tumour``, ``mean``, ``variance`` (of its pixels),
    ``n`` (its pixels). Raises InputError on an unbalanced design.
    """
    t = table.copy()
    t["tumour_key"] = t["animal"].astype(str) + "/" + t["tumour"].astype(str)
    per_animal = t.groupby("animal")["tumour_key"].nunique()
    per_tumour = t.groupby("tumour_key").size()
    if per_animal.nunique() != 1 or per_tumour.nunique() != 1:
        raise InputError("unbalanced design (animals with different numbers of tumours, or tumours with different "
                         "numbers of sections): the nested ANOVA needs a balanced one")
    if t.groupby("animal")["group"].nunique().max() > 1:
        raise InputError("an animal appears in several groups")
    n_t, n_s = int(per_animal.iloc[0]), int(per_tumour.iloc[0])
    n_pix = float(np.mean(t["n"]))
    # pixel level: pooled within-section variance
    df_p = float((t["n"] - 1).sum())
    ms_p = float(((t["n"] - 1) * t["variance"]).sum() / df_p) if df_p > 0 else np.nan
    tumour_mean = t.groupby("tumour_key")["mean"].transform("mean")
    animal_mean = t.groupby("animal")["mean"].transform("mean")
    group_mean = t.groupby("group")["mean"].transform("mean")
    n_animals, n_tumours, n_sections = t["animal"].nunique(), t["tumour_key"].nunique(), len(t)
    df_s = n_sections - n_tumours
    df_t = n_tumours - n_animals
    df_a = n_animals - t["group"].nunique()
    ss_s = float(((t["mean"] - tumour_mean) ** 2).sum())
    ss_t = float(((tumour_mean - animal_mean) ** 2).sum())
    ss_a = float(((animal_mean - group_mean) ** 2).sum())
    return {"n_t": n_t, "n_s": n_s, "n_pix": n_pix, "df": {"animal": df_a, "tumour": df_t, "section": df_s,
                                                           "pixel": df_p},
            "ms": {"animal": ss_a / df_a if df_a > 0 else np.nan, "tumour": ss_t / df_t if df_t > 0 else np.nan,
                   "section": ss_s / df_s if df_s > 0 else np.nan, "pixel": ms_p},
            "units": {"animal": n_animals, "tumour": n_tumours, "section": n_sections, "pixel": float(t["n"].sum())}}


def _components(ms: dict, n_t: int, n_s: int, n_pix: float) -> dict:
    """Variance components from mean squares (the nested-ANOVA estimators; arrays broadcast), each floored at 0.
    A level without degrees of freedom (one tumour per animal, one section per tumour) is absent: its variance
    is confounded with the level above it (the tumour means are the section means) and counted there."""
    out = {"pixel": ms["pixel"]}
    below = ms["pixel"] / n_pix  # what the pixel noise adds to a section mean
    for level, size in (("section", 1), ("tumour", n_s), ("animal", n_t * n_s)):
        if ms.get(level) is None or np.all(np.isnan(ms[level])):
            continue
        out[level] = np.maximum((ms[level] - below) / size, 0.0)
        below = ms[level]
    return out


def variance_components(table: pd.DataFrame, n_draws: int = 4000, seed: int = 0,
                        confidence: float = 0.95) -> pd.DataFrame:
    """Variance components and shares of each level, with generalized confidence intervals.

    Parameters
    ----------
    table : DataFrame
        One row per section: ``group``, ``animal``, ``tumour``, ``mean``, ``variance`` (of the section's pixel
        values, ddof 0 or 1 alike at these sizes) and ``n`` (pixels). A balanced design.
    n_draws : int
        Draws of the generalized pivotal quantities.
    seed : int
        For the draws: the intervals are reproducible.
    confidence : float
        Of the intervals.

    Returns
    -------
    DataFrame
        One row per level present (``animal``, ``tumour``, ``section``, ``pixel``; a level with one unit per
        parent is absent, its variance being in the level below): ``level``, ``n_units``, ``df``, ``variance``,
        ``share``, ``share_ci_low``, ``share_ci_high``, ``variance_ci_low``, ``variance_ci_high``.

    Raises
    ------
    InputError
        An unbalanced design, or fewer than two animals in every group.
    """
    d = _mean_squares(table)
    if d["df"]["animal"] < 1:
        raise InputError("fewer than two animals in every group: the animal level cannot be estimated")
    levels = [lv for lv in LEVELS if d["df"][lv] > 0]
    ms = {lv: d["ms"][lv] if lv in levels else None for lv in LEVELS}
    est = _components(ms, d["n_t"], d["n_s"], d["n_pix"])
    total = sum(est.values())
    rng = np.random.default_rng(seed)
    pivots = {lv: ms[lv] * d["df"][lv] / rng.chisquare(d["df"][lv], n_draws) for lv in levels}
    draws = _components({lv: pivots.get(lv) for lv in LEVELS}, d["n_t"], d["n_s"], d["n_pix"])
    draw_total = sum(draws.values())
    lo, hi = 50 * (1 - confidence), 100 - 50 * (1 - confidence)
    rows = []
    for lv in levels:
        share = draws[lv] / draw_total
        rows.append({"level": lv, "n_units": d["units"][lv], "df": d["df"][lv], "variance": float(est[lv]),
                     "share": float(est[lv] / total) if total > 0 else np.nan,
                     "share_ci_low": float(np.percentile(share, lo)), "share_ci_high": float(np.percentile(share, hi)),
                     "variance_ci_low": float(np.percentile(draws[lv], lo)),
                     "variance_ci_high": float(np.percentile(draws[lv], hi))})
    return pd.DataFrame(rows)


def simulate_design(shares: dict, groups: int = 2, animals: int = 3, tumours: int = 2, sections: int = 2,
                    pixels: int = 400, total_variance: float = 1.0, group_effect: float = 1.0,
                    seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """Section summaries of a simulated nested design with known variance shares (values, not images).

    ``shares`` gives the share of ``animal``, ``tumour``, ``section`` and ``pixel`` (summing to 1). Each section's
    pixel mean and variance are drawn from their exact distributions under the model (normal pixels): the mean
    ``N(mu, s2_pixel / n)``, the variance ``s2_pixel chi2(n - 1) / (n - 1)``. Returns the table for
    :func:`variance_components` and the true shares.
    """
    rng = np.random.default_rng(seed)
    var = {lv: shares.get(lv, 0.0) * total_variance for lv in LEVELS}
    rows = []
    for g in range(groups):
        for a in range(animals):
            u_a = rng.normal(0, np.sqrt(var["animal"]))
            for t in range(tumours):
                u_t = rng.normal(0, np.sqrt(var["tumour"]))
                for s in range(sections):
                    mu = 10.0 + g * group_effect + u_a + u_t + rng.normal(0, np.sqrt(var["section"]))
                    rows.append({"group": f"g{g}", "animal": f"g{g}a{a}", "tumour": f"t{t}",
                                 "mean": rng.normal(mu, np.sqrt(var["pixel"] / pixels)),
                                 "variance": var["pixel"] * rng.chisquare(pixels - 1) / (pixels - 1), "n": pixels})
    return pd.DataFrame(rows), {lv: shares.get(lv, 0.0) for lv in LEVELS}


def cohort_variance(cohort: pd.DataFrame, modalities=("fluorescence", "msi", "msi_native"),
                    regions=("tissue", "viable"), n_draws: int = 4000, seed: int = 0) -> pd.DataFrame:
    """:func:`variance_components` of every analyte and region of the cohort table.

    Each sample is a section (its ``subject`` the animal, its ``tumour`` the tumour); its pixel mean, variance
    ``(cv x mean)²`` and count ``n_pixels`` come from the table. A design that cannot be decomposed (unbalanced,
    or one animal per group) gives one row saying why. Where a level has one unit per parent (one tumour per
    animal, one section per tumour) it is absent and its variance is counted in the nearest level above it that
    is present (:func:`folded_into`): the ``note`` says so.

    Returns
    -------
    DataFrame
        ``modality, analyte, region, level, n_units, df, variance, share, share_ci_low, share_ci_high,
        variance_ci_low, variance_ci_high, unit, method, note``.
    """
    columns = ["modality", "analyte", "region", "level", "n_units", "df", "variance", "share", "share_ci_low",
               "share_ci_high", "variance_ci_low", "variance_ci_high", "unit", "method", "note"]
    sel = cohort[cohort["modality"].isin(modalities) & cohort["region"].isin(regions)
                 & cohort["metric"].isin(["mean", "cv", "n_pixels"])]
    rows = []
    for (modality, analyte, region), sub in sel.groupby(["modality", "analyte", "region"], sort=True):
        wide = sub.pivot_table(index=["sample", "subject", "group", "tumour"], columns="metric", values="value",
                               aggfunc="first").reset_index()
        if not {"mean", "cv", "n_pixels"} <= set(wide.columns):
            continue
        wide = wide.dropna(subset=["mean", "cv", "n_pixels"])
        unit = sub.loc[sub["metric"] == "mean", "unit"].iloc[0] if (sub["metric"] == "mean").any() else ""
        table = design_table(wide)
        base = {"modality": modality, "analyte": analyte, "region": region, "unit": f"({unit})^2",
                "method": "nested ANOVA (balanced), generalized confidence intervals"}
        try:
            vc = variance_components(table, n_draws=n_draws, seed=seed)
        except InputError as exc:
            rows.append({**base, "level": "", "note": f"not decomposed: {exc}"})
            continue
        present = list(vc["level"])
        for rec in vc.to_dict("records"):
            note = ""
            folded = folded_into(rec["level"], present)
            if folded:
                note = f"includes the {' and '.join(folded)} level(s): one per parent in this design"
            if rec["level"] == "pixel":
                note = "pixels are spatially autocorrelated: the interval of this level is too narrow"
            rows.append({**base, **rec, "note": note})
    return pd.DataFrame(rows, columns=columns)
