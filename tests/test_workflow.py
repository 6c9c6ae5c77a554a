"""End-to-end: snakemake runs the whole graph on a tiny demo cohort in a temporary directory."""
import filecmp

import numpy as np
import pandas as pd
import pytest

from conftest import SAMPLES, snakemake, write_cohort

pytestmark = pytest.mark.workflow


def test_dry_run_lists_every_stage(tmp_path):
    write_cohort(tmp_path)
    out = snakemake(tmp_path, "-n", "--quiet", "rules").stdout
    for rule in ("demo_sample", "msi_extract", "microscopy_preprocess", "register_msi", "register_he",
                 "quantify_section",
                 "quantify_volume", "cohort_table", "sample_figure", "cohort_figure", "validate_sample",
                 "validation_tables"):
        assert rule in out, rule


def test_outputs_exist_and_every_job_logged(finished_run):
    workdir, _ = finished_run
    r = workdir / "results"
    for rel in ("tables/cohort_metrics.tsv", "tables/cohort_summary.tsv", "tables/registration_error.tsv",
                "tables/metrics_vs_truth.tsv", "figures/cohort_summary.png", "figures/validation.png",
                "figures/samples/a01_T1.png", "figures/samples/b01_T1.png",
                "registration/a01_T1/msi_to_reference.tfm", "registration/a01_T1/msi_in_reference.ome.tif",
                "registration/a01_T1/msi_qc.png", "registration/b01_T1/he_qc.png",
                "registration/b01_T1/he_in_reference.ome.tif"):
        assert (r / rel).stat().st_size > 0, rel
    logs = list((r / "logs").rglob("*.log"))
    assert len(logs) >= 15 and all("finished in" in p.read_text() for p in logs)
    assert list((r / "benchmarks").rglob("*.tsv"))


def test_registration_error_within_bounds(finished_run):
    workdir, _ = finished_run
    tre = pd.read_csv(workdir / "results" / "tables" / "registration_error.tsv", sep="\t")
    dense = tre[(tre.points == "dense_tissue_grid") & (tre.edge == "msi->fluorescence")]
    assert len(dense) == 2 and (dense.n > 100).all()
    assert (dense.median_px < 0.5).all(), dense  # MSI pixels
    assert (dense.p95_px < 1.0).all(), dense
    he = tre[tre.edge == "he->fluorescence"]
    assert len(he) == 2 and (he.median_px < 2.0).all(), he  # microscopy pixels


def test_recovered_metrics_close_to_truth(finished_run):
    workdir, _ = finished_run
    comp = pd.read_csv(workdir / "results" / "tables" / "metrics_vs_truth.tsv", sep="\t")
    dox = comp[comp.analyte == "doxorubicin"].set_index(["sample", "metric"])
    for sample, _ in SAMPLES:
        s = f"{sample}_T1"
        assert dox.loc[(s, "mean"), "rel_error"] < 0.10
        assert dox.loc[(s, "cv"), "rel_error"] < 0.10
        assert dox.loc[(s, "coverage"), "abs_error"] < 0.05
        assert dox.loc[(s, "l50_um"), "rel_error"] < 0.25
    np_l50 = comp[(comp.analyte == "nanoparticle") & (comp.metric == "l50_um")]
    assert (np_l50.rel_error < 0.3).all()


def test_cohort_table_is_complete(finished_run):
    workdir, _ = finished_run
    df = pd.read_csv(workdir / "results" / "tables" / "cohort_metrics.tsv", sep="\t")
    assert set(df.group) == {"liposomal", "thermosensitive"}
    assert set(df.modality) == {"msi", "msi_native", "fluorescence", "volume"}
    cv = df[(df.analyte == "doxorubicin") & (df.metric == "cv")].pivot(index="sample", columns="modality", values="value")
    assert ((cv.msi_native - cv.msi).abs() / cv.msi < 0.2).all()  # native MSI pixels agree with the reference grid
    key = df[(df.modality == "msi") & (df.analyte == "doxorubicin") & (df.metric.isin(["mean", "cv", "coverage", "l50_um"]))]
    assert len(key) == 8 and np.isfinite(key.value).all()
    assert (df[(df.metric == "mean") & (df.analyte == "doxorubicin")].unit == "ug/g-equivalent").all()


def test_rerun_is_a_no_op_and_report_builds(finished_run):
    workdir, _ = finished_run
    res = snakemake(workdir, "--cores", "1", "-n")
    assert "Nothing to be done" in res.stdout + res.stderr
    snakemake(workdir, "--report", "results/report.html")
    html = (workdir / "results" / "report.html").read_text(errors="ignore")
    assert "cohort_metrics.tsv" in html


def test_bad_sample_sheet_stops_before_any_job(tmp_path):
    write_cohort(tmp_path)
    sheet = tmp_path / "config" / "samples.tsv"
    sheet.write_text(sheet.read_text().replace("\tmsi\t", "\tmaldi\t", 1))
    res = snakemake(tmp_path, "-n", check=False)
    assert res.returncode != 0
    text = res.stdout + res.stderr
    assert "samples.tsv" in text and "row 4" in text and "maldi" in text, text
    assert not (tmp_path / "results").exists()


def test_one_core_and_two_core_runs_are_identical(finished_run, tmp_path):
    workdir, _ = finished_run
    write_cohort(tmp_path)
    snakemake(tmp_path, "--cores", "1")
    files = sorted(p.relative_to(workdir) for pattern in ("tables/*.tsv", "quantify/*/*.tsv", "figures/**/*.png",
                                                          "registration/*/*.tfm", "registration/*/*.tsv")
                   for p in (workdir / "results").glob(pattern))
    assert len(files) >= 12
    for rel in files:
        assert filecmp.cmp(workdir / rel, tmp_path / rel, shallow=False), f"{rel} differs between 1 and 2 cores"
