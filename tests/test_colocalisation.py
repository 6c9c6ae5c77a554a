"""Colocalisation (nanohet.quantify.colocalisation): analytic cases, scipy for the correlations, and the
spatial-autocorrelation argument for shift p-values."""

import numpy as np
import pytest
from scipy import stats

from nanohet.errors import InputError
from nanohet.quantify.colocalisation import colocalisation, costes_thresholds, manders, orthogonal_regression

from test_spatial import ar1_field


def test_correlations_agree_with_scipy():
    rng = np.random.default_rng(1)
    a = rng.gamma(2, 1, (40, 50))
    b = 0.5 * a + rng.gamma(2, 1, a.shape)
    region = rng.random(a.shape) > 0.2
    got = colocalisation(a, b, region, n_shifts=19)
    assert got["pearson"] == pytest.approx(stats.pearsonr(a[region], b[region]).statistic)
    assert got["spearman"] == pytest.approx(stats.spearmanr(a[region], b[region]).statistic)


def test_orthogonal_regression_of_an_exact_line():
    x = np.random.default_rng(2).uniform(0, 10, 500)
    assert orthogonal_regression(x, 2.0 * x + 1.0) == pytest.approx((2.0, 1.0))
    # total least squares is symmetric: the line of x on y is the inverse line
    y = 0.7 * x + np.random.default_rng(3).normal(0, 0.5, x.size)
    s, c = orthogonal_regression(x, y)
    s2, c2 = orthogonal_regression(y, x)
    assert s * s2 == pytest.approx(1.0) and c2 == pytest.approx(-c / s)


@pytest.mark.parametrize("seed, shared", [(4, 1.0), (5, 0.5)])
def test_costes_thresholds_separate_signal_from_background_and_manders_measures_the_shared_part(seed, shared):
    """Background noise in both channels; signal pixels in a, a fraction ``shared`` of them also bright
    (proportionally) in b: M1 recovers that fraction, M2 is 1 (every bright b pixel is a bright a pixel)."""
    rng = np.random.default_rng(seed)
    n = 20000
    signal = rng.random(n) < 0.2
    level = rng.uniform(50, 100, n)
    both = signal & (rng.random(n) < shared)
    a = rng.normal(10, 2, n) + np.where(signal, level, 0)
    b = rng.normal(10, 2, n) + np.where(both, 0.8 * level, 0)
    tx, ty = costes_thresholds(a, b)
    assert 12 < tx < 60 and 12 < ty < 50
    m1, m2 = manders(a, b, tx, ty)
    expected = a[both].sum() / a[signal].sum()
    assert m1 == pytest.approx(expected, abs=0.05) and m2 == pytest.approx(1.0, abs=0.05)


def test_costes_refuses_anticorrelated_maps():
    x = np.random.default_rng(6).uniform(0, 1, 1000)
    with pytest.raises(InputError, match="not positively correlated"):
        costes_thresholds(x, 1 - x)


def test_shift_p_values_respect_spatial_autocorrelation():
    """Independent smooth maps are often 'significantly' correlated pixel by pixel (their pixels are not
    independent); the shift test holds its level, and a truly colocalised pair still gets the smallest p."""
    naive, shifted = [], []
    region = np.ones((120, 120), bool)
    for seed in range(10):
        a, b = ar1_field(region.shape, 10.0, 100 + seed), ar1_field(region.shape, 10.0, 200 + seed)
        naive.append(stats.pearsonr(a.ravel(), b.ravel()).pvalue < 0.05)
        shifted.append(colocalisation(a, b, region, n_shifts=99, min_shift_px=20, seed=seed)["pearson_p_shift"] < 0.05)
    assert sum(naive) >= 5 and sum(shifted) <= 2, (naive, shifted)
    a = ar1_field(region.shape, 10.0, 7)
    b = a + 0.3 * np.random.default_rng(8).normal(size=a.shape)
    assert colocalisation(a, b, region, n_shifts=99, min_shift_px=20)["pearson_p_shift"] == pytest.approx(1 / 100)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shifted_correlations_equal_a_direct_recomputation(seed):
    """The FFT sums of every shift give the r of rolling b and the region and recomputing over the overlap, with
    NaN pixels and an irregular region, on grids of odd and even sizes."""
    from scipy import ndimage

    from nanohet.quantify.colocalisation import _cyclic_sums, _pearson

    rng = np.random.default_rng(seed)
    ny, nx = (int(v) for v in rng.integers(20, 71, 2))
    a = ndimage.gaussian_filter(rng.normal(size=(ny, nx)), 2) + 1000.0  # a large offset: no cancellation
    b = 0.5 * a + rng.normal(size=(ny, nx))
    a[rng.random(a.shape) < 0.05] = np.nan
    region = rng.random((ny, nx)) < 0.8
    shifts = np.column_stack([rng.integers(0, ny, 25), rng.integers(0, nx, 25)])
    direct = []
    for dy, dx in shifts:
        bs, rs = np.roll(b, (dy, dx), axis=(0, 1)), np.roll(region, (dy, dx), axis=(0, 1))
        both = region & rs & np.isfinite(a) & np.isfinite(bs)
        direct.append(_pearson(a[both], bs[both]))
    np.testing.assert_allclose(_cyclic_sums(a, b, region, shifts), direct, atol=1e-9)


