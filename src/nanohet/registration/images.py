"""Images to register with: summaries of a modality that share contrast with another.

Mutual information needs the two images to share structure. An MSI TIC image
often does (tissue versus background), but its inner contrast depends on ion
suppression; the first principal component of many ion images summarises the
dominant tissue pattern instead. For pairs with little shared contrast, both
sides can be replaced by the signed distance to their tissue outline, a
shape-only image (as in esmraldi's shape-based MSI registration).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from ..image import SectionImage, block_origin, block_reduce_mean, to_sitk
from ..microscopy import haematoxylin, role_channel, tissue_mask
from ..settings import EdgeSettings, MicroscopySettings


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


def prepare_image(array: np.ndarray, spacing, origin, fill: float | None = None) -> sitk.Image:
    """Robustly rescale a 2-D array to [0, 1] (1st-99th percentile) as a SimpleITK image.

    NaN pixels (not acquired) are set to ``fill`` (default: the 5th
    percentile, i.e. background).
    """
    a = np.asarray(array, dtype=np.float64)
    finite = np.isfinite(a)
    if not finite.any():
        raise ValueError("image has no finite pixel")
    lo, hi = np.percentile(a[finite], [1, 99])
    a = np.where(finite, a, np.percentile(a[finite], 5) if fill is None else fill)
    a = np.clip((a - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
    return to_sitk(a, spacing, origin)


@dataclass
class RegistrationInput:
    """A section as the metric sees it, in its own physical frame (µm).

    Attributes
    ----------
    image : sitk.Image
        Registration image scaled to [0, 1] at the edge's working spacing.
    tissue : sitk.Image
        Float 0/1 tissue mask on the same grid (for the Dice QC).
    valid : sitk.Image or None
        uint8 mask of valid pixels (MSI: acquired), used by the metric.
    label : str
        What the image is, for logs and the QC table.
    """

    image: sitk.Image
    tissue: sitk.Image
    valid: sitk.Image | None
    label: str


def msi_tissue(tic: np.ndarray, acquired: np.ndarray, spacing: float) -> np.ndarray:
    """Tissue mask of an MSI section from its TIC (non-acquired pixels count as background)."""
    filled = np.where(acquired, tic, np.nanmin(tic))
    return tissue_mask(np.nan_to_num(filled), spacing, smooth_um=spacing)


def _distance_image(tissue: np.ndarray, spacing, clip: float, where: str) -> np.ndarray:
    try:
        return tissue_distance_map(tissue, spacing, clip)
    except ValueError as exc:
        raise InputError(f"{where}: no tissue distance map for registration ({exc})") from exc


def msi_registration_image(stack: SectionImage, name: str, where: str, clip_um: float = 200.0) -> np.ndarray:
    """The MSI image shown to the metric (``registration.images.msi``).

    ``tic``; ``pca``: first principal component of the top-N peak images
    (needs ``msi.top_n_peaks >= 2``); ``tissue_distance``: signed distance
    to the MSI tissue outline (µm, clipped at ``clip_um``); or any channel
    name of the stack (an analyte).
    """
    acquired = stack.channel("acquired") > 0
    key = name.lower()
    if key == "tic":
        return stack.channel("TIC")
    if key == "pca":
        names = [c for c in stack.channels if c.startswith("mz")]
        if len(names) < 2:
            raise InputError(f"{where}: registration.images.msi pca needs at least 2 top-peak images "
                             f"(set msi.top_n_peaks >= 2); the stack has {len(names)}")
        return first_principal_component(np.stack([stack.channel(c) for c in names]), acquired)
    if key == "tissue_distance":
        return _distance_image(msi_tissue(stack.channel("TIC"), acquired, stack.spacing[0]), stack.spacing,
                               clip_um, where)
    if name not in stack.channels:
        raise InputError(f"{where}: registration.images.msi {name!r} is neither tic, pca, tissue_distance nor a "
                         f"channel of the stack ({stack.channels})")
    return stack.channel(name)


def msi_input(stack: SectionImage, edge: EdgeSettings, where: str) -> RegistrationInput:
    """An MSI ion stack (native grid) as the metric sees it; the acquired pixels are the valid mask."""
    kind = edge.images["msi"]
    acquired = stack.channel("acquired") > 0
    image = prepare_image(msi_registration_image(stack, kind, where, edge.distance_clip_um), stack.spacing,
                          stack.origin)
    valid = sitk.GetImageFromArray(acquired.astype(np.uint8))
    valid.CopyInformation(image)
    tissue = msi_tissue(stack.channel("TIC"), acquired, stack.spacing[0]).astype(np.float32)
    return RegistrationInput(image, to_sitk(tissue, stack.spacing, stack.origin), valid, f"MSI {kind}")


def fluorescence_input(fluo: SectionImage, masks: SectionImage, microscopy: MicroscopySettings,
                       edge: EdgeSettings, where: str) -> RegistrationInput:
    """A fluorescence section (a channel role, a list of roles summed, or ``tissue_distance``) at the
    edge's working spacing; its tissue mask from the microscopy masks."""
    spec = edge.images["fluorescence"]
    f = max(int(round(edge.working_spacing_um / fluo.spacing[0])), 1)
    spacing, origin = (fluo.spacing[0] * f, fluo.spacing[1] * f), block_origin(fluo.origin, fluo.spacing, f)
    if spec == "tissue_distance":
        arr = _distance_image(masks.channel("tissue") > 0, masks.spacing, edge.distance_clip_um, where)
    else:
        roles = [spec] if isinstance(spec, str) else list(spec)
        planes = [role_channel(fluo, microscopy, role, where) for role in roles]
        arr = planes[0] if len(planes) == 1 else channel_sum(planes)
    tissue = (block_reduce_mean(masks.channel("tissue").astype(np.float32), f) >= 0.5).astype(np.float32)
    return RegistrationInput(prepare_image(block_reduce_mean(arr, f), spacing, origin),
                             to_sitk(tissue, spacing, origin), None, f"fluorescence {spec}")


def he_input(he_img: SectionImage, edge: EdgeSettings, where: str) -> RegistrationInput:
    """An RGB H&E section (haematoxylin by colour deconvolution, or ``tissue_distance``) at the edge's
    working spacing; its tissue mask from the optical density."""
    kind = edge.images["he"]
    if he_img.channels != ["R", "G", "B"]:
        raise InputError(f"{where}: expected an RGB H&E image, found channels {he_img.channels}")
    f = max(int(round(edge.working_spacing_um / he_img.spacing[0])), 1)
    spacing, origin = (he_img.spacing[0] * f, he_img.spacing[1] * f), block_origin(he_img.origin, he_img.spacing, f)
    od = block_reduce_mean(255.0 - he_img.data.astype(np.float32).mean(axis=0), f)
    tissue = tissue_mask(od, spacing[0], smooth_um=spacing[0])
    if kind == "tissue_distance":
        arr = _distance_image(tissue, spacing, edge.distance_clip_um, where)
    elif kind == "haematoxylin":
        arr = block_reduce_mean(haematoxylin(he_img.data), f)
    else:
        raise InputError(f"registration.images.he must be haematoxylin or tissue_distance, got {kind!r}")
    return RegistrationInput(prepare_image(arr, spacing, origin), to_sitk(tissue.astype(np.float32), spacing, origin),
                             None, f"H&E {kind}")
