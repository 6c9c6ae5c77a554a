"""GLCM and GLSZM texture features and the drug homogeneity index (nanohet.quantify.texture): the IBSI digital
phantom's reference values, an independent co-occurrence matrix (scikit-image), analytic cases and invariances."""

import numpy as np
import pytest
import SimpleITK as sitk

from conftest import DATA

from nanohet.errors import InputError
from nanohet.quantify.texture import (GLCM_CODES, GLSZM_CODES, drug_homogeneity_index, glcm_features, glcm_matrices,
                                      glcm_texture, glszm_texture, size_zones)

PHANTOM = DATA / "volumes" / "ibsi_digital_phantom"

# The rows "dig. phantom" of the IBSI manual (theibsi/ibsi-doc, docs/03_Image_features.rst), as printed.
# 3-D merged GLCM (IAZD) and 3-D GLSZM (KOBO): every feature.
GLCM_3D_MERGED = {
    "GYBY": 0.509, "60VM": 2.15, "UR99": 3.13, "TU9B": 2.57, "TF7R": 1.38, "D3YU": 3.21, "NTRS": 1.64,
    "ZGXS": 4.3, "OEEB": 7.41, "P6QZ": 2.11, "8ZQL": 0.291, "ACUI": 5.12, "8S9J": 1.38, "IB1Z": 0.688,
    "NDRX": 0.856, "WF0Z": 0.631, "1QCO": 0.902, "E8JP": 0.0574, "NI2N": 0.183, "QWB0": 5.19, "DG8W": 7.41,
    "7NFM": 17.4, "AE86": 147, "R8DG": -0.0288, "JN9H": 0.269,
}
GLSZM_3D = {
    "5QRC": 0.255, "48P8": 550, "XMSY": 0.253, "5GN9": 15.6, "5RAI": 0.0256, "HW1V": 2.76, "YH51": 503,
    "J17V": 1.49e3, "JNSA": 1.4, "Y1RO": 0.28, "4JP3": 1, "VB3A": 0.2, "P30P": 0.0676, "BYLV": 2.64, "3NSA": 331,
    "GU8N": 2.32,
}
# The other aggregations: the features whose tables were transcribed (one per aggregation route).
GLCM_OTHER = {
    "2D averaged": {"GYBY": 0.519, "TF7R": 1.42, "D3YU": 2.9, "NTRS": 1.4, "ZGXS": 4.28, "DG8W": 5.47, "7NFM": 7,
                    "AE86": 79.1},
    "2D slice-merged": {"GYBY": 0.512, "TF7R": 1.4, "D3YU": 3.06, "NTRS": 1.49, "ZGXS": 4.29, "DG8W": 5.66,
                        "7NFM": 6.98, "AE86": 80.4},
    "3D averaged": {"GYBY": 0.503, "TF7R": 1.43, "D3YU": 3.06, "NTRS": 1.56, "ZGXS": 4.29, "DG8W": 7.07,
                    "7NFM": 16.6, "AE86": 145},
}
GLSZM_2D = {"XMSY": 0.371, "GU8N": 1.93}


def _printed(value: float, reference: float) -> bool:
    return float(f"{value:.3g}") == pytest.approx(reference)


@pytest.fixture(scope="module")
def phantom():
    image = sitk.GetArrayFromImage(sitk.ReadImage(str(PHANTOM / "phantom.nii.gz"))).astype(np.int64)
    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(PHANTOM / "mask.nii.gz"))) > 0
    return image, mask


def _by_code(features: dict, codes: dict) -> dict:
    return {codes[k]: v for k, v in features.items()}


@pytest.mark.parametrize("aggregation, reference", [("3D merged", GLCM_3D_MERGED), *GLCM_OTHER.items()])
def test_glcm_reproduces_the_ibsi_digital_phantom(phantom, aggregation, reference):
    # Ng = 6: the phantom's discretisation has levels 1..6 (levels 2 and 5 are empty)
    got = _by_code(glcm_texture(*phantom, n_levels=6, aggregation=aggregation), GLCM_CODES)
    wrong = {c: (got[c], r) for c, r in reference.items() if not _printed(got[c], r)}
    assert not wrong, wrong


@pytest.mark.parametrize("aggregation, reference", [("3D", GLSZM_3D), ("2D", GLSZM_2D)])
def test_glszm_reproduces_the_ibsi_digital_phantom(phantom, aggregation, reference):
    got = _by_code(glszm_texture(*phantom, aggregation=aggregation), GLSZM_CODES)
    wrong = {c: (got[c], r) for c, r in reference.items() if not _printed(got[c], r)}
    assert not wrong, wrong


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cooccurrence_matrix_equals_scikit_image(seed):
    """The merged 2-D matrix over the whole image against scikit-image's graycomatrix (symmetric, distance 1, the
    four angles): the same counts."""
    from skimage.feature import graycomatrix

    rng = np.random.default_rng(seed)
    ng = int(rng.integers(3, 12))
    image = rng.integers(1, ng + 1, size=tuple(rng.integers(5, 40, size=2)))
    ours = glcm_matrices(image, np.ones(image.shape, bool), ng, dimensions=2).sum(axis=(0, 1))
    theirs = graycomatrix((image - 1).astype(np.uint8), [1], [0, np.pi / 4, np.pi / 2, 3 * np.pi / 4], levels=ng,
                          symmetric=True)[:, :, 0, :].sum(axis=-1)
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("seed", [3, 4])
def test_2d_features_are_invariant_to_right_angle_rotations_and_mirroring(seed):
    rng = np.random.default_rng(seed)
    image = rng.integers(1, 9, size=(30, 23))
    mask = rng.random(image.shape) < 0.8
    ref_cm = glcm_texture(image, mask, 8, aggregation="2D slice-merged")
    ref_szm = glszm_texture(image, mask)
    for transform in (np.rot90, np.fliplr, np.transpose):
        cm = glcm_texture(transform(image), transform(mask), 8, aggregation="2D slice-merged")
        szm = glszm_texture(transform(image), transform(mask))
        assert cm == pytest.approx(ref_cm) and szm == pytest.approx(ref_szm)


