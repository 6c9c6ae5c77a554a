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
    # on this 1.2 mm section (seed 11) 0.988 / 0.966 / 0.901; the demo's 3.5 mm sections score higher
    # (results/tables/metrics_vs_truth.tsv, docs/validation.md), the boundary being a smaller share of each mask
    assert dice(tissue, truth.channel("tissue") > 0) > 0.98
    assert dice(vessels, truth.channel("vessels") > 0) > 0.95
    assert dice(necrosis, truth.channel("necrosis") > 0) > 0.88


def test_mask_validation_rows_are_exact_on_known_masks():
    """compare_masks: Dice 1 and equal statistics for the truth itself; an analytic Dice and vessel area
    fraction when half of the vessel pixels are lost; a mask on another grid is refused."""
    from nanohet.demo.validation import compare_masks
    from nanohet.image import SectionImage

    tissue = np.zeros((100, 100), bool)
    tissue[10:90, 10:90] = True
    necrosis = np.zeros_like(tissue)
    necrosis[40:60, 40:60] = True
    vessels = np.zeros_like(tissue)
    vessels[15:19, 15:35] = True   # 80 px
    vessels[70:74, 15:35] = True   # 80 px
    truth = SectionImage(np.stack([tissue, necrosis, vessels, np.zeros_like(tissue)]).astype(np.uint8),
                         ["tissue", "necrosis", "vessels", "macrophages"], (2.0, 2.0), (0.0, 0.0))

    def recovered(v):
        stack = np.stack([tissue, necrosis, tissue & ~necrosis, v]).astype(np.uint8)
        return SectionImage(stack, ["tissue", "necrosis", "viable", "vessels"], (2.0, 2.0), (0.0, 0.0))

    rows = {(r["analyte"], r["metric"]): r for r in compare_masks("s", recovered(vessels), truth)}
    assert all(r["abs_error"] == 0 for r in rows.values())
    assert rows[("necrosis", "necrotic_fraction")]["truth"] == pytest.approx(400 / 6400)
    half = vessels.copy()
    half[70:74] = False
    rows = {(r["analyte"], r["metric"]): r for r in compare_masks("s", recovered(half), truth)}
    assert rows[("vessels", "dice")]["recovered"] == pytest.approx(2 * 80 / (80 + 160))
    assert rows[("vessels", "vessel_area_fraction")]["recovered"] == pytest.approx(80 / 6000)
    assert rows[("vessels", "vessel_area_fraction")]["truth"] == pytest.approx(160 / 6000)
    assert rows[("vessels", "vessel_density_per_mm2")]["rel_error"] == pytest.approx(0.5)
    assert rows[("tissue", "dice")]["recovered"] == 1.0
    shifted = SectionImage(truth.data, list(truth.channels), (4.0, 4.0), (0.0, 0.0))
    with pytest.raises(ValueError, match="not on the truth grid"):
        compare_masks("s", recovered(vessels), shifted)


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


def test_nan_pixels_in_a_role_channel_name_the_file_and_channel():
    """A NaN in the vessel channel ended in a scikit-image error naming neither file nor channel, and a NaN
    nanoparticle channel gave NaN measures without a word: both are refused by name."""
    from nanohet.errors import InputError
    from nanohet.image import SectionImage
    from nanohet.microscopy import role_channel
    from nanohet.settings import MicroscopySettings

    data = np.ones((3, 8, 8), np.float32)
    data[1, 2, 3] = np.nan
    image = SectionImage(data, ["DAPI", "CD31", "NP"], (1.0, 1.0))
    settings = MicroscopySettings()
    with pytest.raises(InputError, match=r"f.tif: channel 'CD31' \(role vessels\) holds 1 NaN or infinite pixels"):
        role_channel(image, settings, "vessels", "f.tif")
    assert role_channel(image, settings, "nanoparticle", "f.tif").shape == (8, 8)


def test_implausible_section_statistics_are_named():
    """Swapped channel labels gave tissue 0.006 mm² and 2,376 vessels/mm² in silence: they are now named."""
    from nanohet.microscopy.masks import implausible_stats
    from nanohet.settings import MicroscopySettings

    ranges = MicroscopySettings().plausible
    found = implausible_stats({"tissue_area_mm2": 0.006, "vessel_density_per_mm2": 2376.0,
                               "necrotic_fraction": 0.2}, ranges)
    assert len(found) == 2 and "tissue_area_mm2 0.006 is outside" in found[0] and "vessel_density" in found[1]
    assert not implausible_stats({"tissue_area_mm2": 12.0, "vessel_density_per_mm2": 170.0,
                                  "necrotic_fraction": 0.3}, ranges)


