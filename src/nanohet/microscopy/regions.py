"""Regions of a section defined by a marker's density: macrophage-rich (F4/80), hypoxic (pimonidazole).

The marker channel, background-corrected (median outside the tissue), is smoothed with a Gaussian of
``microscopy.marker_smooth_um`` (a density of positive cells rather than single cells) and thresholded inside
the viable tissue: at ``microscopy.marker_thresholds[role]`` when configured, else at Otsu's threshold of the
smoothed values over the viable tissue (Otsu, IEEE Trans Syst Man Cybern 1979;9:62), which separates marker-rich
from marker-poor tissue without a value typed per stain and scanner.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.filters import threshold_otsu

from ..image import SectionImage
from ..settings import MicroscopySettings
from .channels import role_channel
from .masks import background_level

MARKER_REGIONS = {"macrophages": "macrophage_rich", "hypoxia": "hypoxic"}


def marker_density(values: np.ndarray, tissue: np.ndarray, spacing_um: float, smooth_um: float) -> np.ndarray:
    """The background-corrected marker smoothed to a density (same units, per pixel)."""
    corrected = values.astype(np.float64) - background_level(values, tissue)
    return ndimage.gaussian_filter(corrected, smooth_um / spacing_um)


def marker_regions(image: SectionImage, settings: MicroscopySettings, tissue: np.ndarray, viable: np.ndarray,
                   where: str) -> dict[str, np.ndarray]:
    """``{region name: mask}`` of every marker role configured in ``settings.channels`` (see the module
    docstring); an empty dict when none is. Masks are on the image's grid, inside the viable tissue."""
    out = {}
    spacing = float(image.spacing[0])
    for role, name in MARKER_REGIONS.items():
        if role not in settings.channels:
            continue
        density = marker_density(role_channel(image, settings, role, where), tissue, spacing,
                                 float(settings.marker_smooth_um))
        inside = density[viable]
        if inside.size == 0 or np.ptp(inside) == 0:
            out[name] = np.zeros(viable.shape, dtype=bool)
            continue
        threshold = settings.marker_thresholds.get(role)
        threshold = float(threshold) if threshold is not None else float(threshold_otsu(inside))
        out[name] = viable & (density > threshold)
    return out
