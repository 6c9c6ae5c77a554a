"""Intensity-based statistics and intensity-histogram features as the Image Biomarker Standardisation
Initiative defines them.

Source: Zwanenburg A, Vallières M, et al. The Image Biomarker Standardization Initiative: standardized
quantitative radiomics for high-throughput image-based phenotyping. Radiology 2020;295:328-338; the
reference manual (arXiv:1612.07003, "Image features": intensity-based statistical features, UHIW, and
intensity histogram features, ZVCW) defines every feature below and gives its four-character identifier
and its value on the IBSI digital phantom (``tests/test_ibsi.py`` reproduces them).

Conventions the manual fixes and this module follows: features are computed over the region's values as
one set (3-D volumes as a whole, not per slice, "DHQ4"); variances carry no bias correction; kurtosis is
the excess kurtosis; skewness and kurtosis are 0 for a constant region; percentiles are the sample
percentiles (linear interpolation between order statistics, numpy's default).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

# feature name -> IBSI identifier (intensity-based statistics, family UHIW)
STATISTICS_CODES = {
    "mean": "Q4LE", "variance": "ECT3", "skewness": "KE2A", "kurtosis": "IPH6", "median": "Y12H",
    "minimum": "1GSF", "p10": "QG58", "p90": "8DWT", "maximum": "84IY", "iqr": "SALO", "range": "2OJQ",
    "mad": "4FUA", "rmad": "1128", "medad": "N72L", "cov": "7TET", "qcod": "9S40", "energy": "N8CA",
    "rms": "5ZWQ",
}
# feature name -> IBSI identifier (intensity histogram, family ZVCW)
HISTOGRAM_CODES = {
    "mean": "X6K6", "variance": "CH89", "skewness": "88K1", "kurtosis": "C3I7", "median": "WIFQ",
    "minimum": "1PR8", "p10": "GPMT", "p90": "OZ0C", "maximum": "3NCY", "mode": "AMMC", "iqr": "WR0O",
    "range": "5Z3W", "mad": "D2ZX", "rmad": "WRZB", "medad": "4RNL", "cov": "CWYJ", "qcod": "SLWD",
    "entropy": "TLU2", "uniformity": "BJ5W", "max_gradient": "12CE", "max_gradient_level": "8E6O",
    "min_gradient": "VQB3", "min_gradient_level": "RHQZ",
}


def _values(values) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise InputError("no value in the region (empty mask)")
    if not np.isfinite(x).all():
        raise InputError("the region holds NaN or infinite values; select the finite ones first")
    return x


def _moments(x: np.ndarray) -> dict:
    """Mean, biased variance, skewness and excess kurtosis (0 and 0 for a constant set)."""
    mean = x.mean()
    d = x - mean
    d2 = d * d  # products, not powers: numpy's float power is several times slower
    var = float(d2.mean())
    skew = float((d2 * d).mean() / var ** 1.5) if var > 0 else 0.0
    kurt = float((d2 * d2).mean() / var ** 2 - 3.0) if var > 0 else 0.0
    return {"mean": float(mean), "variance": var, "skewness": skew, "kurtosis": kurt}


def sorted_percentiles(ordered: np.ndarray, percents) -> np.ndarray:
    """Percentiles of sorted values (1-D, ascending), equal bit for bit to ``np.percentile`` of the unsorted ones
    (its default linear interpolation, Hyndman & Fan 1996 definition 7): one sort serves every percentile, where
    ``np.percentile`` partitions the values again for each call."""
    n = ordered.size
    q = np.true_divide(np.asarray(percents, dtype=np.float64), 100)
    virtual = (n - 1) * q
    below = np.floor(virtual)
    gamma = virtual - below
    below = below.astype(np.intp)
    above = below + 1
    top = virtual >= n - 1
    below[top] = above[top] = n - 1
    a, b = ordered[below], ordered[above]
    step = b - a
    return np.where(gamma >= 0.5, b - step * (1 - gamma), a + step * gamma)  # numpy's two-sided lerp


def _dispersion(x: np.ndarray, mean: float) -> dict:
    """The percentile-based and absolute-deviation features shared by both families."""
    ordered = np.sort(x)
    p10, p25, median, p75, p90 = sorted_percentiles(ordered, [10, 25, 50, 75, 90])
    central = ordered[np.searchsorted(ordered, p10, "left"):np.searchsorted(ordered, p90, "right")]  # P10 <= x <= P90
    lowest, highest = ordered[0], ordered[-1]
    del ordered
    return {
        "median": float(median), "minimum": float(lowest), "p10": float(p10), "p90": float(p90),
        "maximum": float(highest), "iqr": float(p75 - p25), "range": float(highest - lowest),
        "mad": float(np.abs(x - mean).mean()), "rmad": float(np.abs(central - central.mean()).mean()),
        "medad": float(np.abs(x - median).mean()),
        "cov": float(np.sqrt(((x - mean) ** 2).mean()) / mean) if mean != 0 else float("nan"),
        "qcod": float((p75 - p25) / (p75 + p25)) if (p75 + p25) != 0 else float("nan"),
    }


def intensity_statistics(values) -> dict[str, float]:
    """The 18 IBSI intensity-based statistical features of a region's values.

    Parameters
    ----------
    values : array_like
        The intensities of the region's pixels or voxels (any shape; finite), in the image's unit.

    Returns
    -------
    dict
        Keyed by the names of :data:`STATISTICS_CODES`: mean, variance (unit²), skewness, kurtosis (excess),
        median, minimum, p10, p90, maximum, iqr, range, mad (mean absolute deviation), rmad (robust mean
        absolute deviation over the values between P10 and P90), medad (mean absolute deviation from the
        median), cov (SD / mean), qcod ((P75 - P25) / (P75 + P25)), energy (sum of squares), rms.

    Raises
    ------
    InputError
        For an empty region or non-finite values.
    """
    x = _values(values)
    out = _moments(x)
    out.update(_dispersion(x, out["mean"]))
    out["energy"] = float((x ** 2).sum())
    out["rms"] = float(np.sqrt((x ** 2).mean()))
    return {k: out[k] for k in STATISTICS_CODES}


def discretise(values, *, bin_width: float | None = None, n_bins: int | None = None,
               minimum: float | None = None) -> np.ndarray:
    """Discretise intensities into grey levels 1, 2, ... as the IBSI defines it.

    Fixed bin size (``bin_width``, for calibrated units such as µg/g or SUV):
    ``floor((x - minimum) / bin_width) + 1`` with ``minimum`` the lower bound of the intensity range
    (default: the smallest value). Fixed bin number (``n_bins``, for arbitrary units):
    ``floor(n_bins (x - min) / (max - min)) + 1``, the maximum going into bin ``n_bins``; a constant
    region is all level 1.

    Returns
    -------
    ndarray of int64
        The grey level of every value (same shape as ``values``).
    """
    if (bin_width is None) == (n_bins is None):
        raise ValueError("give exactly one of bin_width (fixed bin size) and n_bins (fixed bin number)")
    x = np.asarray(values, dtype=np.float64)
    if bin_width is not None:
        if not bin_width > 0:
            raise InputError(f"bin width must be positive, got {bin_width}")
        low = float(np.min(x)) if minimum is None else float(minimum)
        if np.min(x) < low:
            raise InputError(f"values below the range's lower bound {low}")
        return (np.floor((x - low) / bin_width) + 1).astype(np.int64)
    if int(n_bins) < 1:
        raise InputError(f"number of bins must be at least 1, got {n_bins}")
    lo, hi = float(np.min(x)), float(np.max(x))
    if hi == lo:
        return np.ones(x.shape, dtype=np.int64)
    levels = np.floor(int(n_bins) * (x - lo) / (hi - lo)).astype(np.int64) + 1
    return np.minimum(levels, int(n_bins))


def intensity_histogram_features(levels) -> dict[str, float]:
    """The 23 IBSI intensity-histogram features of discretised intensities (:func:`discretise`).

    The statistics of :func:`intensity_statistics` (except energy and RMS) on the grey levels, plus:
    mode (the most frequent level; ties go to the level nearest the mean, then the lower one), entropy
    (``-sum p log2 p``), uniformity (``sum p²``) and the extremes of the histogram gradient (central
    differences of the counts over the full range of levels 1 .. max, one-sided at the ends) with the
    levels where they occur.

    Parameters
    ----------
    levels : array_like of int
        Grey levels (>= 1) of the region's pixels or voxels.
    """
    x = _values(levels)
    if (x < 1).any() or (x != np.round(x)).any():
        raise InputError("grey levels must be integers >= 1 (see discretise)")
    out = _moments(x)
    out.update(_dispersion(x, out["mean"]))
    counts = np.bincount(x.astype(np.int64))[1:].astype(np.float64)  # levels 1 .. max, empty ones kept
    p = counts / x.size
    top = np.flatnonzero(counts == counts.max()) + 1
    out["mode"] = float(top[np.argmin(np.abs(top - out["mean"]))])  # argmin takes the lower one on a tie
    nz = p[p > 0]
    out["entropy"] = float(-(nz * np.log2(nz)).sum())
    out["uniformity"] = float((p ** 2).sum())
    gradient = np.gradient(counts) if counts.size > 1 else np.zeros(1)
    out["max_gradient"] = float(gradient.max())
    out["max_gradient_level"] = float(np.argmax(gradient) + 1)
    out["min_gradient"] = float(gradient.min())
    out["min_gradient_level"] = float(np.argmin(gradient) + 1)
    return {k: out[k] for k in HISTOGRAM_CODES}
