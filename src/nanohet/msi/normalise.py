"""Normalisation of ion images: TIC, RMS, median, internal standard; hotspot clipping."""

from __future__ import annotations

import numpy as np

from ..errors import InputError


def normalise(image: np.ndarray, method: str, *, msi: "MSIImages", reference: str | None = None) -> np.ndarray:
    """Normalise an ion image pixel by pixel.

    Parameters
    ----------
    image : ndarray
        Raw ion image.
    method : {"none", "tic", "rms", "median", "internal_standard"}
        ``tic``: divide by the total ion current (result: fraction of TIC).
        ``rms``/``median``: divide by the spectrum's RMS/median intensity.
        ``internal_standard``: divide by the internal-standard ion image
        named ``reference`` (a homogeneously sprayed standard corrects ion
        suppression; Giordano et al., Sci Rep 2016;6:37027).
        TIC/RMS normalisation as in Cardinal's ``normalize`` (Bemis et al.,
        Bioinformatics 2015;31:2418).
    msi : MSIImages
        Source of the normalisation factors.
    reference : str, optional
        Internal-standard image name for ``internal_standard``.

    Returns
    -------
    ndarray
        Normalised image; NaN where the factor is zero or not acquired.
    """
    if method == "none":
        return image.copy()
    if method == "internal_standard":
        if reference is None or reference not in msi.images:
            raise InputError(f"internal_standard normalisation needs a configured standard ion, got {reference!r}")
        factor = msi.images[reference]
    elif method in ("tic", "rms", "median"):
        factor = getattr(msi, method)
    else:
        raise InputError(f"unknown normalisation {method!r}; use none, tic, rms, median or internal_standard")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = image / factor
    out[~np.isfinite(out)] = np.nan
    return out


def clip_hotspots(image: np.ndarray, percentile: float | None) -> np.ndarray:
    """Clip values above the given percentile of the finite pixels (METASPACE uses 99)."""
    if percentile is None or not np.isfinite(image).any():
        return image
    top = np.nanpercentile(image, percentile)
    return np.where(np.isfinite(image), np.minimum(image, top), np.nan)
