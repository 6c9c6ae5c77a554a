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
from skimage import filters, morphology, segmentation
from skimage.feature import peak_local_max

from ..errors import InputError


TILE_PX = 4096  # sections larger than this (either side) are segmented tile by tile: memory stays bounded


def segment_nuclei(nuclei: np.ndarray, spacing_um: float, *, smooth_um: float = 1.0, min_area_um2: float = 15.0,
                   min_distance_um: float = 6.0, local_window_um: float = 50.0,
                   mask: np.ndarray | None = None, tile_px: int = TILE_PX) -> np.ndarray:
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
    tile_px : int
        A section larger than this on either side is processed in tiles of this size with a margin wider than
        every neighbourhood the steps use (local threshold, seeds, nucleus); each nucleus is kept from the tile
        whose core holds its centroid. The global threshold floor is computed once over the whole section.
    """
    image = np.asarray(nuclei, dtype=np.float32)
    if image.ndim != 2:
        raise InputError(f"nuclei need a 2-D channel, got shape {image.shape}")
    smooth = ndimage.gaussian_filter(image, smooth_um / spacing_um)
    del image
    region = np.ones(smooth.shape, bool) if mask is None else mask.astype(bool)
    if not region.any() or np.ptp(smooth[region]) == 0:
        return np.zeros(smooth.shape, dtype=np.int32)
    # a local threshold (nuclei brighter than their neighbourhood, so dim nuclei next to bright ones count) above
    # a global floor (the triangle threshold of the region: background stays background)
    floor = filters.threshold_triangle(smooth[region])
    window = max(int(round(local_window_um / spacing_um)) | 1, 3)
    min_px = max(int(round(min_area_um2 / spacing_um ** 2)), 1)
    seed_px = max(int(round(min_distance_um / spacing_um)), 1)
    h, w = smooth.shape
    if h <= tile_px and w <= tile_px:
        labels = _segment_tile(smooth, region, floor, window, min_px, seed_px)
        return segmentation.relabel_sequential(labels)[0].astype(np.int32)
    margin = window + 4 * seed_px + 32
    out = np.zeros((h, w), dtype=np.int32)
    next_id = 1
    for y0 in range(0, h, tile_px):
        for x0 in range(0, w, tile_px):
            y1, x1 = min(y0 + tile_px, h), min(x0 + tile_px, w)
            ya, xa = max(y0 - margin, 0), max(x0 - margin, 0)
            yb, xb = min(y1 + margin, h), min(x1 + margin, w)
            if not region[ya:yb, xa:xb].any():
                continue
            tile = _segment_tile(smooth[ya:yb, xa:xb], region[ya:yb, xa:xb], floor, window, min_px, seed_px)
            ids = np.unique(tile[tile > 0])
            if ids.size == 0:
                continue
            centres = np.asarray(ndimage.center_of_mass(tile > 0, tile, ids)).reshape(-1, 2)
            cy, cx = centres[:, 0] + ya, centres[:, 1] + xa
            keep = ids[(cy >= y0) & (cy < y1) & (cx >= x0) & (cx < x1)]
            lut = np.zeros(int(tile.max()) + 1, dtype=np.int32)
            lut[keep] = np.arange(next_id, next_id + keep.size, dtype=np.int32)
            next_id += keep.size
            mapped = lut[tile]
            window_out = out[ya:yb, xa:xb]
            free = (mapped > 0) & (window_out == 0)
            window_out[free] = mapped[free]
    return segmentation.relabel_sequential(out)[0].astype(np.int32)


def _segment_tile(smooth: np.ndarray, region: np.ndarray, floor: float, window: int, min_px: int,
                  seed_px: int) -> np.ndarray:
    """The nuclei of one smoothed image (or tile): local threshold above ``floor``, distance-transform watershed."""
    local = filters.threshold_local(smooth, window, offset=0)
    foreground = region & (smooth > local) & (smooth > floor)
    del local
    foreground = morphology.remove_small_holes(foreground, max_size=min_px)
    foreground = morphology.remove_small_objects(foreground, max_size=min_px)
    distance = ndimage.distance_transform_edt(foreground).astype(np.float32)
    distance = ndimage.gaussian_filter(distance, 0.5)  # one seed per nucleus, not per pixel of a flat top
    components = ndimage.label(foreground, structure=np.ones((3, 3)), output=np.int32)[0]
    peaks = peak_local_max(distance, min_distance=seed_px, labels=components, exclude_border=False)
    del components
    markers = np.zeros(smooth.shape, dtype=np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    labels = segmentation.watershed(-distance, markers, mask=foreground)
    return morphology.remove_small_objects(labels, max_size=min_px)


def cell_territories(nuclei: np.ndarray, spacing_um: float, expand_um: float = 5.0,
                     tissue: np.ndarray | None = None, tile_px: int = TILE_PX) -> np.ndarray:
    """Cells: each nucleus expanded by ``expand_um`` without overlapping its neighbours, inside ``tissue``. A
    section larger than ``tile_px`` is expanded tile by tile with a margin wider than the expansion."""
    distance = expand_um / spacing_um
    h, w = nuclei.shape
    if h <= tile_px and w <= tile_px:
        cells = segmentation.expand_labels(nuclei, distance=distance)
    else:
        margin = int(np.ceil(distance)) + 2
        cells = np.zeros(nuclei.shape, dtype=nuclei.dtype)
        for y0 in range(0, h, tile_px):
            for x0 in range(0, w, tile_px):
                y1, x1 = min(y0 + tile_px, h), min(x0 + tile_px, w)
                ya, xa = max(y0 - margin, 0), max(x0 - margin, 0)
                grown = segmentation.expand_labels(nuclei[ya:min(y1 + margin, h), xa:min(x1 + margin, w)],
                                                   distance=distance)
                cells[y0:y1, x0:x1] = grown[y0 - ya:y0 - ya + (y1 - y0), x0 - xa:x0 - xa + (x1 - x0)]
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
    size = int(max(nuclei.max(), cells.max())) + 1
    count_cells = np.bincount(cells.ravel(), minlength=size)
    count_nuclei = np.bincount(nuclei.ravel(), minlength=size)
    out = {"cell": ids, "area_um2": count_cells[ids] * pixel_area, "nucleus_area_um2": count_nuclei[ids] * pixel_area}
    # nuclear centroids from per-label sums of the pixel rows and columns, a band of rows at a time (no full-size
    # coordinate arrays: whole slides fit in memory)
    sum_y, sum_x = np.zeros(size), np.zeros(size)
    band = max(1, 2 ** 24 // max(nuclei.shape[1], 1))
    for r0 in range(0, nuclei.shape[0], band):
        lab = nuclei[r0:r0 + band].ravel()
        rows, cols = np.divmod(np.arange(lab.size), nuclei.shape[1])
        sum_y += np.bincount(lab, weights=rows + r0, minlength=size)
        sum_x += np.bincount(lab, weights=cols, minlength=size)
    out["x_um"] = origin_um[0] + sum_x[ids] / count_nuclei[ids] * spacing_um
    out["y_um"] = origin_um[1] + sum_y[ids] / count_nuclei[ids] * spacing_um
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
