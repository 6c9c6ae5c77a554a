import numpy as np
import pytest
import SimpleITK as sitk

from conftest import DATA
from nanohet.errors import InputError
from nanohet.io.volumes import read_volume, write_volume
from nanohet.quantify.volume import volume_metrics


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


STS = DATA / "volumes" / "ibsi_sts_002"


def test_pet_ct_mr_in_one_grid_with_masks_carried_along():
    from nanohet.registration.volumes import mask_centroid_mm, resample_to_grid

    ct = read_volume(STS / "CT_image.nii.gz")
    centroids = {}
    for m in ("CT", "PET", "MR_T1"):
        img, mask = read_volume(STS / f"{m}_image.nii.gz"), read_volume(STS / f"{m}_mask.nii.gz")
        on_ct = resample_to_grid(img, ct)
        mask_on_ct = resample_to_grid(mask, ct, is_mask=True)
        assert on_ct.GetSize() == ct.GetSize() and on_ct.GetSpacing() == ct.GetSpacing()
        # the tumour stays where it was in physical space (within a voxel of the coarser grid)
        shift = np.linalg.norm(mask_centroid_mm(mask_on_ct) - mask_centroid_mm(mask))
        assert shift < max(mask.GetSpacing()) / 2, (m, shift)
        centroids[m] = mask_centroid_mm(mask_on_ct)
        # uptake/intensity inside the tumour survives resampling (partial volume at the edge only)
        before = volume_metrics(img, mask)["mean"]
        after = volume_metrics(on_ct, mask_on_ct)["mean"]
        assert after == pytest.approx(before, rel=0.1), m
    # the three GTVs describe one tumour: after resampling they coincide within 1 mm
    assert np.linalg.norm(centroids["PET"] - centroids["CT"]) < 1.0
    assert np.linalg.norm(centroids["MR_T1"] - centroids["CT"]) < 1.0


def test_direction_cosines_are_respected(tmp_path):
    import zipfile

    from nanohet.registration.volumes import resample_to_grid

    d = DATA / "volumes" / "i2nii"
    with zipfile.ZipFile(d / "DICOM.zip") as z:
        z.extractall(tmp_path)
    series = [p.parent for p in tmp_path.rglob("*") if p.is_file()][0]
    dicom = read_volume(series)
    mha = read_volume(d / "mha.mha")
    assert mha.GetDirection()[4] == -1.0
    a = sitk.GetArrayFromImage(dicom).astype(float)
    raw = sitk.GetArrayFromImage(mha).astype(float)
    if raw.shape == a.shape:  # raw voxel arrays disagree (y is flipped) ...
        assert np.corrcoef(a.ravel(), raw.ravel())[0, 1] < 0.9
    # ... but in physical space the two files are the same acquisition
    on_dicom = sitk.GetArrayFromImage(resample_to_grid(mha, dicom)).astype(float)
    inside = a > np.percentile(a, 50)
    assert np.corrcoef(a[inside], on_dicom[inside])[0, 1] > 0.99


def test_rigid_3d_registration_recovers_a_known_offset():
    from nanohet.registration import register_rigid_3d
    from nanohet.settings import VolumeRegistrationSettings
    from nanohet.registration.volumes import mask_centroid_mm, resample_to_grid

    ct = read_volume(STS / "CT_image.nii.gz")
    mr = read_volume(STS / "MR_T1_image.nii.gz")
    mr_mask = read_volume(STS / "MR_T1_mask.nii.gz")
    offset = np.array([9.0, -7.0, 4.0])  # mm: the MR scanner frame moved
    for img in (mr, mr_mask):
        img.SetOrigin(tuple(np.array(img.GetOrigin()) + offset))
    settings = VolumeRegistrationSettings(sampling_percentage=0.2).optimiser()  # seeded: still deterministic
    a = register_rigid_3d(ct, mr, settings)
    b = register_rigid_3d(ct, mr, settings)
    assert a.transform.GetParameters() == b.transform.GetParameters()  # deterministic
    assert a.metric_after < a.metric_before
    # the recovered map moves CT points by the offset (the MR content sits offset further along)
    centre = mask_centroid_mm(read_volume(STS / "CT_mask.nii.gz"))
    moved = np.array(a.transform.TransformPoint(tuple(centre)))
    assert np.linalg.norm(moved - centre - offset) < 1.5  # CT voxels: 0.98 x 0.98 x 3.27 mm
    mask_on_ct = resample_to_grid(mr_mask, ct, a.transform, is_mask=True)
    assert np.linalg.norm(mask_centroid_mm(mask_on_ct) - centre) < 1.5


