import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from conftest import sample_outputs, tiny_params
from nanohet.io.imzml import read_imzml_index
from nanohet.msi import IonTarget, extract_ion_images, normalise
from nanohet.io.ometiff import read_ome_tiff
from nanohet.demo.cohort import generate_sample
from nanohet.demo.geometry import msi_to_section
from nanohet.demo.phantom import ANALYTE_IONS, simulate_section
from nanohet.demo.truth import footprint_average


def test_section_is_biologically_plausible():
    t = simulate_section(tiny_params(tumour_diameter_mm=3.0, seed=5))
    p = t.spacing_um
    diameter_mm = 2 * np.sqrt(t.tissue.sum() * p * p / np.pi) / 1000
    assert 2.5 < diameter_mm < 3.5
    assert 100 <= t.params["vessel_density_per_mm2"] <= 250
    assert 0.03 < t.necrosis.sum() / t.tissue.sum() < 0.4
    assert not (t.vessels & t.necrosis).any()
    # nanoparticles are higher near vessels than far from them
    from nanohet.quantify import distance_to_mask_um
    d = distance_to_mask_um(t.vessels, (p, p))
    near = t.nanoparticle[t.viable & (d < 10)].mean()
    far = t.nanoparticle[t.viable & (d > 60)].mean()
    assert near > 2 * far


def test_images_agree_with_ground_truth(tiny_sample):
    out, truth_dir, rec = tiny_sample["outputs"], tiny_sample["truth_dir"], tiny_sample["record"]
    fl = read_ome_tiff(out["fluorescence"])
    assert fl.channels == ["DAPI", "CD31", "NP", "F4/80"] and fl.spacing == (2.0, 2.0)
    masks = read_ome_tiff(truth_dir / "truth_masks.ome.tif")
    vessels = masks.channel("vessels") > 0
    tissue = masks.channel("tissue") > 0
    cd31 = fl.channel("CD31").astype(float)
    assert cd31[vessels].mean() > 5 * cd31[tissue & ~vessels].mean()
    he = read_ome_tiff(out["he"])
    assert he.channels == ["R", "G", "B"] and he.data.dtype == np.uint8


def test_msi_signal_follows_the_true_transform_and_concentration(tiny_sample):
    out, truth_dir, rec = tiny_sample["outputs"], tiny_sample["truth_dir"], tiny_sample["record"]
    idx = read_imzml_index(out["msi"])
    geom = rec["msi_geometry"]
    assert idx.pixel_size == (geom["pixel_size_um"],) * 2
    targets = [IonTarget("dox", ANALYTE_IONS["doxorubicin"], 10), IonTarget("is", ANALYTE_IONS["daunorubicin_is"], 10)]
    res = extract_ion_images(idx, targets)
    conc = normalise(res.images["dox"], "internal_standard", msi=res, reference="is") * 2.0
    # true drug averaged over the MSI footprint, sampled at the true position of each MSI pixel
    drug = read_ome_tiff(truth_dir / "truth_maps.ome.tif")
    ys, xs = np.nonzero(res.acquired)
    u = np.stack([xs, ys], 1) * geom["pixel_size_um"] + np.asarray(res.origin)
    x = msi_to_section(u, geom)
    grid = footprint_average(drug.channel("drug"), drug.spacing[0], geom["pixel_size_um"])
    ij = np.round((x - np.asarray(drug.origin)) / drug.spacing[0]).astype(int)
    ok = (ij >= 0).all(1) & (ij < grid.shape[0]).all(1)
    true_vals = grid[ij[ok, 1], ij[ok, 0]]
    meas = conc[ys[ok], xs[ok]]
    strong = (true_vals > 2.0) & np.isfinite(meas)
    assert strong.sum() > 50
    # in viable tissue (where the drug is strong) the drug and the standard are suppressed alike, so the
    # equal-response value is off by the drug's response relative to the standard, within counting noise
    response = tiny_params().msi_response["doxorubicin"]
    assert response != 1.0
    assert np.median(meas[strong] / true_vals[strong]) == pytest.approx(response, rel=0.06)
    assert np.corrcoef(meas[strong], true_vals[strong])[0, 1] > 0.8


