"""Where the heterogeneity lives (nanohet.quantify.variance): nested variance components and their intervals."""

import numpy as np
import pandas as pd
import pytest

from nanohet.errors import InputError
from nanohet.quantify.variance import simulate_design, variance_components


@pytest.mark.parametrize("shares", [{"animal": 0.3, "tumour": 0.2, "section": 0.1, "pixel": 0.4},
                                    {"animal": 0.05, "tumour": 0.15, "section": 0.1, "pixel": 0.7}])
def test_intervals_cover_the_true_shares_in_designs_of_the_demo_shape(shares):
    """150 simulated designs of 2 groups x 3 animals x 2 tumours x 2 sections: each level's 95 % interval covers
    its true share 90-99 % of the time, and the estimates are centred on the truth."""
    n = 150
    hits = {k: 0 for k in shares}
    estimates = {k: [] for k in shares}
    for seed in range(n):
        table, true = simulate_design(shares, seed=1000 + seed)
        vc = variance_components(table, n_draws=2000, seed=seed).set_index("level")
        for k in shares:
            hits[k] += vc.share_ci_low[k] <= true[k] <= vc.share_ci_high[k]
            estimates[k].append(vc.share[k])
    for k in shares:
        assert 0.90 <= hits[k] / n <= 0.99, (k, hits[k] / n)
        assert abs(np.median(estimates[k]) - shares[k]) < 0.1, k


def test_a_large_two_level_design_recovers_its_components():
    """Animals and pixels only (one tumour and one section per animal): 200 animals per group, animal variance 2,
    pixel variance 6; the estimates land on them, and the levels without units of their own are absent."""
    table, _ = simulate_design({"animal": 0.25, "pixel": 0.75}, animals=200, tumours=1, sections=1, pixels=500,
                               total_variance=8.0, seed=7)
    vc = variance_components(table).set_index("level")
    assert list(vc.index) == ["animal", "pixel"]
    assert vc.variance["animal"] == pytest.approx(2.0, rel=0.15) and vc.variance["pixel"] == pytest.approx(6.0, rel=0.01)
    assert vc.share["animal"] == pytest.approx(0.25, abs=0.03) and vc.df["animal"] == 2 * 199


def test_mean_squares_by_hand():
    """2 animals (one group) x 2 tumours x 2 sections, section variances 0 (pixel level absent in effect): the
    nested ANOVA's estimators from hand-computed mean squares."""
    means = {("a", "t1"): [1.0, 3.0], ("a", "t2"): [5.0, 7.0], ("b", "t1"): [2.0, 2.0], ("b", "t2"): [8.0, 10.0]}
    rows = [{"group": "g", "animal": a, "tumour": t, "mean": m, "variance": 0.0, "n": 100}
            for (a, t), ms in means.items() for m in ms]
    vc = variance_components(pd.DataFrame(rows)).set_index("level")
    # sections within tumours: SS = 2 + 2 + 0 + 2 = 6 over 4 df; tumours within animals: tumour means 2, 6, 2, 9
    # around animal means 4, 5.5: SS = 2 x (4 + 4 + 12.25 + 12.25) = 65 over 2 df; animals: animal means 4, 5.5
    # around 4.75: SS = 4 x (0.5625 x 2) = 4.5 over 1 df
    ms_s, ms_t, ms_a = 6 / 4, 65 / 2, 4.5
    assert vc.variance["section"] == pytest.approx(ms_s)
    assert vc.variance["tumour"] == pytest.approx((ms_t - ms_s) / 2)
    assert vc.variance["animal"] == 0.0  # (4.5 - 32.5) / 4 < 0: floored
    assert vc.variance["pixel"] == 0.0 and vc.share.sum() == pytest.approx(1.0)


def test_unbalanced_or_too_small_designs_are_refused():
    table, _ = simulate_design({"animal": 0.5, "pixel": 0.5}, seed=1)
    with pytest.raises(InputError, match="unbalanced"):
        variance_components(table.iloc[1:])
    one, _ = simulate_design({"animal": 0.5, "pixel": 0.5}, animals=1, seed=1)
    with pytest.raises(InputError, match="fewer than two animals"):
        variance_components(one)


def test_absent_levels_fold_into_the_nearest_present_level_above():
    """One tumour per animal: the tumour means are the animal means, so the tumour's variance is in the animal
    level (not the section level below it); one section per tumour: the section's is in the tumour level."""
    from nanohet.quantify.variance import folded_into

    assert folded_into("animal", ["animal", "section", "pixel"]) == ["tumour"]
    assert folded_into("section", ["animal", "section", "pixel"]) == []
    assert folded_into("tumour", ["animal", "tumour", "pixel"]) == ["section"]
    assert folded_into("animal", ["animal", "pixel"]) == ["tumour", "section"]
    assert folded_into("pixel", ["animal", "pixel"]) == []
    # and the estimator agrees: a design with one tumour per animal and tumour variance only puts it in the animal
    table, _ = simulate_design({"tumour": 0.6, "pixel": 0.4}, animals=200, tumours=1, sections=2, pixels=200,
                               seed=3)
    vc = variance_components(table, n_draws=200).set_index("level")
    assert list(vc.index) == ["animal", "section", "pixel"]
    assert vc.share["animal"] == pytest.approx(0.6, abs=0.08) and vc.share["section"] < 0.03
