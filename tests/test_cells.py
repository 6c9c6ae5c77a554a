"""Cells (nanohet.microscopy.cells): nuclei on annotated real nuclei (F1 at IoU 0.5, a regression bound) and on
planted ones, territories, the per-cell table, and the F1 computation itself."""

import numpy as np
import pandas as pd
import pytest
import tifffile
from scipy import ndimage

from conftest import DATA
from nanohet.microscopy.cells import cell_table, cell_territories, detection_f1, segment_nuclei

STARDIST = DATA / "microscopy" / "stardist"


def test_nuclei_of_the_annotated_real_image():
    """BBBC038 fluorescence nuclei (183 annotated): the classical pipeline finds them at F1 0.71 (precision
    0.85) at IoU 0.5; the bound guards against regressions (StarDist's deep model reaches about 0.86 on such
    images)."""
    image = tifffile.imread(STARDIST / "img2d.tif")
    truth = tifffile.imread(STARDIST / "mask2d.tif")
    found = detection_f1(segment_nuclei(image, 1.0), truth)
    assert found["f1"] >= 0.68 and found["precision"] >= 0.8, found


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_planted_nuclei_are_found_one_to_one(seed):
    """Nuclei of 8-11 µm at random places (some touching), uneven brightness, shot noise: every one found."""
    rng = np.random.default_rng(seed)
    n, p = 400, 0.5
    truth = np.zeros((n, n), np.int32)
    yy, xx = np.mgrid[:n, :n]
    k = 0
    for _ in range(300):
        cy, cx, r = rng.uniform(20, n - 20), rng.uniform(20, n - 20), rng.uniform(8, 11) / p
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2
        if (truth[disc] > 0).mean() > 0.0:
            continue
        k += 1
        truth[disc] = k
    brightness = rng.uniform(300, 1500, k + 1)
    image = rng.poisson(100 + np.where(truth > 0, brightness[truth], 0)).astype(np.uint16)
    found = detection_f1(segment_nuclei(image, p), truth)
    assert found["f1"] >= 0.95, found


def test_territories_and_the_cell_table():
    nuclei = np.zeros((40, 60), np.int32)
    nuclei[10:16, 10:16] = 1
    nuclei[10:16, 40:46] = 2
    tissue = np.ones(nuclei.shape, bool)
    tissue[:, 50:] = False
    cells = cell_territories(nuclei, 2.0, expand_um=4.0, tissue=tissue)
    assert set(np.unique(cells)) == {0, 1, 2} and not cells[:, 50:].any()
    assert (cells[nuclei > 0] == nuclei[nuclei > 0]).all()  # a nucleus stays in its own cell
    drug = np.zeros(nuclei.shape)
    drug[:, 30:] = 5.0
    table = cell_table(nuclei, cells, {"NP": np.ones(nuclei.shape)}, 2.0, origin_um=(100.0, 200.0),
                       extra={"drug": drug}).set_index("cell")
    assert table.loc[1, "nucleus_area_um2"] == 36 * 4.0
    assert table.loc[1, "x_um"] == pytest.approx(100 + 12.5 * 2) and table.loc[1, "y_um"] == pytest.approx(200 + 12.5 * 2)
    assert table.loc[1, "area_um2"] == (cells == 1).sum() * 4.0 > table.loc[1, "nucleus_area_um2"]
    assert table.loc[1, "drug"] == 0 and table.loc[2, "drug"] == 5.0 and (table.NP_cell == 1).all()


def test_detection_f1_analytic_cases():
    truth = np.zeros((20, 20), np.int32)
    truth[2:6, 2:6], truth[10:14, 10:14] = 1, 2
    assert detection_f1(truth, truth)["f1"] == 1.0
    shifted = np.roll(truth, 1, axis=1)  # IoU of a 4x4 square moved by one: 12 / 20 = 0.6, still a match
    assert detection_f1(shifted, truth)["tp"] == 2
    moved = np.roll(truth, 2, axis=1)  # IoU 8 / 24: no match; two false positives and two misses
    assert detection_f1(moved, truth) == pytest.approx({"tp": 0, "fp": 2, "fn": 2, "precision": 0.0, "recall": 0.0,
                                                        "f1": 0.0})


