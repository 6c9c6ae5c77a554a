"""In vivo to ex vivo (nanohet.quantify.invivo): the per-tumour join and the correlation across tumours."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from nanohet.quantify.invivo import invivo_exvivo_correlations, join_invivo_exvivo


def _cohort(uptake, drug, sections=2):
    rows = []
    for i, (u, d) in enumerate(zip(uptake, drug)):
        subject = f"m{i}"
        rows.append({"sample": f"{subject}_T1", "subject": subject, "tumour": "T1", "group": "g", "modality": "volume",
                     "analyte": "uptake", "region": "tumour", "metric": "mean", "value": u, "unit": "SUVbw"})
        for s in range(sections):  # the sections differ by +-0.5 around the tumour's value
            rows.append({"sample": f"{subject}_T1_s{s}", "subject": subject, "tumour": "T1", "group": "g",
                         "modality": "msi", "analyte": "dox", "region": "tissue", "metric": "mean",
                         "value": d + (0.5 if s else -0.5), "unit": "ug/g"})
    return pd.DataFrame(rows)


def test_join_averages_each_tumours_sections():
    joined = join_invivo_exvivo(_cohort([1.0, 2.0, 3.0], [10.0, 20.0, 30.0]))
    assert list(joined["value"]) == [10.0, 20.0, 30.0] and list(joined["in_vivo_value"]) == [1.0, 2.0, 3.0]
    assert (joined["n_sections"] == 2).all() and (joined["in_vivo_unit"] == "SUVbw").all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_correlations_against_scipy(seed):
    rng = np.random.default_rng(seed)
    uptake = rng.lognormal(0, 0.4, 7)
    drug = 3 * uptake + rng.normal(0, 0.5, 7)
    c = invivo_exvivo_correlations(join_invivo_exvivo(_cohort(uptake, drug))).iloc[0]
    assert c.n_tumours == 7
    assert c.pearson_r == pytest.approx(stats.pearsonr(uptake, drug).statistic)
    assert c.spearman_rho == pytest.approx(stats.spearmanr(uptake, drug).statistic)
    exact = stats.permutation_test((drug,), lambda v: stats.spearmanr(uptake, v).statistic,
                                   permutation_type="pairings").pvalue
    assert c.spearman_p == pytest.approx(exact)


def test_too_few_tumours_give_nan():
    c = invivo_exvivo_correlations(join_invivo_exvivo(_cohort([1.0, 2.0], [3.0, 4.0]))).iloc[0]
    assert c.n_tumours == 2 and np.isnan(c.pearson_r) and np.isnan(c.spearman_p)
    # a perfectly monotone relation of 4 tumours: rho 1, exact p 2 / 4! (both directions as extreme)
    c = invivo_exvivo_correlations(join_invivo_exvivo(_cohort([1, 2, 3, 4], [1, 5, 6, 9]))).iloc[0]
    assert c.spearman_rho == pytest.approx(1.0) and c.spearman_p == pytest.approx(2 / 24)
