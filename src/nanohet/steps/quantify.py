"""Steps of ``workflow/rules/quantify.smk``: the analysis grid, masks on native MSI pixels, each section's
metrics, in vivo volume metrics and the cohort tables."""

from __future__ import annotations

import logging

import pandas as pd
import SimpleITK as sitk

from ..atomic import write_table
from ..errors import InputError
from ..flags import sample_flags
from ..io.ometiff import read_ome_tiff, write_ome_tiff
from ..io.volumes import read_volume
from ..quantify.cohort import cohort_metrics, group_summary
from ..quantify.grid import AnalysisGrid, masks_on_msi_grid
from ..msi.calibration import read_calibrations
from ..quantify.section import (SectionTables, check_thresholds_against_limits, grid_pair_rows, msi_metrics,
                                nanoparticle_metrics, native_msi_metrics, region_maps)
from ..io.geojson import read_regions
from ..io.pet import is_pet_series, read_pet_suv
from ..io.rtstruct import read_mask
from ..quantify.volume import volume_rows
from ..settings import MicroscopySettings, MSISettings, QuantifySettings
from . import one_input, read_section, where

log = logging.getLogger("nanohet")


def analysis_grid(reference: str, spacing_um: float, out_grid: str, pixel_size: float | None = None,
                  channels: str | None = None) -> None:
    """The analysis grid over the reference section (``quantify.analysis_spacing_um``), as JSON."""
    grid = AnalysisGrid.over(read_section(reference, pixel_size, channels), float(spacing_um))
    grid.write(out_grid)
    log.info("analysis grid over %s: %s pixels of %s µm (%d x %d reference pixels)", reference, grid.shape,
             grid.spacing, grid.factor, grid.factor)


def masks_on_msi(masks: str, ions: str, transform: str, out_masks_on_msi: str) -> None:
    """Microscopy masks and vessel distance per native MSI pixel (see :func:`~nanohet.quantify.grid.masks_on_msi_grid`)."""
    write_ome_tiff(out_masks_on_msi, masks_on_msi_grid(read_ome_tiff(masks), read_ome_tiff(ions),
                                                       sitk.ReadTransform(transform)))


def section(fluorescence: str, masks: str, registered: str, grid: str, msi: dict | MSISettings,
            microscopy: dict | MicroscopySettings, quantify: dict | QuantifySettings, out_metrics: str,
            out_profiles: str, out_maps: str | None = None, sample: str = "", pixel_size: float | None = None,
            channels: str | None = None,
            ions: str | None = None, masks_on_msi: str | None = None, calibrated: list[str] = (),
            calibration: list[str] | str | None = None, regions: list[str] | str | None = None,
            out_scales: str | None = None) -> None:
    """Heterogeneity metrics of the nanoparticle (microscopy) and every MSI analyte of one section
    (:mod:`nanohet.quantify.section`), their vessel-distance profiles and, with ``out_maps``, the region maps
    (tissue, viable, under-dosed, hot and cold spots) on the analysis grid. ``calibrated`` names the analytes
    calibrated from standards; their ``calibration`` table gives the limits of detection and quantification
    (reported, and no coverage threshold may lie below the LOQ). ``regions``: a GeoJSON of regions drawn on the
    fluorescence section (QuPath, napari), each measured as a region (:mod:`nanohet.io.geojson`)."""
    msi, microscopy = MSISettings.coerce(msi), MicroscopySettings.coerce(microscopy)
    quantify = QuantifySettings.coerce(quantify)
    calibration = one_input(calibration)
    limits = {}
    if calibration:
        limits = {c.analyte: (c.lod, c.loq) for c in read_calibrations(pd.read_csv(calibration, sep="\t")).values()}
        check_thresholds_against_limits(quantify, limits, f"{calibration}, sample {sample}")
    tables = SectionTables(sample, quantify)
    m = read_ome_tiff(masks)
    fluo = read_section(fluorescence, pixel_size, channels)
    regions = one_input(regions)
    drawn = (read_regions(regions, fluo.data.shape[1:], fluo.spacing, fluo.origin, fluo.spacing, fluo.origin)
             if regions else None)
    dist, np_img = nanoparticle_metrics(tables, fluo, m, microscopy, where(fluorescence, sample),
                                        where(masks, sample), drawn)
    stack, analysis_grid = read_ome_tiff(registered), AnalysisGrid.read(grid)
    frac = msi_metrics(tables, stack, m, analysis_grid, dist, msi, registered, set(calibrated), limits)
    if frac < 0.9:
        log.warning("%s: MSI acquisition covers only %.0f %% of the tissue", sample, 100 * frac)
    if ions and masks_on_msi:
        native_msi_metrics(tables, read_ome_tiff(ions), read_ome_tiff(masks_on_msi), msi, set(calibrated))
    pairs = grid_pair_rows(sample, stack, m, analysis_grid, np_img, msi, quantify, set(calibrated))
    acquisition = {"sample": sample, "modality": "msi", "analyte": "all", "region": "tissue",
                   "metric": "tissue_coverage_by_acquisition", "value": frac, "unit": "fraction", "ibsi": ""}
    df = pd.concat([tables.metrics(), pd.DataFrame(pairs), pd.DataFrame([acquisition])], ignore_index=True)
    write_table(df, out_metrics)
    write_table(tables.profile_table(), out_profiles)
    if out_scales:
        write_table(tables.scale_table(), out_scales)
    if out_maps:
        write_ome_tiff(out_maps, region_maps(stack, m, analysis_grid, msi, quantify, dist,
                                                 tables.marker_regions.get(analysis_grid.shape)))