def test_a_user_label_image_replaces_the_segmentation(tmp_path, tiny_sample):
    """The cells step with a label image (as Cellpose or StarDist would write it) gives the table of those
    labels: here the step's own segmentation written out as a TIFF, so both tables must be identical; bad label
    images are refused naming the file."""
    import tifffile

    from conftest import CONFIG
    from nanohet.errors import InputError
    from nanohet.io.labels import read_label_image
    from nanohet.quantify.grid import AnalysisGrid
    from nanohet.settings import MicroscopySettings
    from nanohet.steps import cells as cell_steps
    from nanohet.steps import microscopy as microscopy_steps
    from nanohet.steps import read_section

    fluo = str(tiny_sample["outputs"]["fluorescence"])
    masks = tmp_path / "masks.ome.tif"
    microscopy_steps.preprocess(fluo, CONFIG["microscopy"], str(masks), str(tmp_path / "stats.tsv"))
    grid = tmp_path / "grid.json"
    AnalysisGrid.over(read_section(fluo), 10.0).write(grid)
    args = dict(fluorescence=fluo, masks=str(masks), grid=str(grid), microscopy=CONFIG["microscopy"],
                msi=CONFIG["msi"], quantify=CONFIG["quantify"], sample="s1_T1")
    cell_steps.cells(**args, out_cells=str(tmp_path / "own.tsv"), out_metrics=str(tmp_path / "own_m.tsv"))
    section = read_section(fluo)
    s = MicroscopySettings.coerce(CONFIG["microscopy"])
    nuclei = segment_nuclei(section.channel(s.channel("nuclei")), section.spacing[0], smooth_um=s.nuclei_smooth_um,
                            min_area_um2=s.nuclei_min_area_um2, min_distance_um=s.nuclei_min_distance_um,
                            local_window_um=s.nuclei_local_window_um,
                            mask=read_section(str(masks)).channel("tissue") > 0)
    labels = tmp_path / "cp_masks.tif"
    tifffile.imwrite(labels, nuclei.astype(np.uint16))
    cell_steps.cells(**args, labels=[str(labels)], out_cells=str(tmp_path / "user.tsv"),
                     out_metrics=str(tmp_path / "user_m.tsv"))
    own, user = (pd.read_csv(tmp_path / f, sep="\t") for f in ("own.tsv", "user.tsv"))
    assert len(own) > 50
    pd.testing.assert_frame_equal(own, user)
    shape = nuclei.shape
    for bad, message in [(nuclei[:-3], "label image of .* pixels, but the fluorescence section has"),
                         (nuclei.astype(float) + 0.5, "whole numbers"), (np.zeros(shape, np.uint16), "no object"),
                         (-nuclei.astype(np.int32), "negative labels")]:
        tifffile.imwrite(tmp_path / "bad.tif", bad)
        with pytest.raises(InputError, match=f"bad.tif \\(sample s1_T1\\): .*{message}"):
            read_label_image(tmp_path / "bad.tif", shape, section.spacing[0], "sample s1_T1")
    corner = np.zeros(shape, np.uint16)
    corner[:5, :5] = 1  # outside the tumour's tissue
    tifffile.imwrite(tmp_path / "corner.tif", corner)
    with pytest.raises(InputError, match="sample s1_T1: no nucleus of the label image .*corner.tif lies in the tissue"):
        cell_steps.cells(**args, labels=str(tmp_path / "corner.tif"), out_cells=str(tmp_path / "c.tsv"),
                         out_metrics=str(tmp_path / "c_m.tsv"))
    assert not (tmp_path / "c.tsv").exists()


