"""RT structure sets rasterised onto image grids (nanohet.io.rtstruct): against the NIfTI masks of the same
structures, holes, structure choice and errors."""

import shutil

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from conftest import DATA
from nanohet.errors import InputError
from nanohet.io.rtstruct import dice, is_rtstruct, rasterise_structure, read_mask, structure_names
from nanohet.io.volumes import read_volume

STS = DATA / "volumes" / "ibsi_sts_002"
DRO = DATA / "volumes" / "oncoray_suv_dro" / "DRO_0_0"


@pytest.mark.parametrize("modality", ["PET", "MR_T1"])
def test_contours_of_a_real_patient_equal_its_nifti_masks(modality):
    """The IBSI soft-tissue sarcoma GTV: the RTSTRUCT rasterised onto the DICOM series equals the NIfTI mask
    published with it, voxel for voxel (Dice 1)."""
    image = read_volume(STS / "dicom" / modality / "image")
    rs = STS / "dicom" / modality / "mask" / "RS.dcm"
    assert is_rtstruct(rs) and structure_names(rs) == [f"GTV_Mass_{modality}"]
    mask = rasterise_structure(rs, image)
    nifti = read_volume(STS / f"{modality}_mask.nii.gz")
    assert dice(mask, nifti) == 1.0 and sitk.GetArrayFromImage(mask).sum() > 500


def test_reference_object_contours_and_their_wider_nifti_mask():
    """The SUV reference object's RTSTRUCT has 16 contoured slices; its NIfTI mask is drawn one voxel wider
    and one slice longer at each end, hence a Dice below 1 (0.92) with the same core."""
    image = read_volume(DRO / "PT")
    mask = sitk.GetArrayFromImage(rasterise_structure(next((DRO / "RS").glob("*.dcm")), image)) > 0
    nifti = sitk.GetArrayFromImage(sitk.ReadImage(str(DRO / "mask" / "DRO_mask.nii.gz"))) > 0
    assert (mask.sum(axis=(1, 2)) > 0).sum() == 16 and (nifti.sum(axis=(1, 2)) > 0).sum() == 18
    assert not (mask & ~nifti).any()  # every contoured voxel is in the wider mask
    assert 2 * (mask & nifti).sum() / (mask.sum() + nifti.sum()) == pytest.approx(0.92, abs=0.01)


def _with_extra_structures(tmp_path):
    """The reference object's structure set with a second structure: the first contour again, shrunk by half
    about its centre on the same slice (a hole when added to the first structure)."""
    ds = pydicom.dcmread(next((DRO / "RS").glob("*.dcm")))
    first = ds.ROIContourSequence[0].ContourSequence[8]
    points = np.asarray(first.ContourData, dtype=float).reshape(-1, 3)
    centre = points.mean(axis=0)
    inner = pydicom.Dataset()
    inner.ContourGeometricType = "CLOSED_PLANAR"
    inner.NumberOfContourPoints = len(points)
    inner.ContourData = [f"{v:.3f}" for v in ((points - centre) * [0.5, 0.5, 0] + centre).ravel()]
    ds.ROIContourSequence[0].ContourSequence.append(inner)  # a hole in region_1's ninth slice
    roi = pydicom.Dataset()
    roi.ROINumber, roi.ROIName = 2, "core"
    ds.StructureSetROISequence.append(roi)
    contour = pydicom.Dataset()
    contour.ReferencedROINumber = 2
    contour.ContourSequence = pydicom.Sequence([inner])
    ds.ROIContourSequence.append(contour)
    path = tmp_path / "rs.dcm"
    ds.save_as(path)
    return path, int(np.rint(points[0, 2] / 4.0))


def test_holes_structure_choice_and_errors(tmp_path):
    image = read_volume(DRO / "PT")
    plain = sitk.GetArrayFromImage(rasterise_structure(next((DRO / "RS").glob("*.dcm")), image)) > 0
    path, k = _with_extra_structures(tmp_path)
    with pytest.raises(InputError, match=r"2 structures \['core', 'region_1'\]; name one"):
        rasterise_structure(path, image)
    holed = sitk.GetArrayFromImage(rasterise_structure(path, image, "region_1")) > 0
    core = sitk.GetArrayFromImage(rasterise_structure(path, image, "core")) > 0
    np.testing.assert_array_equal(holed, plain & ~core)  # the inner contour is cut out of its slice only
    assert core[k].sum() > 0 and core.sum() == core[k].sum()
    with pytest.raises(InputError, match=r"no structure 'GTV'; the structures are \['core', 'region_1'\]"):
        rasterise_structure(path, image, "GTV")
    with pytest.raises(InputError, match="not an RT structure set"):
        read_mask(DRO / "mask" / "DRO_mask.nii.gz", image, "core")
    assert sitk.GetArrayFromImage(read_mask(path, image, "core")).sum() == core.sum()


def test_the_volume_step_takes_an_rtstruct_mask(tmp_path):
    from nanohet.steps.volume import quantify_volume as volume

    out = tmp_path / "m.tsv"
    volume(str(STS / "dicom" / "PET" / "image"), str(STS / "dicom" / "PET" / "mask" / "RS.dcm"), str(out), "sts",
           structure="GTV_Mass_PET")
    import pandas as pd

    table = pd.read_csv(out, sep="\t").set_index(["region", "metric"]).value
    nifti = read_volume(STS / "PET_mask.nii.gz")
    voxel = np.prod(nifti.GetSpacing())
    assert table[("tumour", "volume_mm3")] == pytest.approx(sitk.GetArrayFromImage(nifti).sum() * voxel)
