"""Calibration of MSI analytes from standards of known concentration (nanohet.msi.calibration, the
calibrate and extract steps), on analytic lines and on simulated mimetic-tissue standards."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from conftest import REPO, tiny_params

from nanohet.demo.cohort import generate_standard
from nanohet.errors import InputError
from nanohet.io.ometiff import read_ome_tiff
from nanohet.io.samplesheet import check_standards_against_analytes, load_sample_sheet, standard_rows
from nanohet.msi.calibration import LOD_FACTOR, LOQ_FACTOR, fit_calibration, standard_response
from nanohet.steps.msi import calibrate, extract

SCHEMA = REPO / "workflow" / "schemas" / "samples.schema.yaml"
MSI = {
    "analytes": [{"name": "doxorubicin", "mz": 544.1813, "ppm": 10, "role": "drug"},
                 {"name": "doxorubicinol", "mz": 546.1970, "ppm": 10, "role": "metabolite"}],
    "internal_standard": {"name": "daunorubicin_is", "mz": 528.1864, "ppm": 10, "concentration": 2.0},
    "normalisation": "internal_standard", "top_n_peaks": 0,
}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_exact_line_is_recovered(seed):
    rng = np.random.default_rng(seed)
    slope, intercept = rng.uniform(0.05, 3.0), rng.uniform(-0.2, 0.2)
    c = np.sort(rng.uniform(0, 50, 7))
    cal = fit_calibration("x", c, intercept + slope * c, "ng/mm2")
    assert cal.slope == pytest.approx(slope, rel=1e-9) and cal.intercept == pytest.approx(intercept, abs=1e-9)
    assert cal.r_squared == pytest.approx(1.0) and cal.residual_sd < 1e-9 and cal.unit == "ng/mm2"
    # concentration and response are inverse maps
    np.testing.assert_allclose(cal.concentration(cal.response(c)), c, atol=1e-9)


def test_limits_follow_ich_q2_from_the_residual_sd():
    c = np.array([0.0, 1.0, 2.0, 5.0, 10.0])
    r = np.array([0.02, 0.61, 1.18, 3.05, 5.96])
    cal = fit_calibration("x", c, r, "ug/g")
    # independent computation: least squares by the normal equations, sigma with n - 2 degrees of freedom
    a = np.stack([np.ones_like(c), c], 1)
    (b0, b1), *_ = np.linalg.lstsq(a, r, rcond=None)
    sigma = np.sqrt(((r - b0 - b1 * c) ** 2).sum() / (len(c) - 2))
    assert cal.slope == pytest.approx(b1) and cal.intercept == pytest.approx(b0)
    assert cal.lod == pytest.approx(3.3 * sigma / b1) and cal.loq == pytest.approx(10 * sigma / b1)
    assert (LOD_FACTOR, LOQ_FACTOR) == (3.3, 10.0)
    # two levels: a line but no residual, so no limits
    two = fit_calibration("x", [0.0, 4.0], [0.1, 2.1], "ug/g")
    assert two.slope == pytest.approx(0.5) and np.isnan(two.lod)


@pytest.mark.parametrize("c, r, message", [
    ([1.0, 1.0, 1.0], [0.5, 0.6, 0.55], "two or more concentrations"),
    ([0.0, 1.0, 2.0], [0.9, 0.5, 0.1], "do not increase"),
    ([0.0, 1.0, 2.0], [0.1, np.nan, 1.0], "non-finite"),
])
def test_bad_standards_are_refused(c, r, message):
    with pytest.raises(InputError, match=message):
        fit_calibration("dox", c, r, "ug/g", "samples.tsv")


def test_standard_without_signal_is_refused():
    with pytest.raises(InputError, match="std.imzML.*no pixel"):
        standard_response(np.full((3, 3), np.nan), "std.imzML")
    assert standard_response(np.array([[1.0, np.nan], [3.0, 2.0]]), "x") == (2.0, 3)


def _standards(tmp_path, params, levels, name="std"):
    """Simulated standards at ``levels`` (µg/g of doxorubicin) as msi_standard records."""
    rows = []
    for i, c in enumerate(levels):
        path = tmp_path / f"{name}_{i}.imzML"
        generate_standard(path, {"doxorubicin": c}, replace(params, seed=params.seed + i))
        rows.append({"path": str(path), "analyte": "doxorubicin", "concentration": c, "pixel_size": None})
    return rows


@pytest.mark.parametrize("seed, mode", [(5, "processed"), (6, "continuous"), (7, "processed")])
def test_calibration_recovers_an_unknown_standard_the_equal_response_misses(tmp_path, seed, mode):
    """A mimetic-tissue series at a random response ratio and matrix, then an unknown at a random
    concentration: the calibrated mean is within 3 %; the equal-response value is off by the ratio."""
    rng = np.random.default_rng(seed)
    ratio = float(rng.uniform(0.5, 2.0))
    suppression = {"default": (0.45, 0.30), "doxorubicin": tuple(rng.uniform(0.2, 0.6, 2))}
    params = tiny_params(seed=seed * 100, msi_mode=mode, msi_response={"doxorubicin": ratio},
                         msi_suppression=suppression, standard_viable_fraction=float(rng.uniform(0.5, 1.0)),
                         standard_pixels=12)
    rows = _standards(tmp_path, params, [0.0, 1.0, 3.0, 8.0, 20.0])
    calibrate(rows, MSI, tmp_path / "cal.tsv", tmp_path / "standards.tsv")
    cal = pd.read_csv(tmp_path / "cal.tsv", sep="\t").set_index("analyte")
    assert list(cal.index) == ["doxorubicin"] and cal.loc["doxorubicin", "unit"] == "ug/g"
    assert cal.loc["doxorubicin", "r_squared"] > 0.99
    per_standard = pd.read_csv(tmp_path / "standards.tsv", sep="\t")
    assert len(per_standard) == 5 and (per_standard.n_pixels == 144).all()

    truth = float(rng.uniform(2.0, 15.0))
    unknown = _standards(tmp_path, replace(params, seed=seed * 100 + 50), [truth], "unknown")[0]["path"]
    ions, stats = tmp_path / "ions.ome.tif", tmp_path / "stats.tsv"
    extract(unknown, MSI, ions, stats, tmp_path / "spectrum.tsv", calibration=[str(tmp_path / "cal.tsv")])
    got = read_ome_tiff(ions).channel("doxorubicin")
    assert np.nanmean(got) == pytest.approx(truth, rel=0.03)
    row = pd.read_csv(stats, sep="\t").set_index("analyte")
    assert row.loc["doxorubicin", "unit"] == "ug/g" and row.loc["doxorubicin", "calibration"] == "standards"
    assert row.loc["doxorubicinol", "unit"] == "ug/g-equivalent" and row.loc["doxorubicinol", "calibration"] == "none"
    # without the calibration: ratio x standard concentration, off by the response ratio and matrix
    extract(unknown, MSI, ions, stats, tmp_path / "spectrum.tsv")
    plain = np.nanmean(read_ome_tiff(ions).channel("doxorubicin"))
    a, b = suppression["doxorubicin"]
    v = params.standard_viable_fraction
    expected = truth * ratio * (1 - a * v - b * (1 - v)) / (1 - 0.45 * v - 0.30 * (1 - v))
    assert plain == pytest.approx(expected, rel=0.05)


def test_sheet_standards(tmp_path):
    header = "subject\tgroup\ttumour\tmodality\tpath\tanalyte\tconcentration\n"
    good = ("m1\ta\tT1\tfluorescence\tf.ome.tif\t\t\nm1\ta\tT1\tmsi\tm.imzML\t\t\n"
            "\t\t\tmsi_standard\ts0.imzML\tdox\t0\n\t\t\tmsi_standard\ts1.imzML\tdox\t2.5\n"
            "\t\t\tmsi_standard\ts1.imzML\tdoxol\t0.5\n")
    p = tmp_path / "s.tsv"
    p.write_text(header + good)
    df = load_sample_sheet(p, SCHEMA)
    std = standard_rows(df)
    assert list(std.concentration) == [0.0, 2.5, 0.5] and std["sample"].isna().all()
    assert list(df.loc[df.modality != "msi_standard", "sample"].unique()) == ["m1_T1"]
    with pytest.raises(InputError, match="analyte 'doxol' is not one of the configured"):
        check_standards_against_analytes(std, ["dox"], p)
    with pytest.raises(InputError, match="msi_standard rows of doxol have 1 concentration level"):
        check_standards_against_analytes(std, ["dox", "doxol"], p)
    for bad, message in [
        ("\t\t\tmsi_standard\ts2.imzML\tdox\t\n", "row 7 \\(msi_standard 's2.imzML'\\).*concentration"),
        ("\t\t\tmsi_standard\ts2.imzML\tdox\t-1\n", "row 7.*column concentration"),
        ("\t\t\tmsi_standard\ts2.imzML\tdox\tlow\n", "row 7.*concentration 'low' is not a number"),
        ("\t\t\tmsi_standard\ts1.imzML\tdox\t3\n", "s1.imzML has more than one row for analyte 'dox'"),
        ("m2\ta\tT1\the\tx.ome.tif\t\t\n", "m2_T1 has only he row"),
    ]:
        p.write_text(header + good + bad)
        with pytest.raises(InputError, match=message):
            load_sample_sheet(p, SCHEMA)
