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
from scipy import ndimage

from ..errors import InputError
from ..image import SectionImage, block_reduce_mean
from ..microscopy import background_level, role_channel
from ..microscopy.autofluorescence import subtract_autofluorescence
from ..microscopy.regions import marker_regions, perfused_vessels
from ..settings import MicroscopySettings, MSISettings, QuantifySettings
from .grid import AnalysisGrid, grid_masks, masks_on_grid
from .colocalisation import colocalisation, ranks_over, shift_offsets, shifted_correlations
from .ibsi import HISTOGRAM_CODES, STATISTICS_CODES, discretise, intensity_histogram_features, intensity_statistics
from .metrics import distance_to_mask_um, gini_coefficient, map_metrics, region_stats
from .spatial import block_cv_curve, correlation_length, gearys_c, homogenisation_scale, hotspots, morans_i
from .texture import GLCM_CODES, GLSZM_CODES, glcm_texture, glszm_features, homogeneity_from_zones, size_zones


# where each metric of map_metrics is measured: the profile metrics over viable tissue, the rest over the tissue
PROFILE_METRICS = ("l50_um", "auc_100um", "penetration_um")


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


def at_analysis_scale(values: np.ndarray, region: np.ndarray, spacing_um: float,
                      q: QuantifySettings) -> tuple[np.ndarray, np.ndarray, float]:
    """A map finer than the analysis spacing block-averaged to it (a block is in the region when at least half of
    it is), with its region and new spacing; coarser maps are returned as they are."""
    factor = max(int(round(float(q.analysis_spacing_um) / spacing_um)), 1)
    if factor > 1:
        values = block_reduce_mean(np.where(region, values, np.nan), factor)
        region = block_reduce_mean(region.astype(np.float64), factor) >= 0.5
        spacing_um = spacing_um * factor
    return values, region, spacing_um


def bounding_box(mask: np.ndarray) -> tuple[slice, ...]:
    """The smallest box (slices) holding every True pixel of ``mask`` (the whole array for an empty mask). The
    spatial and texture measures see only region pixels and zero-padded neighbourhoods, so cropping to it changes
    no value (beyond the rounding of other FFT lengths) and spares the transforms of the empty margin."""
    box = ndimage.find_objects(mask.astype(np.int8, copy=False))
    return box[0] if box and box[0] is not None else tuple(slice(None) for _ in mask.shape)


TEXTURE_UNITS = {
    "joint_average": "grey level", "sum_average": "grey level", "difference_average": "grey level",
    "dissimilarity": "grey level", "joint_variance": "grey level^2", "sum_variance": "grey level^2",
    "difference_variance": "grey level^2", "contrast": "grey level^2", "cluster_tendency": "grey level^2",
    "cluster_shade": "grey level^3", "cluster_prominence": "grey level^4", "autocorrelation": "grey level^2",
    "joint_entropy": "bits", "sum_entropy": "bits", "difference_entropy": "bits", "zone_size_entropy": "bits",
    "grey_level_variance": "grey level^2", "zone_size_variance": "pixels^2", "large_zone_emphasis": "pixels^2",
    "small_zone_emphasis": "1/pixels^2", "grey_level_non_uniformity": "zones", "zone_size_non_uniformity": "zones",
}


