"""3-D volumes (PET/SPECT/MR/CT) in physical space (mm), read and written with SimpleITK."""

from __future__ import annotations

import os

import numpy as np
import SimpleITK as sitk

from .atomic import atomic_path
from .errors import InputError


def read_volume(path: str | os.PathLike) -> sitk.Image:
    """Read a NIfTI, NRRD, MHA or DICOM-series folder as a SimpleITK image (mm).

    Raises
    ------
    InputError
        When the file or folder cannot be read as an image.
    """
    path = os.fspath(path)
    try:
        if os.path.isdir(path):
            reader = sitk.ImageSeriesReader()
            files = reader.GetGDCMSeriesFileNames(path)
            if not files:
                raise InputError(f"{path}: folder holds no DICOM series")
            reader.SetFileNames(files)
            return reader.Execute()
        return sitk.ReadImage(path)
    except RuntimeError as exc:
        raise InputError(f"{path}: cannot read as a volume ({str(exc).splitlines()[0]})") from exc


def write_volume(path: str | os.PathLike, image: sitk.Image) -> None:
    """Write a volume atomically (format chosen by the extension, e.g. ``.nii.gz``)."""
    with atomic_path(path) as tmp:
        sitk.WriteImage(image, str(tmp), useCompression=True)


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


def resample_to_grid(image: sitk.Image, reference: sitk.Image, transform: sitk.Transform | None = None,
                     is_mask: bool = False, default: float = 0.0) -> sitk.Image:
    """Resample a volume (or its mask) onto the grid of ``reference`` in physical space.

    Origins, spacings and direction cosines of both images are honoured, so
    volumes from different scanners (or a flipped axis, direction -1) land
    where they belong. Masks use nearest-neighbour interpolation.

    Parameters
    ----------
    transform : sitk.Transform, optional
        Reference -> image map (from a registration); identity when omitted.
    """
    tx = transform if transform is not None else sitk.Transform(image.GetDimension(), sitk.sitkIdentity)
    interp = sitk.sitkNearestNeighbor if is_mask else sitk.sitkLinear
    pixel = image.GetPixelID() if is_mask else sitk.sitkFloat32
    return sitk.Resample(image, reference, tx, interp, default, pixel)


def mask_centroid_mm(mask: sitk.Image) -> np.ndarray:
    """Physical centroid (mm) of a non-empty mask."""
    idx = np.argwhere(sitk.GetArrayViewFromImage(mask) > 0)
    if idx.size == 0:
        raise InputError("the mask is empty")
    centre = idx.mean(axis=0)[::-1]  # array (z, y, x) -> index (x, y, z)
    return np.array(mask.TransformContinuousIndexToPhysicalPoint(tuple(float(c) for c in centre)))
