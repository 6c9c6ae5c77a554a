"""Heterogeneity metrics of one section: the nanoparticle (microscopy) and every MSI analyte.

The nanoparticle signal is measured at microscopy resolution, background-corrected; MSI analytes on
the analysis grid (modality ``msi``) and, where the masks were mapped onto the native MSI pixels, on
those pixels (modality ``msi_native``: a pixel counts as tissue/viable when at least half its footprint
is). Every measure is reported per region (column ``region``: ``tissue``, or its ``viable`` part without
necrosis); the IBSI features carry their identifier (column ``ibsi``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import InputError
from ..image import SectionImage
from ..microscopy import background_level, role_channel
from ..settings import MicroscopySettings, MSISettings, QuantifySettings
from .grid import AnalysisGrid, masks_on_grid
from .ibsi import HISTOGRAM_CODES, STATISTICS_CODES, discretise, intensity_histogram_features, intensity_statistics
from .metrics import distance_to_mask_um, gini_coefficient, map_metrics, region_stats


# where each metric of map_metrics is measured: the profile metrics over viable tissue, the rest over the tissue
PROFILE_METRICS = ("l50_um", "auc_100um")


def metric_region(metric: str) -> str:
    """The region a metric of :func:`~.metrics.map_metrics` is measured in (the ``region`` column)."""
    return "viable" if metric in PROFILE_METRICS else "tissue"


def region_rows(values: np.ndarray, region: np.ndarray, unit: str, threshold: float | None,
                histogram_bins: int) -> list[dict]:
    """The distribution measures of ``values`` inside ``region`` (finite pixels): the Gini coefficient, the
    under-dosed fraction (below ``threshold``), and the IBSI intensity statistics and intensity-histogram
    features (fixed bin number ``histogram_bins``), as ``metric, value, unit, ibsi`` records."""
    v = values[region & np.isfinite(values)]
    rows = [{"metric": "gini", "value": gini_coefficient(v), "unit": "1", "ibsi": ""}]
    if threshold is not None:
        rows.append({"metric": "underdosed_fraction", "value": float((v < threshold).mean()) if v.size else np.nan,
                     "unit": "fraction", "ibsi": ""})
    if v.size == 0:
        return rows
    squared = f"({unit})^2"
    stat_units = {"variance": squared, "energy": squared, "skewness": "1", "kurtosis": "1", "cov": "1", "qcod": "1"}
    for name, value in intensity_statistics(v).items():
        rows.append({"metric": f"stat_{name}", "value": value, "unit": stat_units.get(name, unit),
                     "ibsi": STATISTICS_CODES[name]})
    level_units = {"variance": "grey level^2", "skewness": "1", "kurtosis": "1", "cov": "1", "qcod": "1",
                   "entropy": "bits", "uniformity": "1", "max_gradient": "pixels", "min_gradient": "pixels"}
    for name, value in intensity_histogram_features(discretise(v, n_bins=histogram_bins)).items():
        rows.append({"metric": f"ih_{name}", "value": value, "unit": level_units.get(name, "grey level"),
                     "ibsi": HISTOGRAM_CODES[name]})
    return rows


class SectionTables:
    """Accumulates the tidy metric rows and vessel-distance profiles of one sample."""

    def __init__(self, sample: str, quantify: QuantifySettings):
        self.sample, self.quantify = sample, quantify
        self.rows: list[dict] = []
        self.profiles: list[pd.DataFrame] = []

    def add(self, modality: str, analyte: str, unit: str, values, tissue, viable, distance_um) -> None:
        """Metrics of ``values`` over ``tissue`` and over its ``viable`` part, and the vessel-distance profile
        over ``viable``: :func:`~.metrics.map_metrics`, then :func:`region_rows` per region."""
        q = self.quantify
        threshold = q.coverage_thresholds.get(analyte)
        metrics, profile = map_metrics(values, tissue, viable, distance_um, threshold, q.profile_bin_um,
                                       q.profile_max_um)
        units = {"mean": unit, "median": unit, "cv": "1", "coverage": "fraction", "n_pixels": "pixels",
                 "l50_um": "um", "auc_100um": f"{unit} x um"}
        base = {"sample": self.sample, "modality": modality, "analyte": analyte}
        self.rows += [{**base, "region": metric_region(k), "metric": k, "value": v, "unit": units[k], "ibsi": ""}
                      for k, v in metrics.items()]
        for k, v in region_stats(values, viable, threshold).items():
            self.rows.append({**base, "region": "viable", "metric": k, "value": v, "unit": units[k], "ibsi": ""})
        for name, mask in (("tissue", tissue), ("viable", viable)):
            self.rows += [{**base, "region": name, **row}
                          for row in region_rows(values, mask, unit, threshold, int(q.histogram_bins))]
        profile.insert(0, "analyte", analyte)
        profile.insert(0, "modality", modality)
        profile.insert(0, "sample", self.sample)
        self.profiles.append(profile)

    def metrics(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)

    def profile_table(self) -> pd.DataFrame:
        return pd.concat(self.profiles, ignore_index=True)


def nanoparticle_metrics(tables: SectionTables, fluo: SectionImage, masks: SectionImage,
                         microscopy: MicroscopySettings, fluo_where: str, masks_where: str) -> np.ndarray:
    """Add the background-corrected nanoparticle channel's metrics; return the vessel distance map (µm).

    ``fluo_where`` and ``masks_where`` name the two files in error messages.
    """
    tissue, viable, vessels = (masks.channel(c) > 0 for c in ("tissue", "viable", "vessels"))
    if not tissue.any():
        raise InputError(f"{masks_where}: the tissue mask is empty")
    dist = distance_to_mask_um(vessels, fluo.spacing)
    np_img = role_channel(fluo, microscopy, "nanoparticle", fluo_where).astype(np.float64)
    np_img = np_img - background_level(np_img, tissue)
    tables.add("fluorescence", "nanoparticle", "counts", np_img, tissue, viable, dist)
    return dist


def msi_metrics(tables: SectionTables, registered: SectionImage, masks: SectionImage, grid: AnalysisGrid,
                vessel_distance_um: np.ndarray, msi: MSISettings, where: str, calibrated=()) -> float:
    """Add every analyte's metrics on the analysis grid; return the fraction of tissue the MSI acquisition covers.
    ``calibrated`` names the analytes calibrated from standards (their unit is the standards')."""
    grid.check(registered, where)
    tissue_g, viable_g, dist_g = masks_on_grid(masks, grid, vessel_distance_um)
    covered = registered.channel("acquired") > 0.5
    for a in msi.analytes:
        tables.add("msi", a.name, msi.unit(a, a.name in calibrated), registered.channel(a.name).astype(np.float64), tissue_g, viable_g,
                   dist_g)
    return float((covered & tissue_g).sum() / max(tissue_g.sum(), 1))


def native_msi_metrics(tables: SectionTables, ions: SectionImage, on_msi: SectionImage, msi: MSISettings,
                       calibrated=()) -> None:
    """Add every analyte's metrics on its native MSI pixels (masks from :func:`~.grid.masks_on_msi_grid`)."""
    tissue = np.nan_to_num(on_msi.channel("tissue_fraction")) >= 0.5
    viable = np.nan_to_num(on_msi.channel("viable_fraction")) >= 0.5
    dist = on_msi.channel("vessel_distance_um").astype(np.float64)
    for a in msi.analytes:
        tables.add("msi_native", a.name, msi.unit(a, a.name in calibrated), ions.channel(a.name).astype(np.float64), tissue, viable, dist)
