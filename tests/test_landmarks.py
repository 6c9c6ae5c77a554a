import math

import numpy as np
import pytest
import SimpleITK as sitk

from conftest import section_settings
from nanohet.errors import InputError
from nanohet.registration.landmarks import landmark_transform, read_landmarks
from nanohet.registration import prepare_image, register, target_registration_error

from test_registration import _known_pair


def _affine(angle_deg, scale, shift, centre=(800.0, 800.0), mirror=False):
    tx = sitk.AffineTransform(2)
    tx.SetCenter(centre)
    th = math.radians(angle_deg)
    a = scale * np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    if mirror:
        a = np.diag([-1.0, 1.0]) @ a
    tx.SetMatrix(tuple(a.ravel()))
    tx.SetTranslation(shift)
    return tx


@pytest.mark.parametrize("mirror", [False, True])
def test_landmark_transform_recovers_a_known_affine(mirror):
    truth = _affine(140.0, 1.1, (30.0, -12.0), mirror=mirror)
    rng = np.random.default_rng(0)
    fixed = rng.uniform(0, 1600, (6, 2))
    moving = np.array([truth.TransformPoint(tuple(p)) for p in fixed])
    tx = landmark_transform(fixed, moving)
    probe = rng.uniform(0, 1600, (50, 2))
    expected = np.array([truth.TransformPoint(tuple(p)) for p in probe])
    assert np.max(target_registration_error(tx, probe, expected)) < 1e-6
    assert (np.linalg.det(np.array(tx.GetMatrix()).reshape(2, 2)) < 0) == mirror


def _write(tmp_path, text, name="lm.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_read_landmarks_roles(tmp_path):
    path = _write(tmp_path, "fixed_x,fixed_y,moving_x,moving_y,role\n0,0,1,1,init\n10,0,11,1,\n0,10,1,11,init\n"
                            "5,5,6,6,check\n")
    lm = read_landmarks(path)
    assert lm.fixed.shape == (4, 2)
    assert lm.init.tolist() == [True, True, True, False]
    assert lm.check.tolist() == [False, True, False, True]
    assert not lm.independent_check  # row 2 is used for both
    only_check = _write(tmp_path, "fixed_x,fixed_y,moving_x,moving_y,role\n0,0,1,1,init\n10,0,11,1,init\n"
                                  "0,10,1,11,init\n5,5,6,6,check\n", "b.csv")
    assert read_landmarks(only_check).independent_check


@pytest.mark.parametrize("text, message", [
    ("fixed_x,fixed_y,moving_x\n0,0,1\n", "missing landmark columns"),
    ("fixed_x,fixed_y,moving_x,moving_y\n0,0,1,1\n10,0,11,a\n0,10,1,11\n", "must be numbers"),
    ("fixed_x,fixed_y,moving_x,moving_y\n0,0,1,1\n10,0,11,\n0,10,1,11\n", "row 3"),
    ("fixed_x,fixed_y,moving_x,moving_y\n0,0,1,1\n10,10,11,11\n20,20,21,21\n", "non-collinear"),
    ("fixed_x,fixed_y,moving_x,moving_y,role\n0,0,1,1,x\n", "unknown landmark role"),
])
def test_bad_landmark_files_name_sample_and_file(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(InputError, match=message) as err:
        read_landmarks(path, sample="m01_T1")
    assert "m01_T1" in str(err.value) and str(path) in str(err.value)
    with pytest.raises(InputError, match="not found"):
        read_landmarks(tmp_path / "missing.csv", sample="m01_T1")


def _grid(truth, mirror_about=None):
    ys, xs = np.mgrid[30:130:10, 30:130:10] * 10.0
    pts = np.stack([xs.ravel(), ys.ravel()], 1).astype(float)
    true = np.array([truth.TransformPoint(tuple(p)) for p in pts])
    if mirror_about is not None:
        true[:, 0] = 2 * mirror_about - true[:, 0]
    return pts, true


@pytest.mark.parametrize("transform", ["rigid", "affine"])
def test_landmark_initialisation_recovers_a_mirrored_large_rotation(transform):
    """Without any search, 4 rough landmarks (±15 µm) start the fit of a mirrored, 150°-rotated section."""
    fixed, moving, truth = _known_pair(angle_deg=150.0, scale=1.0)
    f = prepare_image(sitk.GetArrayFromImage(fixed), (10, 10), (0, 0))
    m = prepare_image(sitk.GetArrayFromImage(moving)[:, ::-1], (10, 10), (0, 0))
    pts, true = _grid(truth, mirror_about=795.0)
    rng = np.random.default_rng(5)
    idx = [0, 9, 90, 99]  # four corners of the grid
    init = landmark_transform(pts[idx] + rng.normal(0, 15, (4, 2)), true[idx] + rng.normal(0, 15, (4, 2)))
    settings = section_settings(transform=transform, smoothing_sigmas_um=[20.0, 10.0, 0.0])
    res = register(f, m, settings, initial_transform=init)
    assert res.flipped
    assert np.median(target_registration_error(init, pts, true)) > 5.0  # the start is rough
    assert np.median(target_registration_error(res.transform, pts, true)) < 3.0
    plain = register(f, m, settings)  # same settings without landmarks: no search, so it fails
    assert np.median(target_registration_error(plain.transform, pts, true)) > 50.0
