"""Cells of a fluorescence section: nuclei from the nuclear stain, cell territories, a per-cell table, and the
detection accuracy against annotated nuclei.

Nuclei (:func:`segment_nuclei`): the nuclear channel smoothed (Gaussian, ``smooth_um``), thresholded against
its local mean (``local_window_um``) above a global triangle threshold (Zack et al., J Histochem Cytochem
1977;25:741), small holes and objects removed, and touching nuclei split by a watershed of the distance transform
seeded at its maxima at least ``min_distance_um`` apart (the classical pipeline of scikit-image's
"watershed segmentation" example; Beucher & Meyer 1993). A label image from Cellpose, StarDist, Mesmer or QuPath
can be used instead. Territories (:func:`cell_territories`): nuclei expanded by ``expand_um`` without merging
(scikit-image ``expand_labels``), inside the tissue.

A section too large for memory (a whole slide) is read and processed window by window (:func:`tiled_cell_table`):
each tile with a margin wider than every neighbourhood of the steps, its cells kept where their nuclear centroid
lies in the tile's core, the global threshold floor and background from an even sample of the whole section.

Accuracy (:func:`detection_f1`): nuclei matched one to one at intersection over union >= 0.5, F1 = 2 TP /
(2 TP + FP + FN), as the Data Science Bowl 2018 / StarDist papers report it (Caicedo et al., Nat Methods
2019;16:1247; Schmidt et al., MICCAI 2018).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
from scipy import ndimage
from skimage import filters, morphology, segmentation

from ..errors import InputError
from .peaks import label_peaks


TILE_PX = 4096  # sections larger than this (either side) are segmented tile by tile: memory stays bounded


def segment_nuclei(nuclei: np.ndarray, spacing_um: float, *, smooth_um: float = 1.0, min_area_um2: float = 15.0,
                   min_distance_um: float = 6.0, local_window_um: float = 50.0,
                   mask: np.ndarray | None = None, tile_px: int = TILE_PX, floor: float | None = None) -> np.ndarray:
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
    floor : float, optional
        The global threshold floor, when ``nuclei`` is a window of a larger section (:func:`nuclear_floor` of the
        whole section); default: the triangle threshold of the smoothed channel inside ``mask``.
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
    floor = nuclear_floor(smooth[region]) if floor is None else float(floor)
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


def nuclear_floor(smoothed_values: np.ndarray) -> float:
    """The global floor of the nuclear threshold: the triangle threshold (Zack et al., J Histochem Cytochem
    1977;25:741) of the smoothed nuclear channel's values inside the tissue (all of them, or an even sample)."""
    return float(filters.threshold_triangle(np.asarray(smoothed_values)))


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
    peaks = label_peaks(distance, components, seed_px)  # = skimage's peak_local_max with labels, 10x faster
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


@dataclass
class SectionWindows:
    """A section at full resolution read window by window (for :func:`tiled_cell_table`).

    Attributes
    ----------
    shape : (int, int)
        Rows and columns.
    spacing_um : float
        Pixel size (µm).
    origin_um : (float, float)
        Centre ``(x, y)`` of pixel [0, 0] (µm).
    read : callable
        ``read(y0, y1, x0, x1)`` -> ``(channels, masks)``: dicts of name -> 2-D array of that window (the masks
        ``tissue``, ``viable``, ``necrosis``, ``vessels`` as bool).
    """

    shape: tuple
    spacing_um: float
    origin_um: tuple
    read: Callable


def tile_bounds(shape, tile_px: int):
    """``(y0, y1, x0, x1)`` of the tiles covering ``shape``, row by row."""
    h, w = shape
    return [(y0, min(y0 + tile_px, h), x0, min(x0 + tile_px, w)) for y0 in range(0, h, tile_px)
            for x0 in range(0, w, tile_px)]


