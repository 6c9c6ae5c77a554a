"""Images to register with: summaries of a modality that share contrast with another.

Mutual information needs the two images to share structure. An MSI TIC image
often does (tissue versus background), but its inner contrast depends on ion
suppression; the first principal component of many ion images summarises the
dominant tissue pattern instead. For pairs with little shared contrast, both
sides can be replaced by the signed distance to their tissue outline, a
shape-only image (as in esmraldi's shape-based MSI registration).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk


def robust_unit(array: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Scale to [0, 1] between the 1st and 99th percentile of the valid finite pixels.

    Parameters
    ----------
    array : ndarray, shape (Y, X)
    valid : ndarray of bool, shape (Y, X), optional
        Pixels the percentiles are taken over (default: all finite pixels).

    Returns
    -------
    ndarray of float64, shape (Y, X)
        NaN where ``array`` is not finite.
    """
    a = np.asarray(array, dtype=np.float64)
    ok = np.isfinite(a) if valid is None else (np.isfinite(a) & valid)
    if not ok.any():
        raise ValueError("image has no valid finite pixel")
    lo, hi = np.percentile(a[ok], [1, 99])
    return np.clip((a - lo) / (hi - lo if hi > lo else 1.0), 0.0, 1.0)


def channel_sum(planes: list[np.ndarray]) -> np.ndarray:
    """Sum of channels, each first scaled by :func:`robust_unit` so that none dominates by brightness.

    Parameters
    ----------
    planes : list of ndarray, shape (Y, X) each

    Returns
    -------
    ndarray, shape (Y, X)
    """
    if not planes:
        raise ValueError("no channel to sum")
    return np.sum([robust_unit(p) for p in planes], axis=0)


def first_principal_component(images: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Score image of the first principal component of a stack of ion images.

    Each image is log-transformed (``log1p``) and standardised over the
    valid pixels (so that intense ions do not dominate), then the first
    right-singular vector of the pixels x images matrix gives the scores
    (PCA of MSI data: Race et al., Anal Chem 2013;85:3071). The sign is fixed
    so that the scores correlate positively with the summed standardised
    images: reruns and similar samples give the same polarity.

    Parameters
    ----------
    images : ndarray, shape (K, Y, X), K >= 2
        Non-negative ion images; non-valid pixels are ignored.
    valid : ndarray of bool, shape (Y, X)
        Acquired pixels.

    Returns
    -------
    ndarray of float64, shape (Y, X)
        PC1 scores; NaN outside ``valid``.
    """
    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 3 or images.shape[0] < 2:
        raise ValueError(f"need a stack of at least 2 images, got shape {images.shape}")
    valid = np.asarray(valid, bool) & np.isfinite(images).all(axis=0)
    if valid.sum() < 3:
        raise ValueError("fewer than 3 valid pixels")
    x = np.log1p(np.clip(images[:, valid], 0, None)).T  # pixels x images
    x = x - x.mean(axis=0)
    sd = x.std(axis=0)
    x = x[:, sd > 0] / sd[sd > 0]
    if x.shape[1] == 0:
        raise ValueError("every ion image is constant")
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    scores = x @ vt[0]
    if np.dot(scores, x.sum(axis=1)) < 0:
        scores = -scores
    out = np.full(valid.shape, np.nan)
    out[valid] = scores
    return out


def tissue_distance_map(mask: np.ndarray, spacing, clip: float) -> np.ndarray:
    """Signed distance to the tissue outline, positive inside, clipped to ``±clip``.

    Euclidean distance transform in physical units (Maurer et al., IEEE
    TPAMI 2003;25:265, via SimpleITK).

    Parameters
    ----------
    mask : ndarray of bool, shape (Y, X)
        Tissue mask.
    spacing : (float, float)
        Pixel size ``(x, y)`` in physical units.
    clip : float
        Distances beyond ``±clip`` are clipped (the outline, not the depth
        of large tissue, carries the alignment).

    Returns
    -------
    ndarray of float64, shape (Y, X)
    """
    mask = np.asarray(mask, bool)
    if not mask.any() or mask.all():
        raise ValueError("the tissue mask is empty or covers the whole image")
    img = sitk.GetImageFromArray(mask.astype(np.uint8))
    img.SetSpacing(tuple(float(s) for s in spacing))
    dist = sitk.SignedMaurerDistanceMap(img, insideIsPositive=True, squaredDistance=False, useImageSpacing=True)
    return np.clip(sitk.GetArrayFromImage(dist).astype(np.float64), -clip, clip)
