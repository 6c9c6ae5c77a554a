"""Step: the cells of a section (:mod:`nanohet.microscopy.cells`), their per-cell table and per-sample cell
measures."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from skimage.filters import threshold_otsu

from ..atomic import write_table
from ..errors import InputError
from ..io.h5ad import write_h5ad
from ..io.labels import read_label_image
from ..microscopy.autofluorescence import subtract_autofluorescence
from ..image import SectionImage
from ..io.ometiff import read_ome_tiff
from ..io.slide import Slide
from ..microscopy.cells import TILE_PX, SectionWindows, section_levels, tile_bounds, tiled_cell_table
from ..quantify.grid import AnalysisGrid
from ..quantify.metrics import distance_to_mask_um, gini_coefficient
from ..settings import MicroscopySettings, MSISettings, QuantifySettings
from . import one_input, where
from .microscopy import control_levels

log = logging.getLogger("nanohet")


def _on_grid(values: np.ndarray, grid: AnalysisGrid, x_um: np.ndarray, y_um: np.ndarray) -> np.ndarray:
    """A map on the analysis grid read at physical points (nearest grid pixel; NaN outside)."""
    col = np.rint((x_um - grid.origin[0]) / grid.spacing[0]).astype(int)
    row = np.rint((y_um - grid.origin[1]) / grid.spacing[1]).astype(int)
    ok = (row >= 0) & (row < values.shape[0]) & (col >= 0) & (col < values.shape[1])
    out = np.full(x_um.shape, np.nan)
    out[ok] = values[row[ok], col[ok]]
    return out


def section_windows(slide: Slide, masks: SectionImage | str, checked: tuple = (),
                    where: str = "") -> tuple[SectionWindows, float]:
    """Windows of a slide's full resolution with its masks and the vessel distance (µm, from the vessel mask at the
    masks' own resolution), at each pixel's nearest mask pixel; and the tissue area (mm²). ``masks``: the image,
    or its file, which is then released before the distance transform (a whole slide's masks are large). A NaN or
    infinite pixel of a ``checked`` channel is an error naming ``where``."""
    if not isinstance(masks, SectionImage):
        masks = read_ome_tiff(masks)
    tissue, viable, necrosis, vessels = (masks.channel(c) > 0 for c in ("tissue", "viable", "necrosis", "vessels"))
    m_spacing, m_origin = tuple(masks.spacing), tuple(masks.origin)
    del masks  # only the boolean maps from here on (the caller's reference, if any, stays)
    distance = distance_to_mask_um(vessels, m_spacing).astype(np.float32)
    del vessels
    maps = {"tissue": tissue, "viable": viable, "necrosis": necrosis, "vessel_distance_um": distance}
    (h, w), p = slide.level_shapes[0], float(slide.spacing[0])
    same_grid = tissue.shape == (h, w) and np.allclose(m_spacing, slide.spacing) and np.allclose(
        m_origin, slide.origin, atol=1e-6 * p)

    def read(y0, y1, x0, x1):
        data = slide.read_window(0, y0, y1, x0, x1)
        chans = dict(zip(slide.channels, data))
        if np.issubdtype(data.dtype, np.floating):
            for name in checked:
                bad = int(np.count_nonzero(~np.isfinite(chans[name])))
                if bad:
                    raise InputError(f"{where}: channel {name!r} holds {bad} NaN or infinite pixels in rows {y0}-{y1}, "
                                     f"columns {x0}-{x1}; nuclei and cell measures need finite intensities")
        if same_grid:
            return chans, {k: v[y0:y1, x0:x1] for k, v in maps.items()}
        rows = np.clip(np.rint((slide.origin[1] + np.arange(y0, y1) * slide.spacing[1] - m_origin[1])
                               / m_spacing[1]).astype(np.int64), 0, tissue.shape[0] - 1)
        cols = np.clip(np.rint((slide.origin[0] + np.arange(x0, x1) * slide.spacing[0] - m_origin[0])
                               / m_spacing[0]).astype(np.int64), 0, tissue.shape[1] - 1)
        return chans, {k: v[np.ix_(rows, cols)] for k, v in maps.items()}

    tissue_mm2 = float(tissue.sum()) * m_spacing[0] * m_spacing[1] / 1e6
    return SectionWindows((h, w), p, tuple(slide.origin), read), tissue_mm2


def cells_anndata(table: pd.DataFrame, analytes: list[str], path: str, pixel_size_um: float) -> None:
    """The cell table as AnnData for squidpy and scanpy (:func:`nanohet.io.h5ad.write_h5ad`): ``X`` holds each
    channel's cell mean (variables named after the channels), the corrected ``nanoparticle`` and the MSI analytes;
    ``obs`` the rest (sample, areas, nuclear means, vessel distance, region, macrophage call), named
    ``<sample>_<cell>``; ``obsm["spatial"]`` the nuclear centroid (x, y) in µm of the reference frame."""
    channels = [c for c in table.columns if c.endswith("_cell")]
    variables = channels + ["nanoparticle"] + list(analytes)
    obs = table.drop(columns=variables + ["x_um", "y_um"])
    write_h5ad(path, table[variables].to_numpy(dtype=np.float64),
               [c[:-len("_cell")] for c in channels] + ["nanoparticle"] + list(analytes), obs,
               [f"{s}_{c}" for s, c in zip(table["sample"], table["cell"])],
               obsm={"spatial": table[["x_um", "y_um"]].to_numpy(dtype=np.float64)},
               uns={"spatial_unit": "um", "pixel_size_um": float(pixel_size_um)})


def cell_measures(table: pd.DataFrame, analytes: dict[str, str], thresholds: dict, sample: str) -> list[dict]:
    """Per-sample measures of the cells: count, and per analyte (column -> name) the fraction of cells reached
    (mean at or above its coverage threshold), the between-cell CV and Gini, and the macrophages' mean over
    the other cells' (where cells are called macrophages); and ``large_nucleus_fraction``, the fraction of nuclei
    over 1.5 times the median nuclear area: nuclei too close to be split are counted as one large cell, so a high
    fraction warns that per-cell fractions lean towards sparse tissue."""
    rows = [{"analyte": "cells", "metric": "n_cells", "value": len(table), "unit": "cells"}]
    if "nucleus_area_um2" in table and len(table):
        area = table["nucleus_area_um2"].to_numpy(dtype=np.float64)
        rows.append({"analyte": "cells", "metric": "large_nucleus_fraction",
                     "value": float((area > 1.5 * np.median(area)).mean()), "unit": "fraction"})
    for column, name in analytes.items():
        v = table[column].to_numpy(dtype=np.float64)
        v = v[np.isfinite(v)]
        mean = v.mean() if v.size else np.nan
        rows += [{"analyte": name, "metric": "cell_cv", "value": float(v.std() / mean) if v.size and mean else np.nan,
                  "unit": "1"},
                 {"analyte": name, "metric": "cell_gini", "value": gini_coefficient(v), "unit": "1"}]
        if name in thresholds and v.size:
            rows.append({"analyte": name, "metric": "fraction_of_cells_reached",
                         "value": float((v >= thresholds[name]).mean()), "unit": "fraction"})
        if "macrophage" in table:
            mac = table["macrophage"].to_numpy(bool)
            a, b = table.loc[mac, column].mean(), table.loc[~mac, column].mean()
            rows.append({"analyte": name, "metric": "macrophage_to_other_ratio",
                         "value": float(a / b) if mac.any() and (~mac).any() and b else np.nan, "unit": "1"})
    return [{"sample": sample, "modality": "cells", "region": "cells", "ibsi": "", **r} for r in rows]


def cells(fluorescence: str, masks: str, grid: str, microscopy: dict | MicroscopySettings,
          msi: dict | MSISettings, quantify: dict | QuantifySettings, out_cells: str, out_metrics: str,
          sample: str = "", pixel_size: float | None = None, channels: str | None = None,
          registered: list[str] | str | None = None, labels: list[str] | str | None = None,
          autofluorescence: list[str] | str | None = None, tile_px: int = TILE_PX,
          out_h5ad: str | None = None) -> None:
    """Nuclei, cell territories and the per-cell table of a fluorescence section, with every MSI analyte read at
    each cell (the ``registered`` stack on the analysis grid; none for a sample without MSI), the distance to the
    nearest vessel, the region and the macrophage call; and the per-sample cell measures (:func:`cell_measures`).
    The nuclei come from the section's nuclear channel (:func:`~nanohet.microscopy.cells.segment_nuclei`), or from
    ``labels``: a label image the user segmented elsewhere (Cellpose, StarDist, QuPath), on the section's grid
    (:func:`nanohet.io.labels.read_label_image`), kept inside the tissue. ``autofluorescence``: the controls'
    table, subtracted from the nanoparticle channel as in the section's measures. ``out_h5ad``: the same cells as
    AnnData (:func:`cells_anndata`).

    The section is read at its full resolution tile by tile (:func:`~nanohet.microscopy.cells.tiled_cell_table`,
    tiles of ``tile_px``), so a whole slide never sits in memory; masks made at a coarser working resolution
    (``microscopy.working_pixel_um``) are read at the nearest mask pixel, and the vessel distance comes from the
    vessel mask at its own resolution (exact when the masks are at full resolution)."""
    s, msi, q = MicroscopySettings.coerce(microscopy), MSISettings.coerce(msi), QuantifySettings.coerce(quantify)
    names = [c.strip() for c in channels.split(",")] if channels else None
    levels = control_levels(autofluorescence, sample)
    labels = one_input(labels)
    with Slide(fluorescence, pixel_size_um=pixel_size, channel_names=names) as slide:
        p = float(slide.spacing[0])
        nuclear = s.channel("nuclei")
        for role in ("nuclei", "nanoparticle"):
            if s.channel(role) not in slide.channels:
                raise InputError(f"{where(fluorescence, sample)}: channel {s.channel(role)!r} (configured for role "
                                 f"{role}) is not in the file; its channels are {slide.channels}")
        windows, tissue_mm2 = section_windows(slide, masks, (nuclear, s.channel("nanoparticle")),
                                              where(fluorescence, sample))
        label_image = None
        if labels:
            label_image = read_label_image(labels, slide.level_shapes[0], p, f"sample {sample}")
            log.info("%s: nuclei from the label image %s", sample, labels)
        found = section_levels(windows, nuclear, float(s.nuclei_smooth_um), s.channel("nanoparticle"),
                               tile_px=tile_px)
        log.info("%s: %d x %d pixels of %.3g µm in %d tile(s); nuclear floor %.4g, nanoparticle background %.4g "
                 "(from every %d-th pixel)", sample, *slide.level_shapes[0], p,
                 len(tile_bounds(slide.level_shapes[0], tile_px)), found["floor"] or float("nan"), found["background"],
                 found["stride"])

        def extra(chans, maps):
            np_img = np.asarray(chans[s.channel("nanoparticle")], dtype=np.float64) - found["background"]
            if levels:
                np_img = subtract_autofluorescence(np_img, levels, maps["tissue"], maps["necrosis"])
            return {"nanoparticle": np_img, "vessel_distance_um": maps["vessel_distance_um"],
                    "viable": maps["viable"].astype(np.float32)}

        def progress(done, total):
            if total > 1:
                log.info("  %d / %d tiles", done, total)

        table = tiled_cell_table(windows, nuclear, found["floor"], smooth_um=float(s.nuclei_smooth_um),
                                 min_area_um2=float(s.nuclei_min_area_um2),
                                 min_distance_um=float(s.nuclei_min_distance_um),
                                 local_window_um=float(s.nuclei_local_window_um), expand_um=float(s.cell_expand_um),
                                 extra=extra, labels=label_image, tile_px=tile_px, progress=progress)
    if table.empty:
        source = f"the label image {labels}" if labels else f"the nuclear channel of {fluorescence}"
        raise InputError(f"sample {sample}: no nucleus of {source} lies in the tissue (masks {masks})")
    table.insert(0, "sample", sample)
    registered = one_input(registered)
    measured = msi.analytes if registered else ()
    stack, analysis_grid = (read_ome_tiff(registered) if registered else None), AnalysisGrid.read(grid)
    for a in measured:
        table[a.name] = _on_grid(stack.channel(a.name).astype(np.float64), analysis_grid, table.x_um.to_numpy(),
                                 table.y_um.to_numpy())
    table["region"] = np.where(table.pop("viable") >= 0.5, "viable", "necrosis")
    if "macrophages" in s.channels and len(table) > 1:
        marker = table[f"{s.channel('macrophages')}_cell"].to_numpy()
        table["macrophage"] = marker > threshold_otsu(marker) if np.ptp(marker) > 0 else False
    write_table(table, out_cells)
    if out_h5ad:
        cells_anndata(table, [a.name for a in measured], out_h5ad, p)
    analytes = {"nanoparticle": "nanoparticle", **{a.name: a.name for a in measured}}
    write_table(pd.DataFrame(cell_measures(table, analytes, q.coverage_thresholds, sample)), out_metrics)
    log.info("%s: %d cells (%.0f per mm² of tissue)", sample, len(table), len(table) / max(tissue_mm2, 1e-12))
