"""PET in SUV from the DICOM header (nanohet.io.pet): the IBSI/OncoRay digital reference objects, and the
header cases they do not cover (decay correction NONE, missing tags), built from one of them."""

import shutil

import numpy as np
import pandas as pd
import pydicom
import pytest
import SimpleITK as sitk

from conftest import DATA
from nanohet.errors import InputError
from nanohet.io.pet import (body_surface_area_m2, is_pet_series, lean_body_mass_kg, read_pet_suv,
                            suv_conversion)

DRO = DATA / "volumes" / "oncoray_suv_dro"
EXPECTED = pd.read_csv(DRO / "DRO_list.csv")


@pytest.mark.parametrize("dro", EXPECTED.ID.tolist())
def test_digital_reference_objects_come_out_at_their_suv(dro):
    row = EXPECTED.set_index("ID").loc[dro]
    image, conversion = read_pet_suv(DRO / dro / "PT")
    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(DRO / dro / "mask" / "DRO_mask.nii.gz"))) > 0
    values = sitk.GetArrayFromImage(image)[mask]
    got = (values.min(), np.median(values), values.max())
    want = (row.SUVmin_expected, row.SUVmed_expected, row.SUVmax_expected)
    assert got == pytest.approx(want, abs=0.005), (dro, row.Description, conversion)
    assert is_pet_series(DRO / dro / "PT")


def _headers(dro="DRO_0_0"):
    files = sorted((DRO / dro / "PT").glob("*.dcm"))
    return [pydicom.dcmread(f, stop_before_pixels=True) for f in files]


def test_decay_correction_none_decays_the_dose_to_each_slice():
    """Not decay-corrected: each slice's factor uses the dose decayed to its own acquisition time, so slices
    acquired later get larger factors by exactly the decay between them."""
    headers = _headers()
    half_life = float(headers[0].RadiopharmaceuticalInformationSequence[0].RadionuclideHalfLife)
    for i, h in enumerate(headers):
        h.DecayCorrection = "NONE"
        h.AcquisitionTime = f"1100{i:02d}.000000"  # one second apart
    conv = suv_conversion(headers, "test")
    factors = np.array(conv.slice_factors)
    np.testing.assert_allclose(factors[1:] / factors[:-1], 2.0 ** (1.0 / half_life))
    start = suv_conversion(_headers(), "test")  # START: the dose decayed to the series time (11:00:00)
    assert factors[0] == pytest.approx(start.factor)


def test_body_size_normalisations():
    """Janmahasatian lean body mass and Du Bois surface area on textbook values, and the factors recorded
    only where height and sex allow."""
    assert lean_body_mass_kg(70, 1.75, "M") == pytest.approx(9270 * 70 / (6680 + 216 * 70 / 1.75 ** 2))
    assert lean_body_mass_kg(70, 1.75, "F") < lean_body_mass_kg(70, 1.75, "M")
    assert lean_body_mass_kg(70, 1.75, "O") is None
    assert body_surface_area_m2(70, 1.75) == pytest.approx(1.85, abs=0.01)
    headers = _headers()
    for h in headers:
        h.PatientSex = "M"
    conv = suv_conversion(headers, "test")
    assert conv.sul_factor == pytest.approx(lean_body_mass_kg(70, 1.75, "M") / 70)
    assert suv_conversion(_headers(), "test").sul_factor is None  # sex O: no lean body mass


@pytest.mark.parametrize("change, message", [
    (lambda h: h.__delattr__("PatientWeight"), "no patient weight"),
    (lambda h: setattr(h, "Units", "PROPCPS"), "PET units PROPCPS"),
    (lambda h: setattr(h, "DecayCorrection", "XYZ"), "decay correction XYZ"),
    (lambda h: h.RadiopharmaceuticalInformationSequence[0].__delattr__("RadionuclideHalfLife"), "half-life"),
])
def test_missing_or_unknown_header_values_are_refused(change, message):
    headers = _headers()
    change(headers[0])
    with pytest.raises(InputError, match=message):
        suv_conversion(headers, "series X")


def test_a_non_pet_series_is_refused(tmp_path):
    folder = tmp_path / "ct"
    shutil.copytree(DRO / "DRO_0_0" / "PT", folder)
    for f in folder.glob("*.dcm"):
        ds = pydicom.dcmread(f)
        ds.Modality = "CT"
        ds.save_as(f)
    assert not is_pet_series(folder)
    with pytest.raises(InputError, match="not a PET series"):
        read_pet_suv(folder)


def test_the_volume_step_reports_suv_and_the_conversion(tmp_path):
    """The workflow's volume step on a PET DICOM series: every measure in SUVbw, SUVmax/mean/peak in range, the
    conversion recorded as rows (decayed dose, factor)."""
    from nanohet.steps.volume import quantify_volume as volume

    out = tmp_path / "volume_metrics.tsv"
    volume(str(DRO / "DRO_5_0" / "PT"), str(DRO / "DRO_5_0" / "mask" / "DRO_mask.nii.gz"), str(out), "ga68")
    table = pd.read_csv(out, sep="\t").set_index(["region", "metric"])
    assert table.loc[("tumour", "stat_maximum"), "value"] == pytest.approx(4.0, abs=0.005)
    assert table.loc[("tumour", "stat_median"), "value"] == pytest.approx(1.0, abs=0.005)
    assert table.loc[("tumour", "mean"), "unit"] == "SUVbw"
    peak, top = table.loc[("tumour", "global_intensity_peak"), "value"], table.loc[("tumour", "stat_maximum"), "value"]
    assert 0.2 <= peak <= top
    decayed = table.loc[("tumour", "suv_decayed_dose_bq"), "value"]
    assert decayed == pytest.approx(368.08e6 * 2 ** (-3600 / 4057.7), rel=1e-6)  # 1 h of Ga-68 decay
    # %ID/g and %ID from the stored activity concentration (Bq/ml) and the decayed dose, not through the SUV
    import SimpleITK as sitk

    from nanohet.io.rtstruct import read_mask
    from nanohet.io.volumes import read_volume

    bqml = read_volume(DRO / "DRO_5_0" / "PT")
    inside = sitk.GetArrayFromImage(read_mask(str(DRO / "DRO_5_0" / "mask" / "DRO_mask.nii.gz"), bqml)) > 0
    c = sitk.GetArrayFromImage(bqml).astype(np.float64)[inside]
    assert table.loc[("tumour", "pct_id_per_g_mean"), "value"] == pytest.approx(100 * c.mean() / decayed, rel=1e-6)
    assert table.loc[("tumour", "pct_id_per_g_max"), "unit"] == "%ID/g"
    voxel_ml = np.prod(bqml.GetSpacing()) / 1000
    assert table.loc[("tumour", "pct_injected_dose"), "value"] == pytest.approx(100 * c.sum() * voxel_ml / decayed,
                                                                                 rel=1e-6)
