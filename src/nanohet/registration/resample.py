"""Resampling a 2-D image onto another grid through a transform (physical units)."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ..image import block_origin, block_reduce_mean, to_sitk


def resample_to(moving: sitk.Image, reference: sitk.Image, transform: sitk.Transform,
                interpolator=sitk.sitkLinear, default: float = float("nan")) -> np.ndarray:
    """Resample ``moving`` onto the grid of ``reference`` through ``transform``.

    Pixels that map outside the moving image (or onto NaN) get ``default``.
    """
    out = sitk.Resample(moving, reference, transform, interpolator, default, sitk.sitkFloat64)
    return sitk.GetArrayFromImage(out)


def reference_grid(shape_yx, spacing, origin) -> sitk.Image:
    """An empty SimpleITK image describing a 2-D grid (for resampling)."""
    ref = sitk.Image(int(shape_yx[1]), int(shape_yx[0]), sitk.sitkFloat32)
    ref.SetSpacing(tuple(float(s) for s in spacing))
    ref.SetOrigin(tuple(float(o) for o in origin))
    return ref


def resample_stack(stack, reference: sitk.Image, transform: sitk.Transform):
    """Every channel of an MSI stack resampled onto ``reference`` (linear), non-acquired pixels as NaN.

    The ``acquired`` channel becomes the acquired fraction of each reference pixel (0 outside).

    Returns
    -------
    ndarray, shape (C, Y, X), float32
    """
    acquired = stack.channel("acquired") > 0
    planes = []
    for name in stack.channels:
        arr = stack.channel(name).astype(np.float64)
        if name != "acquired":
            arr = np.where(acquired, arr, np.nan)
        planes.append(resample_to(to_sitk(arr, stack.spacing, stack.origin), reference, transform))
    planes = np.stack(planes)
    acq = stack.channels.index("acquired")
    planes[acq] = np.nan_to_num(planes[acq], nan=0.0)
    return planes.astype(np.float32)


def resample_rgb(rgb, reference: sitk.Image, transform: sitk.Transform) -> np.ndarray:
    """An RGB section block-averaged to about the reference spacing, then resampled onto it (white outside).

    Returns
    -------
    ndarray, shape (3, Y, X), uint8
    """
    gf = max(int(round(reference.GetSpacing()[0] / rgb.spacing[0])), 1)  # block factor to the reference spacing
    spacing = (rgb.spacing[0] * gf, rgb.spacing[1] * gf)
    origin = block_origin(rgb.origin, rgb.spacing, gf)
    planes = [resample_to(to_sitk(block_reduce_mean(rgb.data[c], gf), spacing, origin), reference, transform,
                          default=255.0) for c in range(3)]
    return np.clip(np.rint(np.stack(planes)), 0, 255).astype(np.uint8)
