"""Step: the cells of a section (:mod:`nanohet.microscopy.cells`), their per-cell table and per-sample cell
measures."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from skimage.filters import threshold_otsu

from ..atomic import write_table
from ..errors import InputError
from ..io.labels import read_label_image
from ..microscopy.autofluorescence import subtract_autofluorescence
from ..io.ometiff import read_ome_tiff
from ..microscopy import background_level, role_channel
from ..microscopy.cells import cell_table, cell_territories, segment_nuclei
from ..quantify.grid import AnalysisGrid
from ..quantify.metrics import distance_to_mask_um, gini_coefficient
from ..settings import MicroscopySettings, MSISettings, QuantifySettings
from . import one_input, read_section, where
from .quantify import control_levels

log = logging.getLogger("nanohet")


def _on_grid(values: np.ndarray, grid: AnalysisGrid, x_um: np.ndarray, y_um: np.ndarray) -> np.ndarray:
    """A map on the analysis grid read at physical points (nearest grid pixel; NaN outside)."""
    col = np.rint((x_um - grid.origin[0]) / grid.spacing[0]).astype(int)
    row = np.rint((y_um - grid.origin[1]) / grid.spacing[1]).astype(int)
    ok = (row >= 0) & (row < values.shape[0]) & (col >= 0) & (col < values.shape[1])
    out = np.full(x_um.shape, np.nan)
    out[ok] = values[row[ok], col[ok]]
    return out


def cell_measures(table: pd.DataFrame, analytes: dict[str, str], thresholds: dict, sample: str) -> list[dict]:
    """Per-sample measures of the cells: count, and per analyte (column -> name) the fraction of cells reached
    (mean at or above its coverage threshold), the between-cell CV and Gini, and the macrophages' mean over
    the other cells' (where cells are called macrophages)."""
    rows = [{"analyte": "cells", "metric": "n_cells", "value": len(table), "unit": "cells"}]
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
          autofluorescence: list[str] | str | None = None) -> None:
    """Nuclei, cell territories and the per-cell table of a fluorescence section, with every MSI analyte read at
    each cell (the ``registered`` stack on the analysis grid; none for a sample without MSI), the distance to the
    nearest vessel, the region and the macrophage call; and the per-sample cell measures (:func:`cell_measures`).
    The nuclei come from the section's nuclear channel (:func:`~nanohet.microscopy.cells.segment_nuclei`), or from
    ``labels``: a label image the user segmented elsewhere (Cellpose, StarDist, QuPath), on the section's grid
    (:func:`nanohet.io.labels.read_label_image`), kept inside the tissue. ``autofluorescence``: the controls'
    table, subtracted from the nanoparticle channel as in the section's measures."""
    s, msi, q = MicroscopySettings.coerce(microscopy), MSISettings.coerce(msi), QuantifySettings.coerce(quantify)
    fluo = read_section(fluorescence, pixel_size, channels)
    m = read_ome_tiff(masks)
    tissue, viable, vessels = (m.channel(c) > 0 for c in ("tissue", "viable", "vessels"))
    p = float(fluo.spacing[0])
    labels = one_input(labels)
    if labels:
        nuclei = np.where(tissue, read_label_image(labels, tissue.shape, p, f"sample {sample}"), 0)
        log.info("%s: nuclei from the label image %s (%d objects in the tissue)", sample, labels,
                 len(np.unique(nuclei)) - 1)
    else:
        nuclei = segment_nuclei(role_channel(fluo, s, "nuclei", where(fluorescence, sample)), p,
                                smooth_um=float(s.nuclei_smooth_um), min_area_um2=float(s.nuclei_min_area_um2),
                                min_distance_um=float(s.nuclei_min_distance_um),
                                local_window_um=float(s.nuclei_local_window_um), mask=tissue)
    if not nuclei.any():
        source = f"the label image {labels}" if labels else f"the nuclear channel of {fluorescence}"
        raise InputError(f"sample {sample}: no nucleus of {source} lies in the tissue (masks {masks})")
    territories = cell_territories(nuclei, p, float(s.cell_expand_um), tissue)
    np_img = role_channel(fluo, s, "nanoparticle", fluorescence).astype(np.float64)
    channel_maps = {name: fluo.channel(name) for name in fluo.channels}  # as stored: means accumulate in float64
    np_img = np_img - background_level(np_img, tissue)
    levels = control_levels(autofluorescence, sample)
    if levels:
        np_img = subtract_autofluorescence(np_img, levels, tissue, m.channel("necrosis") > 0)
    extra = {"nanoparticle": np_img,
             "vessel_distance_um": distance_to_mask_um(vessels, fluo.spacing), "viable": viable.astype(np.float32)}
    table = cell_table(nuclei, territories, channel_maps, p, fluo.origin, extra)
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
    analytes = {"nanoparticle": "nanoparticle", **{a.name: a.name for a in measured}}
    write_table(pd.DataFrame(cell_measures(table, analytes, q.coverage_thresholds, sample)), out_metrics)
    log.info("%s: %d cells (%.0f per mm² of tissue)", sample, len(table),
             len(table) / max(tissue.sum() * p * p / 1e6, 1e-12))
