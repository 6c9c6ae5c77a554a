"""Texture of a discretised map: grey level co-occurrence (GLCM) and size-zone (GLSZM) features as the Image
Biomarker Standardisation Initiative defines them, and the drug homogeneity index (DHI) of HomogenMSI.

Sources
-------
- IBSI reference manual (Zwanenburg et al., Radiology 2020;295:328-338; arXiv:1612.07003), "Grey level
  co-occurrence based features" (family LFYI) and "Grey level size zone based features" (family 9SAK): every
  definition below, the identifiers in :data:`GLCM_CODES` and :data:`GLSZM_CODES`, and the digital-phantom
  values that ``tests/test_texture.py`` reproduces.
- Prasad M, Postma G, Franceschi P, et al. Drug-homogeneity index in mass-spectrometry imaging. Anal Chem
  2018;90:13257-13264, and its reference implementation (HomogenMSI): :func:`drug_homogeneity_index`.

Inputs are grey levels 1..Ng (:func:`~.ibsi.discretise`) with a mask. Arrays are (Y, X) sections or
(Z, Y, X) volumes; "2-D" features treat each slice along the first axis on its own, as the IBSI does.

GLCM conventions: Chebyshev distance 1; 4 directions in 2-D ((0,1), (1,1), (1,0), (1,-1) in (y, x)) and 13 in
3-D; each directional matrix is symmetrised (``M + M.T``); only pairs whose both pixels are in the mask count;
matrices are ``Ng x Ng`` with ``Ng`` the number of grey levels of the discretisation (``n_levels``).
Aggregation (:data:`GLCM_AGGREGATIONS`): features of every directional matrix averaged ("2D averaged", BTW3;
"3D averaged", ITBB) or computed from the merged (summed) matrices ("2D slice-merged", SUJT, per slice then
averaged over slices; "3D merged", IAZD).

GLSZM conventions: zones are connected pixels of one grey level (8-connected in 2-D, 26 in 3-D); "2D"
(8QNN) computes the features per slice and averages them, "3D" (KOBO) uses one volume matrix. The matrix is
kept sparse (level, size, count), so a whole-slide map with one large zone costs no dense ``Ng x N`` array.
"""

from __future__ import annotations

import itertools

import numpy as np
from skimage import measure

from ..errors import InputError

GLCM_CODES = {
    "joint_maximum": "GYBY", "joint_average": "60VM", "joint_variance": "UR99", "joint_entropy": "TU9B",
    "difference_average": "TF7R", "difference_variance": "D3YU", "difference_entropy": "NTRS",
    "sum_average": "ZGXS", "sum_variance": "OEEB", "sum_entropy": "P6QZ", "angular_second_moment": "8ZQL",
    "contrast": "ACUI", "dissimilarity": "8S9J", "inverse_difference": "IB1Z",
    "normalised_inverse_difference": "NDRX", "inverse_difference_moment": "WF0Z",
    "normalised_inverse_difference_moment": "1QCO", "inverse_variance": "E8JP", "correlation": "NI2N",
    "autocorrelation": "QWB0", "cluster_tendency": "DG8W", "cluster_shade": "7NFM", "cluster_prominence": "AE86",
    "information_correlation_1": "R8DG", "information_correlation_2": "JN9H",
}
GLSZM_CODES = {
    "small_zone_emphasis": "5QRC", "large_zone_emphasis": "48P8", "low_grey_level_zone_emphasis": "XMSY",
    "high_grey_level_zone_emphasis": "5GN9", "small_zone_low_grey_level_emphasis": "5RAI",
    "small_zone_high_grey_level_emphasis": "HW1V", "large_zone_low_grey_level_emphasis": "YH51",
    "large_zone_high_grey_level_emphasis": "J17V", "grey_level_non_uniformity": "JNSA",
    "normalised_grey_level_non_uniformity": "Y1RO", "zone_size_non_uniformity": "4JP3",
    "normalised_zone_size_non_uniformity": "VB3A", "zone_percentage": "P30P", "grey_level_variance": "BYLV",
    "zone_size_variance": "3NSA", "zone_size_entropy": "GU8N",
}
GLCM_AGGREGATIONS = {"2D averaged": "BTW3", "2D slice-merged": "SUJT", "3D averaged": "ITBB", "3D merged": "IAZD"}
GLSZM_AGGREGATIONS = {"2D": "8QNN", "3D": "KOBO"}

