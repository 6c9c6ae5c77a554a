"""The tissue of an MSI-only sample from its TIC (nanohet.msi.tissue) and which measures a sample can have."""

import numpy as np
import pytest

from nanohet.errors import InputError
from nanohet.msi.tissue import MIN_SEPARABILITY, msi_tissue_mask, otsu_separability
from nanohet.quantify.availability import MEASURES, measure_availability


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tissue_from_the_tic_recovers_a_section_on_glass(seed):
    """A random ellipse of tissue (TIC log-normal around 10^4) on matrix-covered glass (around 2 x 10^3), with an
    unacquired border and a low-TIC necrotic hole inside: the mask is the ellipse, hole filled."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:120, :150]
    cy, cx, ry, rx = 60 + rng.uniform(-8, 8), 75 + rng.uniform(-8, 8), rng.uniform(25, 45), rng.uniform(30, 55)
    truth = ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1
    hole = ((y - cy) / (ry / 4)) ** 2 + ((x - cx) / (rx / 4)) ** 2 <= 1
    tic = np.where(truth & ~hole, 1e4, 2e3) * rng.lognormal(0, 0.25, y.shape)
    acquired = np.ones(y.shape, dtype=bool)
    acquired[:5] = False
    tic[~acquired] = np.nan
    tissue, info = msi_tissue_mask(tic, acquired)
    truth &= acquired
    assert (tissue == truth).mean() > 0.99 and not (tissue & ~acquired).any()
    assert tissue[hole].all()  # the necrotic hole is tissue
    assert info["separability"] > MIN_SEPARABILITY and 2e3 < info["threshold_tic"] < 1e4
    assert info["fraction_of_acquired"] == pytest.approx(tissue.sum() / acquired.sum())


def test_acquired_method_and_errors():
    tic = np.random.default_rng(3).lognormal(8, 0.3, (20, 30))
    acquired = np.zeros(tic.shape, dtype=bool)
    acquired[2:18, 3:27] = True
    tissue, info = msi_tissue_mask(tic, acquired, "acquired")
    assert (tissue == acquired).all() and np.isnan(info["separability"])
    # one class only: Otsu still splits, and says so by a low separability
    _, info = msi_tissue_mask(tic, acquired)
    assert info["separability"] < MIN_SEPARABILITY
    with pytest.raises(InputError, match="s1.imzML.*no acquired pixel"):
        msi_tissue_mask(tic, np.zeros(tic.shape, dtype=bool), where="s1.imzML")
    with pytest.raises(InputError, match="tissue mask method 'otsu'"):
        msi_tissue_mask(tic, acquired, "otsu")


def test_separability_analytic_cases():
    """Otsu's eta: 1 for two point masses, 0.75 for a uniform histogram split at its middle, 2/pi for a normal
    split at its mean."""
    assert otsu_separability(np.array([0.0] * 5 + [1.0] * 7), 0.5) == pytest.approx(1.0)
    u = np.linspace(0, 1, 100_001)
    assert otsu_separability(u, 0.5) == pytest.approx(0.75, abs=1e-4)
    z = np.random.default_rng(0).standard_normal(400_000)
    assert otsu_separability(z, 0.0) == pytest.approx(2 / np.pi, abs=5e-3)


def test_availability_names_what_is_missing():
    table = measure_availability({"s2": {"msi"}, "s1": {"fluorescence", "msi", "volume"}, "s3": {"ct", "volume"}})
    assert list(table["sample"].unique()) == ["s1", "s2", "s3"] and len(table) == 3 * len(MEASURES)
    t = table.set_index(["sample", "measure"])
    assert t.available[("s1", "analyte_nanoparticle_colocalisation")] and not t.available[("s1", "ct_tumour")]
    assert t.reason[("s2", "analytes_reference_grid")] == "needs a fluorescence row in the sample sheet"
    assert t.available[("s2", "analytes_native_pixels")] and t.reason[("s2", "analytes_native_pixels")] == ""
    assert t.available[("s3", "ct_tumour")] and not t.available[("s3", "cells")]
    assert t.reason[("s3", "mr_tumour")] == "needs an mr row with a tumour mask in the sample sheet"