@pytest.mark.parametrize("moving", ["MR_T1", "PET"])
def test_volumes_sharing_the_scanner_frame_keep_its_alignment(tmp_path, moving):
    """IBSI STS_002: PET, CT and MR of one patient already share the scanner frame (mask Dice of the scanner
    frame: MR 1.00, PET 0.93), but mutual information peaks elsewhere on them. Declared shared, the edge starts
    from the scanner frame, sees that its fit is worse, keeps the scanner frame and says so."""
    import pandas as pd

    from nanohet.registration.qc import dice
    from nanohet.registration.volumes import resample_to_grid
    from nanohet.steps.volume import register_volume_edge

    sts = DATA / "volumes" / "ibsi_sts_002"
    register_volume_edge("p1", moving.lower(), "ct", str(sts / f"{moving}_image.nii.gz"), str(sts / "CT_image.nii.gz"),
                         {"sampling_percentage": 0.25}, str(tmp_path / "t.tfm"), str(tmp_path / "qc.tsv"),
                         str(sts / f"{moving}_mask.nii.gz"), str(sts / "CT_mask.nii.gz"), shared_frame=True)
    qc = pd.read_csv(tmp_path / "qc.tsv", sep="\t").iloc[0]
    assert qc.start == "scanner"
    ct_mask = read_volume(sts / "CT_mask.nii.gz")
    kept = resample_to_grid(read_volume(sts / f"{moving}_mask.nii.gz"), ct_mask,
                            sitk.ReadTransform(str(tmp_path / "t.tfm")), is_mask=True)
    final = dice(sitk.GetArrayFromImage(ct_mask) > 0, sitk.GetArrayFromImage(kept) > 0)
    assert final >= qc.dice_before - 0.02  # no worse than the scanner frame
    if bool(qc.flagged):  # the fit was worse: the start is kept, and the table says so
        assert bool(qc.kept_start) and "kept the start pose" in qc.flag_reason and final == pytest.approx(qc.dice_before, abs=1e-9)


def test_a_moved_mr_frame_is_recovered_or_flagged(tmp_path):
    """The MR of IBSI STS_002 with its scanner frame moved by 10 mm and 8 degrees, no shared frame declared:
    the edge recovers the move to within 2 mm at the tumour, or flags itself."""
    import math

    import pandas as pd

    from nanohet.registration.volumes import mask_centroid_mm
    from nanohet.steps.volume import register_volume_edge

    sts = DATA / "volumes" / "ibsi_sts_002"
    a = math.radians(8.0)
    rot = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    shift = np.array([6.0, -8.0, 0.0])
    for name in ("MR_T1_image", "MR_T1_mask"):
        img = read_volume(sts / f"{name}.nii.gz")
        img.SetDirection(tuple((rot @ np.array(img.GetDirection()).reshape(3, 3)).ravel()))
        img.SetOrigin(tuple(rot @ np.array(img.GetOrigin()) + shift))
        write_volume(tmp_path / f"{name}.nii.gz", img)
    register_volume_edge("p1", "mr", "ct", str(tmp_path / "MR_T1_image.nii.gz"), str(sts / "CT_image.nii.gz"),
                         {"sampling_percentage": 0.25}, str(tmp_path / "t.tfm"), str(tmp_path / "qc.tsv"),
                         str(tmp_path / "MR_T1_mask.nii.gz"), str(sts / "CT_mask.nii.gz"))
    qc = pd.read_csv(tmp_path / "qc.tsv", sep="\t").iloc[0]
    centre = mask_centroid_mm(read_volume(sts / "CT_mask.nii.gz"))
    moved = np.array(sitk.ReadTransform(str(tmp_path / "t.tfm")).TransformPoint(tuple(centre)))
    error = np.linalg.norm(moved - (rot @ centre + shift))
    assert qc.start == "geometry" and (error < 2.0 or bool(qc.flagged)), (error, qc.flag_reason)


