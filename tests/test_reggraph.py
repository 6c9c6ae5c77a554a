import math

import numpy as np
import pytest
import SimpleITK as sitk

from nanohet.errors import InputError
from nanohet.registration.graph import Edge, chain, compose, parse_edges, sample_chains


def _affine(angle_deg, scale, shift, centre):
    tx = sitk.AffineTransform(2)
    th = math.radians(angle_deg)
    tx.SetMatrix((scale * math.cos(th), -scale * math.sin(th), scale * math.sin(th), 1.1 * scale * math.cos(th)))
    tx.SetTranslation(shift)
    tx.SetCenter(centre)
    return tx


def test_compose_equals_applying_the_chain():
    he_to_fl = _affine(30, 1.05, (12.0, -40.0), (500.0, 400.0))
    msi_to_he = _affine(-110, 0.98, (300.0, 25.0), (2000.0, 1500.0))
    both = compose([he_to_fl, msi_to_he])
    rng = np.random.default_rng(0)
    for p in rng.uniform(0, 3000, (20, 2)):
        expected = msi_to_he.TransformPoint(he_to_fl.TransformPoint(tuple(p)))
        np.testing.assert_allclose(both.TransformPoint(tuple(p)), expected, atol=1e-9)


def test_chains_follow_the_config():
    edges = parse_edges([{"moving": "msi", "fixed": "he", "transform": "rigid"},
                         {"moving": "he", "fixed": "fluorescence"}])
    assert [e.name for e in chain(edges, "msi")] == ["msi_to_he", "he_to_fluorescence"]
    assert edges[0].settings == {"transform": "rigid"}
    chains = sample_chains(edges, {"fluorescence", "he", "msi"}, "m1_T1")
    assert set(chains) == {"msi", "he"}
    with pytest.raises(InputError, match="sample m1_T1: msi is registered via he"):
        sample_chains(edges, {"fluorescence", "msi"}, "m1_T1")
    assert sample_chains(edges, {"fluorescence"}, "m1_T1") == {}


@pytest.mark.parametrize("edges, message", [
    ([{"moving": "msi", "fixed": "ct"}], "fixed 'ct' is not one of"),
    ([{"moving": "msi", "fixed": "msi"}], "onto itself"),
    ([{"moving": "fluorescence", "fixed": "he"}], "reference frame"),
    ([{"moving": "msi", "fixed": "fluorescence"}, {"moving": "msi", "fixed": "he"}], "moving in two edges"),
    ([{"moving": "msi", "fixed": "he"}, {"moving": "he", "fixed": "msi"}], "loops back"),
    ([{"moving": "msi", "fixed": "he"}], "he has no edge towards the reference"),
])
def test_bad_graphs_are_rejected(edges, message):
    with pytest.raises(InputError, match=message):
        parse_edges(edges)


def test_edge_identity_ignores_settings():
    assert Edge("msi", "he", {"a": 1}) == Edge("msi", "he", {})


def _bspline(seed=0, amplitude=15.0):
    grid = sitk.Image(50, 40, sitk.sitkFloat32)
    grid.SetSpacing((20.0, 20.0))
    grid.SetOrigin((100.0, 50.0))
    tx = sitk.BSplineTransformInitializer(grid, [4, 4], 3)
    rng = np.random.default_rng(seed)
    tx.SetParameters(tuple(rng.normal(0, amplitude, len(tx.GetParameters()))))
    return tx


def test_compose_keeps_a_deformation_and_survives_a_file(tmp_path):
    he_to_fl = _affine(30, 1.05, (12.0, -40.0), (500.0, 400.0))
    edge = sitk.CompositeTransform([_affine(-10, 0.98, (30.0, 25.0), (600.0, 500.0)), _bspline()])
    sitk.WriteTransform(edge, str(tmp_path / "edge.tfm"))
    read_back = sitk.ReadTransform(str(tmp_path / "edge.tfm"))
    both = compose([he_to_fl, read_back])
    assert both.GetName() == "CompositeTransform"
    for p in np.random.default_rng(1).uniform(0, 1200, (50, 2)):
        expected = edge.TransformPoint(he_to_fl.TransformPoint(tuple(p)))
        np.testing.assert_allclose(both.TransformPoint(tuple(p)), expected, atol=1e-9)
    assert compose([he_to_fl, _affine(5, 1.0, (1.0, 2.0), (0.0, 0.0))]).GetName() == "AffineTransform"


def test_invert_undoes_a_composite_with_a_deformation():
    from nanohet.registration.graph import invert

    forward = sitk.CompositeTransform([_affine(20, 1.02, (40.0, -10.0), (500.0, 400.0)), _bspline()])
    inverse = invert(forward)
    # points well inside the B-spline's domain (at its border ITK's B-spline stops abruptly)
    pts = np.random.default_rng(2).uniform([200, 150], [1000, 750], (300, 2))
    moved = [forward.TransformPoint(tuple(p)) for p in pts]
    back = np.array([inverse.TransformPoint(q) for q in moved])
    err = np.hypot(*(back - pts).T)
    shift = np.hypot(*(np.array(moved) - pts).T)
    assert shift.min() > 5.0 and np.median(err) < 0.02 and err.max() < 0.2
    affine = _affine(20, 1.02, (40.0, -10.0), (500.0, 400.0))
    np.testing.assert_allclose(invert(affine).TransformPoint(affine.TransformPoint((3.0, 4.0))), (3.0, 4.0), atol=1e-9)