def texture_rows(values: np.ndarray, region: np.ndarray, levels: int) -> list[dict]:
    """The texture of a map inside a region (:mod:`.texture`): the 25 GLCM and 16 GLSZM features of the IBSI and,
    for sections, the drug homogeneity index of HomogenMSI, as ``metric, value, unit, ibsi`` records.

    The region's finite values are discretised into ``levels`` grey levels (fixed bin number). Sections (2-D) use
    the slice-merged GLCM (SUJT) and the 2-D GLSZM (8QNN); volumes (3-D) the merged 3-D GLCM (IAZD) and the 3-D
    GLSZM (KOBO). Rows are NaN for a region with fewer than 2 finite pixels.
    """
    inside = region & np.isfinite(values)
    box = bounding_box(inside)
    values, inside = values[box], inside[box]
    names = [f"glcm_{k}" for k in GLCM_CODES] + [f"glszm_{k}" for k in GLSZM_CODES]
    if values.ndim == 2:
        names.append("dhi")
    found = dict.fromkeys(names, np.nan)
    if inside.sum() >= 2:
        grey = np.zeros(values.shape, dtype=np.int64)
        grey[inside] = discretise(values[inside], n_bins=int(levels))
        planar = values.ndim == 2
        glcm = glcm_texture(grey, inside, int(levels), aggregation="2D slice-merged" if planar else "3D merged")
        zones = size_zones(grey, inside, dimensions=2 if planar else 3)  # one section or one volume: one entry
        found.update({f"glcm_{k}": v for k, v in glcm.items()})
        found.update({f"glszm_{k}": v for k, v in glszm_features(*zones[0]).items()})
        if planar:
            found["dhi"] = homogeneity_from_zones(*zones[0])
    codes = {**{f"glcm_{k}": c for k, c in GLCM_CODES.items()}, **{f"glszm_{k}": c for k, c in GLSZM_CODES.items()}}
    return [{"metric": m, "value": v, "unit": TEXTURE_UNITS.get(m.split("_", 1)[1], "1") if m != "dhi" else "1",
             "ibsi": codes.get(m, "")} for m, v in found.items()]


def spatial_rows(values: np.ndarray, region: np.ndarray, spacing_um: float, q: QuantifySettings) -> list[dict]:
    """Spatial statistics of a map inside a region (:mod:`.spatial`): Moran's I, Geary's C, the area
    fractions of Gi* hot and cold spots and the correlation length (µm).

    Maps finer than the analysis spacing are block-averaged to it first (a block is in the region when at
    least half of it is), so that maps of every modality are compared at one scale and a 2 µm microscopy
    map does not measure pixel-scale smoothness.
    """
    values, region, spacing_um = at_analysis_scale(values, region, spacing_um, q)
    rows = [{"metric": m, "value": np.nan, "unit": u, "ibsi": ""} for m, u in (
        ("moran_i", "1"), ("geary_c", "1"), ("hotspot_fraction", "fraction"), ("coldspot_fraction", "fraction"),
        ("correlation_length_um", "um"))]
    inside = region & np.isfinite(values)
    if inside.sum() < 3:
        return rows
    box = bounding_box(inside)
    values, inside = values[box], inside[box]
    hot, cold, _ = hotspots(values, inside, float(q.hotspot_radius_um) / spacing_um, float(q.hotspot_fdr))
    n = float(inside.sum())
    found = {"moran_i": morans_i(values, inside), "geary_c": gearys_c(values, inside),
             "hotspot_fraction": float(hot.sum() / n), "coldspot_fraction": float(cold.sum() / n),
             "correlation_length_um": correlation_length(values, inside, spacing_um,
                                                         max(int(float(q.correlation_max_um) / spacing_um), 4))}
    return [{**row, "value": found[row["metric"]]} for row in rows]


def release_index_rows(sample: str, drug: np.ndarray, carrier: np.ndarray, regions: dict[str, np.ndarray],
                       unit: str, modality: str = "msi") -> list[dict]:
    """The in-situ release index per region: mean drug over mean carrier (Xue et al., Sci Adv 2018;4:eaat9039,
    the drug-to-carrier MS signal ratio), as rows of analyte ``drug:carrier`` and metric
    ``drug_to_carrier_ratio``. A ratio of region means, not a mean of pixel ratios, which near-zero carrier
    pixels would dominate."""
    rows = []
    for name, mask in regions.items():
        both = mask & np.isfinite(drug) & np.isfinite(carrier)
        c = float(carrier[both].mean()) if both.any() else np.nan
        value = float(drug[both].mean()) / c if both.any() and c > 0 else np.nan
        rows.append({"sample": sample, "modality": modality, "analyte": "drug:carrier", "region": name,
                     "metric": "drug_to_carrier_ratio", "value": value, "unit": unit, "ibsi": ""})
    return rows


