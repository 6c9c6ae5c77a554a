"""Cells of a fluorescence section: nuclei from the nuclear stain, cell territories, a per-cell table, and the
detection accuracy against annotated nuclei.

Nuclei (:func:`segment_nuclei`): the nuclear channel smoothed (Gaussian, ``smooth_um``), thresholded against
its local mean (``local_window_um``) above a global triangle threshold (Zack et al., J Histochem Cytochem
1977;25:741), small holes and objects removed, and touching nuclei split by a watershed of the distance transform
seeded at its maxima at least ``min_distance_um`` apart (the classical pipeline of scikit-image's
"watershed segmentation" example; Beucher & Meyer 1993). A label image from Cellpose, StarDist, Mesmer or QuPath
can be used instead. Territories (:func:`cell_territories`): nuclei expanded by ``expand_um`` without merging
(scikit-image ``expand_labels``), inside the tissue.

Accuracy (:func:`detection_f1`): nuclei matched one to one at intersection over union >= 0.5, F1 = 2 TP /
(2 TP + FP + FN), as the Data Science Bowl 2018 / StarDist papers report it (Caicedo et al., Nat Methods
2019;16:1247; Schmidt et al., MICCAI 2018).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage
from skimage import filters, measure, morphology, segmentation
from skimage.feature import peak_local_max

from ..errors import InputError


def segment_nuclei(nuclei: np.ndarray, spacing_um: float, *, smooth_um: float = 1.0, min_area_um2: float = 15.0,
                   min_distance_um: float = 6.0, local_window_um: float = 50.0,
                   mask: np.ndarray | None = None) -> np.ndarray:
    """Label image of the nuclei in a nuclear-stain channel (0 = background; labels 1..n).

    Parameters
    ----------
    nuclei : ndarray, (Y, X)
        The nuclear channel (e.g. DAPI), any intensity unit.
    spacing_um : float
        Pixel size (µm).
    smooth_um, min_area_um2, min_distance_um, local_window_um : float
        Gaussian sigma before the threshold; smallest nucleus kept (µm²); smallest distance between two nuclear
        centres (µm): the watershed seeds; the neighbourhood of the local threshold (µm).
    mask : ndarray of bool, optional
        Where nuclei may be (the tissue); the threshold is computed there.
    """
    image = np.asarray(nuclei, dtype=np.float64)
    if image.ndim != 2:
        raise InputError(f"nuclei need a 2-D channel, got shape {image.shape}")
    smooth = ndimage.gaussian_filter(image, smooth_um / spacing_um)
    region = np.ones(image.shape, bool) if mask is None else mask.astype(bool)
    if not region.any() or np.ptp(smooth[region]) == 0:
        return np.zeros(image.shape, dtype=np.int32)
    # a local threshold (nuclei brighter than their neighbourhood, so dim nuclei next to bright ones count) above
    # a global floor (the triangle threshold of the region: background stays background)
    window = max(int(round(local_window_um / spacing_um)) | 1, 3)
    local = filters.threshold_local(smooth, window, offset=0)
    foreground = region & (smooth > local) & (smooth > filters.threshold_triangle(smooth[region]))
    min_px = max(int(round(min_area_um2 / spacing_um ** 2)), 1)
    foreground = morphology.remove_small_holes(foreground, max_size=min_px)
    foreground = morphology.remove_small_objects(foreground, max_size=min_px)
    distance = ndimage.distance_transform_edt(foreground)
    distance = ndimage.gaussian_filter(distance, 0.5)  # one seed per nucleus, not per pixel of a flat top
    peaks = peak_local_max(distance, min_distance=max(int(round(min_distance_um / spacing_um)), 1),
                           labels=measure.label(foreground), exclude_border=False)
    markers = np.zeros(image.shape, dtype=np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    labels = segmentation.watershed(-distance, markers, mask=foreground)
    labels = morphology.remove_small_objects(labels, max_size=min_px)
    return segmentation.relabel_sequential(labels)[0].astype(np.int32)


def cell_territories(nuclei: np.ndarray, spacing_um: float, expand_um: float = 5.0,
                     tissue: np.ndarray | None = None) -> np.ndarray:
    """Cells: each nucleus expanded by ``expand_um`` without overlapping its neighbours, inside ``tissue``."""
    cells = segmentation.expand_labels(nuclei, distance=expand_um / spacing_um)
    if tissue is not None:
        cells = np.where(tissue, cells, 0)
    return cells


def cell_table(nuclei: np.ndarray, cells: np.ndarray, channels: dict[str, np.ndarray], spacing_um: float,
               origin_um=(0.0, 0.0), extra: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """One row per cell: ``cell``, ``area_um2`` (territory) and ``nucleus_area_um2``, ``x_um``/``y_um`` (nuclear
    centroid, physical), and for each channel its mean over the nucleus (``<name>_nucleus``) and over the cell
    (``<name>_cell``); ``extra`` maps (e.g. the registered drug, vessel distance) are averaged over the cell.

    Parameters
    ----------
    nuclei, cells : ndarray of int, (Y, X)
        Label images with the same labels (:func:`cell_territories` keeps them).
    channels : dict of name -> ndarray (Y, X)
    origin_um : (x, y)
        Physical position of the centre of pixel [0, 0].
    """
    ids = np.unique(nuclei[nuclei > 0])
    if ids.size == 0:
        return pd.DataFrame(columns=["cell", "area_um2", "nucleus_area_um2", "x_um", "y_um"])
    index = ids
    pixel_area = spacing_um ** 2
    out = {"cell": ids,
           "area_um2": ndimage.sum_labels(np.ones(cells.shape), cells, index) * pixel_area,
           "nucleus_area_um2": ndimage.sum_labels(np.ones(nuclei.shape), nuclei, index) * pixel_area}
    centres = np.asarray(ndimage.center_of_mass(np.ones(nuclei.shape), nuclei, index)).reshape(-1, 2)
    out["x_um"] = origin_um[0] + centres[:, 1] * spacing_um
    out["y_um"] = origin_um[1] + centres[:, 0] * spacing_um
    for name, values in channels.items():
        out[f"{name}_nucleus"] = ndimage.mean(values, nuclei, index)
        out[f"{name}_cell"] = ndimage.mean(values, cells, index)
    for name, values in (extra or {}).items():
        out[name] = ndimage.mean(values, cells, index)
    return pd.DataFrame(out)


def detection_f1(predicted: np.ndarray, truth: np.ndarray, iou: float = 0.5) -> dict[str, float]:
    """Object detection against annotated instances: one-to-one matches at IoU >= ``iou`` (above 0.5 a match is
    unique, so no assignment problem arises); returns ``tp``, ``fp``, ``fn``, ``precision``, ``recall``, ``f1``."""
    p = predicted.ravel().astype(np.int64)
    t = truth.ravel().astype(np.int64)
    n_p, n_t = int(p.max()) + 1, int(t.max()) + 1
    overlap = np.bincount(p * n_t + t, minlength=n_p * n_t).reshape(n_p, n_t)
    area_p, area_t = overlap.sum(axis=1), overlap.sum(axis=0)
    inter = overlap[1:, 1:].astype(np.float64)
    union = area_p[1:, None] + area_t[None, 1:] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(union > 0, inter / union, 0.0)
    tp = int((ratio >= iou).sum()) if iou > 0.5 else int(((ratio >= iou) & (ratio == ratio.max(axis=1,
                                                                                             keepdims=True))).sum())
    fp, fn = (n_p - 1) - tp, (n_t - 1) - tp
    precision = tp / (tp + fp) if tp + fp else float("nan")
    recall = tp / (tp + fn) if tp + fn else float("nan")
    return {"tp": tp, "fp": fp, "fn": fn, "precision": precision, "recall": recall,
            "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")}
