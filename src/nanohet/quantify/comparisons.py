"""Group comparisons of the cohort's measures: one tidy table of tests, effect sizes and FDR.

The unit of replication is the animal (``subject``): pixels, cells, sections and tumours of one animal are not
independent. With one value per animal, the groups are compared by an exact permutation test of the difference
in means over every relabelling of the animals (exact under exchangeability, no normality assumed; Welch's t
is reported beside it); with several values per animal (tumours, sections), by a linear mixed model with the
animal as random intercept (statsmodels ``MixedLM``, REML), whose Wald test of the group term uses every value
without treating them as independent. An exact test has a smallest attainable p-value,
``2 / C(n_a + n_b, n_a)`` two-sided: 0.1 with 3 animals per group, whatever the data (no rank or permutation
test can do better); the table says so in ``min_attainable_p``.

The measures named in ``quantify.primary_measures`` are the confirmatory family; every other compared
measure is exploratory. Benjamini-Hochberg FDR (statsmodels ``multipletests``) is applied within each family.
"""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import InputError
from ..settings import parse_measure

KEY = ["modality", "analyte", "region", "metric"]
COLUMNS = KEY + ["unit", "family", "group_a", "group_b", "n_animals_a", "n_animals_b", "n_values_a", "n_values_b",
                 "mean_a", "mean_b", "difference", "difference_ci_low", "difference_ci_high", "hedges_g",
                 "hedges_g_ci_low", "hedges_g_ci_high", "test", "p_value", "min_attainable_p", "p_welch", "p_fdr",
                 "note"]
MAX_RELABELLINGS = 200_000  # beyond this the permutation test samples relabellings (seeded)


def exact_permutation_test(a, b, seed: int = 0) -> tuple[float, float]:
    """Two-sided permutation test of the difference in means of ``a`` and ``b`` over every relabelling.

    Returns
    -------
    p : float
        The share of the C(n_a + n_b, n_a) relabellings whose |mean difference| is at least the observed one
        (the observed labelling included, so p >= 1 / C). Beyond :data:`MAX_RELABELLINGS` relabellings, a seeded
        random sample of them with the observed one added (Phipson & Smyth, Stat Appl Genet Mol Biol 2010).
    min_p : float
        The smallest p-value the exact test can give: 2 / C (a relabelling and its mirror tie) when the groups
        are equal in size, else 1 / C.

    References: Fisher 1935 (The Design of Experiments); Ernst, Stat Sci 2004;19:676.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    values = np.concatenate([a, b])
    n, k = values.size, a.size
    if k == 0 or k == n:
        return float("nan"), float("nan")
    observed = abs(a.mean() - b.mean())
    total = math.comb(n, k)
    tol = 1e-12 * max(1.0, float(np.abs(values).max()))
    if total <= MAX_RELABELLINGS:
        idx = np.array(list(itertools.combinations(range(n), k)))
        first = values[idx].sum(axis=1)
        diffs = np.abs(first / k - (values.sum() - first) / (n - k))
        p = float((diffs >= observed - tol).mean())
    else:
        rng = np.random.default_rng(seed)
        draws = np.array([rng.permutation(n)[:k] for _ in range(MAX_RELABELLINGS)])
        first = values[draws].sum(axis=1)
        diffs = np.abs(first / k - (values.sum() - first) / (n - k))
        p = float(((diffs >= observed - tol).sum() + 1) / (MAX_RELABELLINGS + 1))
    return p, (2.0 if k == n - k else 1.0) / total


def hedges_g(a, b, confidence: float = 0.95) -> tuple[float, float, float]:
    """Hedges' g of ``a`` minus ``b`` (the standardised mean difference, pooled SD, small-sample corrected by
    J = 1 - 3 / (4 (n_a + n_b) - 9)) and its confidence interval from the large-sample variance
    (n_a + n_b) / (n_a n_b) + g² / (2 (n_a + n_b)) (Hedges & Olkin 1985, Statistical Methods for Meta-Analysis,
    ch. 5). NaN with fewer than two values in a group or no spread."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    na, nb = a.size, b.size
    if na < 2 or nb < 2:
        return (float("nan"),) * 3
    pooled = math.sqrt(((na - 1) * a.var(ddof=1) + (nb - 1) * b.var(ddof=1)) / (na + nb - 2))
    if pooled == 0:
        return (float("nan"),) * 3
    g = (1 - 3 / (4 * (na + nb) - 9)) * (a.mean() - b.mean()) / pooled
    se = math.sqrt((na + nb) / (na * nb) + g * g / (2 * (na + nb)))
    z = stats.norm.ppf(0.5 + confidence / 2)
    return float(g), float(g - z * se), float(g + z * se)