DIRECTIONS_2D = ((0, 0, 1), (0, 1, 1), (0, 1, 0), (0, 1, -1))
# the 13 unique 3-D directions at Chebyshev distance 1: one of each pair (m, -m)
DIRECTIONS_3D = tuple(d for d in itertools.product((-1, 0, 1), repeat=3) if d > (0, 0, 0))


def _as_volume(levels, mask) -> tuple[np.ndarray, np.ndarray]:
    lv = np.asarray(levels)
    m = np.asarray(mask, dtype=bool)
    if lv.shape != m.shape or lv.ndim not in (2, 3):
        raise InputError(f"grey levels {lv.shape} and mask {m.shape} must be one 2-D or 3-D grid")
    if not m.any():
        raise InputError("the mask is empty")
    inside = lv[m]
    if (inside < 1).any() or (inside != np.round(inside)).any():
        raise InputError("grey levels must be integers >= 1 inside the mask (see ibsi.discretise)")
    lv = np.where(m, lv, 0).astype(np.int64)
    return (lv[None], m[None]) if lv.ndim == 2 else (lv, m)


def _pair_views(shape, offset):
    """Index slices (a, b) so that ``x[b]`` is ``x[a]`` moved by ``offset``."""
    a, b = [], []
    for n, d in zip(shape, offset):
        a.append(slice(0, n - d) if d >= 0 else slice(-d, n))
        b.append(slice(d, n) if d >= 0 else slice(0, n + d))
    return tuple(a), tuple(b)


def glcm_matrices(levels, mask, n_levels: int | None = None, *, dimensions: int = 2) -> np.ndarray:
    """Symmetric co-occurrence counts of neighbouring pixels in the mask, per slice and direction.

    Parameters
    ----------
    levels : ndarray of int, (Y, X) or (Z, Y, X)
        Grey levels 1..``n_levels`` inside ``mask``.
    mask : ndarray of bool, same shape
    n_levels : int, optional
        Matrix size ``Ng`` (default: the largest level in the mask).
    dimensions : {2, 3}
        2: the 4 in-slice directions per slice; 3: the 13 directions of the volume.

    Returns
    -------
    ndarray of float64, (slices, directions, Ng, Ng)
        One slice for ``dimensions=3``. Level ``i`` is row ``i - 1``.
    """
    lv, m = _as_volume(levels, mask)
    ng = int(n_levels or lv.max())
    if lv.max() > ng:
        raise InputError(f"grey level {lv.max()} above n_levels = {ng}")
    directions = DIRECTIONS_2D if dimensions == 2 else DIRECTIONS_3D
    n_slices = lv.shape[0] if dimensions == 2 else 1
    out = np.zeros((n_slices, len(directions), ng, ng))
    # each voxel's code: level - 1 inside the mask, the extra level ng outside; a pair's bin (code_a, code_b) of an
    # (ng + 1)² matrix per slice, so pairs with a voxel outside fall in the extra row or column, dropped at the end
    # (no selection of the pairs: a bincount over every position)
    side = ng + 1
    dtype = np.int32 if n_slices * side * side < 2 ** 31 else np.int64
    code = np.where(m, lv - 1, ng).astype(dtype)
    if dimensions == 2 and n_slices > 1:
        code += (np.arange(n_slices, dtype=dtype) * side)[:, None, None]  # the slice in the row's code
    for k, offset in enumerate(directions):
        a, b = _pair_views(lv.shape, offset)
        bins = code[a] * side
        bins += code[b] % side if dimensions == 2 and n_slices > 1 else code[b]
        counts = np.bincount(bins.ravel(), minlength=n_slices * side * side).reshape(n_slices, side, side)[:, :ng, :ng]
        out[:, k] = counts + counts.transpose(0, 2, 1)
    return out


