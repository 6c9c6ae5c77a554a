"""SPECT counts to activity concentration, %ID/g and SUVbw through a calibration factor (nanohet.io.spect)."""

import math

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from conftest import REPO
from nanohet.errors import InputError
from nanohet.io.samplesheet import load_sample_sheet
from nanohet.io.spect import CountCalibration, half_life_s

SCHEMA = REPO / "workflow" / "schemas" / "samples.schema.yaml"
IN111_S = 2.8047 * 86400


def counts_collected(a0_mbq, cps_per_mbq, duration_s, half_life, steps=200_000):
    """Counts a camera of sensitivity S collects from activity a0 decaying over the acquisition: a numerical
    integral of S A(t) over [0, T] (midpoint rule), independent of the closed form under test."""
    dt = duration_s / steps
    t = (np.arange(steps) + 0.5) * dt
    return cps_per_mbq * a0_mbq * np.exp(-math.log(2) / half_life * t).sum() * dt


def test_counts_become_the_activity_at_the_start_of_the_scan():
    """4 h acquisition of Tc-99m (half-life 6 h: the activity falls 37 % meanwhile)."""
    cal = CountCalibration.from_row({"calibration_cps_per_mbq": 85.0, "acquisition_s": 4 * 3600,
                                     "radionuclide": "tc99m"})
    voxel_ml = 0.4 ** 3 / 1000  # 0.4 mm voxels
    a0 = np.array([0.0, 2e-5, 7e-4])  # MBq per voxel at the start
    counts = np.array([counts_collected(a, 85.0, 4 * 3600, 6.0067 * 3600) for a in a0])
    np.testing.assert_allclose(cal.kbq_per_ml(counts, voxel_ml), a0 * 1000 / voxel_ml, rtol=1e-7)
    # without the radionuclide, no decay correction: the mean activity over the acquisition, lower
    plain = CountCalibration.from_row({"calibration_cps_per_mbq": 85.0, "acquisition_s": 4 * 3600})
    ratio = plain.kbq_per_ml(counts[1:], voxel_ml) / cal.kbq_per_ml(counts[1:], voxel_ml)
    mean_decay = (1 - 0.5 ** (4 / 6.0067)) / (math.log(2) * 4 / 6.0067)  # mean of exp(-lambda t) over the scan
    assert ratio == pytest.approx([mean_decay] * 2, rel=1e-9)


def test_injected_dose_fraction_and_suv_from_a_counting_volume(tmp_path):
    """The volume step on a NIfTI of counts: kBq/ml, %ID/g, %ID and SUVbw computed by hand."""
    from nanohet.steps.volume import quantify_volume as volume

    rng = np.random.default_rng(5)
    spacing = (0.5, 0.5, 0.8)  # mm
    a0_kbq_ml = rng.gamma(2.0, 40.0, size=(12, 16, 16))  # kBq/ml at the start of the scan
    voxel_ml = np.prod(spacing) / 1000
    duration, sens = 1800.0, 12.5
    decay = math.log(2) / IN111_S * duration
    counts = a0_kbq_ml * voxel_ml / 1000 * sens * duration * -math.expm1(-decay) / decay
    img = sitk.GetImageFromArray(counts.astype(np.float32))
    img.SetSpacing(spacing)
    mask = np.zeros(counts.shape, np.uint8)
    mask[3:9, 4:12, 5:13] = 1
    m = sitk.GetImageFromArray(mask)
    m.CopyInformation(img)
    sitk.WriteImage(img, str(tmp_path / "spect.nii.gz"))
    sitk.WriteImage(m, str(tmp_path / "mask.nii.gz"))
    row = {"calibration_cps_per_mbq": sens, "acquisition_s": duration, "radionuclide": "In-111",
           "injected_mbq": 9.6, "injection_to_scan_h": 48.0, "weight_g": 22.5}
    out = tmp_path / "metrics.tsv"
    volume(str(tmp_path / "spect.nii.gz"), str(tmp_path / "mask.nii.gz"), str(out), "m1_T1", counting=row)
    table = pd.read_csv(out, sep="\t").set_index(["region", "metric"])
    inside = a0_kbq_ml[mask > 0]
    assert table.loc[("tumour", "mean"), "unit"] == "kBq/ml"
    assert table.loc[("tumour", "mean"), "value"] == pytest.approx(inside.mean(), rel=1e-5)
    dose_kbq = 9.6e3 * 0.5 ** (48 * 3600 / IN111_S)
    assert table.loc[("tumour", "spect_decayed_dose_mbq"), "value"] == pytest.approx(dose_kbq / 1000, rel=1e-9)
    assert table.loc[("tumour", "pct_id_per_g_mean"), "value"] == pytest.approx(100 * inside.mean() / dose_kbq,
                                                                                rel=1e-5)
    assert table.loc[("tumour", "pct_injected_dose"), "value"] == pytest.approx(
        100 * inside.sum() * voxel_ml / dose_kbq, rel=1e-5)
    assert table.loc[("tumour", "suvbw_max"), "value"] == pytest.approx(inside.max() * 22.5 / dose_kbq, rel=1e-5)