@pytest.mark.parametrize("seed, shared_mask", [(0, True), (1, True), (2, False)])
def test_many_pairs_share_their_transforms(seed, shared_mask):
    """The shifted correlations of every pair of several maps, computed with each map's transforms once, equal
    each pair's own computation; a map with NaN pixels of its own falls back to the pair-by-pair path."""
    from scipy import ndimage

    from nanohet.quantify.colocalisation import _cyclic_sums, shift_offsets, shifted_correlations

    rng = np.random.default_rng(seed)
    ny, nx = (int(v) for v in rng.integers(30, 81, 2))
    region = ndimage.binary_opening(rng.random((ny, nx)) < 0.85)
    base = ndimage.gaussian_filter(rng.normal(size=(ny, nx)), 3)
    maps = {k: base * w + rng.normal(size=(ny, nx)) + 500.0 for k, w in (("a", 1.0), ("b", 0.5), ("c", -2.0))}
    if not shared_mask:
        maps["b"][rng.random((ny, nx)) < 0.1] = np.nan
    shifts = {(x, y): shift_offsets((ny, nx), 40, 5, seed=i) for i, x in enumerate("abc") for y in "abc"[i + 1:]}
    together = shifted_correlations(maps, region, shifts)
    for (x, y), sh in shifts.items():
        np.testing.assert_allclose(together[(x, y)], _cyclic_sums(maps[x], maps[y], region, sh), atol=1e-9)


def test_the_section_measures_give_the_pairwise_p_values():
    """colocalisation_rows (all pairs at once) gives each pair the p-value its own shift test gives."""
    from nanohet.quantify.section import colocalisation_rows
    from nanohet.settings import QuantifySettings

    region = np.ones((90, 90), bool)
    region[:10] = False
    a = ar1_field(region.shape, 6.0, 1)
    maps = {"a": a, "b": a + 0.8 * ar1_field(region.shape, 6.0, 2), "c": ar1_field(region.shape, 6.0, 3)}
    q = QuantifySettings(colocalisation_shifts=49, colocalisation_min_shift_um=100.0)
    rows = {(r["analyte"], r["metric"]): r["value"] for r in colocalisation_rows("s", maps, region, 10.0, q)}
    for i, (x, y) in enumerate([("a", "b"), ("a", "c"), ("b", "c")]):
        alone = colocalisation(maps[x], maps[y], region, n_shifts=49, min_shift_px=10, seed=0 if x == "a" else 1)
        assert rows[(f"{x}:{y}", "pearson_p_shift")] == alone["pearson_p_shift"]
        assert rows[(f"{x}:{y}", "pearson")] == pytest.approx(alone["pearson"])


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_costes_threshold_is_where_stepping_down_first_reaches_zero_correlation(seed):
    """Against a brute-force walk down every pixel's entry point from a's maximum: the pixels below the returned
    thresholds are the last set met with r > 0 before r first falls to 0 or below."""
    from nanohet.quantify.colocalisation import _pearson

    rng = np.random.default_rng(seed)
    n = int(rng.integers(300, 2000))
    signal = rng.random(n) < 0.3
    x = rng.gamma(2, 1, n) + signal * rng.gamma(3, 3, n)
    y = rng.gamma(2, 1, n) + signal * (0.8 * x + rng.normal(0, 1, n))
    slope, intercept = orthogonal_regression(x, y)
    tx, ty = costes_thresholds(x, y, n_bins=int(rng.integers(1, 64)))  # any binning: the same exact answer
    assert ty == pytest.approx(slope * tx + intercept)
    last_positive = x.max()
    for t in np.unique(np.minimum(x, (y - intercept) / slope))[::-1]:
        below = (x < t) | (y < slope * t + intercept)
        r = _pearson(x[below], y[below]) if below.sum() >= 3 else np.nan
        if np.isfinite(r) and r <= 0:
            break
        last_positive = t
    got = (x < tx) | (y < slope * tx + intercept)
    want = (x < last_positive) | (y < slope * last_positive + intercept)
    np.testing.assert_array_equal(got, want)
    assert _pearson(x[got], y[got]) > 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_doubled_ranks_are_twice_scipys_average_ranks(seed):
    from scipy import stats

    from nanohet.quantify.colocalisation import doubled_ranks

    rng = np.random.default_rng(seed)
    for x in (rng.normal(size=1001), rng.integers(0, 20, size=777).astype(float), np.ones(5), np.array([2.5])):
        ranks = doubled_ranks(x)
        assert ranks.dtype == np.int32 and np.array_equal(ranks, 2 * stats.rankdata(x))