COLOCALISATION_UNITS = {"pearson": "1", "spearman": "1", "pearson_p_shift": "1", "manders_m1": "fraction",
                        "manders_m2": "fraction", "costes_threshold_a": "map a units", "costes_threshold_b": "map b units"}


def colocalisation_rows(sample: str, maps: dict[str, np.ndarray], tissue: np.ndarray, spacing_um: float,
                        q: QuantifySettings, modality: str = "msi") -> list[dict]:
    """Colocalisation (:func:`.colocalisation.colocalisation`) of every pair of ``maps`` (one grid) in the tissue,
    as metric rows whose analyte is ``"<a>:<b>"`` (in the order of ``maps``)."""
    names = list(maps)
    rows = []
    n_shifts, min_shift = int(q.colocalisation_shifts), max(int(float(q.colocalisation_min_shift_um) / spacing_um), 1)
    pairs = {(a, b): shift_offsets(tissue.shape, n_shifts, min_shift, seed=i)
             for i, a in enumerate(names) for b in names[i + 1:]}
    shifted = shifted_correlations(maps, tissue, {k: v for k, v in pairs.items() if v.size}) if n_shifts else {}
    common, ranks = ranks_over(maps, tissue)  # each map ranked once for Spearman, where all maps are finite
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            pair = tissue & np.isfinite(maps[a]) & np.isfinite(maps[b])
            try:
                found = colocalisation(maps[a], maps[b], tissue, n_shifts=n_shifts, min_shift_px=min_shift, seed=i,
                                       ranks=(ranks[a], ranks[b]) if pair.sum() == common.sum() else None,
                                       shifted_r=shifted.get((a, b), np.zeros(0)))
            except InputError:
                found = {k: np.nan for k in COLOCALISATION_UNITS}
            if int(q.colocalisation_shifts) == 0:
                found["pearson_p_shift"] = np.nan
            rows += [{"sample": sample, "modality": modality, "analyte": f"{a}:{b}", "region": "tissue", "metric": k,
                      "value": v, "unit": COLOCALISATION_UNITS[k], "ibsi": ""} for k, v in found.items()]
    return rows


SHELL_NAMES = {0: (), 1: ("rim", "core"), 2: ("rim", "periphery", "core")}


def tissue_shells(tissue: np.ndarray, spacing_um: float, edges_um) -> dict[str, np.ndarray]:
    """Shells of the tissue by Euclidean distance (µm) from its boundary (the nearest non-tissue pixel): ``rim``
    up to the first edge, ``periphery`` up to the second, ``core`` beyond (one edge: rim and core)."""
    edges = sorted(float(e) for e in edges_um)
    if len(edges) not in SHELL_NAMES:
        raise InputError(f"quantify.shell_edges_um takes at most two distances, got {edges}")
    if not edges:
        return {}
    depth = ndimage.distance_transform_edt(np.pad(tissue, 1))[1:-1, 1:-1] * spacing_um  # image border = boundary
    bounds = [0.0] + edges + [np.inf]
    return {name: tissue & (depth > lo) & (depth <= hi)
            for name, lo, hi in zip(SHELL_NAMES[len(edges)], bounds[:-1], bounds[1:])}


def vessel_distance_regions(viable: np.ndarray, distance_um: np.ndarray, edges_um,
                            prefix: str = "vessel") -> dict[str, np.ndarray]:
    """The viable tissue split by distance (µm) to the nearest vessel at ``edges_um``: ``vessel_0-50um``,
    ``vessel_50-100um``, ``vessel_100um+`` for edges (50, 100) (``prefix`` replaces ``vessel``, e.g. for the
    perfused vessels); none without edges."""
    edges = sorted(float(e) for e in edges_um)
    if not edges:
        return {}
    bounds = [0.0] + edges + [np.inf]
    regions = {}
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        name = f"{prefix}_{lo:g}-{hi:g}um" if np.isfinite(hi) else f"{prefix}_{lo:g}um+"
        regions[name] = viable & (distance_um >= lo) & (distance_um < hi)
    return regions