@pytest.mark.parametrize("row, message", [
    ({"acquisition_s": 600}, "without calibration_cps_per_mbq"),
    ({"calibration_cps_per_mbq": 80}, "needs acquisition_s"),
    ({"calibration_cps_per_mbq": 80, "acquisition_s": 600, "radionuclide": "Xx-1"}, "known: Tc-99m"),
    ({"calibration_cps_per_mbq": 80, "acquisition_s": 600, "radionuclide": "In-111", "injected_mbq": 5},
     "needs injection_to_scan_h"),
    ({"calibration_cps_per_mbq": 80, "acquisition_s": 600, "injected_mbq": 5, "injection_to_scan_h": 4},
     "needs the radionuclide"),
    ({"calibration_cps_per_mbq": 80, "acquisition_s": 600, "weight_g": 20}, "needs injected_mbq"),
    ({"calibration_cps_per_mbq": -1, "acquisition_s": 600}, "positive"),
    ({"calibration_cps_per_mbq": "fast", "acquisition_s": 600}, "must be a number"),
])
def test_inconsistent_calibrations_are_refused(row, message):
    with pytest.raises(InputError, match=message) as err:
        CountCalibration.from_row(row, "sample m1_T1")
    assert "sample m1_T1" in str(err.value)


def test_a_dose_measured_at_the_scan_needs_no_radionuclide():
    cal = CountCalibration.from_row({"calibration_cps_per_mbq": 80, "acquisition_s": 60, "injected_mbq": 5,
                                     "injection_to_scan_h": 0})
    assert cal.decayed_dose_mbq == 5


def test_half_lives_by_name():
    assert half_life_s("lu-177") == pytest.approx(6.6443 * 86400)
    assert half_life_s("F18") == pytest.approx(109.77 * 60)


def test_sample_sheet_columns(tmp_path):
    header = "subject\tgroup\ttumour\tmodality\tpath\tmask\tcalibration_cps_per_mbq\tacquisition_s\tradionuclide\n"
    good = "m1\ta\tT1\tvolume\tv.nii.gz\tm.nii.gz\t80.5\t1200\tIn-111\n"
    p = tmp_path / "samples.tsv"
    p.write_text(header + good)
    df = load_sample_sheet(p, SCHEMA)
    assert df["calibration_cps_per_mbq"].iloc[0] == 80.5
    p.write_text(header + good + "m1\ta\tT1\tfluorescence\tf.ome.tif\t\t80\t\t\n")
    with pytest.raises(InputError, match=r"row 3 .*belong on a volume row"):
        load_sample_sheet(p, SCHEMA)
    p.write_text(header + "m1\ta\tT1\tvolume\tv.nii.gz\tm.nii.gz\t80\t\t\n")
    with pytest.raises(InputError, match=r"row 2 .*needs acquisition_s"):
        load_sample_sheet(p, SCHEMA)
