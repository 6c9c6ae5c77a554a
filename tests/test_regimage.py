import numpy as np
import pytest

from nanohet.registration.images import channel_sum, first_principal_component, robust_unit, tissue_distance_map


def test_first_principal_component_recovers_the_dominant_pattern():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:60, 0:80]
    tumour = ((yy - 30) ** 2 + (xx - 40) ** 2 < 20 ** 2).astype(float)
    gradient = xx / 80.0
    # 12 ions: 9 follow the tumour (various intensities), 3 a weak gradient, all with noise
    images = [a * tumour + 0.2 * rng.random(tumour.shape) for a in np.geomspace(5, 5000, 9)]
    images += [b * gradient + 0.2 * rng.random(tumour.shape) for b in (1, 2, 3)]
    stack = np.stack(images)
    valid = np.ones(tumour.shape, bool)
    valid[:5] = False
    pc = first_principal_component(stack, valid)
    assert np.isnan(pc[:5]).all() and np.isfinite(pc[5:]).all()
    r = np.corrcoef(pc[valid], tumour[valid])[0, 1]
    assert r > 0.95  # positive: the sign follows the summed images
    # scaling one ion by 1000 does not take over the component (images are standardised)
    stack[-1] *= 1000
    assert np.corrcoef(first_principal_component(stack, valid)[valid], tumour[valid])[0, 1] > 0.95
    with pytest.raises(ValueError, match="at least 2"):
        first_principal_component(stack[:1], valid)


def test_channel_sum_weighs_channels_equally():
    a = np.zeros((10, 10))
    a[:5] = 1000.0
    b = np.zeros((10, 10))
    b[:, :5] = 1.0
    s = channel_sum([a, b])
    assert s[0, 0] == pytest.approx(2.0) and s[9, 9] == pytest.approx(0.0)
    assert s[0, 9] == pytest.approx(s[9, 0]) == pytest.approx(1.0)
    assert robust_unit(a).max() == 1.0


def test_tissue_distance_map_in_physical_units():
    yy, xx = np.mgrid[0:101, 0:101]
    disc = (yy - 50) ** 2 + (xx - 50) ** 2 <= 30 ** 2
    d = tissue_distance_map(disc, (2.0, 2.0), clip=40.0)
    assert d[50, 50] == pytest.approx(40.0)  # 60 µm deep, clipped
    assert d[50, 50 + 25] == pytest.approx(5 * 2.0, abs=2.0)  # 5 px inside the outline
    assert d[50, 50 + 35] == pytest.approx(-5 * 2.0, abs=2.0)
    assert d[0, 0] == -40.0
    with pytest.raises(ValueError, match="empty"):
        tissue_distance_map(np.zeros((5, 5), bool), (1, 1), 10)
