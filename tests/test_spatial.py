"""Spatial statistics (nanohet.quantify.spatial) on analytic cases and against dense-weight computations."""

import numpy as np
import pytest

from nanohet.errors import InputError
from nanohet.quantify.spatial import (benjamini_hochberg, correlation_length, gearys_c, getis_ord_gi_star, hotspots,
                                      morans_i, semivariogram)


def ar1_field(shape, a_px: float, seed: int) -> np.ndarray:
    """A stationary field with separable exponential correlation exp(-(|dx| + |dy|) / a) and unit variance:
    along either axis its semivariogram is exactly 1 - exp(-h / a) and the neighbour correlation exp(-1 / a)."""
    rng = np.random.default_rng(seed)
    phi = np.exp(-1.0 / a_px)
    x = rng.normal(size=shape)
    for axis in (0, 1):
        x = np.moveaxis(x, axis, 0).copy()
        out = np.empty_like(x)
        out[0] = x[0]
        for i in range(1, x.shape[0]):
            out[i] = phi * out[i - 1] + np.sqrt(1 - phi ** 2) * x[i]
        x = np.moveaxis(out, 0, axis)
    return x


def dense_weights(region: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices of region pixels and their dense rook weight matrix (the textbook construction)."""
    ys, xs = np.nonzero(region)
    d = np.abs(ys[:, None] - ys[None, :]) + np.abs(xs[:, None] - xs[None, :])
    return (ys, xs), (d == 1).astype(float)


def irregular_region(shape, seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    region = (yy - shape[0] / 2) ** 2 + (xx - shape[1] / 2) ** 2 < (0.45 * min(shape)) ** 2
    region &= rng.random(shape) > 0.1  # holes
    return region


def test_checkerboard_moran_is_minus_one_and_geary_near_two():
    board = (np.indices((20, 20)).sum(0) % 2).astype(float)
    region = np.ones_like(board, bool)
    assert morans_i(board, region) == pytest.approx(-1.0)
    n = board.size
    assert gearys_c(board, region) == pytest.approx(2 * (n - 1) / n)


@pytest.mark.parametrize("seed", [0, 1])
def test_moran_and_geary_equal_the_dense_weight_definitions(seed):
    region = irregular_region((24, 30), seed)
    x = np.random.default_rng(seed + 10).gamma(2.0, 1.0, region.shape)
    x[~region] = 1e6  # values outside the region must not matter
    (ys, xs), w = dense_weights(region)
    v = x[ys, xs]
    z = v - v.mean()
    n, big_w = v.size, w.sum()
    moran = n / big_w * (w * np.outer(z, z)).sum() / (z ** 2).sum()
    geary = (n - 1) * (w * (v[:, None] - v[None, :]) ** 2).sum() / (2 * big_w * (z ** 2).sum())
    assert morans_i(x, region) == pytest.approx(moran)
    assert gearys_c(x, region) == pytest.approx(geary)


@pytest.mark.parametrize("a_px, seed", [(3.0, 2), (6.0, 3)])
def test_smooth_field_autocorrelation_and_correlation_length(a_px, seed):
    x = ar1_field((300, 300), a_px, seed)
    region = np.ones(x.shape, bool)
    phi = np.exp(-1 / a_px)
    assert morans_i(x, region) == pytest.approx(phi, abs=0.03)
    assert gearys_c(x, region) == pytest.approx(1 - phi, abs=0.03)
    lags, gamma = semivariogram(x, region, 10)
    np.testing.assert_allclose(gamma, 1 - np.exp(-lags / a_px), atol=0.08)
    # in µm at a 2.5 µm pixel: within 15 %
    assert correlation_length(x, region, 2.5, int(6 * a_px)) == pytest.approx(2.5 * a_px, rel=0.15)


def test_white_noise_has_no_autocorrelation_and_no_hotspots():
    x = np.random.default_rng(5).normal(size=(120, 120))
    region = irregular_region(x.shape, 5)
    n = region.sum()
    assert morans_i(x, region) == pytest.approx(-1 / (n - 1), abs=0.03)
    assert gearys_c(x, region) == pytest.approx(1.0, abs=0.03)
    hot, cold, _ = hotspots(x, region, 3.0)
    assert hot.sum() + cold.sum() < 0.01 * n


def test_gi_star_equals_the_dense_definition_and_finds_a_planted_hotspot():
    region = irregular_region((30, 30), 7)
    rng = np.random.default_rng(7)
    x = rng.normal(10, 1, region.shape)
    gi = getis_ord_gi_star(x, region, 2.5)
    (ys, xs), _ = dense_weights(region)
    v = x[ys, xs]
    n = v.size
    w = ((ys[:, None] - ys[None, :]) ** 2 + (xs[:, None] - xs[None, :]) ** 2 <= 2.5 ** 2).astype(float)
    s = np.sqrt((v ** 2).mean() - v.mean() ** 2)
    wi = w.sum(1)
    ref = (w @ v - v.mean() * wi) / (s * np.sqrt((n * wi - wi ** 2) / (n - 1)))
    np.testing.assert_allclose(gi[ys, xs], ref, rtol=1e-9, atol=1e-9)
    assert np.isnan(gi[~region]).all()
    # a planted bright disc is a hot spot, a dark one a cold spot, the rest is neither
    yy, xx = np.mgrid[0:60, 0:60]
    y = rng.normal(10, 1, (60, 60))
    y[(yy - 15) ** 2 + (xx - 15) ** 2 < 36] += 4
    y[(yy - 45) ** 2 + (xx - 45) ** 2 < 36] -= 4
    hot, cold, _ = hotspots(y, np.ones_like(y, bool), 3.0)
    assert hot[15, 15] and cold[45, 45] and not hot[45, 45] and not cold[15, 15]
    assert hot.sum() < 250 and cold.sum() < 250


def test_benjamini_hochberg_step_up():
    p = np.array([0.01, 0.04, 0.03, 0.20, 0.005])
    # sorted 0.005, 0.01, 0.03, 0.04, 0.20 against 0.01, 0.02, 0.03, 0.04, 0.05: the 4 smallest pass
    np.testing.assert_array_equal(benjamini_hochberg(p, 0.05), [True, True, True, False, True])


def test_too_small_regions_are_refused():
    with pytest.raises(InputError, match="2 finite pixels"):
        morans_i(np.ones((3, 3)), np.eye(3, dtype=bool) & (np.arange(3)[:, None] < 2))


@pytest.mark.parametrize("seed", [0, 1])
def test_semivariogram_equals_the_pair_definition(seed):
    """The FFT sums give, at every lag, half the mean squared difference over the region pixel pairs along
    both grid axes, as counted pair by pair (an irregular region, NaN pixels, a large offset)."""
    from nanohet.quantify.spatial import semivariogram

    rng = np.random.default_rng(seed)
    values = ar1_field((37, 52), 4.0, seed) + 500.0
    values[rng.random(values.shape) < 0.05] = np.nan
    region = rng.random(values.shape) < 0.85
    inside = region & np.isfinite(values)
    lags, gamma = semivariogram(values, region, 30)
    for h, g in zip(lags, gamma):
        d = np.concatenate([(values[:, :-h] - values[:, h:])[inside[:, :-h] & inside[:, h:]],
                            (values[:-h] - values[h:])[inside[:-h] & inside[h:]]])
        assert g == pytest.approx(float((d * d).mean() / 2), rel=1e-9), h


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_heterogeneity_versus_scale_of_uncorrelated_noise(seed):
    """Uncorrelated pixels: the CV of k x k block means is the pixel CV / k, so the homogenisation scale for a
    target CV is pixel size x pixel CV / target; a smooth field keeps its CV over larger blocks."""
    from nanohet.quantify.spatial import block_cv_curve, homogenisation_scale

    rng = np.random.default_rng(seed)
    cv0 = rng.uniform(0.2, 0.5)
    values = rng.normal(100.0, 100.0 * cv0, (600, 600))
    region = np.ones(values.shape, bool)
    curve = block_cv_curve(values, region, 10.0, [10, 20, 50, 100, 200])
    for size, cv, n, mean in curve:
        assert cv == pytest.approx(cv0 * 10.0 / size, rel=0.1) and n == (6000 // size) ** 2
        assert mean == pytest.approx(values.mean(), rel=1e-9)  # whole blocks tile the field
    assert homogenisation_scale(curve, 0.05) == pytest.approx(10.0 * cv0 / 0.05, rel=0.08)
    assert np.isnan(homogenisation_scale(curve, 1e-4))  # never reached within 200 µm
    smooth = ar1_field((600, 600), 30.0, seed) + 10.0
    rough = block_cv_curve(smooth, region, 10.0, [10, 100])
    assert rough[1][1] > 0.5 * rough[0][1]  # correlated over 300 µm: 100 µm blocks keep most of the CV


def test_pooled_scale_curve_levels_off_at_the_between_section_cv():
    """Sections of uniform blocks (zero CV each at their block size) whose levels differ: pooled, the CV of all
    block means is the between-section CV, by the law of total variance; a single section pools to itself."""
    import pandas as pd

    from nanohet.quantify.cohort import pooled_scale_curves
    from nanohet.quantify.spatial import block_cv_curve

    rng = np.random.default_rng(4)
    levels = {"s1": 2.0, "s2": 3.0, "s3": 7.0}
    rows = []
    for sample, level in levels.items():
        values = np.kron(np.full((4, 4), level), np.ones((20, 20))) + rng.normal(0, 0.5, (80, 80))
        for size, cv, n, mean in block_cv_curve(values, np.ones(values.shape, bool), 10.0, [10, 200]):
            rows.append({"sample": sample, "modality": "msi", "analyte": "dox", "region": "tissue", "block_um": size,
                         "cv": cv, "n_blocks": n, "block_mean": mean})
    scales = pd.DataFrame(rows)
    samples = pd.DataFrame({"sample": list(levels), "group": ["g", "g", "g"]})
    pooled = pooled_scale_curves(scales, samples, target_cv=0.01).set_index("block_um")
    blocks = np.concatenate([np.full(16, v) for v in levels.values()])  # 16 blocks of 200 µm per section
    expected = blocks.std() / blocks.mean()
    assert pooled.cv[200.0] == pytest.approx(expected, rel=0.01)  # the within-section noise is averaged away
    per_pixel = np.concatenate([np.full(6400, v) for v in levels.values()])
    assert pooled.cv[10.0] == pytest.approx(np.hypot(per_pixel.std(), 0.5) / per_pixel.mean(), rel=0.02)
    assert (pooled.n_sections == 3).all() and pooled.n_blocks[200.0] == 48
    assert np.isnan(pooled.homogenisation_scale_um).all()  # the between-section spread never homogenises
    one = pooled_scale_curves(scales[scales["sample"] == "s2"], samples, 0.01).set_index("block_um")
    s2 = scales[scales["sample"] == "s2"].set_index("block_um")
    assert np.allclose(one.cv, s2.cv)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_convolve_same_is_scipy_fftconvolve(dtype):
    """nanohet.image.convolve_same (Gi*'s disc sums, SUVpeak's sphere, the demo's extravasation) equals
    scipy.signal.fftconvolve(mode="same"): odd and even shapes, kernels larger than the image, 2-D and 3-D."""
    from scipy import signal

    from nanohet.image import convolve_same

    rng = np.random.default_rng(7)
    for image, kernel in [((100, 120), (7, 9)), ((64, 65), (64, 65)), ((30, 40, 50), (5, 6, 7)), ((10, 10), (21, 3))]:
        a, k = rng.random(image).astype(dtype), rng.random(kernel).astype(dtype)
        expected = signal.fftconvolve(a, k, mode="same")
        found = convolve_same(a, k)
        assert found.dtype == expected.dtype and found.shape == a.shape
        np.testing.assert_allclose(found, expected, rtol=1e-6 if dtype == np.float32 else 1e-12, atol=1e-5)
