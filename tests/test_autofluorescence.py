"""Autofluorescence of unlabelled controls (nanohet.microscopy.autofluorescence) and the demo's control section."""

import numpy as np
import pandas as pd
import pytest

from nanohet.errors import InputError
from nanohet.microscopy.autofluorescence import autofluorescence_levels, pooled_levels, subtract_autofluorescence


def _section(rng, af_viable, af_necrosis, label=None):
    """A disc of tissue with a necrotic core on a background of 100 counts, Poisson noise."""
    y, x = np.mgrid[:200, :200]
    r = np.hypot(y - 100, x - 100)
    tissue, necrosis = r < 80, r < 25
    signal = 100.0 + np.where(necrosis, af_necrosis, np.where(tissue, af_viable, 0.0))
    if label is not None:
        signal = signal + np.where(tissue, label, 0.0)
    return rng.poisson(signal).astype(np.float64), tissue, necrosis


@pytest.mark.parametrize("seed", [0, 1])
def test_levels_of_a_control_and_their_subtraction_restore_the_label(seed):
    rng = np.random.default_rng(seed)
    control, tissue, necrosis = _section(rng, 60.0, 100.0)
    levels = autofluorescence_levels(control, tissue, necrosis)
    assert levels["viable"] == pytest.approx(60.0, abs=1.0) and levels["necrosis"] == pytest.approx(100.0, abs=1.5)
    assert levels["n_necrosis"] == necrosis.sum()
    # a sample: a label of known CV on top of the same autofluorescence; background removed, then the controls'
    label = np.where(tissue, rng.gamma(2.0, 200.0, tissue.shape), 0.0)
    sample, _, _ = _section(rng, 60.0, 100.0, label)
    corrected = subtract_autofluorescence(sample - 100.0, levels, tissue, necrosis)
    true_cv = label[tissue].std() / label[tissue].mean()
    raw = sample[tissue] - 100.0
    assert raw.std() / raw.mean() < 0.93 * true_cv  # the offset lowers the CV
    assert corrected[tissue].std() / corrected[tissue].mean() == pytest.approx(true_cv, rel=0.02)
    assert (corrected[~tissue] == sample[~tissue] - 100.0).all()  # outside the tissue nothing is subtracted


def test_pooling_and_errors():
    table = pd.DataFrame({"viable": [50.0, 70.0], "necrosis": [np.nan, 110.0]})
    assert pooled_levels(table) == {"viable": 60.0, "necrosis": 110.0}
    assert pooled_levels(table.assign(necrosis=np.nan)) == {"viable": 60.0, "necrosis": 60.0}
    empty = np.zeros((5, 5), dtype=bool)
    with pytest.raises(InputError, match="c.ome.tif: the control section's tissue mask is empty"):
        autofluorescence_levels(np.ones((5, 5)), empty, empty, "c.ome.tif")


def test_the_demo_control_holds_autofluorescence_only(tmp_path, tiny_sample):
    """The demo's control section is rendered like a sample without the nanoparticle: its tissue level in the
    nanoparticle channel is the phantom's autofluorescence (half the nuclear channel's: 60 viable, 100 necrosis)."""
    from conftest import tiny_params
    from nanohet.demo.cohort import generate_control
    from nanohet.io.ometiff import read_ome_tiff
    from nanohet.microscopy import section_masks
    from nanohet.settings import MicroscopySettings

    path = tmp_path / "control.ome.tif"
    generate_control(path, tiny_params(seed=5))
    img = read_ome_tiff(path)
    s = MicroscopySettings()
    masks = section_masks(img.channel("DAPI"), img.channel("CD31"), img.spacing[0], s.tissue_smooth_um,
                          s.necrosis_smooth_um, s.vessel_min_area_um2)
    levels = autofluorescence_levels(img.channel("NP"), masks[0] > 0, masks[1] > 0)
    assert levels["viable"] == pytest.approx(60.0, rel=0.1) and levels["necrosis"] == pytest.approx(100.0, rel=0.15)
