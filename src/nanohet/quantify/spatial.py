"""Spatial statistics of a map inside a region: autocorrelation, hot and cold spots, correlation length.

All on the pixel grid, without a dense n x n weight matrix (neighbour sums are array shifts or box
filters), so a whole section's map costs a few passes over its pixels.

Definitions and sources:

* global Moran's I and Geary's C with binary rook (4-neighbour) contiguity weights between pixels of the
  region (Moran, Biometrika 1950;37:17; Geary, The Incorporated Statistician 1954;5:115; as in PySAL's
  ``esda.Moran`` / ``esda.Geary`` with ``libpysal.weights.lat2W(rook=True)`` and binary weights);
* local Getis-Ord Gi* with binary weights over a disc of radius r that includes the pixel itself (Ord &
  Getis, Geographical Analysis 1995;27:286, eq. 14-16), two-sided normal p-values, Benjamini-Hochberg false
  discovery rate control over the region's pixels (J R Stat Soc B 1995;57:289; valid under the positive
  dependence of neighbouring pixels, Benjamini & Yekutieli, Ann Stat 2001;29:1165);
* the empirical semivariogram along the two grid axes, ``gamma(h) = mean (x_i - x_j)^2 / 2`` over region
  pixel pairs h apart (Matheron 1963; Cressie, Statistics for Spatial Data, 1993, eq. 2.4.2), and the
  correlation length as the range parameter a of the exponential model ``nugget + sill (1 - exp(-h / a))``
  fitted to it by least squares (the distance at which the correlation falls to 1/e).
"""

from __future__ import annotations

import numpy as np
from scipy import fft, optimize, stats

from ..errors import InputError
from ..image import convolve_same
from ..parallel import available_cpus