def test_landmarks_follow_the_true_transform(tiny_sample):
    lm = pd.read_csv(tiny_sample["truth_dir"] / "landmarks_msi.csv", sep="\t")
    geom = tiny_sample["record"]["msi_geometry"]
    mapped = msi_to_section(lm[["msi_x_um", "msi_y_um"]].to_numpy(), geom)
    np.testing.assert_allclose(mapped, lm[["section_x_um", "section_y_um"]].to_numpy(), atol=1e-6)
    assert len(lm) == 20


def test_volume_and_mask(tiny_sample):
    out, rec = tiny_sample["outputs"], tiny_sample["record"]
    img, mask = sitk.ReadImage(str(out["volume"])), sitk.ReadImage(str(out["volume_mask"]))
    assert img.GetSpacing() == pytest.approx((0.2, 0.2, 0.2))
    m = sitk.GetArrayFromImage(mask) > 0
    r = rec["section"]["tumour_radius_um"] / 1000
    ellipsoid = 4 / 3 * np.pi * r ** 3 * 0.9 * 0.75
    assert m.sum() * 0.008 == pytest.approx(ellipsoid, rel=0.25)
    assert rec["volume_true_mean_uptake_pct_id_per_g"] > 0


def test_generation_is_reproducible(tmp_path, tiny_sample):
    out = sample_outputs(tmp_path / "again")
    generate_sample("s1_T1", out, tmp_path / "truth", tiny_params())
    for key in ("msi", "fluorescence", "he", "volume", "volume_mask"):
        assert out[key].read_bytes() == tiny_sample["outputs"][key].read_bytes(), key
    assert out["msi"].with_suffix(".ibd").read_bytes() == tiny_sample["outputs"]["msi"].with_suffix(".ibd").read_bytes()
    for name in ("truth.json", "landmarks_msi.csv", "truth_maps.ome.tif", "truth_masks.ome.tif", "truth_fields.ome.tif"):
        assert (tmp_path / "truth" / name).read_bytes() == (tiny_sample["truth_dir"] / name).read_bytes(), name


def test_continuous_mode(tmp_path):
    out = sample_outputs(tmp_path)
    generate_sample("c_T1", out, tmp_path / "truth", tiny_params(msi_mode="continuous", tumour_diameter_mm=0.8))
    idx = read_imzml_index(out["msi"])
    assert idx.continuous
    res = extract_ion_images(idx, [IonTarget("dox", ANALYTE_IONS["doxorubicin"], 10)])
    assert np.nanmax(res.images["dox"]) > 0


def test_true_cells_are_the_rendered_nuclei(tiny_sample):
    """truth_cells.tsv: the nucleus centres the fluorescence was rendered from, at the phantom's densities (4000 per
    mm² viable, 400 necrotic), each on a bright DAPI spot; and their true values (a constant nanoparticle field
    reads NP_COUNTS_PER_UNIT counts per unit everywhere, the rendering's scale)."""
    import pandas as pd

    from nanohet.demo.phantom import NP_COUNTS_PER_UNIT
    from nanohet.demo.truth import truth_cell_values
    from nanohet.image import SectionImage
    from nanohet.io.ometiff import read_ome_tiff

    truth_dir = tiny_sample["truth_dir"]
    cells = pd.read_csv(truth_dir / "truth_cells.tsv", sep="\t")
    masks = read_ome_tiff(truth_dir / "truth_masks.ome.tif")
    p = masks.spacing[0]
    tissue, necrosis = masks.channel("tissue") > 0, masks.channel("necrosis") > 0
    expected = 4000 * (tissue & ~necrosis).sum() * p * p / 1e6 + 400 * necrosis.sum() * p * p / 1e6
    assert len(cells) == pytest.approx(expected, rel=0.1)
    row, col = (cells.y_um / p).round().astype(int), (cells.x_um / p).round().astype(int)
    assert tissue[row, col].all() and (cells.region == np.where(necrosis[row, col], "necrosis", "viable")).all()
    dapi = read_ome_tiff(tiny_sample["outputs"]["fluorescence"]).channel("DAPI").astype(float)
    assert np.median(dapi[row, col]) > 2 * np.median(dapi[tissue])
    fields = read_ome_tiff(truth_dir / "truth_fields.ome.tif")
    flat = SectionImage(np.stack([np.full(fields.shape_yx, 3.0, np.float32) for _ in fields.channels]),
                        fields.channels, fields.spacing, fields.origin)
    values = truth_cell_values(cells, flat, 30.0, 10.0)
    inner = (cells.x_um > 20) & (cells.y_um > 20) & (cells.x_um < fields.shape_yx[1] * p - 20) \
        & (cells.y_um < fields.shape_yx[0] * p - 20)
    assert np.allclose(values.nanoparticle[inner], 3.0 * NP_COUNTS_PER_UNIT) and np.allclose(values.drug[inner], 3.0)


