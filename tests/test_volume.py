import numpy as np
import pytest
import SimpleITK as sitk

from conftest import DATA
from nanohet.errors import InputError
from nanohet.volume import read_volume, volume_metrics, write_volume


def test_ibsi_digital_phantom_mean():
    # IBSI 1 reference value for the intensity mean of the digital phantom: 2.15
    # (Zwanenburg et al., Radiology 2020;295:328, reference manual table of consensus values).
    d = DATA / "volumes" / "ibsi_digital_phantom"
    m = volume_metrics(read_volume(d / "phantom.nii.gz"), read_volume(d / "mask.nii.gz"))
    assert m["mean"] == pytest.approx(2.15, abs=0.005)


def test_real_pet_in_suv():
    d = DATA / "volumes" / "ibsi_sts_002"
    pet, mask = read_volume(d / "PET_image.nii.gz"), read_volume(d / "PET_mask.nii.gz")
    m = volume_metrics(pet, mask)
    assert pet.GetSpacing() == pytest.approx((5.47, 5.47, 3.27), abs=0.01)
    assert 0 < m["mean"] < m["p90"] and m["volume_mm3"] > 0


def test_round_trip_and_bad_inputs(tmp_path):
    img = sitk.GetImageFromArray(np.arange(27, dtype=np.float32).reshape(3, 3, 3))
    img.SetSpacing((0.5, 0.5, 1.0))
    write_volume(tmp_path / "v.nii.gz", img)
    back = read_volume(tmp_path / "v.nii.gz")
    assert back.GetSpacing() == (0.5, 0.5, 1.0)
    empty = sitk.Image(img.GetSize(), sitk.sitkUInt8)
    empty.CopyInformation(img)
    with pytest.raises(InputError, match="empty"):
        volume_metrics(img, empty)
    other = sitk.Image((2, 2, 2), sitk.sitkUInt8)
    with pytest.raises(InputError, match="same grid"):
        volume_metrics(img, other)
    with pytest.raises(InputError, match="cannot read"):
        read_volume(tmp_path / "missing.nii.gz")
