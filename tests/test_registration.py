import math

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from nanohet.image import to_sitk
from nanohet.registration import (RegistrationSettings, dice, prepare_image, register, resample_to,
                                  target_registration_error)


def _blobs(n=160, seed=0):
    rng = np.random.default_rng(seed)
    img = np.zeros((n, n))
    yy, xx = np.mgrid[0:n, 0:n]
    img[(yy - n / 2) ** 2 / 0.9 + (xx - n / 2) ** 2 < (0.33 * n) ** 2] = 1.0
    img[(yy - 0.35 * n) ** 2 + (xx - 0.75 * n) ** 2 < (0.12 * n) ** 2] = 1.0  # a lobe: sections are not symmetric
    img[(yy - 0.6 * n) ** 2 + (xx - 0.45 * n) ** 2 < (0.08 * n) ** 2] = 0.3  # a paler (necrotic) region
    pts = rng.integers(n // 4, 3 * n // 4, (25, 2))
    img[pts[:, 0], pts[:, 1]] = 8.0
    return ndimage.gaussian_filter(img, 2.0)


def _known_pair(angle_deg=7.0, scale=1.04, shift=(12.0, -8.0)):
    fixed_arr = _blobs()
    spacing = 10.0
    fixed = to_sitk(fixed_arr, (spacing, spacing))
    truth = sitk.AffineTransform(2)
    c = 80 * spacing
    truth.SetCenter((c, c))
    th = math.radians(angle_deg)
    truth.SetMatrix((scale * math.cos(th), -scale * math.sin(th), scale * math.sin(th), scale * math.cos(th)))
    truth.SetTranslation(shift)
    # moving image: what the fixed scene looks like through the inverse of truth
    moving_arr = resample_to(fixed, fixed, truth.GetInverse(), default=0.0)
    return fixed, to_sitk(moving_arr, (spacing, spacing)), truth


def _grid_tre(result_tx, truth, n=160, spacing=10.0):
    ys, xs = np.mgrid[30:130:10, 30:130:10] * spacing
    pts = np.stack([xs.ravel(), ys.ravel()], 1).astype(float)
    # moving(p) = fixed(truth^-1(p)), so fixed point x sits at truth(x) in the moving image
    true_moving = np.array([truth.TransformPoint(tuple(p)) for p in pts])
    return target_registration_error(result_tx, pts, true_moving)


def test_recovers_a_known_similarity_transform():
    fixed, moving, truth = _known_pair()
    res = register(prepare_image(sitk.GetArrayFromImage(fixed), (10, 10), (0, 0)),
                   prepare_image(sitk.GetArrayFromImage(moving), (10, 10), (0, 0)),
                   RegistrationSettings(smoothing_sigmas=[20.0, 10.0, 0.0]))
    tre = _grid_tre(res.transform, truth)
    assert np.median(tre) < 2.0  # µm, on a 10 µm grid
    assert res.metric_after < res.metric_before


def test_rotation_search_handles_a_large_rotation():
    fixed, moving, truth = _known_pair(angle_deg=120.0, scale=1.0)
    f = prepare_image(sitk.GetArrayFromImage(fixed), (10, 10), (0, 0))
    m = prepare_image(sitk.GetArrayFromImage(moving), (10, 10), (0, 0))
    no_search = register(f, m, RegistrationSettings(transform="rigid"))
    search = register(f, m, RegistrationSettings(transform="rigid", rotation_search_deg=list(range(-180, 180, 30))))
    assert np.median(_grid_tre(search.transform, truth)) < 3.0
    assert np.median(_grid_tre(no_search.transform, truth)) > 50.0


def test_reruns_are_bit_identical():
    fixed, moving, _ = _known_pair()
    a = register(fixed, moving)
    b = register(fixed, moving)
    assert a.transform.GetParameters() == b.transform.GetParameters()
    assert a.transform.GetFixedParameters() == b.transform.GetFixedParameters()


def test_tre_of_a_pure_translation():
    tx = sitk.TranslationTransform(2, (3.0, 4.0))
    pts = np.array([[0.0, 0.0], [10.0, 5.0]])
    np.testing.assert_allclose(target_registration_error(tx, pts, pts), [5.0, 5.0])
    np.testing.assert_allclose(target_registration_error(tx, pts, pts + [3, 4]), [0.0, 0.0])


def test_dice():
    a = np.zeros((4, 4), bool)
    a[:2] = True
    b = np.zeros((4, 4), bool)
    b[1:3] = True
    assert dice(a, b) == pytest.approx(0.5)
    assert np.isnan(dice(np.zeros(3, bool), np.zeros(3, bool)))


def test_flip_search_recovers_a_mirrored_section():
    fixed, moving, truth = _known_pair(angle_deg=35.0, scale=1.0)
    f = prepare_image(sitk.GetArrayFromImage(fixed), (10, 10), (0, 0))
    mirrored_arr = sitk.GetArrayFromImage(moving)[:, ::-1]
    m = prepare_image(mirrored_arr, (10, 10), (0, 0))
    res = register(f, m, RegistrationSettings(transform="rigid", rotation_search_deg=list(range(-180, 180, 30)),
                                              flip_search=True))
    assert res.flipped
    # the true position in the mirrored image of fixed point x: mirror(truth(x)) about x = 795 µm
    ys, xs = np.mgrid[30:130:10, 30:130:10] * 10.0
    pts = np.stack([xs.ravel(), ys.ravel()], 1).astype(float)
    true = np.array([truth.TransformPoint(tuple(p)) for p in pts])
    true[:, 0] = 2 * 795.0 - true[:, 0]
    assert np.median(target_registration_error(res.transform, pts, true)) < 3.0
    without = register(f, m, RegistrationSettings(transform="rigid", rotation_search_deg=list(range(-180, 180, 30))))
    assert not without.flipped
    assert np.median(target_registration_error(without.transform, pts, true)) > 20.0


def test_geometry_centring_option():
    fixed, moving, truth = _known_pair(angle_deg=0.0, scale=1.0, shift=(30.0, -20.0))
    f = prepare_image(sitk.GetArrayFromImage(fixed), (10, 10), (0, 0))
    m = prepare_image(sitk.GetArrayFromImage(moving), (10, 10), (0, 0))
    res = register(f, m, RegistrationSettings(transform="rigid", centring="geometry",
                                              smoothing_sigmas=[20.0, 10.0, 0.0]))
    assert res.initial_rotation_deg == 0.0
    assert np.median(_grid_tre(res.transform, truth)) < 2.0
    with pytest.raises(ValueError, match="centring must be moments or geometry"):
        register(f, m, RegistrationSettings(centring="middle"))