@pytest.mark.parametrize("seed", [3, 17, 2024])
def test_nuclei_are_a_hard_core_process_of_the_configured_density(seed):
    """Simple sequential inhibition: no two centres closer than the distance, the intensity of each region kept (a
    tenth as many in the sparse half), and a density the distance cannot hold ends with fewer points, not a hang."""
    from scipy.spatial import cKDTree

    from nanohet.demo.phantom import _hard_core_points

    rng = np.random.default_rng(seed)
    p, n = 2.0, 600  # 1.2 mm square
    density = np.full((n, n), 4000.0)
    density[:, n // 2:] = 400.0
    points = np.argwhere(_hard_core_points(rng, density, p, 8.0) > 0) * p
    nearest = cKDTree(points).query(points, k=2)[0][:, 1]
    assert nearest.min() >= 8.0
    dense, sparse = (points[:, 1] < n // 2 * p).sum(), (points[:, 1] >= n // 2 * p).sum()
    area = (n // 2 * p / 1000) * (n * p / 1000)  # mm² of each half
    assert dense / area == pytest.approx(4000, rel=0.06) and sparse / area == pytest.approx(400, rel=0.2)
    crowded = np.argwhere(_hard_core_points(rng, np.full((100, 100), 40000.0), p, 8.0) > 0)
    assert 0 < len(crowded) < 40000 * 0.04 and cKDTree(crowded * p).query(crowded * p, k=2)[0][:, 1].min() >= 8


def test_true_colocalisation_and_its_comparison():
    """Pearson and Spearman of true fields (both orders of each pair), and the recovered rows matched to them."""
    import pandas as pd

    from nanohet.demo.truth import true_colocalisation
    from nanohet.demo.validation import compare_colocalisation

    rng = np.random.default_rng(4)
    drug = rng.lognormal(0, 1, (40, 40))
    maps = {"drug": drug, "carrier": 2 * drug + 1, "nanoparticle": -drug}
    tissue = np.ones(drug.shape, dtype=bool)
    pairs = true_colocalisation(maps, tissue)
    assert pairs[("drug", "carrier")]["pearson"] == pytest.approx(1.0)
    assert pairs[("nanoparticle", "drug")]["spearman"] == pytest.approx(-1.0)
    recovered = pd.DataFrame([
        {"modality": "msi", "analyte": "dox:peg", "region": "tissue", "metric": "pearson", "value": 0.9},
        {"modality": "msi", "analyte": "dox:nanoparticle", "region": "tissue", "metric": "spearman", "value": -0.8},
        {"modality": "msi", "analyte": "dox:peg", "region": "tissue", "metric": "manders_m1", "value": 0.5}])
    analytes = {"drug": ("msi", "dox", True), "carrier": ("msi", "peg", False),
                "nanoparticle": ("fluorescence", "nanoparticle", False)}
    rows = {(r["analyte"], r["metric"]): r for r in compare_colocalisation("s", pairs, recovered, analytes)}
    assert set(rows) == {("dox:peg", "pearson"), ("dox:nanoparticle", "spearman")}
    assert rows[("dox:peg", "pearson")]["abs_error"] == pytest.approx(0.1)
    assert rows[("dox:nanoparticle", "spearman")]["truth"] == pytest.approx(-1.0)