def grid_pair_rows(sample: str, stack: SectionImage, masks: SectionImage, grid: AnalysisGrid,
                   nanoparticle: np.ndarray, msi: MSISettings, q: QuantifySettings, calibrated=()) -> list[dict]:
    """The measures of pairs of maps on the analysis grid: the colocalisation of every pair of analytes and the
    nanoparticle (block-averaged onto the grid) in the tissue (:func:`colocalisation_rows`), and the release
    index of the drug and carrier roles per region (:func:`release_index_rows`)."""
    maps = {a.name: stack.channel(a.name).astype(np.float64) for a in msi.analytes}
    maps["nanoparticle"] = grid.reduce(nanoparticle)
    tissue, viable = grid_masks(masks, grid)
    return pair_rows(sample, maps, tissue, viable, float(grid.spacing[0]), msi, q, calibrated)


def pair_rows(sample: str, maps: dict[str, np.ndarray], tissue: np.ndarray, viable: np.ndarray | None,
              spacing_um: float, msi: MSISettings, q: QuantifySettings, calibrated=(),
              modality: str = "msi") -> list[dict]:
    """The colocalisation of every pair of ``maps`` (one grid) in the tissue (:func:`colocalisation_rows`) and,
    where analytes of the drug and carrier roles exist, the release index (:func:`release_index_rows`) in the
    tissue, its ``viable`` part (None: without a fluorescence section) and its shells."""
    rows = colocalisation_rows(sample, maps, tissue, spacing_um, q, modality)
    drug, carrier = msi.analyte("drug"), msi.analyte("carrier")
    if drug is not None and carrier is not None:
        regions = {"tissue": tissue, **({"viable": viable} if viable is not None else {}),
                   **tissue_shells(tissue, spacing_um, q.shell_edges_um)}
        unit = f"{msi.unit(drug, drug.name in calibrated)} / {msi.unit(carrier, carrier.name in calibrated)}"
        rows += release_index_rows(sample, maps[drug.name], maps[carrier.name], regions, unit, modality)
    return rows


