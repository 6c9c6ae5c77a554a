"""The demo's true metrics, computed from the true fields the way the analysis measures its maps.

The nanoparticle field is measured at microscopy resolution; the MSI analytes' fields (drug, metabolite,
carrier) as an MSI pixel sees them (averaged over its footprint) on the analysis grid
(:class:`nanohet.quantify.grid.AnalysisGrid`), with the same metric functions and settings as the analysis.
Only this package knows the simulator's fields.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage

from ..image import SectionImage
from ..quantify.grid import AnalysisGrid
from ..quantify.metrics import distance_to_mask_um, gini_coefficient, map_metrics, region_stats
from ..quantify.section import PROFILE_METRICS, spatial_rows, tissue_shells
from ..settings import QuantifySettings
from .phantom import NP_COUNTS_PER_UNIT

MSI_FIELDS = ("drug", "metabolite", "carrier")


def footprint_average(field: np.ndarray, spacing_um: float, footprint_um: float) -> np.ndarray:
    """A field averaged over a square instrument footprint of ``footprint_um`` (what one MSI pixel sees)."""
    size = max(int(round(footprint_um / spacing_um)), 1)
    return ndimage.uniform_filter(field.astype(np.float32), size=size) if size > 1 else field


def truth_metrics(fields: SectionImage, masks: SectionImage, msi_pixel_um: float, quantify: QuantifySettings,
                  thresholds: dict | None = None) -> dict:
    """True metrics of every field (``nanoparticle`` and :data:`MSI_FIELDS`) and of the section.

    Parameters
    ----------
    fields : SectionImage
        ``truth_fields.ome.tif``: the true fields at microscopy resolution.
    masks : SectionImage
        ``truth_masks.ome.tif``: true tissue, necrosis and vessel masks on the same grid.
    msi_pixel_um : float
        The simulated MSI pixel (footprint).
    quantify : QuantifySettings
        The analysis grid spacing and profile bins the analysis used.
    thresholds : dict, optional
        Coverage threshold per field name.

    Returns
    -------
    dict
        ``{field: {(region, metric): value}}``: the metrics of :func:`nanohet.quantify.metrics.map_metrics`
        (tissue; the profile metrics in viable tissue), mean, CV and coverage in viable tissue, the Gini
        coefficient and the spatial statistics of :func:`nanohet.quantify.section.spatial_rows` in the
        tissue; ``section`` (necrotic fraction, tissue area in mm²); and ``pairs``, the colocalisation of every
        pair of fields (:func:`true_colocalisation`) on the analysis grid, as the analysis measures it.
    """
    thresholds = thresholds or {}
    p = fields.spacing[0]
    tissue = masks.channel("tissue") > 0
    necrosis = masks.channel("necrosis") > 0
    viable = tissue & ~necrosis
    dist = distance_to_mask_um(masks.channel("vessels") > 0, fields.spacing)
    bins = (quantify.profile_bin_um, quantify.profile_max_um)
    out = {"nanoparticle": _field_metrics(fields.channel("nanoparticle").astype(np.float64), tissue, viable, dist,
                                          thresholds.get("nanoparticle"), p, quantify)}
    grid = AnalysisGrid.over(fields, quantify.analysis_spacing_um)
    tissue_g = grid.reduce(tissue.astype(np.float32)) >= 0.5
    viable_g = grid.reduce(viable.astype(np.float32)) >= 0.5
    dist_g = grid.reduce(dist)
    for name in MSI_FIELDS:
        seen = grid.reduce(footprint_average(fields.channel(name), p, msi_pixel_um))
        out[name] = _field_metrics(seen, tissue_g, viable_g, dist_g, thresholds.get(name), float(grid.spacing[0]),
                                   quantify)
    out["section"] = {"necrotic_fraction": float(necrosis.sum() / tissue.sum()),
                      "tissue_area_mm2": float(tissue.sum() * p * p / 1e6)}
    maps = {name: grid.reduce(footprint_average(fields.channel(name), p, msi_pixel_um)) for name in MSI_FIELDS}
    maps["nanoparticle"] = grid.reduce(fields.channel("nanoparticle").astype(np.float32))
    out["pairs"] = true_colocalisation(maps, tissue_g)
    return out


def true_colocalisation(maps: dict, tissue: np.ndarray) -> dict:
    """Pearson's r and Spearman's rho of every pair of true fields (one grid) over the tissue, as
    ``{(field a, field b): {"pearson": r, "spearman": rho}}`` for both orders of each pair."""
    from scipy import stats

    out = {}
    names = list(maps)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            inside = tissue & np.isfinite(maps[a]) & np.isfinite(maps[b])
            x, y = maps[a][inside].astype(np.float64), maps[b][inside].astype(np.float64)
            found = {"pearson": float(np.corrcoef(x, y)[0, 1]), "spearman": float(stats.spearmanr(x, y).statistic)}
            out[(a, b)] = out[(b, a)] = found
    return out


def _field_metrics(values, tissue, viable, dist, threshold, spacing_um, quantify) -> dict:
    """``{(region, metric): value}`` of one true field, with the analysis' own functions."""
    bins = (quantify.profile_bin_um, quantify.profile_max_um)
    out = {("viable" if k in PROFILE_METRICS else "tissue", k): v
           for k, v in map_metrics(values, tissue, viable, dist, threshold, *bins,
                                   quantify.penetration_fraction)[0].items()}
    out.update({("viable", k): v for k, v in region_stats(values, viable, threshold).items()})
    for region, mask in (("tissue", tissue), ("viable", viable)):
        out[(region, "gini")] = gini_coefficient(values[mask & np.isfinite(values)])
    out.update({("tissue", row["metric"]): row["value"] for row in spatial_rows(values, tissue, spacing_um, quantify)})
    shells = tissue_shells(tissue, spacing_um, quantify.shell_edges_um)
    for name, mask in shells.items():
        out.update({(name, k): v for k, v in region_stats(values, mask, threshold).items()})
    if "rim" in shells and "core" in shells and out[("core", "mean")]:
        out[("tissue", "rim_to_core_ratio")] = out[("rim", "mean")] / out[("core", "mean")]
    return out




