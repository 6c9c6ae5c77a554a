"""Group comparisons of the cohort (nanohet.quantify.comparisons): exact tests, effect sizes, mixed models, FDR."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from nanohet.errors import InputError
from nanohet.quantify.comparisons import (benjamini_hochberg, compare_groups, exact_permutation_test, hedges_g,
                                          mixed_model_test, parse_measure)


def test_exact_permutation_test_analytic_cases():
    # completely separated groups of 3: only the observed labelling and its mirror are as extreme, p = 2 / 20
    p, min_p = exact_permutation_test([1, 2, 3], [4, 5, 6])
    assert p == pytest.approx(0.1) and min_p == pytest.approx(0.1)
    # identical groups: every relabelling is at least as extreme
    assert exact_permutation_test([1, 2, 3], [1, 2, 3])[0] == pytest.approx(1.0)
    # 4 vs 2: 15 relabellings, unequal sizes have no mirror, the observed one alone is the most extreme
    p, min_p = exact_permutation_test([10, 11, 12, 13], [0, 1])
    assert p == pytest.approx(1 / 15) and min_p == pytest.approx(1 / 15)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_permutation_test_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0, 1, 5), rng.normal(0.8, 1, 4)
    values = np.concatenate([a, b])
    observed = abs(a.mean() - b.mean())
    count = total = 0
    for first in __import__("itertools").combinations(range(9), 5):
        rest = [i for i in range(9) if i not in first]
        total += 1
        count += abs(values[list(first)].mean() - values[rest].mean()) >= observed - 1e-12
    assert exact_permutation_test(a, b)[0] == pytest.approx(count / total) and total == math.comb(9, 5)


def test_hedges_g_and_its_interval():
    """g of two groups of 4 whose means differ by 2 pooled SDs: 2 x J with J = 1 - 3 / (4 x 8 - 9)."""
    a = np.array([-1.0, 1.0, -1.0, 1.0]) * math.sqrt(3 / 4) + 2  # SD (ddof 1) 1
    b = np.array([-1.0, 1.0, -1.0, 1.0]) * math.sqrt(3 / 4)
    g, lo, hi = hedges_g(a, b)
    assert g == pytest.approx(2 * (1 - 3 / 23))
    se = math.sqrt(8 / 16 + g * g / 16)
    assert lo == pytest.approx(g - 1.959964 * se, rel=1e-5) and hi == pytest.approx(g + 1.959964 * se, rel=1e-5)
    assert all(np.isnan(hedges_g([1.0], [2.0, 3.0])))


def test_benjamini_hochberg_by_hand():
    p = np.array([0.01, 0.04, np.nan, 0.03, 0.5])
    # ranks of 0.01, 0.03, 0.04, 0.5 (m = 4): p m / rank = 0.04, 0.06, 0.053, 0.5, then the step-up minima
    expected = np.array([0.04, 0.04 * 4 / 3, np.nan, 0.03 * 4 / 2, 0.5])
    expected[3] = min(expected[3], expected[1])
    assert np.allclose(benjamini_hochberg(p), expected, equal_nan=True)


@pytest.mark.parametrize("seed", [3, 4])
def test_mixed_model_recovers_a_group_difference_with_tumours_nested_in_animals(seed):
    """4 animals per group, 3 tumours each: animal SD 1, tumour SD 0.5, group difference 3. The mixed model's
    interval covers 3 and its p is small; tumours treated as independent would count 24 values instead of 8
    animals, which the model does not."""
    rng = np.random.default_rng(seed)
    rows = []
    for g, shift in (("a", 3.0), ("b", 0.0)):
        for animal in range(4):
            u = rng.normal(0, 1.0)
            rows += [{"group": g, "subject": f"{g}{animal}", "value": shift + u + rng.normal(0, 0.5)} for _ in range(3)]
    df = pd.DataFrame(rows)
    est, lo, hi, p = mixed_model_test(df, "a")
    assert lo < 3.0 < hi and p < 0.05
    # its standard error reflects the 8 animals: wider than the naive one over 24 values
    naive = stats.ttest_ind(df[df.group == "a"].value, df[df.group == "b"].value).confidence_interval()
    assert hi - lo > naive.high - naive.low


def _cohort(values_a, values_b, tumours=1):
    rows = []
    for g, values in (("lipo", values_a), ("free", values_b)):
        for i, v in enumerate(values):
            for t in range(tumours):
                rows.append({"subject": f"{g}{i}", "group": g, "modality": "msi", "analyte": "dox",
                             "region": "viable", "metric": "mean", "value": v + 0.1 * t, "unit": "ug/g"})
                rows.append({"subject": f"{g}{i}", "group": g, "modality": "msi", "analyte": "dox",
                             "region": "tissue", "metric": "cv", "value": 0.5 + 0.01 * i, "unit": "1"})
    return pd.DataFrame(rows)


def test_the_table_families_tests_and_notes():
    table = compare_groups(_cohort([4.0, 5.0, 6.0], [1.0, 2.0, 3.0]), ["msi:dox:viable:mean"], ["cv"])
    assert list(table.family) == ["primary", "exploratory"]
    prim = table.iloc[0]
    assert prim.group_a == "free" and prim.group_b == "lipo" and prim.difference == pytest.approx(-3.0)
    assert prim.test == "exact_permutation" and prim.p_value == pytest.approx(0.1)
    assert prim.min_attainable_p == pytest.approx(0.1) and "cannot reach p < 0.1" in prim.note
    assert prim.p_welch == pytest.approx(stats.ttest_ind([1, 2, 3], [4, 5, 6], equal_var=False).pvalue)
    assert prim.p_fdr == pytest.approx(0.1)  # a family of one
    # several tumours per animal: the mixed model, on every value
    table = compare_groups(_cohort([4.0, 5.0, 6.0], [1.0, 2.0, 3.0], tumours=2), ["msi:dox:viable:mean"], [])
    assert table.iloc[0].test == "mixed_model" and table.iloc[0].n_values_a == 6 and table.iloc[0].n_animals_a == 3
    # one animal in a group: no test, said so
    table = compare_groups(_cohort([4.0], [1.0, 2.0]), ["msi:dox:viable:mean"], [])
    assert table.iloc[0].test == "none" and "fewer than 2 animals" in table.iloc[0].note


def test_primary_measures_are_checked():
    assert parse_measure("msi:dox:dox2:tissue:pearson") == ("msi", "dox:dox2", "tissue", "pearson")
    with pytest.raises(InputError, match="not modality:analyte:region:metric"):
        parse_measure("msi:dox:mean")
    with pytest.raises(InputError, match="msi:dox:viable:median is not in the cohort table"):
        compare_groups(_cohort([1.0, 2.0], [3.0, 4.0]), ["msi:dox:viable:median"], [])