@pytest.mark.parametrize("seed", [0, 1])
def test_tiled_segmentation_and_territories_match_the_whole_section(seed):
    """Large sections are segmented and expanded tile by tile (bounded memory): on planted nuclei across tile
    borders the tiled labels match the whole-section ones object for object, and the territories pixel for
    pixel (ties between equidistant nuclei aside)."""
    rng = np.random.default_rng(seed)
    n, p = 1500, 0.5
    centres = rng.uniform(20, n - 20, (3000, 2))
    points = np.zeros((n, n), np.float32)
    points[centres[:, 0].astype(int), centres[:, 1].astype(int)] = 1
    sigma = 2.5 / p
    image = rng.poisson(ndimage.gaussian_filter(points, sigma) * 2 * np.pi * sigma ** 2 * 2000 + 100).astype(float)
    tissue = np.ones((n, n), bool)
    whole = segment_nuclei(image, p, mask=tissue)
    tiled = segment_nuclei(image, p, mask=tissue, tile_px=400)
    assert whole.max() > 1000  # touching random nuclei merge: fewer than planted, alike in both
    assert detection_f1(tiled, whole)["f1"] > 0.995
    cells_whole = cell_territories(whole, p, 5.0, tissue)
    cells_tiled = cell_territories(whole, p, 5.0, tissue, tile_px=400)
    assert (cells_whole == cells_tiled).mean() > 0.999


def test_the_cells_step_tile_by_tile_and_at_a_working_resolution(tmp_path, tiny_sample):
    """The cells step reads the section a tile at a time: small tiles give the cells of one tile over the whole
    section; with masks made at twice the pixel size (a whole slide's working
    resolution), the cells are still found at full resolution and their number and drug uptake stay close."""
    from conftest import CONFIG
    from nanohet.quantify.grid import AnalysisGrid
    from nanohet.steps import cells as cell_steps
    from nanohet.steps import microscopy as microscopy_steps
    from nanohet.steps import read_section

    fluo = str(tiny_sample["outputs"]["fluorescence"])
    section = read_section(fluo)
    assert max(section.shape_yx) > 3 * 128  # several tiles of 128 pixels
    masks = tmp_path / "masks.ome.tif"
    microscopy_steps.preprocess(fluo, CONFIG["microscopy"], str(masks), str(tmp_path / "stats.tsv"))
    grid = tmp_path / "grid.json"
    AnalysisGrid.over(section, 10.0).write(grid)
    args = dict(fluorescence=fluo, grid=str(grid), microscopy=CONFIG["microscopy"], msi=CONFIG["msi"],
                quantify=CONFIG["quantify"], sample="s1_T1")
    cell_steps.cells(**args, masks=str(masks), out_cells=str(tmp_path / "one.tsv"), out_metrics=str(tmp_path / "a"),
                     out_h5ad=str(tmp_path / "one.h5ad"))
    cell_steps.cells(**args, masks=str(masks), out_cells=str(tmp_path / "tiled.tsv"), out_metrics=str(tmp_path / "b"),
                     tile_px=128)
    one, tiled = (pd.read_csv(tmp_path / f, sep="\t") for f in ("one.tsv", "tiled.tsv"))
    assert len(one) == len(tiled) > 50
    # the same cells, but for touching pairs whose shared boundary pixel the watershed gives to either (its
    # tie-break follows the raster order of the window): under 2 % of the cells
    both = one.merge(tiled, on=["x_um", "y_um", "area_um2", "nucleus_area_um2"], suffixes=("", "_tiled"))
    assert len(both) >= 0.98 * len(one)
    np.testing.assert_allclose(both["nanoparticle_tiled"], both["nanoparticle"], rtol=1e-9)
    np.testing.assert_allclose(both["vessel_distance_um_tiled"], both["vessel_distance_um"], rtol=1e-9)
    assert tiled["nanoparticle"].mean() == pytest.approx(one["nanoparticle"].mean(), rel=1e-3)
    # the same cells as AnnData: channels' cell means and the nanoparticle in X, centroids in obsm["spatial"]
    from nanohet.io.h5ad import read_h5ad_table

    adata, obsm, uns = read_h5ad_table(tmp_path / "one.h5ad")
    assert list(adata.index[:2]) == [f"s1_T1_{c}" for c in one["cell"].iloc[:2]]
    np.testing.assert_allclose(obsm["spatial"], one[["x_um", "y_um"]].to_numpy())
    for channel in section.channels:
        np.testing.assert_allclose(adata[channel], one[f"{channel}_cell"], rtol=1e-6)  # X is float32
    np.testing.assert_allclose(adata["nanoparticle"], one["nanoparticle"], rtol=1e-6)
    assert list(adata["region"]) == list(one["region"]) and uns["spatial_unit"] == "um"
    # masks at a working resolution of twice the pixel size
    coarse_settings = {**CONFIG["microscopy"], "working_pixel_um": 2 * section.spacing[0]}
    coarse = tmp_path / "coarse_masks.ome.tif"
    microscopy_steps.preprocess(fluo, coarse_settings, str(coarse), str(tmp_path / "coarse.tsv"))
    assert read_section(str(coarse)).spacing[0] == pytest.approx(2 * section.spacing[0])
    cell_steps.cells(**{**args, "microscopy": coarse_settings}, masks=str(coarse), out_cells=str(tmp_path / "c.tsv"),
                     out_metrics=str(tmp_path / "c_m.tsv"), tile_px=128)
    c = pd.read_csv(tmp_path / "c.tsv", sep="\t")
    assert len(c) == pytest.approx(len(one), rel=0.05)
    assert c["nanoparticle"].mean() == pytest.approx(one["nanoparticle"].mean(), rel=0.05)
    assert c["vessel_distance_um"].median() == pytest.approx(one["vessel_distance_um"].median(), abs=section.spacing[0])


