"""Regions of a section defined by a marker's density: macrophage-rich (F4/80), hypoxic (pimonidazole); and the
perfused vessels, those a perfusion marker (lectin injected before sacrifice) labels.

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


PERFUSION_NOISE_SDS = 3.0  # a vessel is perfused when its mean marker is this many tissue-noise SDs above it


def perfused_vessels(image: SectionImage, settings: MicroscopySettings, vessels: np.ndarray, tissue: np.ndarray,
                     where: str) -> tuple[np.ndarray, int, int]:
    """The vessels a perfusion marker labels: the perfused part of the vessel network.

    A lectin (or other vascular label) injected intravenously shortly before sacrifice reaches only the vessels
    with blood flow, so CD31-positive vessels without it were not perfused (Debbage et al., J Histochem Cytochem
    1998;46:627; Tozer et al., Nat Rev Cancer 2005;5:423): a nanomedicine reaches tissue only from the
    perfused ones. Each vessel (a connected component of ``vessels``) is called perfused when its mean
    background-corrected marker exceeds ``microscopy.marker_thresholds.perfusion`` when configured, else the
    tissue's level outside the vessels plus :data:`PERFUSION_NOISE_SDS` robust SDs (1.4826 x MAD) of it: a
    detection against the tissue's own signal, which calls every vessel perfused, or none, when that is the case
    (a two-class threshold such as Otsu's would split even a uniformly perfused network).

    Returns
    -------
    mask : ndarray of bool
        The perfused vessels' pixels.
    n_perfused, n_vessels : int
        Vessel counts.
    """
    marker = role_channel(image, settings, "perfusion", where).astype(np.float64)
    marker = marker - background_level(marker, tissue)
    labels, n = ndimage.label(vessels)
    if n == 0:
        return np.zeros(vessels.shape, dtype=bool), 0, 0
    means = np.asarray(ndimage.mean(marker, labels, index=np.arange(1, n + 1)))
    threshold = settings.marker_thresholds.get("perfusion")
    if threshold is None:
        background = marker[tissue & ~vessels]
        level = float(np.median(background)) if background.size else 0.0
        spread = 1.4826 * float(np.median(np.abs(background - level))) if background.size else 0.0
        threshold = level + PERFUSION_NOISE_SDS * spread
    perfused = np.concatenate([[False], means > float(threshold)])
    return perfused[labels], int(perfused.sum()), int(n)
