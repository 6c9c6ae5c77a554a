"""Steps of ``workflow/rules/quantify.smk``: the analysis grid, masks on native MSI pixels, each section's
metrics, in vivo volume metrics and the cohort tables."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ..atomic import write_table
from ..errors import InputError
from ..flags import sample_flags
from ..io.ometiff import read_ome_tiff, write_ome_tiff
from ..quantify.availability import measure_availability
from ..quantify.cohort import cohort_metrics, group_summary, pooled_scale_curves
from ..quantify.comparisons import compare_groups
from ..quantify.variance import cohort_variance
from ..quantify.invivo import invivo_exvivo_correlations, join_invivo_exvivo
from ..quantify.grid import AnalysisGrid
from ..msi.calibration import read_calibrations
from ..quantify.section import (SectionTables, check_thresholds_against_limits, grid_pair_rows, msi_metrics,
                                nanoparticle_metrics, native_msi_metrics, pair_rows, region_map_image, region_maps)
from ..msi.tissue import MIN_SEPARABILITY, msi_tissue_mask
from ..io.geojson import read_regions
from ..settings import MicroscopySettings, MSISettings, QuantifySettings, StatisticsSettings
from . import one_input, read_section, section_geometry, where
from .microscopy import control_levels

log = logging.getLogger("nanohet")


def analysis_grid(reference: str, spacing_um: float, out_grid: str, pixel_size: float | None = None,
                  channels: str | None = None, working_um: float | None = None) -> None:
    """The analysis grid over the reference section (``quantify.analysis_spacing_um``) at the working resolution
    the masks are made at (``microscopy.working_pixel_um``), from the file's header; as JSON."""
    g = section_geometry(reference, pixel_size, channels, working_um)
    grid = AnalysisGrid.over_extent(g["shape"], g["spacing"], g["origin"], float(spacing_um))
    grid.write(out_grid)
    log.info("analysis grid over %s: %s pixels of %s µm (%d x %d reference pixels)", reference, grid.shape,
             grid.spacing, grid.factor, grid.factor)


def section(fluorescence: str, masks: str, grid: str, msi: dict | MSISettings,
            microscopy: dict | MicroscopySettings, quantify: dict | QuantifySettings, out_metrics: str,
            out_profiles: str, out_maps: str | None = None, sample: str = "", pixel_size: float | None = None,
            channels: str | None = None, registered: list[str] | str | None = None,
            ions: list[str] | str | None = None, masks_on_msi: list[str] | str | None = None, calibrated: list[str] = (),
            calibration: list[str] | str | None = None, regions: list[str] | str | None = None,
            out_scales: str | None = None, autofluorescence: list[str] | str | None = None) -> None:
    """Heterogeneity metrics of the nanoparticle (microscopy) and every MSI analyte of one section
    (:mod:`nanohet.quantify.section`), their vessel-distance profiles and, with ``out_maps``, the region maps
    (tissue, viable, under-dosed, hot and cold spots) on the analysis grid. ``calibrated`` names the analytes
    calibrated from standards; their ``calibration`` table gives the limits of detection and quantification
    (reported, and no coverage threshold may lie below the LOQ). ``regions``: a GeoJSON of regions drawn on the
    fluorescence section (QuPath, napari), each measured as a region (:mod:`nanohet.io.geojson`). A sample without
    MSI (no ``registered`` stack) gets the microscopy measures only. ``autofluorescence``: the table of the
    unlabelled controls (:func:`nanohet.steps.microscopy.autofluorescence`), subtracted from the nanoparticle."""
    msi, microscopy = MSISettings.coerce(msi), MicroscopySettings.coerce(microscopy)
    quantify = QuantifySettings.coerce(quantify)
    registered, ions, masks_on_msi = one_input(registered), one_input(ions), one_input(masks_on_msi)
    limits = _limits(one_input(calibration), quantify, sample)
    tables = SectionTables(sample, quantify)
    m = read_ome_tiff(masks)
    fluo = read_section(fluorescence, pixel_size, channels, microscopy.working_pixel_um)
    regions = one_input(regions)
    drawn = None
    if regions:  # drawn in the pixels of the file's full resolution
        base = section_geometry(fluorescence, pixel_size, channels)
        drawn = read_regions(regions, fluo.data.shape[1:], fluo.spacing, fluo.origin, base["spacing"], base["origin"])
    dist, np_img = nanoparticle_metrics(tables, fluo, m, microscopy, where(fluorescence, sample),
                                        where(masks, sample), drawn, control_levels(autofluorescence, sample))
    analysis_grid = AnalysisGrid.read(grid)
    stack, extra = None, []
    if registered:
        stack = read_ome_tiff(registered)
        frac = msi_metrics(tables, stack, m, analysis_grid, dist, msi, registered, set(calibrated), limits)
        if frac < 0.9:
            log.warning("%s: MSI acquisition covers only %.0f %% of the tissue", sample, 100 * frac)
        if ions and masks_on_msi:
            native_msi_metrics(tables, read_ome_tiff(ions), read_ome_tiff(masks_on_msi), msi, set(calibrated))
        extra = grid_pair_rows(sample, stack, m, analysis_grid, np_img, msi, quantify, set(calibrated))
        extra.append({"sample": sample, "modality": "msi", "analyte": "all", "region": "tissue",
                      "metric": "tissue_coverage_by_acquisition", "value": frac, "unit": "fraction", "ibsi": ""})
    else:
        log.info("%s: no MSI row in the sample sheet: the microscopy measures only", sample)
    write_table(pd.concat([tables.metrics(), pd.DataFrame(extra)], ignore_index=True), out_metrics)
    write_table(tables.profile_table(), out_profiles)
    if out_scales:
        write_table(tables.scale_table(), out_scales)
    if out_maps:
        write_ome_tiff(out_maps, region_maps(stack, m, analysis_grid, msi, quantify, dist,
                                             tables.marker_regions.get(analysis_grid.shape)))