VOLUME_ANALYTES = {"volume": "uptake", "ct": "attenuation", "mr": "signal"}


def volume(volume: str, mask: str, out_metrics: str, sample: str = "",
           quantify: dict | QuantifySettings | None = None, structure: str | None = None,
           modality: str = "volume", dicom_series: str | None = None) -> None:
    """Every measure of an in vivo volume inside its tumour mask (:func:`nanohet.quantify.volume.volume_rows`):
    the uptake volume (``modality`` volume: PET in SUV, SPECT), or a CT (Hounsfield units) or MR with a mask."""
    unit, conversion = {"ct": "HU"}.get(modality, "image units"), None
    if is_pet_series(volume, dicom_series):  # PET DICOM: to SUVbw from its header, the conversion recorded
        img, conversion = read_pet_suv(volume, dicom_series)
        unit = "SUVbw"
        log.info("%s: PET in %s (decay correction %s) converted to SUVbw: %s", volume, conversion.units,
                 conversion.decay_correction, conversion)
    else:
        img = read_volume(volume, dicom_series)
    msk = read_mask(mask, img, structure)
    try:
        rows = volume_rows(img, msk, QuantifySettings.coerce(quantify or {}), unit)
    except InputError as exc:
        raise InputError(f"{volume} with mask {mask} (sample {sample}): {exc}") from None
    if conversion is not None:
        rows += [{"region": "tumour", "ibsi": "", **r} for r in conversion.as_rows()]
    write_table(pd.DataFrame([{"sample": sample, "modality": modality, "analyte": VOLUME_ANALYTES[modality], **r}
                              for r in rows]), out_metrics)


def cohort(metrics: list[str], section: list[str], samples: list[dict], out_metrics: str, out_summary: str,
           volume: list[str] | None = None, qc_flags: str | None = None, cells: list[str] | None = None) -> None:
    """Every sample's metrics in one tidy table and a per-group summary (:mod:`nanohet.quantify.cohort`).

    ``samples`` holds one record per sample with its ``subject``, ``group`` and ``tumour``; ``qc_flags`` (the
    run's flag table) marks every row of a flagged sample (columns ``qc`` and ``qc_reason``).
    """
    tables = [pd.read_csv(f, sep="\t") for f in list(metrics) + list(volume or []) + list(cells or [])]
    flags = sample_flags(pd.read_csv(qc_flags, sep="\t", keep_default_na=False)) if qc_flags else None
    df = cohort_metrics(tables, [pd.read_csv(f, sep="\t") for f in section], pd.DataFrame(samples), flags)
    write_table(df, out_metrics)
    write_table(group_summary(df), out_summary)