@pytest.mark.parametrize("seed", [0, 1])
def test_marker_regions_find_a_planted_marker_rich_area(seed):
    """Macrophage marker (F4/80) cells dense in one disc of viable tissue, sparse elsewhere, with shot noise: the
    macrophage-rich region recovers the disc (Otsu on the smoothed density), a configured threshold is used as
    given, and no region comes without its channel."""
    from nanohet.image import SectionImage
    from nanohet.microscopy.regions import marker_regions
    from nanohet.settings import MicroscopySettings

    rng = np.random.default_rng(seed)
    n, p = 300, 2.0
    yy, xx = np.mgrid[:n, :n]
    centre = rng.uniform(110, 190, 2)
    dense = (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 < 60 ** 2
    tissue = np.zeros((n, n), bool)
    tissue[20:280, 20:280] = True
    cells = rng.random((n, n)) < np.where(dense, 0.05, 0.004)
    marker = 100 + tissue * 20 + cells * 800.0
    image = SectionImage(np.stack([marker, marker]).astype(np.float32), ["DAPI", "F4/80"], (p, p))
    settings = MicroscopySettings(channels={"nuclei": "DAPI", "vessels": "DAPI", "nanoparticle": "DAPI",
                                            "macrophages": "F4/80"})
    found = marker_regions(image, settings, tissue, tissue, "f.tif")["macrophage_rich"]
    dice = 2 * (found & dense).sum() / (found.sum() + dense.sum())
    assert dice > 0.85, dice
    strict = MicroscopySettings(**{**settings.to_dict(), "marker_thresholds": {"macrophages": 1e6}})
    assert not marker_regions(image, strict, tissue, tissue, "f.tif")["macrophage_rich"].any()
    plain = MicroscopySettings(channels={"nuclei": "DAPI", "vessels": "DAPI", "nanoparticle": "DAPI"})
    assert marker_regions(image, plain, tissue, tissue, "f.tif") == {}


def _vessel_section(rng, perfused_share: float, n: int = 400):
    """Tissue with 40 disc vessels of random radius; a random ``perfused_share`` of them carry lectin. Returns the
    image (DAPI, CD31, lectin), the tissue, the vessel mask and the perfused vessels' mask."""
    from nanohet.image import SectionImage

    yy, xx = np.mgrid[:n, :n]
    tissue = np.zeros((n, n), bool)
    tissue[20:n - 20, 20:n - 20] = True
    vessels, perfused = np.zeros((n, n), bool), np.zeros((n, n), bool)
    centres = []
    while len(centres) < 40:
        c = rng.uniform(40, n - 40, 2)
        if all(np.hypot(*(c - d)) > 25 for d in centres):
            centres.append(c)
    for c in centres:
        disc = (yy - c[0]) ** 2 + (xx - c[1]) ** 2 < rng.uniform(3, 7) ** 2
        vessels |= disc
        if rng.random() < perfused_share:
            perfused |= disc
    lectin = rng.poisson(100 + 30 * tissue + 150 * perfused).astype(np.float32)
    cd31 = rng.poisson(100 + 30 * tissue + 800 * vessels).astype(np.float32)
    image = SectionImage(np.stack([cd31, cd31, lectin]), ["DAPI", "CD31", "lectin"], (2.0, 2.0))
    return image, tissue, vessels, perfused


@pytest.mark.parametrize("share, seed", [(0.5, 0), (0.3, 1), (1.0, 2), (0.0, 3)])
def test_perfused_vessels_are_the_lectin_labelled_ones(share, seed):
    """Perfused versus all vessels: the vessels carrying the perfusion marker are found one by one, whatever
    their share (a network all perfused, or none, is not split in two); a configured threshold is used as given."""
    from scipy import ndimage

    from nanohet.microscopy.regions import perfused_vessels
    from nanohet.settings import MicroscopySettings

    rng = np.random.default_rng(seed)
    image, tissue, vessels, perfused = _vessel_section(rng, share)
    settings = MicroscopySettings(channels={"nuclei": "DAPI", "vessels": "CD31", "nanoparticle": "DAPI",
                                            "perfusion": "lectin"})
    found, n_perfused, n_vessels = perfused_vessels(image, settings, vessels, tissue, "f.tif")
    assert n_vessels == 40 and np.array_equal(found, perfused)
    assert n_perfused == len(np.unique(ndimage.label(vessels)[0][perfused]))
    strict = MicroscopySettings(**{**settings.to_dict(), "marker_thresholds": {"perfusion": 1e6}})
    assert perfused_vessels(image, strict, vessels, tissue, "f.tif")[1] == 0


def test_perfused_vessel_regions_and_fraction_in_the_section_measures():
    """The section measures gain the viable tissue by distance to the perfused vessels and the perfused
    fraction; the bands are distances to the perfused vessels, not to all."""
    import pandas as pd

    from nanohet.image import SectionImage
    from nanohet.quantify.metrics import distance_to_mask_um
    from nanohet.quantify.section import SectionTables, nanoparticle_metrics
    from nanohet.settings import MicroscopySettings, QuantifySettings

    rng = np.random.default_rng(5)
    image, tissue, vessels, perfused = _vessel_section(rng, 0.5)
    masks = SectionImage(np.stack([tissue, np.zeros_like(tissue), tissue, vessels]).astype(np.uint8),
                         ["tissue", "necrosis", "viable", "vessels"], image.spacing)
    settings = MicroscopySettings(channels={"nuclei": "DAPI", "vessels": "CD31", "nanoparticle": "DAPI",
                                            "perfusion": "lectin"})
    tables = SectionTables("s", QuantifySettings())
    nanoparticle_metrics(tables, image, masks, settings, "f.tif", "m.tif")
    rows = pd.DataFrame(tables.rows)
    section = rows[rows.analyte == "vessels"].set_index("metric").value
    assert section["vessel_count"] == 40
    assert section["perfused_fraction"] == pytest.approx(section["perfused_vessel_count"] / 40)
    near = tables.marker_regions[tissue.shape]["perfused_vessel_0-50um"]
    expected = tissue & (distance_to_mask_um(perfused, image.spacing) < 50)
    assert np.array_equal(near, expected) and not np.array_equal(near, tissue & (
        distance_to_mask_um(vessels, image.spacing) < 50))
    assert "perfused_vessel_0-50um" in set(rows.region)  # measured like every region