def _region_values(values: np.ndarray, region: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    values = np.asarray(values, dtype=np.float64)
    if values.shape != region.shape:
        raise ValueError(f"values {values.shape} and region {region.shape} differ in shape")
    inside = region & np.isfinite(values)
    if inside.sum() < 3:
        raise InputError(f"the region holds {int(inside.sum())} finite pixels; spatial statistics need 3 or more")
    return values, inside


def _rook_pairs(z: np.ndarray, inside: np.ndarray):
    """Differences and products of every horizontally and vertically adjacent pair inside the region
    (each pair once)."""
    for a, b in (((slice(None), slice(None, -1)), (slice(None), slice(1, None))),
                 ((slice(None, -1), slice(None)), (slice(1, None), slice(None)))):
        both = inside[a] & inside[b]
        yield z[a][both], z[b][both]


def morans_i(values: np.ndarray, region: np.ndarray) -> float:
    """Global Moran's I of ``values`` over ``region`` with rook contiguity (binary, symmetric weights).

    ``I = (n / W) sum_ij w_ij z_i z_j / sum_i z_i^2``, z the deviations from the region's mean, W the sum of
    the weights (twice the number of adjacent pairs). +1: smooth, 0: random (expectation -1 / (n - 1)),
    -1: a checkerboard.
    """
    values, inside = _region_values(values, region)
    z = np.where(inside, values - values[inside].mean(), 0.0)
    cross, pairs = 0.0, 0
    for a, b in _rook_pairs(z, inside):
        cross += float((a * b).sum())
        pairs += a.size
    denom = float((z[inside] ** 2).sum())
    if pairs == 0 or denom == 0:
        return float("nan")
    n = int(inside.sum())
    return float(n / (2 * pairs) * 2 * cross / denom)


def gearys_c(values: np.ndarray, region: np.ndarray) -> float:
    """Global Geary's C with rook contiguity: ``(n - 1) sum_ij w_ij (x_i - x_j)^2 / (2 W sum_i z_i^2)``.

    1: no autocorrelation, < 1 positive, > 1 negative autocorrelation.
    """
    values, inside = _region_values(values, region)
    z = np.where(inside, values - values[inside].mean(), 0.0)
    squares, pairs = 0.0, 0
    for a, b in _rook_pairs(z, inside):
        squares += float(((a - b) ** 2).sum())
        pairs += a.size
    denom = float((z[inside] ** 2).sum())
    if pairs == 0 or denom == 0:
        return float("nan")
    n = int(inside.sum())
    return float((n - 1) * 2 * squares / (2 * 2 * pairs * denom))


def getis_ord_gi_star(values: np.ndarray, region: np.ndarray, radius_px: float) -> np.ndarray:
    """Local Getis-Ord Gi* z-scores with binary weights over a disc of ``radius_px`` pixels (itself included).

    ``Gi* = (sum_j w_ij x_j - xbar W_i) / (s sqrt((n S1_i - W_i^2) / (n - 1)))`` with ``W_i = sum_j w_ij``,
    ``S1_i = sum_j w_ij^2`` (= W_i for binary weights), xbar and s the mean and (population) SD of the n
    region pixels; neighbours outside the region do not count. NaN outside the region.
    """
    values, inside = _region_values(values, region)
    r = int(np.floor(radius_px))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    disc = (yy ** 2 + xx ** 2 <= radius_px ** 2).astype(np.float64)
    x = np.where(inside, values, 0.0)
    n = float(inside.sum())
    mean = x[inside].mean()
    sd = np.sqrt((x[inside] ** 2).mean() - mean ** 2)
    # FFT convolution: a 50 µm disc at 10 µm is cheap either way, at finer pixels only the FFT is
    local_sum = convolve_same(x, disc, workers=available_cpus())
    weight = np.round(convolve_same(inside.astype(np.float64), disc, workers=available_cpus()))  # integer counts
    with np.errstate(invalid="ignore", divide="ignore"):
        gi = (local_sum - mean * weight) / (sd * np.sqrt((n * weight - weight ** 2) / (n - 1)))
    return np.where(inside, gi, np.nan)


def benjamini_hochberg(p: np.ndarray, q: float = 0.05) -> np.ndarray:
    """Which p-values (1-D, finite) are discoveries at false discovery rate ``q`` (Benjamini & Hochberg 1995)."""
    p = np.asarray(p, dtype=np.float64)
    m = p.size
    if m == 0:
        return np.zeros(0, dtype=bool)
    ranked = np.sort(p)
    below = np.flatnonzero(ranked <= q * np.arange(1, m + 1) / m)
    if below.size == 0:
        return np.zeros(m, dtype=bool)
    return p <= ranked[below[-1]]  # step-up: every p up to the largest one under its line


def hotspots(values: np.ndarray, region: np.ndarray, radius_px: float, q: float = 0.05):
    """Hot and cold spots: region pixels whose Gi* is significantly high or low at false discovery rate ``q``.

    Returns
    -------
    hot, cold : ndarray of bool
        Masks (shape of ``values``).
    gi : ndarray
        The Gi* z-scores (:func:`getis_ord_gi_star`).
    """
    gi = getis_ord_gi_star(values, region, radius_px)
    ok = np.isfinite(gi)
    p = 2 * stats.norm.sf(np.abs(gi[ok]))
    significant = np.zeros(gi.shape, dtype=bool)
    significant[ok] = benjamini_hochberg(p, q)
    return significant & (gi > 0), significant & (gi < 0), gi


def semivariogram(values: np.ndarray, region: np.ndarray, max_lag_px: int) -> tuple[np.ndarray, np.ndarray]:
    """Empirical semivariogram along the grid axes at lags 1 .. ``max_lag_px`` pixels (both axes pooled).

    Returns
    -------
    lags : ndarray of int
    gamma : ndarray
        Half the mean squared difference of the region pixel pairs at each lag (NaN without pairs).
    """
    values, inside = _region_values(values, region)
    lags = np.arange(1, int(max_lag_px) + 1)
    m = inside.astype(np.float64)
    v = np.where(inside, values - values[inside].mean(), 0.0)  # centred: the squares below do not cancel
    count = np.zeros(lags.size + 1)
    total = np.zeros(lags.size + 1)
    for axis in (0, 1):
        c, t = _lag_sums(m, v, axis, lags.size)
        count += c
        total += t
    count, total = np.rint(count[1:]), np.clip(total[1:], 0, None)
    with np.errstate(invalid="ignore", divide="ignore"):
        gamma = np.where(count > 0, total / (2 * count), np.nan)
    return lags, gamma


def _lag_sums(m: np.ndarray, v: np.ndarray, axis: int, max_lag: int) -> tuple[np.ndarray, np.ndarray]:
    """Pair counts ``sum m(t) m(t+h)`` and squared differences ``sum m(t) m(t+h) (v(t) - v(t+h))²`` along
    ``axis`` for lags h = 0 .. ``max_lag``, summed over all lines (``v`` is 0 outside the mask ``m``).

    Each sum of products ``sum x(t) y(t+h)`` is a correlation computed with FFTs of zero-padded lines (not
    cyclic), and the squared difference expands into three of them: ``m·v²`` against ``m`` both ways and
    ``v`` against itself.
    """
    length = fft.next_fast_len(m.shape[axis] + max_lag + 1, real=True)
    other = 1 - axis
    fm = fft.rfft(m, length, axis=axis, workers=available_cpus())
    fv = fft.rfft(v, length, axis=axis, workers=available_cpus())
    fvv = fft.rfft(v * v, length, axis=axis, workers=available_cpus())
    # real spectra: conj(F)F = |F|², and conj(fm) fvv plus its conjugate is twice its real part
    count = (fm.real ** 2 + fm.imag ** 2).sum(axis=other)
    squares = 2 * (fm.real * fvv.real + fm.imag * fvv.imag - fv.real ** 2 - fv.imag ** 2).sum(axis=other)
    return fft.irfft(count, length)[: max_lag + 1], fft.irfft(squares, length)[: max_lag + 1]


def correlation_length(values: np.ndarray, region: np.ndarray, spacing: float, max_lag_px: int) -> float:
    """Range parameter a (in the unit of ``spacing``) of the exponential model fitted to the semivariogram.

    NaN when the fit fails or a lies beyond the largest lag (the map is correlated over more than the
    lags cover; raise ``max_lag_px``).
    """
    lags, gamma = semivariogram(values, region, max_lag_px)
    ok = np.isfinite(gamma)
    if ok.sum() < 4:
        return float("nan")
    h, g = lags[ok].astype(np.float64), gamma[ok]

    def model(h, nugget, sill, a):
        return nugget + sill * (1 - np.exp(-h / a))

    try:
        (nugget, sill, a), _ = optimize.curve_fit(
            model, h, g, p0=(0.0, float(g.max()), float(h[len(h) // 4] + 1)),
            bounds=([0.0, 0.0, 1e-3], [np.inf, np.inf, 10.0 * h.max()]), maxfev=20000)
    except (RuntimeError, ValueError):
        return float("nan")
    if not a < h.max():
        return float("nan")
    return float(a * spacing)


def block_cv_curve(values: np.ndarray, region: np.ndarray, spacing: float, block_sizes) -> list[tuple]:
    """Heterogeneity versus scale: the CV of block means (SD / mean over the blocks) for square blocks of each
    size in ``block_sizes`` (units of ``spacing``), blocks counted when at least half of them is region.

    Returns
    -------
    list of (block size, cv, number of blocks, mean of the block means)
        CV NaN where fewer than 2 blocks fit. The mean and the CV (population SD) let curves of several
        sections be pooled (:func:`nanohet.quantify.cohort.pooled_scale_curves`).
    """
    from ..image import block_reduce_mean

    values, inside = _region_values(values, region)
    out = []
    for size in block_sizes:
        k = max(int(round(float(size) / spacing)), 1)
        means = block_reduce_mean(np.where(inside, values, np.nan), k)
        cover = block_reduce_mean(inside.astype(np.float64), k)
        keep = (cover >= 0.5) & np.isfinite(means)
        m = means[keep]
        cv = float(m.std() / m.mean()) if m.size >= 2 and m.mean() else float("nan")
        out.append((k * spacing, cv, int(m.size), float(m.mean()) if m.size else float("nan")))
    return out


def homogenisation_scale(curve: list[tuple], target_cv: float) -> float:
    """The block size at which the CV of block means (:func:`block_cv_curve`) first falls to ``target_cv``,
    interpolated linearly in log CV against log block size (exact for a power law, as uncorrelated noise gives:
    CV proportional to 1 / block size); NaN when it never does within the curve (or starts below)."""
    sizes = np.array([c[0] for c in curve], dtype=np.float64)
    cvs = np.array([c[1] for c in curve], dtype=np.float64)
    ok = np.isfinite(cvs)
    sizes, cvs = sizes[ok], cvs[ok]
    if cvs.size == 0 or cvs[0] <= target_cv:
        return float("nan")
    below = np.flatnonzero(cvs <= target_cv)
    if below.size == 0:
        return float("nan")
    j = int(below[0])
    x0, x1 = np.log(sizes[j - 1]), np.log(sizes[j])
    if cvs[j] <= 0:
        return float(sizes[j])
    f = (np.log(cvs[j - 1]) - np.log(target_cv)) / (np.log(cvs[j - 1]) - np.log(cvs[j]))
    return float(np.exp(x0 + f * (x1 - x0)))