def test_dicom_frame_of_reference(tmp_path):
    import zipfile

    from nanohet.io.volumes import frame_of_reference

    with zipfile.ZipFile(DATA / "volumes" / "i2nii" / "DICOM.zip") as z:
        z.extractall(tmp_path)
    uid = frame_of_reference(tmp_path / "DICOM")
    assert uid and uid.startswith("1.2.840.") and uid == frame_of_reference(sorted((tmp_path / "DICOM").glob("*.dcm"))[0])
    assert frame_of_reference(DATA / "volumes" / "ibsi_sts_002" / "CT_image.nii.gz") is None  # NIfTI: none


def test_intensity_peaks_reproduce_the_ibsi_digital_phantom():
    """IBSI local (VJGA) and global (0F91) intensity peaks of the digital phantom: 2.6 and 3.1."""
    from nanohet.quantify.volume import intensity_peaks

    d = DATA / "volumes" / "ibsi_digital_phantom"
    img = read_volume(d / "phantom.nii.gz")
    values = sitk.GetArrayFromImage(img).astype(np.float64)
    mask = sitk.GetArrayFromImage(read_volume(d / "mask.nii.gz")) > 0
    local, peak = intensity_peaks(values, mask, tuple(reversed(img.GetSpacing())))
    assert float(f"{local:.2g}") == 2.6 and float(f"{peak:.2g}") == 3.1


@pytest.mark.parametrize("spacing", [(2.0, 2.0, 2.0), (3.27, 1.1, 0.9)])
def test_peak_sphere_and_a_single_hot_voxel(spacing):
    """The 1 cm³ sphere holds the voxels whose centres lie within 6.2 mm, on anisotropic grids too; one hot
    voxel in a flat image gives the local peak (hot + (k - 1) flat) / k with k the sphere's voxels."""
    from nanohet.quantify.volume import intensity_peaks, sphere_kernel

    kernel = sphere_kernel(spacing)
    radius = (3 * 1000 / (4 * np.pi)) ** (1 / 3)
    zz, yy, xx = (np.arange(-15, 16) * s for s in spacing)
    brute = sum(((z * z + y * y + x * x) <= radius ** 2) for z in zz for y in yy for x in xx)
    assert kernel.sum() == brute
    k = int(kernel.sum())
    values = np.full((31, 31, 31), 2.0)
    values[15, 15, 15] = 50.0
    mask = np.zeros(values.shape, bool)
    mask[10:21, 10:21, 10:21] = True
    local, peak = intensity_peaks(values, mask, spacing)
    assert local == pytest.approx((50 + (k - 1) * 2) / k) and peak == pytest.approx(local)
    flat = intensity_peaks(np.full((9, 9, 9), 3.0), np.ones((9, 9, 9), bool), spacing)
    assert flat == pytest.approx((3.0, 3.0))


