"""Uptake statistics of an in vivo volume inside its tumour mask."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ..errors import InputError


def volume_metrics(image: sitk.Image, mask: sitk.Image) -> dict:
    """Uptake statistics of a volume inside a mask.

    Parameters
    ----------
    image : sitk.Image
        Uptake or intensity volume (e.g. SUV or %ID/g).
    mask : sitk.Image
        Non-zero inside the tumour; must share the image's grid (size,
        spacing, origin, direction within 1e-4).

    Returns
    -------
    dict
        ``mean``, ``median``, ``cv`` (standard deviation / mean, a standard
        heterogeneity index), ``p90`` and ``volume_mm3`` (voxel count x voxel
        volume).
    """
    if (image.GetSize() != mask.GetSize()
            or not np.allclose(image.GetSpacing(), mask.GetSpacing(), rtol=1e-4)
            or not np.allclose(image.GetOrigin(), mask.GetOrigin(), atol=1e-4)
            or not np.allclose(image.GetDirection(), mask.GetDirection(), atol=1e-4)):
        raise InputError("the volume and its mask are not on the same grid (size/spacing/origin/direction)")
    values = sitk.GetArrayViewFromImage(image).astype(np.float64)
    m = sitk.GetArrayViewFromImage(mask) > 0
    if not m.any():
        raise InputError("the tumour mask is empty")
    inside = values[m]
    if not np.isfinite(inside).all():
        raise InputError("the volume has NaN or infinite values inside the tumour mask")
    mean = float(inside.mean())
    return {
        "mean": mean, "median": float(np.median(inside)),
        "cv": float(inside.std() / mean) if mean else float("nan"),
        "p90": float(np.percentile(inside, 90)),
        "volume_mm3": float(m.sum() * np.prod(image.GetSpacing())),
    }
