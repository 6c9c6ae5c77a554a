"""The workflow's distribution and spatial measures for any image with a mask or label image
(``nanohet features``): the same functions the workflow uses, usable on their own.

2-D images (OME-TIFF or TIFF sections, µm) get every measure of :func:`~.section.region_rows`,
:func:`~.section.spatial_rows` and :func:`~.section.texture_rows`; 3-D volumes (NIfTI, NRRD, MHA, DICOM series,
mm) the distribution measures and the 3-D texture (the spatial statistics here are defined on 2-D grids).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..settings import QuantifySettings
from .metrics import region_stats
from .section import at_analysis_scale, region_rows, spatial_rows, texture_rows
from .volume import intensity_peaks

TIFF_SUFFIXES = (".tif", ".tiff")


def _is_tiff(path: Path) -> bool:
    return path.name.lower().endswith(TIFF_SUFFIXES)


def read_image_and_labels(image: str | Path, labels: str | Path, channel: str | None = None):
    """The image's values, the label image (0 = background) and the pixel spacing, checked to share one grid.

    Returns
    -------
    values : ndarray, (Y, X) or (Z, Y, X)
    label_array : ndarray of int, same shape
    spacing : tuple of float
        The pixel size along each axis, x first (µm for sections, mm for volumes).
    unit : str
        ``um`` or ``mm``.

    Raises
    ------
    InputError
        Naming the files: unreadable, a channel that is not there, grids that differ.
    """
    image, labels = Path(image), Path(labels)
    if _is_tiff(image):
        from ..io.ometiff import read_ome_tiff

        img = read_ome_tiff(image)
        if channel is None and len(img.channels) > 1:
            raise InputError(f"{image}: {len(img.channels)} channels {img.channels}; choose one with --channel")
        if channel is not None and channel not in img.channels:
            raise InputError(f"{image}: no channel {channel!r}; channels: {img.channels}")
        values = img.channel(channel or img.channels[0]).astype(np.float64)
        lab = read_ome_tiff(labels)
        if lab.data.shape[1:] != values.shape or tuple(lab.spacing) != tuple(img.spacing):
            raise InputError(f"{labels} ({lab.data.shape[1:]} pixels of {lab.spacing} µm) is not on the grid of "
                             f"{image} ({values.shape} pixels of {img.spacing} µm)")
        return values, np.rint(lab.data[0]).astype(np.int64), tuple(float(v) for v in img.spacing), "um"
    import SimpleITK as sitk

    from ..io.volumes import read_volume

    from ..io.pet import is_pet_series, read_pet_suv

    vol = read_pet_suv(image)[0] if is_pet_series(image) else read_volume(image)  # PET DICOM: in SUVbw
    lab = read_volume(labels)
    same = (vol.GetSize() == lab.GetSize() and np.allclose(vol.GetSpacing(), lab.GetSpacing())
            and np.allclose(vol.GetOrigin(), lab.GetOrigin(), atol=1e-3)
            and np.allclose(vol.GetDirection(), lab.GetDirection(), atol=1e-6))
    if not same:
        raise InputError(f"{labels} (size {lab.GetSize()}, spacing {lab.GetSpacing()}, origin {lab.GetOrigin()}) is "
                         f"not on the grid of {image} (size {vol.GetSize()}, spacing {vol.GetSpacing()}, origin "
                         f"{vol.GetOrigin()}); resample it first")
    values = sitk.GetArrayFromImage(vol).astype(np.float64)
    if values.ndim == 3 and values.shape[0] == 1:
        values = values[0]
    label_array = np.rint(sitk.GetArrayFromImage(lab)).astype(np.int64).reshape(values.shape)
    spacing = tuple(float(v) for v in vol.GetSpacing())[: values.ndim]
    return values, label_array, spacing, "mm"


def image_features(values: np.ndarray, label_array: np.ndarray, spacing: tuple, length_unit: str,
                   quantify: QuantifySettings, value_unit: str = "image units") -> pd.DataFrame:
    """Every measure for each label (> 0) of ``label_array``: ``label, metric, value, unit, ibsi``.

    For 2-D images the spatial statistics need ``spacing`` in µm (sections); their scales come from
    ``quantify`` (analysis spacing, hot-spot radius, correlation lags).
    """
    found = sorted(int(v) for v in np.unique(label_array) if v > 0)
    if not found:
        raise InputError("the mask or label image holds no pixel > 0 (empty mask)")
    rows = []
    for label in found:
        region = label_array == label
        finite = region & np.isfinite(values)
        if not finite.any():
            rows.append({"label": label, "metric": "n_pixels", "value": 0, "unit": "pixels", "ibsi": ""})
            continue
        stats = region_stats(values, region)
        rows.append({"label": label, "metric": "n_pixels", "value": stats["n_pixels"], "unit": "pixels", "ibsi": ""})
        size = float(finite.sum()) * float(np.prod(spacing))
        rows.append({"label": label, "metric": "area" if values.ndim == 2 else "volume", "value": size,
                     "unit": f"{length_unit}{values.ndim}", "ibsi": ""})
        rows += [{"label": label, **r} for r in region_rows(values, region, value_unit, None,
                                                             int(quantify.histogram_bins))]
        if values.ndim == 2 and length_unit == "um":
            rows += [{"label": label, **r} for r in spatial_rows(values, region, float(spacing[0]), quantify)]
            scaled = at_analysis_scale(values, region, float(spacing[0]), quantify)[:2]
        else:
            scaled = (values, region)
            if values.ndim == 3 and length_unit == "mm":
                local, peak = intensity_peaks(values, region, tuple(reversed(spacing)))
                rows += [{"label": label, "metric": "local_intensity_peak", "value": local, "unit": value_unit,
                          "ibsi": "VJGA"},
                         {"label": label, "metric": "global_intensity_peak", "value": peak, "unit": value_unit,
                          "ibsi": "0F91"}]
        rows += [{"label": label, **r} for r in texture_rows(*scaled, int(quantify.texture_levels))]
    return pd.DataFrame(rows)
