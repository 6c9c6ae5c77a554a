import math

import numpy as np
import pandas as pd
import pytest

from nanohet.quantify import (distance_profile, distance_to_mask_um, half_distance_um, map_metrics,
                              profile_auc, region_stats)


def test_distance_uses_physical_anisotropic_spacing():
    mask = np.zeros((5, 5), bool)
    mask[2, 2] = True
    d = distance_to_mask_um(mask, (2.0, 3.0))  # x spacing 2, y spacing 3
    assert d[2, 4] == pytest.approx(4.0) and d[4, 2] == pytest.approx(6.0)


def test_region_stats_and_coverage():
    v = np.array([[1.0, 2.0, 3.0, np.nan], [4.0, 100.0, 6.0, 7.0]])
    region = np.array([[1, 1, 1, 1], [1, 0, 0, 0]], bool)
    s = region_stats(v, region, threshold=2.5)
    vals = np.array([1, 2, 3, 4.0])
    assert s["n_pixels"] == 4 and s["mean"] == pytest.approx(2.5)
    assert s["cv"] == pytest.approx(vals.std() / vals.mean())
    assert s["coverage"] == pytest.approx(0.5)
    assert math.isnan(region_stats(v, np.zeros_like(region))["mean"])


def test_l50_of_an_exponential_decay_from_a_line_vessel():
    # a straight vessel along y; intensity exp(-d / lam) with half-distance 30 µm
    p = 1.0
    mask = np.zeros((50, 400), bool)
    mask[:, 0] = True
    d = distance_to_mask_um(mask, (p, p))
    lam = 30.0 / math.log(2)
    img = np.exp(-d / lam)
    region = np.ones_like(mask)
    prof = distance_profile(img, d, region, bin_um=2.0, max_um=150)
    l50 = half_distance_um(prof)
    # first bin centre is at ~0.5 µm (pixels at d=0 and 1), so L50 is 30 µm beyond it
    assert l50 == pytest.approx(30.0 + prof["distance_um"].iloc[0] - 0.0, abs=1.5)
    auc = profile_auc(prof, 100)
    assert auc == pytest.approx(lam * (1 - math.exp(-100 / lam)), rel=0.05)


def test_l50_is_nan_when_the_profile_never_halves():
    prof = pd.DataFrame({"distance_um": [5, 15, 25], "mean": [1.0, 0.8, 0.7], "n_pixels": [1, 1, 1]})
    assert math.isnan(half_distance_um(prof))


def test_map_metrics_restricts_profile_to_viable():
    mask = np.zeros((20, 20), bool)
    mask[:, 0] = True
    d = distance_to_mask_um(mask, (1, 1))
    vals = np.ones((20, 20))
    viable = np.zeros_like(mask)
    viable[:, :5] = True
    m, prof = map_metrics(vals, np.ones_like(mask), viable, d, threshold=1.0, bin_um=1, max_um=10)
    assert m["coverage"] == 1.0
    assert prof["n_pixels"].sum() == viable.sum()


def test_profile_sd_per_bin_and_vessel_distance_regions():
    """The profile's SD per bin equals numpy's over the bin's pixels; the vessel-distance regions partition the
    viable tissue at the configured edges, and the tables report each band's mean."""
    from nanohet.quantify.section import SectionTables, vessel_distance_regions
    from nanohet.settings import QuantifySettings

    rng = np.random.default_rng(11)
    vessels = np.zeros((60, 80), bool)
    vessels[30, 40] = True
    d = distance_to_mask_um(vessels, (2.5, 2.5))
    values = 100.0 - d + rng.normal(0, 3, d.shape) + 1e6  # a large offset: the SD must not cancel
    viable = rng.random(d.shape) < 0.9
    prof = distance_profile(values, d, viable, bin_um=10.0, max_um=60.0)
    for row in prof.itertuples():
        inside = viable & (d >= row.distance_um - 5) & (d < row.distance_um + 5)
        assert row.sd == pytest.approx(values[inside].std(), rel=1e-9) and row.n_pixels == inside.sum()
    regions = vessel_distance_regions(viable, d, [20.0, 40.0])
    assert list(regions) == ["vessel_0-20um", "vessel_20-40um", "vessel_40um+"]
    np.testing.assert_array_equal(sum(m.astype(int) for m in regions.values()), viable.astype(int))
    assert not vessel_distance_regions(viable, d, [])
    tables = SectionTables("s", QuantifySettings.from_dict({"vessel_distance_edges_um": [20.0, 40.0]}))
    tables.add("msi", "dox", "ug/g", values, np.ones(d.shape, bool), viable, d, 2.5)
    got = tables.metrics().set_index(["region", "metric"]).value
    for name, mask in regions.items():
        assert got[(name, "mean")] == pytest.approx(values[mask].mean())
    assert got[("vessel_0-20um", "mean")] > got[("vessel_40um+", "mean")]


