"""Colocalisation of two maps inside a region: correlation, Manders' coefficients with Costes' automatic
thresholds, and a significance test that respects spatial autocorrelation.

Definitions and sources:

* Pearson's r over the region's pixels (Manders, Verbeek & Aten, J Microsc 1993;169:375) and Spearman's rank
  correlation (robust to the non-linear response of the two signals);
* Costes' automatic thresholds (Costes et al., Biophys J 2004;86:3993): the orthogonal (total least squares)
  regression line of b on a; thresholds move down the line, from a's maximum, to where the Pearson r of the
  pixels below either threshold first falls to 0 or below; the thresholds are the lowest ones at which it is
  still positive (found by bisection, as Fiji's Coloc 2 does by default);
* Manders' M1 and M2 at those thresholds (Manders, Verbeek & Aten 1993; Dunn et al., Am J Physiol Cell
  Physiol 2011;300:C723): ``M1 = sum of a over pixels above both thresholds / sum of a over pixels
  above a's threshold``, M2 likewise for b;
* significance by toroidal shifts (Fay et al., Exp Cell Res 1997;231:27; the randomisation of Costes et al. 2004 by blocks, here
  by whole-image cyclic shifts of b larger than a minimum distance): pixel-level p-values of r assume
  independent pixels and are meaningless on autocorrelated maps, a shift keeps each map's own spatial
  structure and breaks only their alignment. ``p = (1 + #{r_shift >= r}) / (1 + n_shifts)``.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from ..errors import InputError


def _pair(a: np.ndarray, b: np.ndarray, region: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.shape != region.shape:
        raise ValueError(f"maps {a.shape}, {b.shape} and region {region.shape} differ in shape")
    inside = region & np.isfinite(a) & np.isfinite(b)
    if inside.sum() < 3:
        raise InputError(f"the region holds {int(inside.sum())} pixels where both maps are finite; "
                         "colocalisation needs 3 or more")
    return a[inside], b[inside]


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    dx, dy = x - x.mean(), y - y.mean()
    denom = np.sqrt((dx * dx).sum() * (dy * dy).sum())
    return float((dx * dy).sum() / denom) if denom > 0 else float("nan")


def orthogonal_regression(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Slope and intercept of the total-least-squares line of y on x (the major axis of the joint scatter)."""
    sxx, syy = np.var(x), np.var(y)
    sxy = np.mean((x - x.mean()) * (y - y.mean()))
    if sxy == 0:
        raise InputError("the two maps are uncorrelated; Costes' regression line is undefined")
    slope = (syy - sxx + np.sqrt((syy - sxx) ** 2 + 4 * sxy ** 2)) / (2 * sxy)
    return float(slope), float(y.mean() - slope * x.mean())


def costes_thresholds(x: np.ndarray, y: np.ndarray, iterations: int = 60) -> tuple[float, float]:
    """Costes' thresholds ``(t_x, t_y)`` on the regression line (see the module docstring).

    Raises
    ------
    InputError
        When the maps are not positively correlated (no line along which to threshold).
    """
    slope, intercept = orthogonal_regression(x, y)
    if slope <= 0:
        raise InputError("the two maps are not positively correlated; Costes' thresholds are undefined")

    def below_r(t):
        below = (x < t) | (y < slope * t + intercept)
        return _pearson(x[below], y[below]) if below.sum() >= 3 else float("nan")

    lo, hi = float(x.min()), float(x.max())
    for _ in range(iterations):  # invariant: r(hi) > 0 (or undefined), r(lo) <= 0 (or undefined)
        mid = (lo + hi) / 2
        r = below_r(mid)
        if np.isfinite(r) and r <= 0:
            lo = mid
        else:
            hi = mid
    return hi, slope * hi + intercept


def manders(x: np.ndarray, y: np.ndarray, tx: float, ty: float) -> tuple[float, float]:
    """Manders' M1 (share of x above its threshold that lies where y is above its) and M2 (the reverse)."""
    ax, ay = x > tx, y > ty
    m1 = float(x[ax & ay].sum() / x[ax].sum()) if x[ax].sum() > 0 else float("nan")
    m2 = float(y[ax & ay].sum() / y[ay].sum()) if y[ay].sum() > 0 else float("nan")
    return m1, m2


def shift_p_value(a: np.ndarray, b: np.ndarray, region: np.ndarray, r: float, n_shifts: int, min_shift_px: int,
                  seed: int) -> float:
    """Toroidal-shift p-value of Pearson's ``r`` (one-sided: as large or larger by chance alignment).

    ``b`` and the region are cyclically shifted together by random offsets of at least ``min_shift_px``
    along one axis; r is recomputed over the pixels inside both the region and the shifted region.
    """
    rng = np.random.default_rng(seed)
    ny, nx = a.shape
    if max(ny, nx) <= 2 * min_shift_px:
        return float("nan")
    hits, done = 0, 0
    while done < n_shifts:
        dy, dx = int(rng.integers(0, ny)), int(rng.integers(0, nx))
        if max(min(dy, ny - dy), min(dx, nx - dx)) < min_shift_px:
            continue
        bs, rs = np.roll(b, (dy, dx), axis=(0, 1)), np.roll(region, (dy, dx), axis=(0, 1))
        both = region & rs & np.isfinite(a) & np.isfinite(bs)
        done += 1
        if both.sum() >= 3 and _pearson(a[both], bs[both]) >= r:
            hits += 1
    return (1 + hits) / (1 + n_shifts)


def colocalisation(a: np.ndarray, b: np.ndarray, region: np.ndarray, *, n_shifts: int = 199,
                   min_shift_px: int = 10, seed: int = 0) -> dict[str, float]:
    """Every colocalisation measure of maps ``a`` and ``b`` (same grid) over ``region``.

    Returns
    -------
    dict
        ``pearson``, ``spearman``, ``pearson_p_shift`` (:func:`shift_p_value`), ``costes_threshold_a`` and
        ``_b`` (map units), ``manders_m1`` and ``manders_m2`` at those thresholds (NaN when the maps are not
        positively correlated).
    """
    x, y = _pair(a, b, region)
    r = _pearson(x, y)
    out = {"pearson": r, "spearman": float(stats.spearmanr(x, y).statistic),
           "pearson_p_shift": shift_p_value(a, b, region, r, n_shifts, min_shift_px, seed) if np.isfinite(r)
           else float("nan")}
    try:
        tx, ty = costes_thresholds(x, y)
        m1, m2 = manders(x, y, tx, ty)
    except InputError:
        tx = ty = m1 = m2 = float("nan")
    out.update(costes_threshold_a=tx, costes_threshold_b=ty, manders_m1=m1, manders_m2=m2)
    return out
