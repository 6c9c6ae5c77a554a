"""Steps of ``workflow/rules/demo.smk``: simulate each demo sample, validate the analysis against its truth."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import SimpleITK as sitk

from ..atomic import write_table
from ..demo.cohort import (generate_control, generate_sample, generate_standard, level_effects, params_from_config,
                           standard_spikes)
from ..demo.phantom import NUCLEUS_RADIUS_UM
from ..msi.calibration import read_calibrations
from ..io.ometiff import read_ome_tiff
from ..settings import DemoSettings, MicroscopySettings, MSISettings, QuantifySettings
from . import one_input

log = logging.getLogger("nanohet")


def demo_sample(sample: str, group: str, demo: dict | DemoSettings, out_fluorescence: str, out_he: str, out_msi: str,
                out_volume: str, out_volume_mask: str, truth_dir: str, subject: str | None = None,
                tumour: str | None = None) -> None:
    """Simulate one demo sample (all modalities) and its ground truth (see :mod:`nanohet.demo.cohort`); its
    ``subject`` and ``tumour`` give it its animal's and tumour's effect on the uptake (``demo.level_sd``)."""
    params = params_from_config(demo, group, sample, subject, tumour)
    effects = level_effects(demo, subject, tumour, sample) if subject is not None else {}
    log.info("simulating %s (group %s, seed %d, uptake factor %.3f: %s)", sample, group, params.seed,
             params.uptake_factor, ", ".join(f"{k} {v:+.3f}" for k, v in effects.items()) or "no level effects")
    outputs = {"fluorescence": out_fluorescence, "he": out_he, "msi": out_msi, "volume": out_volume,
               "volume_mask": out_volume_mask}
    hierarchy = {"group": group, "subject": subject, "tumour": tumour, "effects": effects,
                 "level_sd": dict(DemoSettings.coerce(demo).level_sd)}
    record = generate_sample(sample, outputs, truth_dir, params, hierarchy)
    log.info("%s: %d vessels, NP half-distance %.1f µm, dose factor %.2f, %d MSI spectra",
             sample, record["section"]["n_vessels"], record["section"]["np_half_distance_um"],
             record["section"]["dose_factor"], record["msi_acquired_pixels"])


def demo_cohort(samples: list[dict], demo: dict | DemoSettings, controls: list[dict] = (),
                standards: list[dict] = (), roles: dict | None = None, threads: int = 1) -> None:
    """Simulate the whole demo cohort, ``threads`` at a time: every sample (:func:`demo_sample`; ``samples``: each
    one's keyword arguments but ``demo``), unlabelled control (:func:`demo_control`: ``control``,
    ``out_fluorescence``) and calibration standard (:func:`demo_standard`: ``standard``, ``rows``, ``out_imzml``;
    ``roles`` maps the analytes to their roles). Each draws from its own seed, so the data do not depend on
    ``threads`` or on the order."""
    from ..parallel import run_parallel

    tasks = ([(demo_sample, {**rec, "demo": demo}) for rec in samples]
             + [(demo_control, {**rec, "demo": demo}) for rec in controls]
             + [(demo_standard, {**rec, "roles": roles or {}, "demo": demo}) for rec in standards])
    log.info("simulating %d samples, %d controls and %d standards, %d at a time", len(samples), len(controls),
             len(standards), max(1, min(threads, len(tasks))))
    run_parallel(tasks, threads)


def demo_control(control: str, demo: dict | DemoSettings, out_fluorescence: str) -> None:
    """Simulate one unlabelled control section of the sample sheet (:func:`nanohet.demo.cohort.generate_control`)."""
    params = params_from_config(demo, None, f"control {control}")
    log.info("simulating control section %s (no nanoparticle, seed %d)", control, params.seed)
    generate_control(out_fluorescence, params)


def demo_standard(standard: str, rows: list[dict], roles: dict, demo: dict | DemoSettings, out_imzml: str) -> None:
    """Simulate one calibration standard of the sample sheet at its listed concentrations
    (:func:`nanohet.demo.cohort.generate_standard`); ``roles`` maps the analytes to their roles."""
    params = params_from_config(demo, None, f"standard {standard}")
    spikes = standard_spikes(rows, roles)
    log.info("simulating standard %s: %s (response %s relative to the internal standard)", standard,
             ", ".join(f"{k} {v:g} µg/g" for k, v in spikes.items()), params.msi_response)
    generate_standard(out_imzml, spikes, params)


def sample_validation(sample: str, truth: str, landmarks: str, truth_masks: str, truth_fields: str, transform: str,
                      metrics: str, msi: dict | MSISettings, quantify: dict | QuantifySettings,
                      volume_metrics: str | None = None, he_transform: str | None = None,
                      fluorescence_masks: str | None = None, calibration: str | None = None,
                      truth_cells: str | None = None, cell_metrics: str | None = None,
                      microscopy: dict | None = None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Registration error and recovered-versus-true metrics of one demo sample (:mod:`nanohet.demo.validation`),
    with the ``fluorescence_masks`` against the true ones and, for the analytes the ``calibration`` table
    calibrates, the mean the equal-response assumption would have given. Returns the registration errors, the
    comparisons and the true fields' section summaries (:func:`nanohet.demo.validation.true_section_summaries`,
    what the cohort's variance decomposition is checked against)."""
    # the validation imports the quantification (SciPy's statistics and optimisers): not in the simulation's job
    from ..demo.truth import truth_cell_values, truth_metrics
    from ..demo.validation import (compare_cells, compare_colocalisation, compare_masks, compare_metrics,
                                   compare_volume, demo_analytes, equal_response_rows, registration_errors,
                                   true_section_summaries)

    msi, quantify = MSISettings.coerce(msi), QuantifySettings.coerce(quantify)
    record = json.loads(Path(truth).read_text())
    masks = read_ome_tiff(truth_masks)
    tre = registration_errors(sample, record, pd.read_csv(landmarks, sep="\t"), masks, sitk.ReadTransform(transform),
                              sitk.ReadTransform(he_transform) if he_transform else None)
    analytes = demo_analytes(msi)
    thresholds = {field: quantify.coverage_thresholds.get(name) for field, (_, name, _) in analytes.items()}
    true = truth_metrics(read_ome_tiff(truth_fields), masks, float(record["params"]["msi_pixel_um"]), quantify,
                         thresholds)
    summaries = pd.DataFrame(true_section_summaries(sample, true, analytes, record))
    recovered = pd.read_csv(metrics, sep="\t")
    rows = compare_metrics(sample, true, recovered, analytes)
    rows += compare_colocalisation(sample, true["pairs"], recovered, analytes)
    if calibration:
        rows += equal_response_rows(rows, read_calibrations(pd.read_csv(calibration, sep="\t")), msi)
    if fluorescence_masks:
        rows += compare_masks(sample, read_ome_tiff(fluorescence_masks), masks)
    if volume_metrics:
        rows.append(compare_volume(sample, record, pd.read_csv(volume_metrics, sep="\t")))
    if truth_cells and cell_metrics:  # the fraction of cells reached: true cells against the cells rule's
        expand = float(MicroscopySettings.coerce(microscopy or {}).cell_expand_um)
        cells = truth_cell_values(pd.read_csv(truth_cells, sep="\t"), read_ome_tiff(truth_fields),
                                  float(record["params"]["msi_pixel_um"]), NUCLEUS_RADIUS_UM + expand)
        names = {name: name for _, name, _ in analytes.values()}
        rows += compare_cells(sample, cells, pd.read_csv(cell_metrics, sep="\t"), analytes,
                              {n: quantify.coverage_thresholds.get(n) for n in names})
    return tre, pd.DataFrame(rows), summaries