def welch_test(a, b, confidence: float = 0.95) -> tuple[float, float, float]:
    """Welch's unequal-variance t-test of ``a`` minus ``b`` (scipy): two-sided p and the confidence interval of
    the difference in means (Welch-Satterthwaite degrees of freedom). NaN with fewer than two values a group."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.size < 2 or b.size < 2 or (a.var() == 0 and b.var() == 0):
        return (float("nan"),) * 3
    res = stats.ttest_ind(a, b, equal_var=False)
    ci = res.confidence_interval(confidence)
    return float(res.pvalue), float(ci.low), float(ci.high)


def mixed_model_test(values: pd.DataFrame, group_a: str, confidence: float = 0.95) -> tuple[float, float, float, float]:
    """Group difference by a linear mixed model with the animal as random intercept.

    ``values`` has columns ``value``, ``group`` (two groups) and ``subject``; the model is
    ``value ~ 1 + [group == group_a] + (1 | subject)``, fitted by REML (statsmodels ``MixedLM``; Laird & Ware,
    Biometrics 1982). Returns the estimated difference (``group_a`` minus the other), its Wald confidence
    interval and two-sided p-value; NaN when the fit fails.
    """
    import statsmodels.api as sm

    y = values["value"].to_numpy(dtype=np.float64)
    x = np.column_stack([np.ones(len(values)), (values["group"] == group_a).to_numpy(dtype=np.float64)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fit = sm.MixedLM(y, x, groups=values["subject"].to_numpy()).fit(reml=True)
        except (np.linalg.LinAlgError, ValueError):
            return (float("nan"),) * 4
    est, se = float(fit.params[1]), float(fit.bse[1])
    if not np.isfinite(se) or se <= 0:
        return est, float("nan"), float("nan"), float("nan")
    z = stats.norm.ppf(0.5 + confidence / 2)
    return est, est - z * se, est + z * se, float(2 * stats.norm.sf(abs(est / se)))


def benjamini_hochberg(p_values) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (statsmodels ``multipletests``, ``fdr_bh``; Benjamini & Hochberg,
    J R Stat Soc B 1995); NaN entries stay NaN and do not count in the family."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="fdr_bh")[1]
    return out


def compare_groups(cohort: pd.DataFrame, primary=(), metrics=(), seed: int = 0) -> pd.DataFrame:
    """Every pair of groups compared on each measure: the table described in the module docstring.

    Parameters
    ----------
    cohort : DataFrame
        The cohort table (``subject, group, modality, analyte, region, metric, value, unit``).
    primary : sequence of str
        ``modality:analyte:region:metric`` of the confirmatory measures (:func:`parse_measure`).
    metrics : sequence of str
        The metrics compared as exploratory (every modality, analyte and region that has them).
    seed : int
        For the permutation test's sampling beyond :data:`MAX_RELABELLINGS` relabellings.

    Returns
    -------
    DataFrame
        One row per measure and pair of groups, columns :data:`COLUMNS`; primary family first.
    """
    wanted = [parse_measure(m) for m in primary]
    df = cohort[np.isfinite(pd.to_numeric(cohort["value"], errors="coerce"))]
    keys = set(map(tuple, df[KEY].drop_duplicates().to_numpy()))
    for m in wanted:
        if m not in keys:
            raise InputError(f"quantify.primary_measures: {':'.join(m)} is not in the cohort table (modality:analyte:"
                             "region:metric as its columns have them)")
    selected = df[df["metric"].isin(list(metrics)) | df[KEY].apply(tuple, axis=1).isin(wanted)]
    groups = sorted(df["group"].unique())
    rows = []
    for key, sub in selected.groupby(KEY, sort=True):
        family = "primary" if key in wanted else "exploratory"
        for group_a, group_b in itertools.combinations(groups, 2):
            pair = sub[sub["group"].isin([group_a, group_b])]
            rows.append(_compare(key, pair, group_a, group_b, family, seed))
    table = pd.DataFrame(rows, columns=COLUMNS)
    for family in ("primary", "exploratory"):
        sel = table["family"] == family
        table.loc[sel, "p_fdr"] = benjamini_hochberg(table.loc[sel, "p_value"])
    table["order"] = (table["family"] != "primary").astype(int)
    return table.sort_values(["order"] + KEY + ["group_a", "group_b"], kind="stable").drop(columns="order") \
        .reset_index(drop=True)


def _compare(key, pair: pd.DataFrame, group_a: str, group_b: str, family: str, seed: int) -> dict:
    unit = pair["unit"].dropna().iloc[0] if pair["unit"].notna().any() else ""
    animals = pair.groupby(["group", "subject"])["value"].mean()  # one value per animal
    a = animals.get(group_a, pd.Series(dtype=float)).to_numpy()
    b = animals.get(group_b, pd.Series(dtype=float)).to_numpy()
    va, vb = pair[pair["group"] == group_a], pair[pair["group"] == group_b]
    row = dict(zip(KEY, key)) | {
        "unit": unit, "family": family, "group_a": group_a, "group_b": group_b, "n_animals_a": a.size,
        "n_animals_b": b.size, "n_values_a": len(va), "n_values_b": len(vb),
        "mean_a": float(a.mean()) if a.size else np.nan, "mean_b": float(b.mean()) if b.size else np.nan,
        "p_fdr": np.nan, "note": ""}
    row["difference"] = row["mean_a"] - row["mean_b"]
    row["hedges_g"], row["hedges_g_ci_low"], row["hedges_g_ci_high"] = hedges_g(a, b)
    row["p_welch"], low, high = welch_test(a, b)
    if a.size < 2 or b.size < 2:
        row.update(test="none", p_value=np.nan, min_attainable_p=np.nan, difference_ci_low=np.nan,
                   difference_ci_high=np.nan, note="fewer than 2 animals in a group: no test")
        return row
    several = len(pair) > len(animals)
    if several:  # several tumours or sections per animal: mixed model over every value
        est, low, high, p = mixed_model_test(pair[["value", "group", "subject"]], group_a)
        row.update(test="mixed_model", p_value=p, min_attainable_p=np.nan, difference=est, difference_ci_low=low,
                   difference_ci_high=high, note="animal as random intercept (REML); Wald test")
        return row
    p, min_p = exact_permutation_test(a, b, seed)
    row.update(test="exact_permutation", p_value=p, min_attainable_p=min_p, difference_ci_low=low,
               difference_ci_high=high)
    if min_p >= 0.05:
        row["note"] = (f"with {a.size} and {b.size} animals the exact test cannot reach p < {min_p:.2g}; the CI of "
                       "the difference is Welch's")
    else:
        row["note"] = "the CI of the difference is Welch's"
    return row