def test_region_maps_mark_underdosed_tissue_and_hot_spots():
    """On a known map: the under-dosed channel is exactly the tissue below the threshold, a planted bright
    patch is a hot spot, and pixels outside the tissue are NaN in every analyte channel."""
    from nanohet.image import SectionImage
    from nanohet.quantify.grid import AnalysisGrid
    from nanohet.quantify.section import region_maps
    from nanohet.settings import MSISettings, QuantifySettings

    ref = SectionImage(np.zeros((1, 400, 400), np.float32), ["x"], (2.0, 2.0), (5.0, 7.0))
    grid = AnalysisGrid.over(ref, 10.0)  # 80 x 80 pixels of 10 µm
    yy, xx = np.mgrid[0:400, 0:400]
    tissue = ((yy - 200) ** 2 + (xx - 200) ** 2 < 180 ** 2).astype(np.uint8)
    necrosis = ((yy - 200) ** 2 + (xx - 200) ** 2 < 40 ** 2).astype(np.uint8)
    masks = SectionImage(np.stack([tissue, tissue * (1 - necrosis)]), ["tissue", "viable"], (2.0, 2.0), (5.0, 7.0))
    gy, gx = np.mgrid[0:80, 0:80]
    rng = np.random.default_rng(4)
    drug = np.where(gx < 40, 1.0, 3.0) + rng.normal(0, 0.05, (80, 80))
    drug[(gy - 25) ** 2 + (gx - 55) ** 2 < 16] += 6.0
    stack = SectionImage(drug[None].astype(np.float32), ["dox"], grid.spacing, grid.origin)
    msi = MSISettings.from_dict({"analytes": [{"name": "dox", "mz": 1.0, "ppm": 5, "role": "drug"}],
                                 "normalisation": "none"})
    q = QuantifySettings.from_dict({"coverage_thresholds": {"dox": 2.0}, "hotspot_radius_um": 30.0})
    vessels = np.zeros((400, 400), bool)
    vessels[200, 100] = True
    out = region_maps(stack, masks, grid, msi, q, distance_to_mask_um(vessels, (2.0, 2.0)))
    assert out.channels == ["tissue", "viable", "shell", "vessel_distance_band", "dox_underdosed", "dox_hotspot",
                            "dox_coldspot"]
    # shells by depth (100, 300 µm): the rim at the edge, the core at the centre; bands from the vessel out
    shell, band = out.channel("shell"), out.channel("vessel_distance_band")
    assert shell[40, 5] == 1 and shell[40, 40] == 3 and np.isnan(shell[0, 0])
    assert band[40, 20] == 1 and band[40, 70] == 3 and np.isnan(band[40, 40])  # necrosis: no band
    assert out.spacing == grid.spacing and out.origin == grid.origin
    t = out.channel("tissue") > 0
    under = out.channel("dox_underdosed")
    np.testing.assert_array_equal(under[t], (gx < 40)[t].astype(np.float32))
    assert np.isnan(under[~t]).all() and np.isnan(out.channel("dox_hotspot")[~t]).all()
    assert out.channel("dox_hotspot")[25, 55] == 1 and out.channel("dox_hotspot")[40, 15] == 0
    assert out.channel("viable")[40, 40] == 0 and out.channel("viable")[40, 10] == 1