@pytest.mark.parametrize("seed", range(6))
def test_label_peaks_are_scikit_images_peaks(seed):
    """The watershed seeds of all labels at once (nanohet.microscopy.peaks) are scikit-image's peak_local_max with
    labels, coordinate for coordinate and in its order: random clumps, single pixels, rounded distances (plateaus
    and ties), 4- and 8-connected labels, several minimum distances."""
    from skimage.feature import peak_local_max

    from nanohet.microscopy.peaks import label_peaks

    rng = np.random.default_rng(seed)
    n = 256
    clumps = ndimage.gaussian_filter((rng.random((n, n)) < 0.004).astype(float), 2.5) > 0.004 * (1 + rng.random())
    foreground = clumps | (rng.random((n, n)) < 0.01)
    distance = ndimage.distance_transform_edt(foreground).astype(np.float32)
    distance = np.round(distance) if seed % 3 == 0 else ndimage.gaussian_filter(distance, 0.5 * (seed % 2))
    labels = ndimage.label(foreground, structure=np.ones((3, 3)) if seed % 2 else None, output=np.int32)[0]
    for min_distance in (1, 2, 3, 5):
        expected = peak_local_max(distance, min_distance=min_distance, labels=labels, exclude_border=False)
        found = label_peaks(distance, labels, min_distance)
        assert found.shape == expected.shape and (found == expected).all(), min_distance
    flat = np.where(labels > 0, 1.0 + labels % 3, 0.0).astype(np.float32)  # every label a plateau
    assert (label_peaks(flat, labels, 3) == peak_local_max(flat, min_distance=3, labels=labels,
                                                           exclude_border=False)).all()


def test_per_sample_cell_measures():
    """Fraction reached at the threshold (at or above), between-cell CV, the macrophages' ratio and the share of
    nuclei over 1.5 times the median nuclear area (two merged nuclei), on a table with known answers."""
    from nanohet.steps.cells import cell_measures

    table = pd.DataFrame({"nucleus_area_um2": [80.0, 80, 80, 80, 80, 80, 80, 200],
                          "drug": [0.0, 1, 2, 2, 3, 4, 4, np.nan],
                          "macrophage": [True, True, False, False, False, False, False, False]})
    rows = {(r["analyte"], r["metric"]): r["value"] for r in cell_measures(table, {"drug": "dox"}, {"dox": 2.0}, "s1")}
    assert rows[("cells", "n_cells")] == 8 and rows[("cells", "large_nucleus_fraction")] == 1 / 8
    assert rows[("dox", "fraction_of_cells_reached")] == 5 / 7  # the NaN cell is not counted
    finite = np.array([0.0, 1, 2, 2, 3, 4, 4])
    assert rows[("dox", "cell_cv")] == pytest.approx(finite.std() / finite.mean())
    assert rows[("dox", "macrophage_to_other_ratio")] == pytest.approx(0.5 / (15 / 5))  # means over finite values
