"""Validation of an analysis of the demo cohort against its ground truth: registration error and
recovered versus true metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import SimpleITK as sitk

from ..image import SectionImage
from ..registration.qc import target_registration_error
from .geometry import msi_pixels_in_tissue, section_points_in_tissue, section_to_he

# which (region, metric) pairs are compared: the absolute ones (mean, coverage) only for the drug, the one
# calibrated analyte (µg/g); the others are in arbitrary units, so only measures that do not depend on the unit
SHAPE_METRICS = (("tissue", "cv"), ("viable", "cv"), ("viable", "l50_um"), ("viable", "penetration_um"),
                 ("tissue", "gini"), ("viable", "gini"),
                 ("tissue", "moran_i"), ("tissue", "correlation_length_um"), ("tissue", "rim_to_core_ratio"),
                 ("tissue", "hotspot_fraction"), ("tissue", "coldspot_fraction"))
CALIBRATED_METRICS = (("tissue", "mean"), ("viable", "mean"), ("rim", "mean"), ("periphery", "mean"), ("core", "mean"),
                      ("tissue", "coverage"), ("viable", "coverage")) + SHAPE_METRICS


def _tre_row(sample: str, edge: str, points: str, errors: np.ndarray, pixel_um: float) -> dict:
    return {"sample": sample, "edge": edge, "points": points, "n": int(errors.size),
            "median_um": float(np.median(errors)), "p95_um": float(np.percentile(errors, 95)),
            "max_um": float(errors.max()), "median_px": float(np.median(errors) / pixel_um),
            "p95_px": float(np.percentile(errors, 95) / pixel_um), "moving_pixel_um": pixel_um}


def registration_errors(sample: str, truth: dict, landmarks: pd.DataFrame, truth_masks: SectionImage,
                        msi_transform: sitk.Transform, he_transform: sitk.Transform | None = None) -> pd.DataFrame:
    """Target registration error (µm and pixels of the moving image) of the composed transforms.

    MSI: on the 20 landmark pairs and on every MSI pixel centre whose true position lies in the tissue;
    H&E: on every 4th microscopy pixel centre (both axes) in the tissue, mapped to its true H&E position.
    """
    geom = truth["msi_geometry"]
    pm = float(geom["pixel_size_um"])
    lm = target_registration_error(msi_transform, landmarks[["section_x_um", "section_y_um"]].to_numpy(),
                                   landmarks[["msi_x_um", "msi_y_um"]].to_numpy())
    dense = target_registration_error(msi_transform, *msi_pixels_in_tissue(geom, truth_masks))
    rows = [_tre_row(sample, "msi->fluorescence", "landmarks", lm, pm),
            _tre_row(sample, "msi->fluorescence", "dense_tissue_grid", dense, pm)]
    if he_transform is not None:
        x_sec = section_points_in_tissue(truth_masks, 4)
        e = target_registration_error(he_transform, x_sec, section_to_he(x_sec, truth["he_geometry"]))
        rows.append(_tre_row(sample, "he->fluorescence", "dense_tissue_grid", e, float(truth_masks.spacing[0])))
    return pd.DataFrame(rows)


def compare_metrics(sample: str, true: dict, recovered: pd.DataFrame, analytes: dict) -> list[dict]:
    """Recovered against true metrics, one row per analyte and metric.

    Parameters
    ----------
    true : dict
        From :func:`nanohet.demo.truth.truth_metrics`: ``{field: {(region, metric): value}}``.
    recovered : DataFrame
        The sample's metrics table.
    analytes : dict
        ``{true field: (modality, analyte name, calibrated)}``: where the analysis reports each field
        (the analytes by role, the nanoparticle as its fluorescence channel).
    """
    rows = []
    for field, (modality, analyte, calibrated) in sorted(analytes.items(), key=lambda kv: kv[1][1]):
        for region, metric in CALIBRATED_METRICS if calibrated else SHAPE_METRICS:
            t = true[field].get((region, metric))
            if t is None or not np.isfinite(t):
                continue
            sel = recovered[(recovered.modality == modality) & (recovered.analyte == analyte)
                            & (recovered.metric == metric) & (recovered.region == region)]
            if sel.empty:
                continue
            r = float(sel["value"].iloc[0])
            rows.append({"sample": sample, "modality": modality, "analyte": analyte, "region": region,
                         "metric": metric, "recovered": r, "truth": t, "abs_error": abs(r - t),
                         "rel_error": abs(r - t) / abs(t) if t else np.nan})
    return rows


def equal_response_rows(rows: list[dict], calibrations: dict, msi) -> list[dict]:
    """What the analysis would have reported without its calibration, for each compared ``mean`` of a
    calibrated analyte: the concentration-equivalent of the equal-response assumption (normalised response
    × the internal standard's concentration), as rows of metric ``mean_equal_response``.

    The mean is linear in the response, so the equal-response mean is the calibrated mean mapped back
    through the curve: ``(intercept + slope × mean) × concentration of the standard``. Without internal-
    standard normalisation with a concentration there is no equal-response value: no rows.
    """
    std = msi.internal_standard
    if msi.normalisation != "internal_standard" or std is None or not std.concentration:
        return []
    out = []
    for row in rows:
        cal = calibrations.get(row["analyte"])
        if cal is None or row["modality"] != "msi" or row["metric"] != "mean" or row["region"] != "tissue":
            continue
        r = float(cal.response(row["recovered"])) * float(std.concentration)
        t = row["truth"]
        out.append({**row, "metric": "mean_equal_response", "recovered": r, "abs_error": abs(r - t),
                    "rel_error": abs(r - t) / abs(t) if t else np.nan})
    return out


def compare_colocalisation(sample: str, pairs: dict, recovered: pd.DataFrame, analytes: dict) -> list[dict]:
    """Pearson's r and Spearman's rho of every pair of analytes (rows of analyte ``a:b``) against those of the
    true fields (``pairs`` of :func:`nanohet.demo.truth.true_colocalisation`); ``analytes`` as for
    :func:`compare_metrics`."""
    names = {name: field for field, (_, name, _) in analytes.items()}
    rows = []
    pair_rows = recovered[recovered["analyte"].str.count(":") == 1]
    for (analyte, metric), sub in pair_rows.groupby(["analyte", "metric"], sort=True):
        a, b = analyte.split(":")
        if metric not in ("pearson", "spearman") or a not in names or b not in names:
            continue
        t = pairs.get((names[a], names[b]), {}).get(metric)
        if t is None or not np.isfinite(t):
            continue
        r = float(sub["value"].iloc[0])
        rows.append({"sample": sample, "modality": str(sub["modality"].iloc[0]), "analyte": analyte,
                     "region": "tissue", "metric": metric, "recovered": r, "truth": t, "abs_error": abs(r - t),
                     "rel_error": abs(r - t) / abs(t) if t else np.nan})
    return rows


def compare_cells(sample: str, true_cells: pd.DataFrame, cell_metrics: pd.DataFrame, analytes: dict,
                  thresholds: dict) -> list[dict]:
    """The fraction of cells reached (value at or above the analyte's coverage threshold) among the true cells
    (:func:`nanohet.demo.truth.truth_cell_values`) against the analysis' ``cell_metrics``, per analyte
    (``analytes``: ``{true field: (modality, analyte name, calibrated)}``; ``thresholds``: by analyte name).
    Only analytes measured on the truth's scale: the calibrated ones and the nanoparticle (in rendered counts);
    an uncalibrated analyte's threshold is in another unit than its true field."""
    rows = []
    for field, (_, name, calibrated) in sorted(analytes.items(), key=lambda kv: kv[1][1]):
        threshold = thresholds.get(name)
        if not calibrated and field != "nanoparticle":
            continue
        sel = cell_metrics[(cell_metrics.analyte == name) & (cell_metrics.metric == "fraction_of_cells_reached")]
        if threshold is None or sel.empty or field not in true_cells:
            continue
        t = float((true_cells[field] >= threshold).mean())
        r = float(sel["value"].iloc[0])
        rows.append({"sample": sample, "modality": "cells", "analyte": name, "region": "cells",
                     "metric": "fraction_of_cells_reached", "recovered": r, "truth": t, "abs_error": abs(r - t),
                     "rel_error": abs(r - t) / t if t else np.nan})
    return rows


def compare_volume(sample: str, truth: dict, volume_metrics: pd.DataFrame) -> dict:
    """Recovered against true mean uptake of the in vivo volume."""
    tumour = volume_metrics.region == "tumour" if "region" in volume_metrics else True
    r = float(volume_metrics.loc[tumour & (volume_metrics.metric == "mean"), "value"].iloc[0])
    t = float(truth["volume_true_mean_uptake_pct_id_per_g"])
    return {"sample": sample, "modality": "volume", "analyte": "uptake", "region": "tumour", "metric": "mean",
            "recovered": r,
            "truth": t, "abs_error": abs(r - t), "rel_error": abs(r - t) / abs(t)}


def compare_masks(sample: str, masks: SectionImage, truth_masks: SectionImage) -> list[dict]:
    """The fluorescence masks against the truth: Dice of tissue, necrosis and vessels (truth 1), and the section
    statistics of :func:`nanohet.microscopy.masks.section_stats` (necrotic fraction, vessel area fraction and
    density) computed on the recovered masks and on the true ones. Both images are on the section grid.

    Raises
    ------
    ValueError
        When the two mask images are not on the same grid.
    """
    from ..microscopy.masks import MASK_CHANNELS, section_stats
    from ..registration import dice

    if masks.data.shape[1:] != truth_masks.data.shape[1:] or tuple(masks.spacing) != tuple(truth_masks.spacing):
        raise ValueError(f"sample {sample}: masks {masks.data.shape[1:]} at {masks.spacing} µm are not on the truth "
                         f"grid {truth_masks.data.shape[1:]} at {truth_masks.spacing} µm")
    got = {name: masks.channel(name) > 0 for name in MASK_CHANNELS}
    true = {name: truth_masks.channel(name) > 0 for name in ("tissue", "necrosis", "vessels")}
    true["viable"] = true["tissue"] & ~true["necrosis"]

    def row(analyte, metric, r, t):
        return {"sample": sample, "modality": "microscopy", "analyte": analyte, "region": "section", "metric": metric,
                "recovered": r,
                "truth": t, "abs_error": abs(r - t), "rel_error": abs(r - t) / abs(t) if t else np.nan}

    rows = [row(name, "dice", float(dice(got[name], true[name])), 1.0) for name in ("tissue", "necrosis", "vessels")]
    spacing = float(masks.spacing[0])
    stats_got = section_stats(np.stack([got[n] for n in MASK_CHANNELS]), spacing)
    stats_true = section_stats(np.stack([true[n] for n in MASK_CHANNELS]), spacing)
    for analyte, metric in (("necrosis", "necrotic_fraction"), ("vessels", "vessel_area_fraction"),
                            ("vessels", "vessel_density_per_mm2")):
        rows.append(row(analyte, metric, float(stats_got[metric]), float(stats_true[metric])))
    return rows


def demo_analytes(msi) -> dict:
    """Where the analysis reports each true field: ``{field: (modality, analyte name, calibrated)}``.

    The analytes stand for the fields by role (drug, metabolite, carrier; the drug is the calibrated one);
    the nanoparticle field is the fluorescence nanoparticle channel. Roles without an analyte are left out.
    """
    out = {"nanoparticle": ("fluorescence", "nanoparticle", False)}
    for field in ("drug", "metabolite", "carrier"):
        analyte = msi.analyte(field)
        if analyte is not None:
            out[field] = ("msi", analyte.name, field == "drug")
    return out


def true_section_summaries(sample: str, true: dict, analytes: dict, record: dict) -> list[dict]:
    """Each true field's pixel mean, CV and count in the tissue and in viable tissue (as the analysis reports the
    field: modality and analyte of ``analytes``), with the sample's place in the hierarchy and its uptake factor
    (``truth.json``): the inputs of :func:`nanohet.demo.hierarchy.variance_truth`."""
    where = record.get("hierarchy") or {}
    rows = []
    for field, (modality, analyte, _) in sorted(analytes.items()):
        for region in ("tissue", "viable"):
            rows.append({"sample": sample, "group": where.get("group"), "subject": where.get("subject"),
                         "tumour": where.get("tumour"), "modality": modality, "analyte": analyte, "region": region,
                         "mean": true[field].get((region, "mean")), "cv": true[field].get((region, "cv")),
                         "n_pixels": true[field].get((region, "n_pixels")),
                         "uptake_factor": float(record["params"].get("uptake_factor", 1.0))})
    return rows
