import numpy as np
import pytest

from nanohet.errors import InputError
from nanohet.microscopy import haematoxylin, necrosis_mask, tissue_mask, vessel_mask
from nanohet.io.ometiff import read_ome_tiff
from nanohet.registration import dice


def test_masks_match_ground_truth(tiny_sample):
    fl = read_ome_tiff(tiny_sample["outputs"]["fluorescence"])
    truth = read_ome_tiff(tiny_sample["truth_dir"] / "truth_masks.ome.tif")
    p = fl.spacing[0]
    tissue = tissue_mask(fl.channel("DAPI"), p)
    necrosis = necrosis_mask(fl.channel("DAPI"), tissue, p)
    vessels = vessel_mask(fl.channel("CD31"), tissue & ~necrosis, p)
    assert dice(tissue, truth.channel("tissue") > 0) > 0.97
    assert dice(vessels, truth.channel("vessels") > 0) > 0.9
    assert dice(necrosis, truth.channel("necrosis") > 0) > 0.7


def test_uniform_tissue_has_no_necrosis():
    rng = np.random.default_rng(0)
    img = np.zeros((200, 200))
    img[40:160, 40:160] = 500
    img = rng.poisson(img + 100).astype(float)
    tissue = tissue_mask(img, 2.0)
    assert not necrosis_mask(img, tissue, 2.0).any()


def test_blank_image_is_an_error():
    with pytest.raises(InputError, match="constant"):
        tissue_mask(np.zeros((50, 50)), 1.0)
    with pytest.raises(InputError, match="NaN"):
        tissue_mask(np.full((50, 50), np.nan), 1.0)
    with pytest.raises(InputError, match="empty"):
        vessel_mask(np.ones((10, 10)), np.zeros((10, 10), bool), 1.0)


def test_haematoxylin_is_higher_on_nuclei(tiny_sample):
    he = read_ome_tiff(tiny_sample["outputs"]["he"])
    h = haematoxylin(he.data)
    tissue = tissue_mask(255 - he.data[1].astype(float), he.spacing[0])
    assert h[tissue].mean() > h[~tissue].mean()
