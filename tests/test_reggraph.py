import math

import numpy as np
import pytest
import SimpleITK as sitk

from nanohet.errors import InputError
from nanohet.reggraph import Edge, chain, compose, parse_edges, sample_chains


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
    edges = parse_edges({"edges": [{"moving": "msi", "fixed": "he", "transform": "rigid"},
                                   {"moving": "he", "fixed": "fluorescence"}]})
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
        parse_edges({"edges": edges})


def test_edge_identity_ignores_settings():
    assert Edge("msi", "he", {"a": 1}) == Edge("msi", "he", {})