def validate_cohort(samples: list[dict], msi: dict | MSISettings, quantify: dict | QuantifySettings,
                    out_tre: str, out_compare: str, out_summaries: str, out_figure: str,
                    calibration: list[str] | str | None = None, microscopy: dict | None = None,
                    threads: int = 1) -> None:
    """Every demo sample's validation (:func:`sample_validation`; ``samples``: each one's input paths, as its
    keyword arguments), ``threads`` samples at a time, into the cohort's registration-error and metrics-vs-truth
    tables, their figure, and the true section summaries."""
    from ..figures.validation import validation_figure
    from ..parallel import run_parallel

    calibration = one_input(calibration)
    tasks = [(sample_validation, {**rec, "msi": msi, "quantify": quantify, "calibration": calibration,
                                  "microscopy": microscopy}) for rec in samples]
    results = run_parallel(tasks, threads)
    tre_df, comp, summaries = (pd.concat([r[i] for r in results], ignore_index=True) for i in range(3))
    write_table(tre_df, out_tre)
    write_table(comp, out_compare)
    write_table(summaries, out_summaries)
    # the figure from the tables as written (the values a reader of the tables sees)
    validation_figure(out_figure, pd.read_csv(out_tre, sep="\t"), pd.read_csv(out_compare, sep="\t"))
    log.info("validated %d samples (%d at a time)", len(samples), max(1, min(threads, len(samples))))
    for edge, sub in tre_df[tre_df.points == "dense_tissue_grid"].groupby("edge"):
        log.info("%s registration error (dense grid): median %.2f px (worst sample), p95 %.2f px of the moving image",
                 edge, sub["median_px"].max(), sub["p95_px"].max())


def validate_variance(summaries: str, variance: str, level_sd: dict, out_table: str) -> None:
    """The cohort's variance shares against the demo's configured and realised truth
    (:func:`nanohet.demo.hierarchy.variance_truth`); ``summaries``: the true section summaries
    (:func:`validate_cohort`)."""
    from ..demo.hierarchy import variance_truth

    true = pd.read_csv(summaries, sep="\t")
    table = variance_truth(true, pd.read_csv(variance, sep="\t"), dict(level_sd))
    write_table(table, out_table)
    for rec in table[table["level"].astype(str) != ""].to_dict("records"):
        log.info("%s %s %s %s: estimated share %.3f [%.3f, %.3f], configured %.3f, realised %.3f", rec["modality"],
                 rec["analyte"], rec["region"], rec["level"], rec["estimated_share"], rec["share_ci_low"],
                 rec["share_ci_high"], rec["configured_share"], rec["realised_share"])