def test_limits_of_detection_and_quantification():
    from nanohet.errors import InputError
    from nanohet.quantify.section import SectionTables, check_thresholds_against_limits
    from nanohet.settings import QuantifySettings

    q = QuantifySettings.from_dict({"coverage_thresholds": {"dox": 0.5, "np": 100.0}})
    with pytest.raises(InputError, match=r"coverage_thresholds.dox = 0.5 is below the limit of quantification of dox, 1"):
        check_thresholds_against_limits(q, {"dox": (0.3, 1.0)}, "cal.tsv")
    check_thresholds_against_limits(q, {"dox": (0.1, 0.4)}, "cal.tsv")  # at or above the LOQ: accepted
    tables = SectionTables("s", q)
    values = np.array([[0.1, 0.2, 0.5, 2.0], [3.0, np.nan, 0.05, 1.5]])
    tissue = np.ones(values.shape, bool)
    viable = np.array([[True, True, False, False], [True, True, True, True]])
    tables.add_limits("msi", "dox", "ug/g", values, tissue, viable, 0.15, 1.0)
    got = tables.metrics().set_index(["region", "metric"]).value
    assert got[("tissue", "lod")] == 0.15 and got[("tissue", "loq")] == 1.0
    assert got[("tissue", "fraction_below_lod")] == pytest.approx(2 / 7)   # 0.1, 0.05 of 7 finite
    assert got[("tissue", "fraction_below_loq")] == pytest.approx(4 / 7)   # 0.1, 0.2, 0.5, 0.05
    assert got[("viable", "fraction_below_loq")] == pytest.approx(3 / 5)   # 0.1, 0.2, 0.05 of 0.1, 0.2, 3, 0.05, 1.5


def test_tissue_shells_by_depth_from_the_boundary():
    """A disc of radius 400 µm at 4 µm pixels: the rim (0-100 µm deep), periphery (100-300) and core (> 300)
    have the areas of their annuli; the shells partition the tissue; rim-to-core ratio of a radial map."""
    from nanohet.quantify.section import SectionTables, tissue_shells
    from nanohet.settings import QuantifySettings

    yy, xx = (np.mgrid[0:250, 0:250] - 124.5) * 4.0
    r = np.hypot(yy, xx)
    tissue = r < 400
    shells = tissue_shells(tissue, 4.0, (300.0, 100.0))  # edges in any order
    assert list(shells) == ["rim", "periphery", "core"]
    total = sum(m.astype(int) for m in shells.values())
    assert (total == tissue).all()  # a partition of the tissue
    area = {k: m.sum() * 16.0 for k, m in shells.items()}
    assert area["rim"] == pytest.approx(np.pi * (400 ** 2 - 300 ** 2), rel=0.03)
    assert area["periphery"] == pytest.approx(np.pi * (300 ** 2 - 100 ** 2), rel=0.03)
    assert area["core"] == pytest.approx(np.pi * 100 ** 2, rel=0.05)
    assert list(tissue_shells(tissue, 4.0, (150.0,))) == ["rim", "core"] and tissue_shells(tissue, 4.0, ()) == {}
    tables = SectionTables("s", QuantifySettings())
    values = np.where(tissue, r / 100.0, np.nan)  # rises towards the rim
    tables.add("msi", "x", "u", values, tissue, tissue, np.full(tissue.shape, 10.0), 4.0)
    got = tables.metrics().set_index(["region", "metric"]).value
    assert got[("rim", "mean")] > got[("periphery", "mean")] > got[("core", "mean")]
    assert got[("tissue", "rim_to_core_ratio")] == pytest.approx(got[("rim", "mean")] / got[("core", "mean")])


def test_penetration_distance_and_release_index():
    from nanohet.quantify.section import release_index_rows

    d = np.arange(5.0, 300.0, 10.0)
    profile = pd.DataFrame({"distance_um": d, "mean": np.exp(-(d - 5.0) / 40.0)})
    # exponential decay from the first bin: falls to f at 5 + 40 ln(1/f) (linear interpolation: within 1 µm)
    for f in (0.5, 0.25, 0.1):
        assert half_distance_um(profile, f) == pytest.approx(5.0 + 40.0 * np.log(1 / f), abs=1.0)
    assert np.isnan(half_distance_um(profile, 1e-6))  # never that low within the profile
    drug = np.array([[2.0, 4.0], [np.nan, 1.0]])
    carrier = np.array([[1.0, 1.0], [5.0, 3.0]])
    regions = {"tissue": np.ones((2, 2), bool), "rim": np.array([[True, False], [False, False]])}
    rows = {r["region"]: r["value"] for r in release_index_rows("s", drug, carrier, regions, "ug/g / ug/g")}
    assert rows["tissue"] == pytest.approx((7 / 3) / (5 / 3)) and rows["rim"] == pytest.approx(2.0)