def _limits(calibration: str | None, quantify: QuantifySettings, sample: str) -> dict:
    """``{analyte: (lod, loq)}`` of the calibrated analytes; a coverage threshold below its LOQ is refused."""
    if not calibration:
        return {}
    limits = {c.analyte: (c.lod, c.loq) for c in read_calibrations(pd.read_csv(calibration, sep="\t")).values()}
    check_thresholds_against_limits(quantify, limits, f"{calibration}, sample {sample}")
    return limits


def msi_section(ions: str, msi: dict | MSISettings, quantify: dict | QuantifySettings, out_metrics: str,
                out_maps: str, out_scales: str, sample: str = "", calibrated: list[str] = (),
                calibration: list[str] | str | None = None) -> None:
    """Every analyte of an MSI-only sample (no fluorescence section) on its native MSI pixels (modality
    ``msi_native``): the tissue from the spectra (:func:`nanohet.msi.tissue.msi_tissue_mask`, setting
    ``quantify.msi_tissue_mask``), its distribution, spatial and texture measures and shells, the colocalisation
    of every analyte pair and the release index, and the region maps. Without a fluorescence section there is
    no viable tissue, vessel, marker region or cell: those measures are not available (see the cohort's
    availability table)."""
    msi, quantify = MSISettings.coerce(msi), QuantifySettings.coerce(quantify)
    limits = _limits(one_input(calibration), quantify, sample)
    stack = read_ome_tiff(ions)
    tissue, info = msi_tissue_mask(stack.channel("TIC"), stack.channel("acquired") > 0.5,
                                   quantify.msi_tissue_mask, where(ions, sample))
    log.info("%s: tissue from the MSI (%s): %.0f %% of the acquired pixels (TIC threshold %.4g, Otsu "
             "separability %.2f)", sample, info["method"], 100 * info["fraction_of_acquired"], info["threshold_tic"],
             info["separability"])
    if info["separability"] < MIN_SEPARABILITY:
        log.warning("%s: the TIC of %s has no clear tissue/background split (Otsu separability %.2f < %.2f): if "
                    "the acquisition lies inside the tissue, set quantify.msi_tissue_mask: acquired", sample, ions,
                    info["separability"], MIN_SEPARABILITY)
    tables = SectionTables(sample, quantify)
    spacing = float(stack.spacing[0])
    maps = {}
    for a in msi.analytes:
        values = stack.channel(a.name).astype(np.float64)
        maps[a.name] = values
        unit = msi.unit(a, a.name in calibrated)
        tables.add("msi_native", a.name, unit, values, tissue, None, None, spacing)
        if a.name in limits:
            tables.add_limits("msi_native", a.name, unit, values, tissue, None, *limits[a.name])
    rows = pair_rows(sample, maps, tissue, None, spacing, msi, quantify, set(calibrated), "msi_native")
    rows.append({"sample": sample, "modality": "msi_native", "analyte": "all", "region": "tissue",
                 "metric": "tissue_fraction_of_acquisition", "value": info["fraction_of_acquired"],
                 "unit": "fraction", "ibsi": ""})
    write_table(pd.concat([tables.metrics(), pd.DataFrame(rows)], ignore_index=True), out_metrics)
    write_table(tables.scale_table(), out_scales)
    write_ome_tiff(out_maps, region_map_image(stack, tissue, None, stack.spacing, stack.origin, msi, quantify))