def test_volume_rows_shells_texture_and_peaks():
    """A sphere of uptake falling from rim to core: shells partition the tumour by depth in mm, the rim is
    hotter than the core, the texture and peaks are reported with their IBSI identifiers."""
    from nanohet.quantify.volume import depth_shells, volume_rows
    from nanohet.settings import QuantifySettings

    spacing = (0.5, 0.5, 0.8)  # x, y, z mm
    zz, yy, xx = np.mgrid[:25, :40, :40]
    r = np.sqrt(((xx - 20) * 0.5) ** 2 + ((yy - 20) * 0.5) ** 2 + ((zz - 12) * 0.8) ** 2)
    tumour = r <= 8.0
    values = np.where(tumour, 1.0 + r / 8.0, 0.2) + np.random.default_rng(0).normal(0, 0.01, r.shape)
    img = sitk.GetImageFromArray(values.astype(np.float32))
    img.SetSpacing(spacing)
    msk = sitk.GetImageFromArray(tumour.astype(np.uint8))
    msk.CopyInformation(img)
    q = QuantifySettings(volume_shell_edges_mm=(1.0, 2.5))
    rows = {(r["region"], r["metric"]): r for r in volume_rows(img, msk, q, "SUV")}
    shells = depth_shells(tumour, (0.8, 0.5, 0.5), (1.0, 2.5))
    np.testing.assert_array_equal(sum(s.astype(int) for s in shells.values()), tumour.astype(int))
    assert rows[("rim", "mean")]["value"] > rows[("periphery", "mean")]["value"] > rows[("core", "mean")]["value"]
    for name, shell in shells.items():
        assert rows[(name, "mean")]["value"] == pytest.approx(values[shell].mean(), rel=1e-6)
    assert rows[("tumour", "rim_to_core_ratio")]["value"] == pytest.approx(
        values[shells["rim"]].mean() / values[shells["core"]].mean(), rel=1e-6)
    assert rows[("tumour", "stat_maximum")]["unit"] == "SUV" and rows[("tumour", "stat_maximum")]["ibsi"] == "84IY"
    assert rows[("tumour", "global_intensity_peak")]["ibsi"] == "0F91"
    assert rows[("tumour", "global_intensity_peak")]["value"] <= rows[("tumour", "stat_maximum")]["value"]
    assert rows[("tumour", "glcm_correlation")]["ibsi"] == "NI2N" and rows[("tumour", "glcm_correlation")]["value"] > 0.5
    assert ("tumour", "dhi") not in rows  # the drug homogeneity index is a section measure


def test_dicom_folders_with_several_series_single_slices_and_grid_messages(tmp_path):
    """A folder with two series is refused with both listed, then read by UID or description; a single slice
    takes its thickness from the header (refused without one); a mask off the grid names what differs."""
    import pydicom
    from pydicom.uid import generate_uid

    from nanohet.io.volumes import dicom_series

    src = DATA / "volumes" / "oncoray_suv_dro" / "DRO_0_0" / "PT"
    folder = tmp_path / "two"
    folder.mkdir()
    uid = generate_uid(entropy_srcs=["nanohet-test-series"])
    for f in sorted(src.glob("*.dcm")):
        (folder / f.name).write_bytes(f.read_bytes())
        ds = pydicom.dcmread(f)
        ds.SeriesInstanceUID, ds.SeriesDescription = uid, "late frame"
        ds.SOPInstanceUID = generate_uid(entropy_srcs=[f.name])
        ds.save_as(folder / f"late_{f.name}")
    assert len(dicom_series(folder)) == 2
    with pytest.raises(InputError, match=r"2 DICOM series; choose one .*late frame, PT, 20 files"):
        read_volume(folder)
    late = read_volume(folder, "late frame")
    same = read_volume(folder, uid)
    assert late.GetSize() == (256, 256, 20) and np.array_equal(sitk.GetArrayFromImage(late),
                                                               sitk.GetArrayFromImage(same))
    with pytest.raises(InputError, match="no series match 'early'"):
        read_volume(folder, "early")

    one = tmp_path / "one.dcm"
    one.write_bytes(next(src.glob("*.dcm")).read_bytes())
    thickness = float(pydicom.dcmread(one).SliceThickness)
    assert read_volume(one).GetSpacing()[2] == pytest.approx(thickness)
    ds = pydicom.dcmread(one)
    del ds.SliceThickness
    if "SpacingBetweenSlices" in ds:
        del ds.SpacingBetweenSlices
    ds.save_as(one)
    with pytest.raises(InputError, match="single DICOM slice without SliceThickness"):
        read_volume(one)

    img = sitk.GetImageFromArray(np.ones((4, 5, 6), np.float32))
    mask = sitk.GetImageFromArray(np.ones((4, 5, 6), np.uint8))
    mask.SetOrigin((0.0, 2.5, 0.0))
    with pytest.raises(InputError, match=r"origin \(0.0, 0.0, 0.0\) vs \(0.0, 2.5, 0.0\)"):
        volume_metrics(img, mask)