def test_glcm_analytic_cases():
    mask = np.ones((12, 10), bool)
    flat = glcm_texture(np.full(mask.shape, 3), mask, 4, aggregation="2D averaged")
    assert flat["joint_maximum"] == 1 and flat["contrast"] == 0 and flat["joint_entropy"] == 0
    assert flat["angular_second_moment"] == 1 and flat["joint_average"] == 3
    assert np.isnan(flat["correlation"])  # undefined for a single grey level
    checker = np.indices(mask.shape).sum(axis=0) % 2 + 1
    # rook neighbours always differ (contrast 1, correlation -1), diagonal ones never (contrast 0, correlation 1)
    per = glcm_matrices(checker, mask, 2, dimensions=2)[0]
    got = [glcm_features(m) for m in per]
    assert [g["contrast"] for g in got] == pytest.approx([1, 0, 1, 0])
    assert [g["correlation"] for g in got] == pytest.approx([-1, 1, -1, 1])
    assert glcm_texture(checker, mask, 2, aggregation="2D averaged")["contrast"] == pytest.approx(0.5)
    # only pairs with both pixels in the mask count: two pixels, one horizontal pair, counted both ways
    lone = np.zeros((3, 3), bool)
    lone[1, :2] = True
    m = glcm_matrices(np.array([[1, 1, 1], [1, 2, 1], [1, 1, 1]]), lone, 2)
    assert m.sum() == 2 and m[0, 0, 0, 1] == 1 and m[0, 0, 1, 0] == 1


def test_size_zones_analytic_cases():
    mask = np.ones((8, 6), bool)
    n = mask.size
    one = glszm_texture(np.full(mask.shape, 2), mask)
    assert one["small_zone_emphasis"] == pytest.approx(1 / n ** 2) and one["large_zone_emphasis"] == n ** 2
    assert one["zone_percentage"] == pytest.approx(1 / n) and one["zone_size_entropy"] == 0
    # a checkerboard is two 8-connected zones (diagonal neighbours join), each half the pixels
    checker = np.indices(mask.shape).sum(axis=0) % 2 + 1
    (level, size, count, n_pixels), = size_zones(checker, mask)
    assert list(level) == [1, 2] and list(size) == [n // 2, n // 2] and list(count) == [1, 1] and n_pixels == n
    # every pixel its own level: n zones of one pixel
    distinct = np.arange(1, n + 1).reshape(mask.shape)
    got = glszm_texture(distinct, mask)
    assert got["small_zone_emphasis"] == 1 and got["zone_percentage"] == 1
    assert got["zone_size_entropy"] == pytest.approx(np.log2(n))
    # 3-D: 26-connectivity joins voxels that touch at a corner only
    vol = np.ones((2, 2, 2), np.int64)
    vol[0, 0, 0] = vol[1, 1, 1] = 2
    zones = {int(lv): (int(s), int(c)) for lv, s, c in zip(*size_zones(vol, vol > 0, dimensions=3)[0][:3])}
    assert zones == {1: (6, 1), 2: (2, 1)}


def test_drug_homogeneity_index_analytic_cases():
    mask = np.ones((10, 8), bool)
    assert drug_homogeneity_index(np.full(mask.shape, 5), mask) == 1.0
    checker = np.indices(mask.shape).sum(axis=0) % 2 + 1
    assert drug_homogeneity_index(checker, mask) == pytest.approx(0.5)
    stripes = np.broadcast_to(np.arange(mask.shape[1]) % 2 + 1, mask.shape)  # one-pixel columns: a zone each
    assert drug_homogeneity_index(stripes, mask) == pytest.approx(1 / mask.shape[1])
    # min_zone_size drops the small zones from the mean zone size
    mixed = np.ones(mask.shape, np.int64)
    mixed[0, 0] = mixed[9, 7] = 2  # two one-pixel zones besides the 78-pixel one
    assert drug_homogeneity_index(mixed, mask) == pytest.approx((78 + 1 + 1) / 3 / 80)
    assert drug_homogeneity_index(mixed, mask, min_zone_size=2) == pytest.approx(78 / 80)
    # outside the mask does not count
    bigger = np.pad(np.full(mask.shape, 5), 3, constant_values=1)
    assert drug_homogeneity_index(bigger, np.pad(mask, 3)) == 1.0


def test_bad_texture_input_is_refused():
    mask = np.ones((4, 4), bool)
    with pytest.raises(InputError, match="empty"):
        glcm_texture(np.ones((4, 4), int), np.zeros((4, 4), bool))
    with pytest.raises(InputError, match="integers >= 1"):
        glszm_texture(np.zeros((4, 4), int), mask)
    with pytest.raises(InputError, match="aggregation"):
        glcm_texture(np.ones((4, 4), int), mask, aggregation="2.5D")
    with pytest.raises(InputError, match="2-D"):
        drug_homogeneity_index(np.ones((2, 4, 4), int), np.ones((2, 4, 4), bool))
    with pytest.raises(InputError, match="above n_levels"):
        glcm_matrices(np.full((4, 4), 5), mask, 4)