def cohort(metrics: list[str], section: list[str], samples: list[dict], out_metrics: str, out_summary: str,
           volume: list[str] | None = None, qc_flags: str | None = None, cells: list[str] | None = None,
           modalities: dict | None = None, out_availability: str | None = None,
           statistics: dict | StatisticsSettings | None = None, out_comparisons: str | None = None,
           out_variance: str | None = None, out_invivo: str | None = None,
           out_invivo_correlations: str | None = None, scales: list[str] | None = None,
           out_scales: str | None = None, homogenisation_cv: float | None = None) -> None:
    """Every sample's metrics in one tidy table and a per-group summary (:mod:`nanohet.quantify.cohort`).

    ``samples`` holds one record per sample with its ``subject``, ``group`` and ``tumour``; ``qc_flags`` (the
    run's flag table) marks every row of a flagged sample (columns ``qc`` and ``qc_reason``). ``modalities``
    (``{sample: [modality, ...]}``, the measured ones) gives ``out_availability``: which measures each sample
    has, and why not (:func:`nanohet.quantify.availability.measure_availability`). ``out_comparisons``: the
    group comparisons of the ``statistics`` section (:func:`nanohet.quantify.comparisons.compare_groups`);
    ``out_variance``: each analyte's variance shared out over animals, tumours, sections and pixels
    (:func:`nanohet.quantify.variance.cohort_variance`); ``out_invivo`` and ``out_invivo_correlations``: each
    tumour's in vivo uptake beside its sections' measures, and their correlation across tumours
    (:mod:`nanohet.quantify.invivo`); ``out_scales``: the sections' CV-versus-block-size curves (``scales``)
    pooled per group (:func:`nanohet.quantify.cohort.pooled_scale_curves`).
    """
    if out_availability:
        table = measure_availability({s: set(m) for s, m in (modalities or {}).items()})
        write_table(table, out_availability)
        for rec in table[~table.available].drop_duplicates(["sample", "reason"]).to_dict("records"):
            log.info("%s: %s not available (%s)", rec["sample"], rec["measure"], rec["reason"])
    tables = [pd.read_csv(f, sep="\t") for f in list(metrics) + list(volume or []) + list(cells or [])]
    flags = sample_flags(pd.read_csv(qc_flags, sep="\t", keep_default_na=False)) if qc_flags else None
    df = cohort_metrics(tables, [pd.read_csv(f, sep="\t") for f in section], pd.DataFrame(samples), flags)
    write_table(df, out_metrics)
    write_table(group_summary(df), out_summary)
    if out_comparisons:
        stats = StatisticsSettings.coerce(statistics or {})
        table = compare_groups(df, stats.primary_measures, stats.exploratory_metrics)
        write_table(table, out_comparisons)
        for rec in table[table.family == "primary"].to_dict("records"):
            log.info("%s:%s:%s:%s %s vs %s: difference %.4g (%s), p %.3g, FDR %.3g", rec["modality"], rec["analyte"],
                     rec["region"], rec["metric"], rec["group_a"], rec["group_b"], rec["difference"], rec["test"],
                     rec["p_value"], rec["p_fdr"])
    if out_variance:
        write_table(cohort_variance(df), out_variance)
    if out_scales:
        curves = [pd.read_csv(f, sep="\t") for f in scales or []]
        curves = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(
            columns=["sample", "modality", "analyte", "region", "block_um", "cv", "n_blocks", "block_mean"])
        target = homogenisation_cv if homogenisation_cv is not None else QuantifySettings().homogenisation_cv
        write_table(pooled_scale_curves(curves, pd.DataFrame(samples), float(target)), out_scales)
    if out_invivo:
        joined = join_invivo_exvivo(df)
        write_table(joined, out_invivo)
        if out_invivo_correlations:
            write_table(invivo_exvivo_correlations(joined), out_invivo_correlations)