def section_levels(windows: SectionWindows, nuclear: str, smooth_um: float, other: str | None = None, *,
                   tile_px: int = TILE_PX, max_samples: int = 20_000_000) -> dict:
    """The whole section's global levels from one pass over its tiles, on an even lattice of at most
    ``max_samples`` pixels (every pixel of a section that small): ``floor`` (:func:`nuclear_floor` of the smoothed
    nuclear channel in the tissue) and, with ``other``, ``background`` (that channel's median outside the tissue,
    as :func:`nanohet.microscopy.masks.background_level`)."""
    h, w = windows.shape
    stride = max(1, math.ceil(math.sqrt(h * w / max_samples)))
    sigma = smooth_um / windows.spacing_um
    margin = int(math.ceil(4 * sigma)) + 1
    inside, outside = [], []
    for y0, y1, x0, x1 in tile_bounds(windows.shape, tile_px):
        ya, xa = max(y0 - margin, 0), max(x0 - margin, 0)
        channels, masks = windows.read(ya, min(y1 + margin, h), xa, min(x1 + margin, w))
        smooth = ndimage.gaussian_filter(np.asarray(channels[nuclear], dtype=np.float32), sigma)
        rows = np.arange(-(-y0 // stride) * stride, y1, stride) - ya  # lattice rows and columns in this core
        cols = np.arange(-(-x0 // stride) * stride, x1, stride) - xa
        tissue = masks["tissue"][np.ix_(rows, cols)]
        inside.append(smooth[np.ix_(rows, cols)][tissue])
        if other is not None:
            outside.append(np.asarray(channels[other])[np.ix_(rows, cols)][~tissue])
    inside = np.concatenate(inside) if inside else np.zeros(0)
    levels = {"floor": nuclear_floor(inside) if inside.size and np.ptp(inside) > 0 else None, "stride": stride}
    if other is not None:
        outside = np.concatenate(outside) if outside else np.zeros(0)
        levels["background"] = float(np.median(outside)) if outside.size else 0.0
    return levels


def tiled_cell_table(windows: SectionWindows, nuclear: str, floor: float, *, smooth_um: float, min_area_um2: float,
                     min_distance_um: float, local_window_um: float, expand_um: float,
                     extra: Callable | None = None, labels: np.ndarray | None = None, tile_px: int = TILE_PX,
                     progress=None) -> pd.DataFrame:
    """:func:`cell_table` of a whole section, a tile at a time, so memory is bounded by a tile.

    Each tile is read with a margin wider than the smoothing, local threshold, watershed seeds and territory
    expansion; its nuclei are segmented (:func:`segment_nuclei` with the section's ``floor``) and expanded
    (:func:`cell_territories`) in that window, and its cells are kept where their nuclear centroid lies in the
    tile's core: each cell is measured once, with its whole territory. ``extra(channels, masks)`` gives the window's
    extra maps (e.g. the corrected nanoparticle, the vessel distance, ``viable``), averaged over each cell as in
    :func:`cell_table`. ``labels``: nuclei segmented elsewhere (a label image of the section's shape), used inside
    the tissue instead of the segmentation. Cells are numbered in tile order.
    """
    p = windows.spacing_um
    h, w = windows.shape
    window_px = max(int(round(local_window_um / p)) | 1, 3)
    seed_px = max(int(round(min_distance_um / p)), 1)
    # a core nucleus needs its segmentation neighbourhood; its territory competes with nuclei up to two expansions
    # and a nucleus away, which need theirs too
    margin = window_px + 6 * seed_px + int(math.ceil(4 * smooth_um / p + 2 * expand_um / p)) + 32
    tables, next_id = [], 1
    bounds = tile_bounds(windows.shape, tile_px)
    for k, (y0, y1, x0, x1) in enumerate(bounds):
        ya, xa, yb, xb = max(y0 - margin, 0), max(x0 - margin, 0), min(y1 + margin, h), min(x1 + margin, w)
        channels, masks = windows.read(ya, yb, xa, xb)
        tissue = masks["tissue"]
        if tissue.any() and (floor is not None or labels is not None):
            if labels is not None:
                nuclei = np.where(tissue, labels[ya:yb, xa:xb], 0).astype(np.int32)
            else:
                nuclei = segment_nuclei(channels[nuclear], p, smooth_um=smooth_um, min_area_um2=min_area_um2,
                                        min_distance_um=min_distance_um, local_window_um=local_window_um,
                                        mask=tissue, tile_px=max(yb - ya, xb - xa), floor=floor)
            if nuclei.any():
                cells = cell_territories(nuclei, p, expand_um, tissue, tile_px=max(yb - ya, xb - xa))
                origin = (windows.origin_um[0] + xa * p, windows.origin_um[1] + ya * p)
                table = cell_table(nuclei, cells, channels, p, origin, extra(channels, masks) if extra else None)
                # centroid in section pixels; bounds shifted by 1e-6 px so a centroid on a tile edge, computed in two
                # windows with rounding errors far smaller, goes to one tile only
                col = (table["x_um"].to_numpy() - origin[0]) / p + xa + 1e-6
                row = (table["y_um"].to_numpy() - origin[1]) / p + ya + 1e-6
                table = table[(row >= y0) & (row < y1) & (col >= x0) & (col < x1)].reset_index(drop=True)
                table["cell"] = np.arange(next_id, next_id + len(table))
                next_id += len(table)
                tables.append(table)
        if progress is not None:
            progress(k + 1, len(bounds))
    if not tables:
        return cell_table(np.zeros((1, 1), np.int32), np.zeros((1, 1), np.int32), {}, p)
    return pd.concat(tables, ignore_index=True)


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
