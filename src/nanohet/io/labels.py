"""Label images a user supplies: nuclei segmented elsewhere (Cellpose, StarDist, Mesmer, QuPath).

A label image is one integer plane, 0 for background and a positive id per object, on the pixel grid of the
fluorescence section it was segmented from (same rows and columns). TIFF (OME or plain) and PNG are read; an
OME-TIFF's PhysicalSize must agree with the section's pixel size.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import tifffile

from ..errors import InputError


def read_label_image(path: str | os.PathLike, shape_yx: tuple, spacing_um: float | None = None,
                     where: str = "") -> np.ndarray:
    """Read and check a label image against the section it belongs to.

    Parameters
    ----------
    path : path-like
        TIFF, OME-TIFF or PNG; singleton axes are dropped.
    shape_yx : (int, int)
        Rows and columns of the fluorescence section.
    spacing_um : float, optional
        The section's pixel size (µm): an OME-TIFF declaring another PhysicalSizeX (beyond 1 %) is refused.
    where : str
        Names the sample in errors.

    Returns
    -------
    (Y, X) int64 array
        The labels (0 background).

    Raises
    ------
    InputError
        Naming the file (and ``where``): unreadable, not one plane, another shape, non-integer or negative
        values, no object, or another pixel size.
    """
    path = Path(path)
    label = f"{path}{f' ({where})' if where else ''}"
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            with tifffile.TiffFile(path) as tif:
                data = tif.asarray()
                declared = _ome_pixel_size(tif)
        else:
            from skimage.io import imread

            data, declared = imread(path), None
    except (OSError, ValueError) as exc:
        raise InputError(f"{label}: cannot read the label image: {exc}") from None
    data = np.squeeze(np.asarray(data))
    if data.ndim != 2:
        raise InputError(f"{label}: a label image is one plane; got shape {data.shape}")
    if data.shape != tuple(shape_yx):
        raise InputError(f"{label}: label image of {data.shape[0]} x {data.shape[1]} pixels, but the fluorescence "
                         f"section has {shape_yx[0]} x {shape_yx[1]}: labels must be on the section's own pixel grid")
    if not np.issubdtype(data.dtype, np.integer):
        if not np.all(np.isfinite(data)) or not np.all(data == np.round(data)):
            raise InputError(f"{label}: label values must be whole numbers (got {data.dtype} with fractions or NaN)")
    data = data.astype(np.int64)
    if data.min() < 0:
        raise InputError(f"{label}: negative labels; 0 is background and objects are 1, 2, ...")
    if data.max() == 0:
        raise InputError(f"{label}: the label image holds no object (all 0)")
    if declared is not None and spacing_um and abs(declared / spacing_um - 1) > 0.01:
        raise InputError(f"{label}: PhysicalSizeX {declared:g} µm, but the fluorescence section's pixel is "
                         f"{spacing_um:g} µm")
    return data


def _ome_pixel_size(tif: tifffile.TiffFile) -> float | None:
    """PhysicalSizeX (µm) of an OME-TIFF, or None."""
    import re

    xml = tif.ome_metadata
    if not xml:
        return None
    m = re.search(r'PhysicalSizeX="([0-9.eE+-]+)"', xml)
    unit = re.search(r'PhysicalSizeXUnit="([^"]+)"', xml)
    if not m:
        return None
    value = float(m.group(1))
    return value * {"nm": 1e-3, "mm": 1e3}.get(unit.group(1) if unit else "µm", 1.0)