class SectionTables:
    """Accumulates the tidy metric rows and vessel-distance profiles of one sample."""

    def __init__(self, sample: str, quantify: QuantifySettings):
        self.sample, self.quantify = sample, quantify
        self.rows: list[dict] = []
        self.profiles: list[pd.DataFrame] = []
        self.scales: list[dict] = []  # CV of block means per block size (heterogeneity versus scale)
        # regions from marker densities (macrophage-rich, hypoxic), by the shape of the grid they are on
        self.marker_regions: dict[tuple, dict[str, np.ndarray]] = {}

    def add(self, modality: str, analyte: str, unit: str, values, tissue, viable, distance_um,
            spacing_um: float) -> None:
        """Metrics of ``values`` (pixels of ``spacing_um``) over ``tissue`` and over its ``viable`` part, and the
        vessel-distance profile over ``viable``: :func:`~.metrics.map_metrics`, then :func:`region_rows` and
        :func:`spatial_rows` per region. Without a fluorescence section (an MSI-only sample) ``viable`` and
        ``distance_um`` are None: the tissue's measures and shells only, no viable tissue, vessels or profile."""
        q = self.quantify
        threshold = q.coverage_thresholds.get(analyte)
        if viable is None:
            metrics, profile = region_stats(values, tissue, threshold), None
        else:
            metrics, profile = map_metrics(values, tissue, viable, distance_um, threshold, q.profile_bin_um,
                                           q.profile_max_um, q.penetration_fraction)
        units = {"mean": unit, "median": unit, "cv": "1", "coverage": "fraction", "n_pixels": "pixels",
                 "l50_um": "um", "auc_100um": f"{unit} x um", "penetration_um": "um"}
        base = {"sample": self.sample, "modality": modality, "analyte": analyte}
        self.rows += [{**base, "region": metric_region(k), "metric": k, "value": v, "unit": units[k], "ibsi": ""}
                      for k, v in metrics.items()]
        if viable is not None:
            for k, v in region_stats(values, viable, threshold).items():
                self.rows.append({**base, "region": "viable", "metric": k, "value": v, "unit": units[k], "ibsi": ""})
        for name, mask in (("tissue", tissue), ("viable", viable)) if viable is not None else (("tissue", tissue),):
            self.rows += [{**base, "region": name, **row}
                          for row in region_rows(values, mask, unit, threshold, int(q.histogram_bins))
                          + spatial_rows(values, mask, float(spacing_um), q)
                          + texture_rows(*at_analysis_scale(values, mask, float(spacing_um), q)[:2],
                                         int(q.texture_levels))]
        # shells by depth from the tumour boundary: the distribution measures, and the rim-to-core ratio of means
        shells = tissue_shells(tissue, float(spacing_um), q.shell_edges_um)
        means = {}
        for name, mask in shells.items():
            stats = region_stats(values, mask, threshold)
            means[name] = stats["mean"]
            self.rows += [{**base, "region": name, "metric": k, "value": v, "unit": units[k], "ibsi": ""}
                          for k, v in stats.items()]
            v = values[mask & np.isfinite(values)]
            self.rows.append({**base, "region": name, "metric": "gini", "value": gini_coefficient(v), "unit": "1",
                              "ibsi": ""})
        # the viable tissue by distance to the nearest vessel, and by marker density: the distribution measures
        bands = vessel_distance_regions(viable, distance_um, q.vessel_distance_edges_um) if viable is not None else {}
        for name, mask in {**bands, **self.marker_regions.get(np.shape(values), {})}.items():
            self.rows += [{**base, "region": name, "metric": k, "value": v, "unit": units[k], "ibsi": ""}
                          for k, v in region_stats(values, mask, threshold).items()]
            self.rows.append({**base, "region": name, "metric": "gini", "unit": "1", "ibsi": "",
                              "value": gini_coefficient(values[mask & np.isfinite(values)])})
        # heterogeneity versus scale over the tissue: the CV of block means, and where it reaches the target CV
        if (tissue & np.isfinite(values)).sum() >= 3:
            curve = block_cv_curve(values, tissue, float(spacing_um), q.scale_block_sizes_um)
            self.scales += [{**base, "region": "tissue", "block_um": b, "cv": c, "n_blocks": n, "block_mean": m}
                            for b, c, n, m in curve]
            self.rows.append({**base, "region": "tissue", "metric": "homogenisation_scale_um", "unit": "um",
                              "ibsi": "", "value": homogenisation_scale(curve, float(q.homogenisation_cv))})
        if "rim" in means and "core" in means:
            ratio = means["rim"] / means["core"] if means["core"] and np.isfinite(means["core"]) else np.nan
            self.rows.append({**base, "region": "tissue", "metric": "rim_to_core_ratio", "value": ratio, "unit": "1",
                              "ibsi": ""})
        if profile is None:
            return
        profile.insert(0, "analyte", analyte)
        profile.insert(0, "modality", modality)
        profile.insert(0, "sample", self.sample)
        self.profiles.append(profile)

    def add_limits(self, modality: str, analyte: str, unit: str, values, tissue, viable, lod: float,
                   loq: float) -> None:
        """The analyte's limits of detection and quantification (from its calibration) and the fraction of each
        region's pixels below them: values there are not detected, or detected but not quantifiable."""
        base = {"sample": self.sample, "modality": modality, "analyte": analyte, "ibsi": ""}
        self.rows += [{**base, "region": "tissue", "metric": "lod", "value": lod, "unit": unit},
                      {**base, "region": "tissue", "metric": "loq", "value": loq, "unit": unit}]
        for region, mask in (("tissue", tissue), ("viable", viable)) if viable is not None else (("tissue", tissue),):
            v = values[mask & np.isfinite(values)]
            for metric, limit in (("fraction_below_lod", lod), ("fraction_below_loq", loq)):
                value = float((v < limit).mean()) if v.size and np.isfinite(limit) else np.nan
                self.rows.append({**base, "region": region, "metric": metric, "value": value, "unit": "fraction"})

    def metrics(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)

    def profile_table(self) -> pd.DataFrame:
        if not self.profiles:
            return pd.DataFrame(columns=["sample", "modality", "analyte", "distance_um", "mean", "sd", "n_pixels"])
        return pd.concat(self.profiles, ignore_index=True)

    def scale_table(self) -> pd.DataFrame:
        return pd.DataFrame(self.scales, columns=["sample", "modality", "analyte", "region", "block_um", "cv",
                                                  "n_blocks", "block_mean"])


