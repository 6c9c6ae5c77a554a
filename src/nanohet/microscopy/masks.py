"""Fluorescence and H&E preprocessing: tissue, necrosis and vessel masks."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage import filters, morphology

from ..errors import InputError


def _largest_component(mask: np.ndarray) -> np.ndarray:
    labels, n = ndimage.label(mask)
    if n <= 1:
        return mask
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def tissue_mask(image: np.ndarray, spacing_um: float, smooth_um: float = 10.0) -> np.ndarray:
    """Segment the tissue section from a fluorescence channel (or channel sum).

    Gaussian smoothing at ``smooth_um``, Otsu's threshold (Otsu, IEEE Trans
    SMC 1979), hole filling (a necrotic core stays tissue) and the largest
    connected component.

    Raises
    ------
    InputError
        When no tissue is found (for example a blank image).
    """
    img = image.astype(np.float32)
    if not np.isfinite(img).all():
        raise InputError("the image used for the tissue mask contains NaN or infinite values")
    smooth = ndimage.gaussian_filter(img, smooth_um / spacing_um)
    if np.ptp(smooth) <= 0:
        raise InputError("the image used for the tissue mask is constant: no tissue found")
    mask = smooth > filters.threshold_otsu(smooth)
    mask = ndimage.binary_fill_holes(_largest_component(mask))
    if mask.mean() > 0.98:
        raise InputError("the tissue mask covers the whole image: no background to separate tissue from")
    return mask


def necrosis_mask(nuclei: np.ndarray, tissue: np.ndarray, spacing_um: float,
                  smooth_um: float = 30.0, min_area_um2: float = 5000.0) -> np.ndarray:
    """Necrotic regions: tissue with low nuclear density.

    The nuclear channel (DAPI) is smoothed at ``smooth_um`` (a few cell
    diameters) and thresholded with Otsu inside the tissue; small regions
    (< ``min_area_um2``) are dropped. Necrosis is excluded from vessel-distance
    analysis (Fenton et al., Br J Cancer 2002).
    """
    sigma = smooth_um / spacing_um
    # normalised convolution: background outside the tissue must not lower the density at the edge
    weight = ndimage.gaussian_filter(tissue.astype(np.float32), sigma)
    with np.errstate(invalid="ignore", divide="ignore"):
        smooth = ndimage.gaussian_filter(np.where(tissue, nuclei, 0).astype(np.float32), sigma) / weight
    inside = smooth[tissue]
    if inside.size == 0:
        raise InputError("the tissue mask is empty")
    low = tissue & (smooth < filters.threshold_otsu(inside))
    # only call it necrosis when the low-density class is clearly poorer in nuclei
    if not low.any() or smooth[low].mean() > 0.85 * smooth[tissue & ~low].mean():
        return np.zeros_like(tissue)
    min_px = int(min_area_um2 / spacing_um ** 2)
    return morphology.remove_small_objects(low, max_size=min_px) if min_px > 0 else low


def vessel_mask(cd31: np.ndarray, tissue: np.ndarray, spacing_um: float,
                min_area_um2: float = 20.0, smooth_um: float = 1.0) -> np.ndarray:
    """Segment vessels from the CD31 (endothelium) channel.

    Light Gaussian smoothing, Otsu's threshold on the tissue pixels, removal
    of objects below ``min_area_um2`` (noise). Follows the common CD31
    pipeline: threshold, clean-up, connected components.

    Raises
    ------
    InputError
        When the tissue mask is empty.
    """
    if not tissue.any():
        raise InputError("the tissue mask is empty; cannot segment vessels")
    smooth = ndimage.gaussian_filter(cd31.astype(np.float32), smooth_um / spacing_um)
    thr = filters.threshold_otsu(smooth[tissue])
    mask = (smooth > thr) & tissue
    min_px = int(np.ceil(min_area_um2 / spacing_um ** 2))
    return morphology.remove_small_objects(mask, max_size=min_px) if min_px > 1 else mask


def background_level(image: np.ndarray, tissue: np.ndarray) -> float:
    """Median intensity outside the tissue (camera offset + background)."""
    outside = image[~tissue]
    return float(np.median(outside)) if outside.size else 0.0


def haematoxylin(rgb: np.ndarray) -> np.ndarray:
    """Haematoxylin optical density from an RGB (3, Y, X) uint8 H&E image.

    Colour deconvolution after Ruifrok & Johnston (Anal Quant Cytol Histol
    2001;23:291), as implemented by ``skimage.color.rgb2hed``.
    """
    from skimage.color import rgb2hed

    return rgb2hed(np.moveaxis(rgb, 0, -1))[..., 0]


MASK_CHANNELS = ["tissue", "necrosis", "viable", "vessels"]


def section_masks(nuclei: np.ndarray, vessels_channel: np.ndarray, spacing_um: float, tissue_smooth_um: float,
                  necrosis_smooth_um: float, vessel_min_area_um2: float) -> np.ndarray:
    """The four masks of a fluorescence section, stacked as :data:`MASK_CHANNELS` (uint8, (4, Y, X)).

    Tissue from the nuclear channel (:func:`tissue_mask`), necrosis inside it (:func:`necrosis_mask`),
    viable = tissue without necrosis, vessels in viable tissue (:func:`vessel_mask`).
    """
    tissue = tissue_mask(nuclei, spacing_um, tissue_smooth_um)
    necrosis = necrosis_mask(nuclei, tissue, spacing_um, necrosis_smooth_um)
    vessels = vessel_mask(vessels_channel, tissue & ~necrosis, spacing_um, vessel_min_area_um2)
    return np.stack([tissue, necrosis, tissue & ~necrosis, vessels]).astype(np.uint8)


def section_stats(masks: np.ndarray, spacing_um: float) -> dict:
    """Tissue area (mm²), necrotic fraction, vessel count, density (per mm² viable) and area fraction.

    Parameters
    ----------
    masks : ndarray, shape (4, Y, X)
        From :func:`section_masks`.
    spacing_um : float
        Pixel size in µm.
    """
    tissue, necrosis, viable, vessels = (m > 0 for m in masks)
    n_vessels = ndimage.label(vessels)[1]
    viable_mm2 = viable.sum() * spacing_um * spacing_um / 1e6
    return {
        "tissue_area_mm2": tissue.sum() * spacing_um * spacing_um / 1e6,
        "necrotic_fraction": necrosis.sum() / max(tissue.sum(), 1),
        "vessel_count": n_vessels, "vessel_density_per_mm2": n_vessels / viable_mm2 if viable_mm2 else np.nan,
        "vessel_area_fraction": vessels.sum() / max(viable.sum(), 1),
    }


def implausible_stats(stats: dict, ranges: dict) -> list[str]:
    """The section statistics outside their plausible ranges (``{name: [low, high]}``), as sentences: tissue a
    few thousandths of a mm² or thousands of vessels per mm² mean swapped channel labels or a wrong pixel size,
    not biology (tumour microvessel densities are tens to hundreds per mm²; Weidner et al., N Engl J Med
    1991;324:1)."""
    out = []
    for name, (low, high) in ranges.items():
        value = stats.get(name)
        if value is not None and np.isfinite(value) and not low <= value <= high:
            out.append(f"{name} {value:.4g} is outside the plausible range {low:g}-{high:g} "
                       "(swapped channel labels or a wrong pixel size?)")
    return out
