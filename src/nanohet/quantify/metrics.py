"""Heterogeneity metrics of a map inside a tumour region.

Definitions and sources:

* coefficient of variation ``CV = SD / mean`` over the region's pixels, the
  usual dispersion index of intratumour heterogeneity (also reported per ion
  image as RSD by mzkit's IonStat);
* Gini coefficient: half the relative mean absolute difference of all pairs of
  pixels, 0 for an even distribution and (n - 1) / n when one pixel holds
  everything (Gini 1912; the sorted-sum form of Damgaard & Weiner, Ecology
  2000;81:1139), a measure of inequality that does not depend on the map's
  unit;
* coverage: the fraction of region pixels at or above a threshold, the
  "fraction of the tumour reached by the drug" of Giordano et al. (Sci Rep
  2016;6:37027);
* distance-to-nearest-vessel profile: mean intensity in bins of Euclidean
  distance from the nearest vessel, with necrosis excluded (Fenton et al.,
  Br J Cancer 2002;86:1831); its half-distance ``L50`` is "the distance from
  the vessel at which fluorescence falls to 50 % of its original value" and
  ``AUC`` the area under the profile up to 100 µm (Lankelma/Tannock group,
  BMC Cancer 2012;12:214, Table 3).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage


def distance_to_mask_um(mask: np.ndarray, spacing) -> np.ndarray:
    """Euclidean distance (µm) of every pixel to the nearest ``True`` pixel.

    Parameters
    ----------
    mask : ndarray of bool, shape (Y, X)
        For example the vessel mask.
    spacing : (float, float)
        Pixel size ``(x, y)`` in µm.
    """
    if not mask.any():
        return np.full(mask.shape, np.inf)
    return ndimage.distance_transform_edt(~mask, sampling=(spacing[1], spacing[0]))


def region_stats(values: np.ndarray, region: np.ndarray, threshold: float | None = None) -> dict:
    """Mean, median, CV and coverage of ``values`` inside ``region``.

    NaN pixels (not acquired) are ignored. Returns NaNs when the region holds
    no finite pixel.
    """
    v = values[region & np.isfinite(values)]
    out = {"n_pixels": int(v.size), "mean": np.nan, "median": np.nan, "cv": np.nan, "coverage": np.nan}
    if v.size == 0:
        return out
    mean = float(v.mean())
    out.update(mean=mean, median=float(np.median(v)),
               cv=float(v.std() / mean) if mean > 0 else np.nan)
    if threshold is not None:
        out["coverage"] = float((v >= threshold).mean())
    return out


def gini_coefficient(values) -> float:
    """Gini coefficient of non-negative values: ``sum_i sum_j |x_i - x_j| / (2 n² mean)``.

    Computed from the sorted values as ``sum_i (2 i - n - 1) x_(i) / (n sum x)`` (i = 1 .. n), in
    O(n log n). Negative values (noise below a subtracted background) count as 0, since the coefficient
    is defined for non-negative quantities. NaN when nothing is left or the total is 0.
    """
    x = np.sort(np.clip(np.asarray(values, dtype=np.float64).ravel(), 0, None))
    n, total = x.size, x.sum()
    if n == 0 or not total > 0:
        return float("nan")
    rank = np.arange(1, n + 1, dtype=np.float64)
    return float(((2 * rank - n - 1) * x).sum() / (n * total))


def distance_profile(values: np.ndarray, distance_um: np.ndarray, region: np.ndarray,
                     bin_um: float = 10.0, max_um: float = 150.0) -> pd.DataFrame:
    """Mean of ``values`` in bins of distance to the nearest vessel.

    Returns
    -------
    DataFrame
        Columns ``distance_um`` (bin centre), ``mean``, ``sd`` (population standard deviation of the bin's
        pixels) and ``n_pixels``; one row per bin from 0 to ``max_um``. Empty bins have NaN mean and SD.
    """
    edges = np.arange(0.0, max_um + bin_um / 2, bin_um)
    ok = region & np.isfinite(values) & np.isfinite(distance_um) & (distance_um < edges[-1])
    b = np.digitize(distance_um[ok], edges) - 1
    counts = np.bincount(b, minlength=len(edges) - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.bincount(b, weights=values[ok], minlength=len(edges) - 1) / counts
        deviation = values[ok] - means[b]  # two passes: no cancellation in the SD
        sds = np.sqrt(np.bincount(b, weights=deviation * deviation, minlength=len(edges) - 1) / counts)
    return pd.DataFrame({"distance_um": (edges[:-1] + edges[1:]) / 2, "mean": means, "sd": sds,
                         "n_pixels": counts})


def half_distance_um(profile: pd.DataFrame, fraction: float = 0.5) -> float:
    """Distance at which the profile first falls to ``fraction`` (default 50 %) of its first-bin value.

    With the default this is L50; other fractions give the penetration distance of that fraction. Linear
    interpolation between bin centres; NaN if it never falls that far within the profile (reported honestly
    rather than extrapolated).
    """
    d = profile["distance_um"].to_numpy()
    m = profile["mean"].to_numpy()
    ok = np.isfinite(m)
    d, m = d[ok], m[ok]
    if m.size < 2 or m[0] <= 0:
        return float("nan")
    target = fraction * m[0]
    below = np.flatnonzero(m <= target)
    if below.size == 0:
        return float("nan")
    i = below[0]
    return float(d[i - 1] + (m[i - 1] - target) * (d[i] - d[i - 1]) / (m[i - 1] - m[i]))


def profile_auc(profile: pd.DataFrame, max_um: float = 100.0) -> float:
    """Area under the profile from the first bin centre to ``max_um`` (trapezoid, intensity x µm)."""
    sel = (profile["distance_um"] <= max_um) & profile["mean"].notna()
    p = profile[sel]
    if len(p) < 2:
        return float("nan")
    return float(np.trapezoid(p["mean"], p["distance_um"]))


def map_metrics(values: np.ndarray, tissue: np.ndarray, viable: np.ndarray, distance_um: np.ndarray,
                threshold: float | None = None, bin_um: float = 10.0, max_um: float = 150.0,
                penetration_fraction: float | None = None):
    """All per-map metrics: stats over ``tissue``, vessel-distance profile over ``viable``.

    Returns
    -------
    metrics : dict
        ``mean``, ``median``, ``cv``, ``coverage``, ``n_pixels``, ``l50_um``, ``auc_100um`` and, with
        ``penetration_fraction``, ``penetration_um`` (the distance where the profile falls to that fraction).
    profile : DataFrame
        See :func:`distance_profile`.
    """
    stats = region_stats(values, tissue, threshold)
    profile = distance_profile(values, distance_um, viable, bin_um, max_um)
    stats["l50_um"] = half_distance_um(profile)
    stats["auc_100um"] = profile_auc(profile)
    if penetration_fraction is not None:
        stats["penetration_um"] = half_distance_um(profile, float(penetration_fraction))
    return stats, profile