def _entropy(p: np.ndarray) -> float:
    nz = p[p > 0]
    return float(-(nz * np.log2(nz)).sum())


def glcm_features(counts: np.ndarray) -> dict[str, float]:
    """The 25 IBSI GLCM features of one co-occurrence count matrix (``Ng x Ng``, symmetric).

    Notation of the manual: ``p_ij`` the normalised matrix, ``p_i.`` its marginal, ``p_{i-j,k}`` and
    ``p_{i+j,k}`` the diagonal and cross-diagonal probabilities. Information correlation 1 is 0 when the
    marginal entropy ``HX`` is 0 (a single grey level). Returns NaN for every feature of an empty matrix.
    """
    total = counts.sum()
    if total <= 0:
        return {k: float("nan") for k in GLCM_CODES}
    p = counts / total
    ng = p.shape[0]
    i = np.arange(1, ng + 1, dtype=np.float64)[:, None]
    j = i.T
    pi = p.sum(axis=1)
    levels = i[:, 0]
    mu = float((levels * pi).sum())
    var = float(((levels - mu) ** 2 * pi).sum())
    diff = np.abs(i - j).astype(np.int64)
    p_diff = np.bincount(diff.ravel(), weights=p.ravel(), minlength=ng)
    k_diff = np.arange(ng, dtype=np.float64)
    summ = (i + j).astype(np.int64)
    p_sum = np.bincount(summ.ravel(), weights=p.ravel(), minlength=2 * ng + 1)
    k_sum = np.arange(2 * ng + 1, dtype=np.float64)
    d_avg = float((k_diff * p_diff).sum())
    s_avg = float((k_sum * p_sum).sum())
    hxy = _entropy(p)
    hx = _entropy(pi)
    outer = pi[:, None] * pi[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        log_outer = np.where(outer > 0, np.log2(np.where(outer > 0, outer, 1.0)), 0.0)
    hxy1 = float(-(p * log_outer).sum())
    hxy2 = float(-(outer * log_outer).sum())
    upper = j > i
    centred = i + j - 2 * mu
    return {
        "joint_maximum": float(p.max()),
        "joint_average": float((i * p).sum()),
        "joint_variance": float(((i - mu) ** 2 * p).sum()),
        "joint_entropy": hxy,
        "difference_average": d_avg,
        "difference_variance": float(((k_diff - d_avg) ** 2 * p_diff).sum()),
        "difference_entropy": _entropy(p_diff),
        "sum_average": s_avg,
        "sum_variance": float(((k_sum - s_avg) ** 2 * p_sum).sum()),
        "sum_entropy": _entropy(p_sum),
        "angular_second_moment": float((p ** 2).sum()),
        "contrast": float(((i - j) ** 2 * p).sum()),
        "dissimilarity": float((np.abs(i - j) * p).sum()),
        "inverse_difference": float((p / (1 + np.abs(i - j))).sum()),
        "normalised_inverse_difference": float((p / (1 + np.abs(i - j) / ng)).sum()),
        "inverse_difference_moment": float((p / (1 + (i - j) ** 2)).sum()),
        "normalised_inverse_difference_moment": float((p / (1 + (i - j) ** 2 / ng ** 2)).sum()),
        "inverse_variance": float(2 * (p[upper] / ((i - j)[upper] ** 2)).sum()),
        "correlation": float(((i - mu) * (j - mu) * p).sum() / var) if var > 0 else float("nan"),
        "autocorrelation": float((i * j * p).sum()),
        "cluster_tendency": float((centred ** 2 * p).sum()),
        "cluster_shade": float((centred ** 3 * p).sum()),
        "cluster_prominence": float((centred ** 4 * p).sum()),
        "information_correlation_1": (hxy - hxy1) / hx if hx > 0 else 0.0,
        "information_correlation_2": float(np.sqrt(max(1.0 - np.exp(-2.0 * (hxy2 - hxy)), 0.0))),
    }


def _mean_features(feature_dicts: list[dict], codes: dict) -> dict[str, float]:
    if not feature_dicts:
        return {k: float("nan") for k in codes}
    out = {}
    for k in codes:
        v = np.array([f[k] for f in feature_dicts], dtype=np.float64)
        v = v[np.isfinite(v)]
        out[k] = float(v.mean()) if v.size else float("nan")  # a feature undefined for every matrix stays NaN
    return out


def glcm_texture(levels, mask, n_levels: int | None = None, *,
                 aggregation: str = "2D slice-merged") -> dict[str, float]:
    """The 25 GLCM features of a discretised map, aggregated as the IBSI defines (:data:`GLCM_AGGREGATIONS`).

    Matrices without any pair (a slice with a single pixel, a direction across a one-pixel-wide mask) are left
    out of the averages; a region with no neighbouring pair at all gives NaN.
    """
    if aggregation not in GLCM_AGGREGATIONS:
        raise InputError(f"GLCM aggregation {aggregation!r}: choose one of {sorted(GLCM_AGGREGATIONS)}")
    dims = 3 if aggregation.startswith("3D") else 2
    mats = glcm_matrices(levels, mask, n_levels, dimensions=dims)
    if aggregation == "3D merged":
        return glcm_features(mats.sum(axis=(0, 1)))
    if aggregation == "2D slice-merged":
        per = [glcm_features(s) for s in mats.sum(axis=1) if s.sum() > 0]
    else:
        per = [glcm_features(mats[z, d]) for z in range(mats.shape[0]) for d in range(mats.shape[1])
               if mats[z, d].sum() > 0]
    return _mean_features(per, GLCM_CODES)


def size_zones(levels, mask, *, dimensions: int = 2) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, int]]:
    """The zones (connected pixels of one grey level) of a discretised map, as sparse size-zone matrices.

    Returns
    -------
    list of (level, size, count, n_pixels)
        One entry per slice with mask pixels for ``dimensions=2`` (8-connected zones), one for the volume for
        ``dimensions=3`` (26-connected): the distinct (grey level, zone size in pixels) pairs with their zone
        counts, and the number of mask pixels ``N_v``.
    """
    lv, m = _as_volume(levels, mask)
    stacks = [(lv[z], m[z]) for z in range(lv.shape[0])] if dimensions == 2 else [(lv, m)]
    out = []
    for lz, mz in stacks:
        n_pixels = int(mz.sum())
        if n_pixels == 0:
            continue
        # one pass: skimage labels connected pixels of equal value (background 0 = outside the mask)
        labelled = measure.label(np.where(mz, lz, 0), background=0, connectivity=lz.ndim)
        sizes = np.bincount(labelled.ravel())[1:]
        zone_level = np.zeros(sizes.size + 1, dtype=np.int64)
        zone_level[labelled.ravel()] = lz.ravel()
        key = zone_level[1:] * (int(sizes.max()) + 1) + sizes
        keys, counts = np.unique(key, return_counts=True)
        pairs = np.stack([keys // (int(sizes.max()) + 1), keys % (int(sizes.max()) + 1)])
        out.append((pairs[0], pairs[1], counts.astype(np.float64), n_pixels))
    return out


def glszm_features(level: np.ndarray, size: np.ndarray, count: np.ndarray, n_pixels: int) -> dict[str, float]:
    """The 16 IBSI GLSZM features of one sparse size-zone matrix (distinct ``level, size`` pairs and their
    zone ``count``; ``n_pixels`` = ``N_v``)."""
    i, j, s = level.astype(np.float64), size.astype(np.float64), count
    ns = s.sum()
    p = s / ns
    _, by_level = np.unique(level, return_inverse=True)
    _, by_size = np.unique(size, return_inverse=True)
    s_i = np.bincount(by_level, weights=s)
    s_j = np.bincount(by_size, weights=s)
    mu_i, mu_j = float((i * p).sum()), float((j * p).sum())
    return {
        "small_zone_emphasis": float((s / j ** 2).sum() / ns),
        "large_zone_emphasis": float((s * j ** 2).sum() / ns),
        "low_grey_level_zone_emphasis": float((s / i ** 2).sum() / ns),
        "high_grey_level_zone_emphasis": float((s * i ** 2).sum() / ns),
        "small_zone_low_grey_level_emphasis": float((s / (i ** 2 * j ** 2)).sum() / ns),
        "small_zone_high_grey_level_emphasis": float((s * i ** 2 / j ** 2).sum() / ns),
        "large_zone_low_grey_level_emphasis": float((s * j ** 2 / i ** 2).sum() / ns),
        "large_zone_high_grey_level_emphasis": float((s * i ** 2 * j ** 2).sum() / ns),
        "grey_level_non_uniformity": float((s_i ** 2).sum() / ns),
        "normalised_grey_level_non_uniformity": float((s_i ** 2).sum() / ns ** 2),
        "zone_size_non_uniformity": float((s_j ** 2).sum() / ns),
        "normalised_zone_size_non_uniformity": float((s_j ** 2).sum() / ns ** 2),
        "zone_percentage": float(ns / n_pixels),
        "grey_level_variance": float(((i - mu_i) ** 2 * p).sum()),
        "zone_size_variance": float(((j - mu_j) ** 2 * p).sum()),
        "zone_size_entropy": _entropy(p),
    }


def glszm_texture(levels, mask, *, aggregation: str = "2D") -> dict[str, float]:
    """The 16 GLSZM features of a discretised map: per slice and averaged ("2D", 8QNN) or from the volume's
    matrix ("3D", KOBO)."""
    if aggregation not in GLSZM_AGGREGATIONS:
        raise InputError(f"GLSZM aggregation {aggregation!r}: choose one of {sorted(GLSZM_AGGREGATIONS)}")
    zones = size_zones(levels, mask, dimensions=2 if aggregation == "2D" else 3)
    return _mean_features([glszm_features(*z) for z in zones], GLSZM_CODES)


def drug_homogeneity_index(levels, mask, min_zone_size: int = 1) -> float:
    """The drug homogeneity index (DHI) of HomogenMSI: the mean size of the grey-level zones of the map, over
    the area of the tumour.

    ``DHI = (sum_ij j s_ij / sum_ij s_ij) / N_v`` over the zones of size ``j >= min_zone_size`` (HomogenMSI's
    ``Nu``), with ``s_ij`` the 2-D size-zone matrix (8-connected zones, :func:`size_zones`) and ``N_v`` the
    number of tumour pixels. 1 for a map of one grey level that fills a connected tumour; near ``1 / N_v``
    for a map whose every pixel differs from its neighbours.

    Differences from the reference implementation, which works on the whole image: pixels outside the mask
    are excluded rather than set to a background grey level, so tumour pixels without drug count as a grey
    level of their own (HomogenMSI drops every zone of the lowest level, the background, with them); and the
    grey levels come from the IBSI discretisation (:func:`~.ibsi.discretise`) instead of a rescaled
    intensity.
    """
    lv = np.asarray(levels)
    if lv.ndim != 2:
        raise InputError("the drug homogeneity index is defined on 2-D sections")
    return homogeneity_from_zones(*size_zones(lv, mask, dimensions=2)[0], min_zone_size=min_zone_size)


def homogeneity_from_zones(level: np.ndarray, size: np.ndarray, count: np.ndarray, n_pixels: int,
                           min_zone_size: int = 1) -> float:
    """:func:`drug_homogeneity_index` from the 2-D zones of one section (an entry of :func:`size_zones`)."""
    keep = size >= int(min_zone_size)
    if not keep.any():
        return float("nan")
    return float((size[keep] * count[keep]).sum() / count[keep].sum() / n_pixels)
