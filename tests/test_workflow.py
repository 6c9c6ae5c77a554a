"""End-to-end: snakemake runs the whole graph on a tiny demo cohort in a temporary directory."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from nanohet.repro.verify import same_result

from conftest import PARTIAL, REPO, SAMPLES, snakemake, write_cohort

pytestmark = pytest.mark.workflow


def test_dry_run_lists_every_stage(tmp_path):
    write_cohort(tmp_path)
    out = snakemake(tmp_path, "-n", "--quiet", "rules").stdout
    for rule in ("demo_cohort", "msi_extract", "microscopy_preprocess", "register_edge", "msi_to_reference",
                 "he_to_reference", "quantify_section", "quantify_volume",
                 "cohort_table", "sample_figure", "cohort_figure", "validate_cohort", "validate_variance"):
        assert rule in out, rule


def test_the_default_and_the_larger_demo_plan_their_hierarchies(tmp_path):
    """The shipped demo configs as a user runs them (the repository's config folder): the default demo plans its
    24 sections, the larger one (config/demo_full.yaml) its 48, each with the variance validation."""
    import re
    import shutil

    shutil.copytree(REPO / "config", tmp_path / "config")
    for extra, sections, volumes in (((), 24, 12), (("config/demo_full.yaml",), 48, 16)):
        cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory",
               str(tmp_path), "-n", "--configfile", "config/config.yaml", *extra]
        res = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
        assert res.returncode == 0, res.stderr[-3000:]
        counts = dict(re.findall(r"^(\w+)\s+(\d+)$", res.stdout, re.M))
        assert int(counts["microscopy_preprocess"]) == sections and int(counts["msi_to_reference"]) == sections
        assert int(counts["demo_cohort"]) == 1 and int(counts["validate_cohort"]) == 1
        assert int(counts["quantify_volume"]) == volumes and int(counts["validate_variance"]) == 1


def test_registration_graph_from_the_config(tmp_path):
    """A chain msi -> he -> fluorescence plans the msi_to_he edge; a loop fails before anything runs."""
    import yaml

    config = write_cohort(tmp_path)
    he_edge = next(e for e in config["registration"]["edges"] if e["moving"] == "he")
    config["registration"]["edges"] = [{"moving": "msi", "fixed": "he"}, he_edge]
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    plan = snakemake(tmp_path, "-n", "-p").stdout
    assert "registration/a01_T1/msi_to_he.tfm" in plan and "registration/a01_T1/he_to_fluorescence.tfm" in plan
    assert "msi_to_fluorescence" not in plan
    config["registration"]["edges"] = [{"moving": "msi", "fixed": "he"}, {"moving": "he", "fixed": "msi"}]
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    res = snakemake(tmp_path, "-n", check=False)
    assert res.returncode != 0 and "the chain from msi loops back to msi" in res.stdout + res.stderr


def test_outputs_exist_and_every_job_logged(finished_run):
    workdir, _ = finished_run
    r = workdir / "results"
    for rel in ("tables/cohort_metrics.tsv", "tables/cohort_summary.tsv", "tables/registration_error.tsv",
                "tables/metrics_vs_truth.tsv", "figures/cohort_summary.png", "figures/validation.png",
                "figures/samples/a01_T1.png", "figures/samples/b01_T1.png",
                "registration/a01_T1/msi_to_reference.tfm", "registration/a01_T1/msi_in_reference.ome.tif",
                "registration/a01_T1/msi_to_fluorescence_qc.png", "registration/b01_T1/he_to_fluorescence_qc.png",
                "registration/b01_T1/he_in_reference.ome.tif"):
        assert (r / rel).stat().st_size > 0, rel
    logs = list((r / "logs").rglob("*.log"))
    assert len(logs) >= 15 and all("finished in" in p.read_text() for p in logs)
    assert list((r / "benchmarks").rglob("*.tsv"))


def test_registration_error_within_bounds(finished_run):
    """The bounds of the config's validation section (MSI and microscopy pixels)."""
    import yaml

    workdir, _ = finished_run
    bounds = yaml.safe_load((workdir / "config" / "config.yaml").read_text())["validation"]
    tre = pd.read_csv(workdir / "results" / "tables" / "registration_error.tsv", sep="\t")
    dense = tre[(tre.points == "dense_tissue_grid") & (tre.edge == "msi->fluorescence")]
    assert len(dense) == 2 and (dense.n > 100).all()
    assert (dense.median_px < bounds["max_median_tre_msi_px"]).all(), dense
    assert (dense.p95_px < bounds["max_p95_tre_msi_px"]).all(), dense
    he = tre[tre.edge == "he->fluorescence"]
    assert len(he) == 2 and (he.median_px < bounds["max_median_tre_he_px"]).all(), he


def test_recovered_metrics_close_to_truth(finished_run):
    workdir, _ = finished_run
    comp = pd.read_csv(workdir / "results" / "tables" / "metrics_vs_truth.tsv", sep="\t")
    dox = comp[(comp.analyte == "doxorubicin") & comp.region.isin(["tissue"])].set_index(["sample", "metric"])
    viable = comp[(comp.analyte == "doxorubicin") & (comp.region == "viable")].set_index(["sample", "metric"])
    for sample, _ in SAMPLES:
        s = f"{sample}_T1"
        # calibrated from the simulated standards (drug/standard response 1.3, region-dependent matrix effects)
        assert dox.loc[(s, "mean"), "rel_error"] < 0.05
        # the equal-response assumption would have been about 30 % off
        assert dox.loc[(s, "mean_equal_response"), "rel_error"] > 0.15
        assert dox.loc[(s, "cv"), "rel_error"] < 0.10
        assert dox.loc[(s, "coverage"), "abs_error"] < 0.05
        assert viable.loc[(s, "l50_um"), "rel_error"] < 0.25
        # per region (#14): viable-tissue mean within 10 %, coverage within 3 percentage points; the spatial
        # measures against the same measures of the true field
        assert viable.loc[(s, "mean"), "rel_error"] < 0.10
        assert viable.loc[(s, "coverage"), "abs_error"] < 0.03
        assert dox.loc[(s, "gini"), "rel_error"] < 0.10
        assert dox.loc[(s, "correlation_length_um"), "rel_error"] < 0.15
        # Gi* hot and cold spots (FDR 5 %) of the recovered map against those of the true field: area fractions
        assert dox.loc[(s, "hotspot_fraction"), "abs_error"] < 0.05
        assert dox.loc[(s, "coldspot_fraction"), "abs_error"] < 0.05
        shells = comp[(comp["sample"] == s) & (comp.analyte == "doxorubicin") & (comp.metric == "mean")
                      & comp.region.isin(["rim", "periphery", "core"])]
        assert len(shells) >= 2 and (shells.rel_error < 0.10).all(), shells
    np_l50 = comp[(comp.analyte == "nanoparticle") & (comp.metric == "l50_um")]
    assert len(np_l50) == len(SAMPLES)
    assert (np_l50.rel_error < 0.1).all()
    # the control section's autofluorescence subtracted: the nanoparticle's dispersion is no longer biased low
    # (without the control its CV came out 12-16 % low)
    np_shape = comp[(comp.analyte == "nanoparticle") & comp.metric.isin(["cv", "gini"])]
    assert len(np_shape) == 4 * len(SAMPLES) and (np_shape.rel_error < 0.05).all(), np_shape
    # colocalisation: the drug with its carrier and with the nanoparticle, against the true fields' (the noisy,
    # low-signal metabolite's correlations are attenuated by its noise and not held to this)
    pairs = ["doxorubicin:peg_carrier", "doxorubicin:nanoparticle"]
    coloc = comp[comp.analyte.isin(pairs) & (comp.metric == "pearson")]
    assert len(coloc) == 2 * len(SAMPLES) and (coloc.abs_error < 0.05).all(), coloc
    # cells: the fraction of the phantom's true cells the drug and the nanoparticle reach, within 2 points
    reached = comp[(comp.modality == "cells") & (comp.metric == "fraction_of_cells_reached")]
    assert sorted(set(reached.analyte)) == ["doxorubicin", "nanoparticle"] and len(reached) == 2 * len(SAMPLES)
    assert (reached.abs_error < 0.02).all(), reached


def test_cohort_table_is_complete(finished_run):
    workdir, _ = finished_run
    df = pd.read_csv(workdir / "results" / "tables" / "cohort_metrics.tsv", sep="\t")
    assert set(df.group) == {"liposomal", "thermosensitive"}
    assert set(df.modality) == {"msi", "msi_native", "fluorescence", "volume", "cells"}
    # cells: every sample's nuclei and territories, with the per-cell table's measures (tens to hundreds of
    # cells per 0.01 mm² section of the tiny cohort: a density in the phantom's range)
    n_cells = df[(df.modality == "cells") & (df.metric == "n_cells")].set_index("sample").value
    assert list(n_cells.index) == ["a01_T1", "b01_T1", "d01_T1"] and (n_cells > 100).all()  # every section
    reached = df[(df.modality == "cells") & (df.metric == "fraction_of_cells_reached")]
    assert set(reached.analyte) >= {"nanoparticle", "doxorubicin"} and reached.value.between(0, 1).all()
    dox = df[df.analyte == "doxorubicin"]
    cv = dox[(dox.metric == "cv") & (dox.region == "tissue")].pivot(index="sample", columns="modality", values="value")
    cv = cv.loc[["a01_T1", "b01_T1"]]  # the samples with a fluorescence section (c01 has native pixels only)
    assert ((cv.msi_native - cv.msi).abs() / cv.msi < 0.2).all()  # native MSI pixels agree with the reference grid
    key = dox[(dox.modality == "msi") & dox.region.isin(["tissue", "viable"])
              & (dox.metric.isin(["mean", "cv", "coverage", "l50_um", "gini"]))]
    assert len(key) == 2 * (4 * 2 + 1) and np.isfinite(key.value).all()  # per region; L50 over viable tissue only
    shells = dox[(dox.modality == "msi") & (dox.metric == "mean") & dox.region.isin(["rim", "periphery", "core"])]
    assert set(shells.region) == {"rim", "periphery", "core"} and np.isfinite(shells.value).all()
    assert (dox[dox.metric == "mean"].unit == "ug/g").all()  # calibrated
    # necrosis holds little drug: the viable-tissue mean is the higher one, and the tissue mean is its
    # area-weighted average with the necrotic part (which lies below both)
    mean = dox[(dox.modality == "msi") & (dox.metric == "mean")].pivot(index="sample", columns="region", values="value")
    assert (mean.viable > mean.tissue).all()
    # IBSI identifiers travel with their features; the statistics' mean is the plain mean
    ibsi = dox[(dox.modality == "msi") & (dox.region == "tissue")].set_index(["sample", "metric"])
    assert (ibsi.xs("stat_mean", level="metric").ibsi == "Q4LE").all()
    assert np.allclose(ibsi.xs("stat_mean", level="metric").value, ibsi.xs("mean", level="metric").value)
    assert (ibsi.xs("ih_entropy", level="metric").ibsi == "TLU2").all()
    under = ibsi.xs("underdosed_fraction", level="metric").value + ibsi.xs("coverage", level="metric").value
    assert np.allclose(under, 1.0)
    # spatial statistics: the drug map is smooth at 10 µm (positive autocorrelation, a finite correlation length
    # between a pixel and the profile range)
    assert (ibsi.xs("moran_i", level="metric").value > 0.5).all()
    assert (ibsi.xs("geary_c", level="metric").value < 0.5).all()
    length = ibsi.xs("correlation_length_um", level="metric").value
    assert ((length > 10) & (length < 500)).all(), length
    # colocalisation: the drug is released from the carrier, so the two maps correlate, beyond chance alignment
    pair = df[(df.analyte == "doxorubicin:peg_carrier")].set_index(["sample", "metric"]).value
    assert (pair.xs("pearson", level="metric") > 0.8).all()
    assert (pair.xs("pearson_p_shift", level="metric") <= 0.05).all()
    assert pair.xs("manders_m1", level="metric").between(0, 1).all()
    release = df[(df.analyte == "drug:carrier") & (df.metric == "drug_to_carrier_ratio")]
    assert set(release.region) >= {"tissue", "viable", "rim", "core"} and (release.value > 0).all()
    assert (df[(df.metric == "mean") & (df.analyte == "doxorubicinol")].unit == "ug/g-equivalent").all()
    cal = pd.read_csv(workdir / "results" / "msi" / "calibration.tsv", sep="\t")
    assert list(cal.analyte) == ["doxorubicin"] and cal.n_levels[0] == 5 and cal.r_squared[0] > 0.99
    limits = dox[(dox.modality == "msi") & (dox.region == "tissue")].set_index(["sample", "metric"]).value
    assert np.allclose(limits.xs("loq", level="metric"), cal.loq[0])
    assert (limits.xs("fraction_below_loq", level="metric") >= limits.xs("fraction_below_lod", level="metric")).all()
    # the region drawn on the first sample's section (a 250 px square, tests/conftest.py) is measured on the
    # microscopy pixels (exactly its 62,500 pixels, all in tissue) and on the analysis grid; the marker region
    # (F4/80) is measured in every sample
    first = sorted(df["sample"].unique())[0]
    drawn = df[(df.region == "drawn_core") & (df.metric == "n_pixels")].set_index(["sample", "modality", "analyte"])
    assert drawn.value[(first, "fluorescence", "nanoparticle")] == 250 * 250
    assert drawn.value[(first, "msi", "doxorubicin")] > 0 and set(drawn.index.get_level_values(0)) == {first}
    assert set(df[df.region == "macrophage_rich"]["sample"]) == {"a01_T1", "b01_T1", "d01_T1"}  # the sections


def test_any_mix_of_modalities(finished_run):
    """c01 has MSI and a volume but no fluorescence section; d01 a fluorescence section only: each gets what its
    modalities allow, the availability table says what is missing and why, and the MSI-only sample's tissue
    (from its TIC) and drug measures agree with the phantom's truth."""
    import json

    import yaml

    from nanohet.demo.truth import truth_metrics
    from nanohet.io.ometiff import read_ome_tiff
    from nanohet.settings import QuantifySettings

    workdir, _ = finished_run
    r = workdir / "results"
    avail = pd.read_csv(r / "tables" / "availability.tsv", sep="\t").set_index(["sample", "measure"])
    assert avail.available[("a01_T1", "analytes_reference_grid")] and avail.available[("c01_T1", "uptake_volume")]
    assert avail.available[("c01_T1", "analytes_native_pixels")] and avail.available[("d01_T1", "cells")]
    for sample, measure, missing in (("c01_T1", "cells", "fluorescence"), ("c01_T1", "analytes_reference_grid",
                                     "fluorescence"), ("d01_T1", "analytes_native_pixels", "msi"),
                                     ("d01_T1", "uptake_volume", "volume")):
        assert not avail.available[(sample, measure)] and f"a {missing} row" in avail.reason[(sample, measure)]
    df = pd.read_csv(r / "tables" / "cohort_metrics.tsv", sep="\t")
    modalities = df.groupby("sample").modality.agg(set)
    assert modalities["c01_T1"] == {"msi_native", "volume"}
    assert modalities["d01_T1"] == {"fluorescence", "cells"}
    assert not (r / "registration" / "c01_T1").exists() and not (r / "registration" / "d01_T1").exists()
    assert (r / "figures" / "samples" / "d01_T1.png").stat().st_size > 0
    l50 = df[(df["sample"] == "d01_T1") & (df.region == "viable") & (df.metric == "l50_um")]
    assert list(l50.analyte) == ["nanoparticle"] and np.isfinite(l50.value).all()  # the section's own measures
    # the MSI-only sample: the tissue from the TIC, against the phantom's true tissue and drug field
    c01 = df[(df["sample"] == "c01_T1") & (df.region == "tissue")].set_index(["analyte", "metric"]).value
    config = yaml.safe_load((workdir / "config" / "config.yaml").read_text())
    record = json.loads((r / "demo" / "truth" / "c01_T1" / "truth.json").read_text())
    q = QuantifySettings.coerce(config["quantify"])
    truth_masks = read_ome_tiff(r / "demo" / "truth" / "c01_T1" / "truth_masks.ome.tif")
    true = truth_metrics(read_ome_tiff(r / "demo" / "truth" / "c01_T1" / "truth_fields.ome.tif"), truth_masks,
                         float(record["params"]["msi_pixel_um"]), q, q.coverage_thresholds)["drug"]
    msi_px = float(record["params"]["msi_pixel_um"])
    area = c01[("doxorubicin", "n_pixels")] * msi_px ** 2
    true_area = (truth_masks.channel("tissue") > 0).sum() * truth_masks.spacing[0] * truth_masks.spacing[1]
    assert abs(area / true_area - 1) < 0.15, (area, true_area)
    assert abs(c01[("doxorubicin", "mean")] / true[("tissue", "mean")] - 1) < 0.10
    assert abs(c01[("doxorubicin", "cv")] / true[("tissue", "cv")] - 1) < 0.15
    assert c01[("doxorubicin:peg_carrier", "pearson")] > 0.8
    release = df[(df["sample"] == "c01_T1") & (df.metric == "drug_to_carrier_ratio")]
    assert set(release.region) == {"tissue", "rim", "periphery", "core"} and (release.modality == "msi_native").all()
    assert not df[(df["sample"] == "c01_T1") & (df.region == "viable")].size  # no viable tissue without microscopy
    # group comparisons: the configured primary family, animals as the unit (each group has fewer than 2 animals
    # with every primary measure here: no test, said so)
    comp = pd.read_csv(r / "tables" / "group_comparisons.tsv", sep="\t")
    primary = comp[comp.family == "primary"]
    assert sorted(primary[["modality", "analyte", "region", "metric"]].agg(":".join, axis=1)) == sorted(
        config["statistics"]["primary_measures"])
    nano = primary[primary.analyte == "nanoparticle"].iloc[0]
    assert (nano.n_animals_a, nano.n_animals_b) == (1, 2) and nano.test == "none"  # c01 has no fluorescence
    assert (comp.family == "exploratory").sum() > 10
    # variance components: the nanoparticle has 3 animals in 2 groups (a01; b01, d01), the drug on the grid 1 + 1
    vc = pd.read_csv(r / "tables" / "variance_components.tsv", sep="\t")
    nano = vc[(vc.analyte == "nanoparticle") & (vc.region == "tissue")].set_index("level")
    assert list(nano.index) == ["animal", "pixel"] and nano.share.sum() == pytest.approx(1.0)
    assert (nano.share_ci_low <= nano.share).all() and (nano.share <= nano.share_ci_high).all()
    dox = vc[(vc.modality == "msi") & (vc.analyte == "doxorubicin") & (vc.region == "tissue")]
    assert len(dox) == 1 and "fewer than two animals" in dox.note.iloc[0]
    # in vivo to ex vivo: the tumours with a volume and sections (a01, b01 on the grid; c01 on native pixels)
    joined = pd.read_csv(r / "tables" / "invivo_exvivo.tsv", sep="\t")
    native = joined[(joined.modality == "msi_native") & (joined.analyte == "doxorubicin") & (joined.region == "tissue")
                    & (joined.metric == "mean")].set_index("subject")
    assert sorted(native.index) == ["a01", "b01", "c01"]
    volume_mean = df[(df.modality == "volume") & (df.metric == "mean") & (df.region == "tumour")].set_index("subject")
    assert np.allclose(native.in_vivo_value, volume_mean.value[native.index])
    corr = pd.read_csv(r / "tables" / "invivo_exvivo_correlations.tsv", sep="\t").set_index(
        ["modality", "analyte", "region", "metric"])
    assert corr.n_tumours[("msi_native", "doxorubicin", "tissue", "mean")] == 3
    assert corr.n_tumours[("msi", "doxorubicin", "tissue", "mean")] == 2  # c01 has no reference grid


def test_rerun_is_a_no_op_and_report_builds(finished_run):
    workdir, _ = finished_run
    res = snakemake(workdir, "--cores", "1", "-n")
    assert "Nothing to be done" in res.stdout + res.stderr
    snakemake(workdir, "--report", "results/report.html")
    html = (workdir / "results" / "report.html").read_text(errors="ignore")
    assert "cohort_metrics.tsv" in html


def _planned_rules(workdir):
    out = snakemake(workdir, "-n", "--quiet", "rules").stdout
    table = out.split("Job stats:")[-1].splitlines()
    return {line.split()[0] for line in table if line.strip() and line.split()[-1].isdigit()} - {"total", "job"}


def test_a_changed_threshold_reruns_quantification_only(finished_run):
    """Rules carry only the values they use: a new coverage threshold reruns quantification, validation, tables
    and figures, never the simulation, MSI extraction, masks or registration."""
    import yaml

    workdir, _ = finished_run
    path = workdir / "config" / "config.yaml"
    original = path.read_text()
    config = yaml.safe_load(original)
    config["quantify"]["coverage_thresholds"]["doxorubicin"] = 3.0
    try:
        path.write_text(yaml.safe_dump(config))
        planned = _planned_rules(workdir)
    finally:
        path.write_text(original)
    assert {"quantify_section", "cohort_table", "cohort_figure", "sample_figure", "validate_cohort"} <= planned
    assert not planned & {"demo_cohort", "msi_extract", "microscopy_preprocess", "register_edge", "msi_to_reference",
                          "he_to_reference", "quantify_volume"}, planned
    assert _planned_rules(workdir) == set()  # back to the original: nothing to do


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
    write_cohort(tmp_path, partial=PARTIAL)
    snakemake(tmp_path, "--cores", "1")
    files = sorted(p.relative_to(workdir) for pattern in ("tables/*.tsv", "quantify/*/*.tsv", "figures/**/*.png",
                                                          "registration/*/*.tfm", "registration/*/*.tsv")
                   for p in (workdir / "results").glob(pattern))
    assert len(files) >= 12
    for rel in files:
        assert same_result(workdir / rel, tmp_path / rel), f"{rel} differs between 1 and 2 cores"


def _checksums(folder):
    import hashlib

    return {p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


def test_volume_registration_graph_on_real_ct_and_mr(tmp_path):
    """Real CT and MR of one patient (IBSI STS_002) in the sample sheet; the MR scanner frame moved by a known
    offset. The volume edge mr -> ct recovers it and the MR and its mask land on the CT grid."""
    import shutil

    import SimpleITK as sitk
    import yaml

    from conftest import REPO
    from nanohet.io.volumes import read_volume, write_volume
    from nanohet.registration.volumes import mask_centroid_mm

    sts = REPO / "tests" / "data" / "volumes" / "ibsi_sts_002"
    config = write_cohort(tmp_path)
    config["volume_registration"].update(edges=[{"moving": "mr", "fixed": "ct"}], sampling_percentage=0.25)
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    data = tmp_path / "real"
    data.mkdir()
    for name in ("CT_image.nii.gz", "CT_mask.nii.gz"):
        shutil.copy(sts / name, data / name)
    offset = np.array([9.0, -7.0, 4.0])  # mm
    for name in ("MR_T1_image.nii.gz", "MR_T1_mask.nii.gz"):
        img = read_volume(sts / name)
        img.SetOrigin(tuple(np.array(img.GetOrigin()) + offset))
        write_volume(data / name, img)
    sheet = tmp_path / "config" / "samples.tsv"
    columns = sheet.read_text().splitlines()[0].split("\t")
    with open(sheet, "a") as fh:
        for modality, image, mask in (("ct", "CT_image", "CT_mask"), ("mr", "MR_T1_image", "MR_T1_mask")):
            row = {"subject": "a01", "group": "liposomal", "tumour": "T1", "modality": modality,
                   "path": str(data / f"{image}.nii.gz"), "mask": str(data / f"{mask}.nii.gz")}
            fh.write("\t".join(row.get(c, "") for c in columns) + "\n")
    vol = "results/registration/a01_T1/volumes"
    targets = [f"{vol}/mr_in_reference.nii.gz", f"{vol}/mr_mask_in_reference.nii.gz", f"{vol}/mr_to_ct_qc.tsv",
               "results/quantify/a01_T1/ct_metrics.tsv", "results/quantify/a01_T1/mr_metrics.tsv"]
    assert all(t in snakemake(tmp_path, "-n", "-p").stdout for t in targets)  # part of the full analysis
    before = _checksums(data)
    snakemake(tmp_path, "--cores", "2", *targets)
    assert _checksums(data) == before  # input files are never modified
    qc = pd.read_csv(tmp_path / vol / "mr_to_ct_qc.tsv", sep="\t").iloc[0]
    assert qc.edge == "mr->ct" and not bool(qc.flagged) and qc.dice_after > qc.dice_before + 0.2
    ct = read_volume(data / "CT_image.nii.gz")
    mr_on_ct = read_volume(tmp_path / vol / "mr_in_reference.nii.gz")
    assert mr_on_ct.GetSize() == ct.GetSize() and np.allclose(mr_on_ct.GetOrigin(), ct.GetOrigin())
    centre = mask_centroid_mm(read_volume(data / "CT_mask.nii.gz"))
    moved = np.array(sitk.ReadTransform(str(tmp_path / vol / "mr_to_reference.tfm")).TransformPoint(tuple(centre)))
    assert np.linalg.norm(moved - centre - offset) < 1.5  # mm; CT voxels 0.98 x 0.98 x 3.27 mm
    mask_on_ct = read_volume(tmp_path / vol / "mr_mask_in_reference.nii.gz")
    assert np.linalg.norm(mask_centroid_mm(mask_on_ct) - centre) < 1.5
    # CT and MR with masks are quantified like the uptake volume: the CT in Hounsfield units, in 3-D and shells
    ct_rows = pd.read_csv(tmp_path / "results/quantify/a01_T1/ct_metrics.tsv", sep="\t").set_index(["region", "metric"])
    ct_mask = read_volume(data / "CT_mask.nii.gz")
    assert ct_rows.loc[("tumour", "volume_mm3"), "value"] == pytest.approx(
        sitk.GetArrayFromImage(ct_mask).sum() * np.prod(ct_mask.GetSpacing()))
    assert ct_rows.loc[("tumour", "mean"), "unit"] == "HU" and set(ct_rows.modality) == {"ct"}
    assert ("rim", "mean") in ct_rows.index and ("tumour", "glcm_contrast") in ct_rows.index


def test_a_misregistered_sample_is_shown_everywhere_and_repaired_with_landmarks(tmp_path):
    """One sample's MSI acquired at a large angle and registered with the defaults (no start-pose search): the
    orientation check flags the edge, and the flag reaches the terminal summary, the run's QC table, the cohort
    table and the report. Landmarks added to the sample sheet then rerun only that edge and what depends on it,
    and the edge is fixed."""
    import json

    import yaml

    config = write_cohort(tmp_path, [("c01", "thermosensitive")])
    config["demo"]["groups"]["thermosensitive"]["msi_rotation_deg"] = 180.0
    config["registration"]["edges"] = [e for e in config["registration"]["edges"] if e["moving"] != "he"]
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    sheet = tmp_path / "config" / "samples.tsv"
    sheet.write_text("\n".join(r for r in sheet.read_text().splitlines() if "\the\t" not in r) + "\n")
    run = snakemake(tmp_path, "--cores", "2")
    snakemake(tmp_path, "--report", "results/report.html")
    angle = json.loads((tmp_path / "results/demo/truth/c01_T1/truth.json").read_text())["msi_geometry"]["rotation_deg"]
    assert abs(angle) > 60  # outside the reach of the default (no search)
    terminal = run.stdout + run.stderr
    assert "FLAGGED c01_T1 registration msi->fluorescence: another orientation fits better" in terminal
    flags = pd.read_csv(tmp_path / "results/tables/qc_flags.tsv", sep="\t")
    flagged = flags[flags.flagged]  # the MSI target checks are there too, unflagged
    assert len(flagged) == 1 and "outside the optimiser's reach" in flagged.reason.iloc[0]
    cohort = pd.read_csv(tmp_path / "results/tables/cohort_metrics.tsv", sep="\t", keep_default_na=False)
    assert set(cohort.qc) == {"flagged"} and cohort.qc_reason.str.contains("msi->fluorescence").all()
    assert "qc_flags.tsv" in (tmp_path / "results/report.html").read_text(errors="ignore")

    # the repair: landmark pairs (section µm -> MSI µm) for the flagged edge, e.g. clicked in napari
    truth = pd.read_csv(tmp_path / "results/demo/truth/c01_T1/landmarks_msi.csv", sep="\t").iloc[:6]
    pd.DataFrame({"fixed_x": truth.section_x_um, "fixed_y": truth.section_y_um, "moving_x": truth.msi_x_um,
                  "moving_y": truth.msi_y_um}).to_csv(tmp_path / "c01_msi_landmarks.csv", index=False)
    rows = sheet.read_text().splitlines()
    col = rows[0].split("\t").index("landmarks")
    fixed = []
    for r in rows:
        cells = r.split("\t")
        if "\tmsi\t" in r:
            cells[col] = "c01_msi_landmarks.csv"
        fixed.append("\t".join(cells))
    sheet.write_text("\n".join(fixed) + "\n")
    planned = _planned_rules(tmp_path)
    assert "register_edge" in planned and not planned & {"demo_cohort", "msi_extract", "microscopy_preprocess",
                                                          "quantify_volume"}, planned
    snakemake(tmp_path, "--cores", "2")
    flags = pd.read_csv(tmp_path / "results/tables/qc_flags.tsv", sep="\t")
    assert not flags.flagged.any() and (flags.stage == "registration").sum() == 1
    tre = pd.read_csv(tmp_path / "results/tables/registration_error.tsv", sep="\t")
    assert tre[tre.points == "dense_tissue_grid"].median_px.iloc[0] < 0.5


def test_a_bad_input_found_by_a_job_is_one_line_on_the_terminal(tmp_path, tiny_sample):
    """A problem only a job can find (here: a user label image whose objects all lie outside the tissue) ends the
    job with one line naming the sample, the file and the cause, and the log to read; the traceback is in the
    log, not on the terminal."""
    import tifffile
    import yaml

    from conftest import REPO
    from nanohet.io.ometiff import read_ome_tiff

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["demo"]["enabled"] = False
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    fluo = tiny_sample["outputs"]["fluorescence"]
    labels = np.zeros(read_ome_tiff(fluo).shape_yx, np.uint16)
    labels[:4, :4] = 1
    tifffile.imwrite(tmp_path / "corner_labels.tif", labels)
    (tmp_path / "config" / "samples.tsv").write_text(
        "subject\tgroup\ttumour\tmodality\tpath\n"
        f"s1\tg\tT1\tfluorescence\t{fluo}\ns1\tg\tT1\tlabels\tcorner_labels.tif\n")
    res = snakemake(tmp_path, "--cores", "1", "results/cells/s1_T1/cells.tsv", check=False)
    assert res.returncode != 0
    terminal = res.stdout + res.stderr
    assert "nanohet: sample s1_T1: no nucleus of the label image corner_labels.tif lies in the tissue" in terminal
    assert "(log: results/logs/cells/s1_T1.log)" in terminal and "Traceback" not in terminal
    log = (tmp_path / "results" / "logs" / "cells" / "s1_T1.log").read_text()
    assert "input error: sample s1_T1: no nucleus" in log and "Traceback" in log
    assert not (tmp_path / "results" / "cells" / "s1_T1" / "cells.tsv").exists()


def test_a_reduced_hierarchical_cohort_is_decomposed_against_its_truth(tmp_path):
    """2 groups x 2 animals x 1 tumour x 2 serial sections (the sample sheet's section column), fluorescence and
    MSI only: the variance of each analyte at the animal and section levels against the demo's configured and
    realised truth."""
    from nanohet.demo.design import hierarchical_sheet, sheet_text
    from conftest import nanohet
    import yaml

    nanohet("init", tmp_path, check=True)
    path = tmp_path / "config" / "config.yaml"
    config = yaml.safe_load(path.read_text())
    config["demo"]["enabled"] = True
    config["demo"]["phantom"].update(tumour_diameter_mm=1.2, margin_mm=0.2)
    level_sd = {"animal": 0.3, "tumour": 0.0, "section": 0.2}
    config["demo"]["level_sd"] = level_sd
    path.write_text(yaml.safe_dump(config))
    sheet = hierarchical_sheet(animals=2, tumours=1, sections=2, he="none", volume="none", standards=(), controls=0)
    (tmp_path / "config" / "samples.tsv").write_text(sheet_text(sheet))
    snakemake(tmp_path, "--cores", "2", "results/tables/variance_vs_truth.tsv")
    r = tmp_path / "results" / "tables"
    vc = pd.read_csv(r / "variance_components.tsv", sep="\t")
    dox = vc[(vc.modality == "msi") & (vc.analyte == "doxorubicin") & (vc.region == "tissue")].set_index("level")
    assert list(dox.index) == ["animal", "section", "pixel"]  # one tumour per animal: folded into the animal
    assert "tumour" in dox.note["animal"] and dox.n_units.to_dict() == {"animal": 4, "section": 8,
                                                                      "pixel": dox.n_units["pixel"]}
    truth = pd.read_csv(r / "variance_vs_truth.tsv", sep="\t")
    assert set(truth.analyte) >= {"doxorubicin", "nanoparticle"} and set(truth.level) == {"animal", "section", "pixel"}
    for rec in truth.to_dict("records"):
        assert rec["share_ci_low"] <= rec["estimated_share"] <= rec["share_ci_high"], rec
        assert 0 <= rec["configured_share"] <= 1 and 0 <= rec["realised_share"] <= 1, rec
    # the section means measured through MSI extraction, registration and the grid are the true ones up to
    # measurement error: the upper levels' estimated shares follow the realised truth, which its interval holds
    upper = truth[(truth.modality == "msi") & truth.level.isin(["animal", "section"])]
    assert upper.realised_in_ci.all(), upper
    assert ((upper.estimated_share - upper.realised_share).abs() < 0.1).all(), upper