def nanoparticle_metrics(tables: SectionTables, fluo: SectionImage, masks: SectionImage,
                         microscopy: MicroscopySettings, fluo_where: str, masks_where: str,
                         drawn: dict | None = None, autofluorescence: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Add the background-corrected nanoparticle channel's metrics; return the vessel distance map (µm) and the
    background-corrected nanoparticle image. ``drawn``: regions a user drew (``{name: mask}`` on the section's
    grid), measured like the marker regions. ``autofluorescence``: the tissue's own signal in the channel per
    region (``{"viable": counts, "necrosis": counts}`` from unlabelled controls,
    :mod:`nanohet.microscopy.autofluorescence`), subtracted too.

    ``fluo_where`` and ``masks_where`` name the two files in error messages.
    """
    tissue, viable, vessels = (masks.channel(c) > 0 for c in ("tissue", "viable", "vessels"))
    if not tissue.any():
        raise InputError(f"{masks_where}: the tissue mask is empty")
    # regions measured besides tissue, viable, shells and vessel bands: marker densities, and regions a user drew
    tables.marker_regions[tissue.shape] = {**marker_regions(fluo, microscopy, tissue, viable, fluo_where),
                                           **{name: mask & tissue for name, mask in (drawn or {}).items()}}
    if "perfusion" in microscopy.channels:  # perfused versus all vessels: distance bands to the perfused ones
        tables.marker_regions[tissue.shape].update(perfusion_regions(tables, fluo, microscopy, vessels, tissue,
                                                                     viable, fluo_where))
    dist = distance_to_mask_um(vessels, fluo.spacing)
    np_img = role_channel(fluo, microscopy, "nanoparticle", fluo_where).astype(np.float64)
    np_img = np_img - background_level(np_img, tissue)
    if autofluorescence:
        np_img = subtract_autofluorescence(np_img, autofluorescence, tissue, masks.channel("necrosis") > 0)
    tables.add("fluorescence", "nanoparticle", "counts", np_img, tissue, viable, dist, float(fluo.spacing[0]))
    return dist, np_img


def perfusion_regions(tables: SectionTables, fluo: SectionImage, microscopy: MicroscopySettings,
                      vessels: np.ndarray, tissue: np.ndarray, viable: np.ndarray, where: str) -> dict:
    """The viable tissue by distance to the nearest perfused vessel (:func:`nanohet.microscopy.regions.
    perfused_vessels`; bands at ``quantify.vessel_distance_edges_um``, named ``perfused_vessel_<lo>-<hi>um``),
    and the rows of the vessels' perfused fraction and counts (analyte ``vessels``, region ``section``)."""
    perfused, n_perfused, n_vessels = perfused_vessels(fluo, microscopy, vessels, tissue, where)
    base = {"sample": tables.sample, "modality": "fluorescence", "analyte": "vessels", "region": "section",
            "ibsi": ""}
    tables.rows += [{**base, "metric": "perfused_fraction", "unit": "fraction",
                     "value": n_perfused / n_vessels if n_vessels else np.nan},
                    {**base, "metric": "perfused_vessel_count", "unit": "count", "value": n_perfused},
                    {**base, "metric": "vessel_count", "unit": "count", "value": n_vessels}]
    return vessel_distance_regions(viable, distance_to_mask_um(perfused, fluo.spacing),
                                   tables.quantify.vessel_distance_edges_um, prefix="perfused_vessel")


def check_thresholds_against_limits(quantify: QuantifySettings, limits: dict, where: str) -> None:
    """Refuse a coverage threshold below its analyte's limit of quantification (``limits``: ``{analyte: (lod,
    loq)}``): coverage would count values the calibration cannot quantify."""
    for analyte, (_, loq) in limits.items():
        threshold = quantify.coverage_thresholds.get(analyte)
        if threshold is not None and np.isfinite(loq) and threshold < loq:
            raise InputError(f"quantify.coverage_thresholds.{analyte} = {threshold:g} is below the limit of "
                             f"quantification of {analyte}, {loq:.3g} ({where}); raise the threshold or add "
                             "calibration standards at lower concentrations")


def msi_metrics(tables: SectionTables, registered: SectionImage, masks: SectionImage, grid: AnalysisGrid,
                vessel_distance_um: np.ndarray, msi: MSISettings, where: str, calibrated=(),
                limits: dict | None = None) -> float:
    """Add every analyte's metrics on the analysis grid; return the fraction of tissue the MSI acquisition covers.
    ``calibrated`` names the analytes calibrated from standards (their unit is the standards'); ``limits`` holds
    their ``(lod, loq)`` (:meth:`SectionTables.add_limits`)."""
    grid.check(registered, where)
    tissue_g, viable_g, dist_g = masks_on_grid(masks, grid, vessel_distance_um)
    full = tables.marker_regions.get(masks.channel("tissue").shape, {})
    tables.marker_regions[tissue_g.shape] = {k: tissue_g & (grid.reduce(v.astype(np.float32)) >= 0.5)
                                             for k, v in full.items()}
    covered = registered.channel("acquired") > 0.5
    for a in msi.analytes:
        values = registered.channel(a.name).astype(np.float64)
        unit = msi.unit(a, a.name in calibrated)
        tables.add("msi", a.name, unit, values, tissue_g, viable_g, dist_g, float(grid.spacing[0]))
        if limits and a.name in limits:
            tables.add_limits("msi", a.name, unit, values, tissue_g, viable_g, *limits[a.name])
    return float((covered & tissue_g).sum() / max(tissue_g.sum(), 1))


def region_maps(registered: SectionImage | None, masks: SectionImage, grid: AnalysisGrid, msi: MSISettings,
                quantify: QuantifySettings, vessel_distance_um: np.ndarray | None = None,
                marker: dict | None = None) -> SectionImage:
    """The maps behind the regional measures of a section, on the analysis grid (the registered MSI stack's
    grid; ``registered`` None for a section without MSI): :func:`region_map_image` of the microscopy masks
    reduced onto the grid and of the vessel distance map (microscopy grid, µm)."""
    if registered is not None:
        grid.check(registered, "registered MSI stack")
    tissue, viable = grid_masks(masks, grid)
    distance = grid.reduce(vessel_distance_um) if vessel_distance_um is not None else None
    on = registered if registered is not None else grid
    return region_map_image(registered, tissue, viable, tuple(on.spacing), tuple(on.origin), msi, quantify,
                            distance, marker)


def region_map_image(stack: SectionImage | None, tissue: np.ndarray, viable: np.ndarray | None, spacing, origin,
                     msi: MSISettings, quantify: QuantifySettings, vessel_distance_um: np.ndarray | None = None,
                     marker: dict | None = None) -> SectionImage:
    """The maps behind the regional measures, on one grid (``spacing`` and ``origin`` in µm).

    Channels: ``tissue`` and (with a fluorescence section) ``viable`` (1/0); ``shell`` (1 rim, 2 periphery,
    3 core; the regions of :func:`tissue_shells`) and, given the vessel distance map (µm, this grid),
    ``vessel_distance_band`` (1, 2, ... from the nearest band of :func:`vessel_distance_regions` outwards,
    viable tissue only); the marker regions ``marker`` (``{name: mask}``: macrophage_rich, hypoxic; 1/0); then,
    given the analytes' ``stack``, per analyte ``<name>_underdosed`` (1 where the tissue's value is below the
    analyte's coverage threshold, 0 at or above it; only analytes with a threshold: the "pseudo-resistant"
    tissue the drug does not reach in sufficient concentration), ``<name>_hotspot`` and ``<name>_coldspot``
    (Gi* calls of :func:`spatial_rows` over the tissue), and ``drug_to_carrier_ratio`` (the pixel-wise release
    index, where the analytes of roles drug and carrier exist and the carrier is > 0). NaN where the pixel is
    not tissue or was not acquired.
    """
    names, planes = ["tissue"], [tissue.astype(np.float32)]
    if viable is not None:
        names.append("viable")
        planes.append(viable.astype(np.float32))
    step = float(spacing[0])
    for channel, regions in (("shell", tissue_shells(tissue, step, quantify.shell_edges_um)),
                             ("vessel_distance_band", vessel_distance_regions(
                                 viable, vessel_distance_um, quantify.vessel_distance_edges_um)
                              if vessel_distance_um is not None and viable is not None else {})):
        if regions:
            band = np.full(tissue.shape, np.nan, dtype=np.float32)
            for k, mask in enumerate(regions.values(), start=1):
                band[mask] = k
            names.append(channel)
            planes.append(band)
    for name, mask in (marker or {}).items():
        names.append(name)
        planes.append(np.where(tissue, mask, np.nan).astype(np.float32))
    for a in msi.analytes if stack is not None else ():
        values = stack.channel(a.name).astype(np.float64)
        inside = tissue & np.isfinite(values)
        threshold = quantify.coverage_thresholds.get(a.name)
        if threshold is not None:
            names.append(f"{a.name}_underdosed")
            planes.append(np.where(inside, (values < threshold).astype(np.float32), np.nan))
        hot = cold = np.zeros(values.shape, dtype=bool)
        if inside.sum() >= 3:
            hot, cold, _ = hotspots(values, inside, float(quantify.hotspot_radius_um) / step,
                                    float(quantify.hotspot_fdr))
        names += [f"{a.name}_hotspot", f"{a.name}_coldspot"]
        planes += [np.where(inside, hot, np.nan).astype(np.float32), np.where(inside, cold, np.nan).astype(np.float32)]
    drug, carrier = msi.analyte("drug"), msi.analyte("carrier")
    if stack is not None and drug is not None and carrier is not None:
        d = stack.channel(drug.name).astype(np.float64)
        c = stack.channel(carrier.name).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(tissue & (c > 0), d / c, np.nan)
        names.append("drug_to_carrier_ratio")
        planes.append(ratio.astype(np.float32))
    return SectionImage(np.stack(planes).astype(np.float32), names, tuple(spacing), tuple(origin))


def native_msi_metrics(tables: SectionTables, ions: SectionImage, on_msi: SectionImage, msi: MSISettings,
                       calibrated=()) -> None:
    """Add every analyte's metrics on its native MSI pixels (masks from :func:`~.grid.masks_on_msi_grid`)."""
    tissue = np.nan_to_num(on_msi.channel("tissue_fraction")) >= 0.5
    viable = np.nan_to_num(on_msi.channel("viable_fraction")) >= 0.5
    dist = on_msi.channel("vessel_distance_um").astype(np.float64)
    for a in msi.analytes:
        tables.add("msi_native", a.name, msi.unit(a, a.name in calibrated), ions.channel(a.name).astype(np.float64),
                   tissue, viable, dist, float(ions.spacing[0]))