def truth_cell_values(cells: pd.DataFrame, fields: SectionImage, msi_pixel_um: float,
                      territory_radius_um: float) -> pd.DataFrame:
    """The true value of every analyte at each true cell, as the analysis measures it.

    Parameters
    ----------
    cells : DataFrame
        ``truth_cells.tsv``: the true nucleus centres (``x_um``, ``y_um``, ``region``).
    fields : SectionImage
        ``truth_fields.ome.tif``.
    msi_pixel_um : float
        The MSI footprint: the MSI fields are what one MSI pixel sees (:func:`footprint_average`), read at the
        cell's centre (the analysis reads the registered MSI map at the nucleus centroid).
    territory_radius_um : float
        The nanoparticle is the mean of its rendered label counts (:data:`~nanohet.demo.phantom.NP_COUNTS_PER_UNIT`
        per unit of the field) over a disc of this radius around the centre (the analysis averages the cell
        territory).

    Returns
    -------
    DataFrame
        ``cells`` with a column per field (``nanoparticle`` in counts, the MSI fields in their true units).
    """
    p = float(fields.spacing[0])
    row = np.clip(np.rint((cells["y_um"].to_numpy() - fields.origin[1]) / p).astype(int), 0, fields.shape_yx[0] - 1)
    col = np.clip(np.rint((cells["x_um"].to_numpy() - fields.origin[0]) / p).astype(int), 0, fields.shape_yx[1] - 1)
    out = cells.copy()
    nano = fields.channel("nanoparticle").astype(np.float64)
    scale = NP_COUNTS_PER_UNIT
    r = territory_radius_um / p
    h = int(np.ceil(r))
    yy, xx = np.mgrid[-h:h + 1, -h:h + 1]
    disc = ((yy ** 2 + xx ** 2) <= r * r).astype(np.float64)
    out["nanoparticle"] = ndimage.convolve(nano * scale, disc / disc.sum(), mode="constant")[row, col]
    for name in MSI_FIELDS:
        out[name] = footprint_average(fields.channel(name), p, msi_pixel_um)[row, col]
    return out
