"""Workflow steps called directly: outputs, and clean failures on bad input."""
import shutil

import numpy as np
import pandas as pd
import pytest

from conftest import CONFIG, IMZML, register_onto_fluorescence
from nanohet.steps import microscopy as microscopy_steps
from nanohet.steps import msi as msi_steps
from nanohet.steps import quantify as quantify_steps
from nanohet.steps import volume as volume_steps
from nanohet.steps import register as register_steps
from nanohet.errors import InputError
from nanohet.io.ometiff import read_ome_tiff
from nanohet.settings import RegistrationSettings


def _outs(tmp_path):
    return dict(out_ions=str(tmp_path / "o" / "ions.ome.tif"), out_stats=str(tmp_path / "o" / "stats.tsv"),
                out_spectrum=str(tmp_path / "o" / "spectrum.tsv"))


def test_extract_msi_writes_normalised_stack(tmp_path, tiny_sample):
    outs = _outs(tmp_path)
    msi_steps.extract(str(tiny_sample["outputs"]["msi"]), CONFIG["msi"], **outs, sample="s1_T1")
    stack = read_ome_tiff(outs["out_ions"])
    names = [a["name"] for a in CONFIG["msi"]["analytes"]]
    assert stack.channels[:len(names) + 3] == names + ["TIC", "daunorubicin_is", "acquired"]
    peaks = stack.channels[len(names) + 3:]
    assert len(peaks) == CONFIG["msi"]["top_n_peaks"] and all(p.startswith("mz") for p in peaks)
    # the most intense species of the phantom (PC 34:1, m/z 760.585) is among the top peaks
    assert any(abs(float(p[2:]) - 760.5851) < 0.05 for p in peaks)
    assert stack.spacing == (30.0, 30.0)
    acquired = stack.channel("acquired") > 0
    assert not acquired.all() and np.isnan(stack.channel("TIC")[~acquired]).all()
    stats = pd.read_csv(outs["out_stats"], sep="\t")
    assert set(stats.unit) == {"ug/g-equivalent"}
    assert stats.set_index("analyte").loc["doxorubicin", "fraction_detected"] > 0.3


def test_extract_msi_with_tic_normalisation(tmp_path, tiny_sample):
    outs = _outs(tmp_path)
    cfg = dict(CONFIG["msi"], normalisation="tic")
    msi_steps.extract(str(tiny_sample["outputs"]["msi"]), cfg, **outs)
    stack = read_ome_tiff(outs["out_ions"])
    dox = stack.channel("doxorubicin")
    assert np.nanmax(dox) < 1.0  # a fraction of the TIC
    assert set(pd.read_csv(outs["out_stats"], sep="\t").unit) == {"fraction of TIC"}


@pytest.mark.parametrize("damage, message", [
    ("truncate", "truncated"), ("uuid", "UUID"), ("no_ibd", "missing"), ("garbage", "XML|imzML"),
])
def test_bad_msi_inputs_fail_clearly_and_leave_no_output(tmp_path, damage, message):
    src = IMZML / "pyimzml_example"
    for f in src.glob("Example_Processed.*"):
        shutil.copy(f, tmp_path / f.name)
    imzml, ibd = tmp_path / "Example_Processed.imzML", tmp_path / "Example_Processed.ibd"
    if damage == "truncate":
        ibd.write_bytes(ibd.read_bytes()[: ibd.stat().st_size // 2])
    elif damage == "uuid":
        ibd.write_bytes(b"\x01" * 16 + ibd.read_bytes()[16:])
    elif damage == "no_ibd":
        ibd.unlink()
    else:
        imzml.write_text("this is not XML")
    outs = _outs(tmp_path)
    cfg = dict(CONFIG["msi"], analytes=[{"name": "x", "mz": 300.0, "ppm": 100}], normalisation="tic")
    cfg.pop("internal_standard")
    with pytest.raises(InputError, match=message) as err:
        msi_steps.extract(str(imzml), cfg, **outs)
    assert "Example_Processed" in str(err.value)
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_missing_internal_standard_signal_names_sample(tmp_path):
    outs = _outs(tmp_path)
    cfg = dict(CONFIG["msi"], analytes=[{"name": "x", "mz": 300.0, "ppm": 100}])
    with pytest.raises(InputError, match="sample s9.*internal standard"):
        msi_steps.extract(str(IMZML / "pyimzml_example" / "Example_Processed.imzML"), cfg, **outs, sample="s9")
    assert not (tmp_path / "o" / "ions.ome.tif").exists()


def test_wrong_channel_name_is_reported(tmp_path, tiny_sample):
    cfg = dict(CONFIG["microscopy"], channels=dict(CONFIG["microscopy"]["channels"], vessels="CD34"))
    with pytest.raises(InputError, match="'CD34' .*role vessels.*DAPI"):
        microscopy_steps.preprocess(str(tiny_sample["outputs"]["fluorescence"]), cfg,
                                       str(tmp_path / "m.ome.tif"), str(tmp_path / "s.tsv"))
    assert not (tmp_path / "m.ome.tif").exists()


def test_volume_with_empty_mask_names_files(tmp_path, tiny_sample):
    import SimpleITK as sitk

    mask = sitk.ReadImage(str(tiny_sample["outputs"]["volume_mask"])) * 0
    sitk.WriteImage(mask, str(tmp_path / "empty.nii.gz"))
    with pytest.raises(InputError, match="empty.nii.gz.*sample s1.*empty"):
        volume_steps.quantify_volume(str(tiny_sample["outputs"]["volume"]), str(tmp_path / "empty.nii.gz"),
                                 str(tmp_path / "v.tsv"), sample="s1")
    assert not (tmp_path / "v.tsv").exists()


def _registration_inputs(tmp_path, tiny_sample):
    out = tiny_sample["outputs"]
    masks = tmp_path / "masks.ome.tif"
    microscopy_steps.preprocess(str(out["fluorescence"]), CONFIG["microscopy"], str(masks), str(tmp_path / "s.tsv"))
    ions = tmp_path / "ions.ome.tif"
    msi_steps.extract(str(out["msi"]), CONFIG["msi"], str(ions), str(tmp_path / "i.tsv"), str(tmp_path / "m.tsv"))
    return out, masks, ions


def test_a_deliberately_failed_registration_is_flagged_and_can_fail_the_run(tmp_path, tiny_sample):
    out, masks, ions = _registration_inputs(tmp_path, tiny_sample)
    # start upside down and barely optimise: worse than plain centring
    bad = dict(CONFIG["registration"], transform="rigid", rotation_search_deg=[180], iterations=1)
    args = dict(modality="msi", source=ions, fluorescence=out["fluorescence"], masks=masks,
                out_transform=tmp_path / "t.tfm", out_registered=tmp_path / "r.ome.tif", sample="s1_T1")
    register_onto_fluorescence(registration=bad, out_qc=tmp_path / "qc.tsv", out_figure=str(tmp_path / "qc.png"), **args)
    qc = pd.read_csv(tmp_path / "qc.tsv", sep="\t").iloc[0]
    assert bool(qc.flagged) and qc.dice_after < qc.dice_before and "tissue Dice" in qc.flag_reason
    assert (tmp_path / "qc.png").stat().st_size > 0
    with pytest.raises(InputError, match="s1_T1: registration msi->fluorescence is flagged.*fail_on_flag"):
        register_onto_fluorescence(registration=dict(bad, fail_on_flag=True), out_qc=tmp_path / "qc2.tsv", **args)
    assert not (tmp_path / "qc2.tsv").exists()
    good = dict(CONFIG["registration"])
    register_onto_fluorescence(registration=good, out_qc=tmp_path / "qc3.tsv", **args)
    assert not bool(pd.read_csv(tmp_path / "qc3.tsv", sep="\t").iloc[0].flagged)


@pytest.mark.parametrize("transform", ["affine", "bspline"])
def test_masks_are_mapped_back_onto_the_native_msi_grid(tmp_path, tiny_sample, transform):
    from nanohet.demo.geometry import msi_to_section

    out, masks, ions = _registration_inputs(tmp_path, tiny_sample)
    on_msi = tmp_path / "masks_on_msi.ome.tif"
    reg_cfg = {**CONFIG["registration"], "transform": transform}
    register_onto_fluorescence("msi", ions, out["fluorescence"], masks, reg_cfg, tmp_path / "t.tfm",
                               tmp_path / "r.ome.tif", tmp_path / "qc.tsv", out_masks_on_msi=on_msi)
    qc = pd.read_csv(tmp_path / "qc.tsv", sep="\t").iloc[0]
    assert qc["transform"] == transform and qc.run_time_s > 0
    # the B-spline's deformation is reported, and inverted to map the masks back (affine: no deformation)
    assert (qc.deformation_max_um > 0 and qc.jacobian_min > 0) if transform == "bspline" else np.isnan(qc.jacobian_min)
    m = read_ome_tiff(on_msi)
    stack = read_ome_tiff(ions)
    assert m.channels == ["tissue_fraction", "viable_fraction", "vessel_distance_um"]
    assert m.spacing == stack.spacing and m.shape_yx == stack.shape_yx
    # ground truth: the true section position of every MSI pixel centre, looked up in the true tissue mask
    truth = read_ome_tiff(tiny_sample["truth_dir"] / "truth_masks.ome.tif")
    geom = tiny_sample["record"]["msi_geometry"]
    ys, xs = np.nonzero(stack.channel("acquired") > 0)
    u = np.stack([xs, ys], 1) * stack.spacing[0] + np.asarray(stack.origin)
    ij = np.round(msi_to_section(u, geom) / truth.spacing[0]).astype(int)
    ok = (ij >= 0).all(1) & (ij < truth.shape_yx[0]).all(1)
    true_tissue = truth.channel("tissue")[ij[ok, 1], ij[ok, 0]] > 0
    mapped = np.nan_to_num(m.channel("tissue_fraction")[ys[ok], xs[ok]]) >= 0.5
    assert (mapped == true_tissue).mean() > 0.97
    dist = m.channel("vessel_distance_um")[ys[ok], xs[ok]][mapped]
    assert np.isfinite(dist).all() and 5 < np.median(dist) < 100


# Known misses: seed 26 since the phantom's nuclei are a hard-core process (a78be23; the DAPI image at the 10 µm
# working pixels is more even): it ends 2.9 px off and is flagged (pose margin 0.007). Earlier seed 24 was the
# miss (pose margin 0.026; on 1.2 mm sections the margin does not separate a good fit from a miss, see
# docs/validation.md). A seed listed here must miss and be flagged.
KNOWN_HE_MISSES = (26,)


def _register_tiny_he(tmp_path, **params):
    """A tiny phantom sample's H&E registered with the default config: (truth record, QC row, files, masks)."""
    from conftest import sample_outputs, tiny_params
    from nanohet.demo.cohort import generate_sample

    out = sample_outputs(tmp_path / "data")
    rec = generate_sample("r_T1", out, tmp_path / "truth", tiny_params(**params))
    masks = tmp_path / "masks.ome.tif"
    microscopy_steps.preprocess(str(out["fluorescence"]), CONFIG["microscopy"], str(masks), str(tmp_path / "s.tsv"))
    register_onto_fluorescence("he", out["he"], out["fluorescence"], masks, CONFIG["registration"], tmp_path / "he.tfm",
                               tmp_path / "he.ome.tif", tmp_path / "qc.tsv", sample="r_T1")
    return rec, pd.read_csv(tmp_path / "qc.tsv", sep="\t").iloc[0], out, masks


@pytest.mark.parametrize("seed", [21, 22, 23, 24, 25, 26])
def test_he_registration_recovers_any_rotation_of_a_mirrored_section(tmp_path, seed):
    """The demo phantom's H&E mounted face down at a random angle in [-180, 180): the 360° + mirror search copes,
    or (the known misses) flags the edge because another orientation fits almost as well."""
    import json

    import SimpleITK as sitk

    from nanohet.demo.geometry import section_to_he
    from nanohet.registration import target_registration_error

    rec, qc, _, _ = _register_tiny_he(tmp_path, seed=seed, he_rotation_deg=180.0, he_mirrored=True)
    geom = rec["he_geometry"]
    assert geom["mirrored"]
    assert bool(qc.flipped)
    truth = read_ome_tiff(tmp_path / "truth" / "truth_masks.ome.tif")
    ys, xs = np.nonzero(truth.channel("tissue")[::4, ::4] > 0)
    x = np.stack([xs, ys], 1) * 4 * truth.spacing[0]
    e = target_registration_error(sitk.ReadTransform(str(tmp_path / "he.tfm")), x, section_to_he(x, geom))
    if seed in KNOWN_HE_MISSES:
        bound = RegistrationSettings.from_dict(CONFIG["registration"]).edge("he", "fluorescence").min_pose_margin
        assert np.median(e) / truth.spacing[0] > 2.0 and bool(qc.flagged) and qc.pose_margin < bound
    else:
        assert np.median(e) / truth.spacing[0] < 2.0, json.dumps(geom)
    assert np.median(e) / truth.spacing[0] < 2.0 or bool(qc.flagged)  # never a silent miss


def test_the_refined_fit_ranks_the_start_poses(tmp_path):
    """Seed 24 mounted face up at 2°: a mirrored pose at 135° has the same MI after the short coarse
    optimisation and used to win the search (it passed silently until the pose margin flagged it). Refined to
    the end, the true orientation fits better and wins; its pose margin is the difference of the refined fits."""
    import SimpleITK as sitk

    from nanohet.demo.geometry import section_to_he
    from nanohet.registration import target_registration_error

    rec, qc, out, masks = _register_tiny_he(tmp_path, seed=24, he_rotation_deg=2.0)
    truth = read_ome_tiff(tmp_path / "truth" / "truth_masks.ome.tif")
    ys, xs = np.nonzero(truth.channel("tissue")[::4, ::4] > 0)
    x = np.stack([xs, ys], 1) * 4 * truth.spacing[0]
    e = target_registration_error(sitk.ReadTransform(str(tmp_path / "he.tfm")), x, section_to_he(x, rec["he_geometry"]))
    assert not rec["he_geometry"]["mirrored"] and not bool(qc.flipped)
    assert np.median(e) < 50  # the true orientation (the mirrored pose was > 100 µm off everywhere) ...
    assert qc.pose_margin > 0  # ... and the best refined fit
    # this seed is one of the known small-section misses (KNOWN_HE_MISSES): accurate, or flagged
    assert np.median(e) / truth.spacing[0] < 2.0 or bool(qc.flagged)


@pytest.mark.parametrize("seed", [21, 23])
def test_landmarks_start_the_he_registration_of_a_mirrored_section(tmp_path, seed):
    """Five hand-placed landmarks (±10 µm) replace the search; the QC table reports their error."""
    import SimpleITK as sitk

    from conftest import sample_outputs, tiny_params
    from nanohet.demo.cohort import generate_sample
    from nanohet.demo.geometry import section_to_he
    from nanohet.registration import target_registration_error

    out = sample_outputs(tmp_path / "data")
    rec = generate_sample("r_T1", out, tmp_path / "truth",
                          tiny_params(seed=seed, he_rotation_deg=180.0, he_mirrored=True))
    geom = rec["he_geometry"]
    truth = read_ome_tiff(tmp_path / "truth" / "truth_masks.ome.tif")
    ys, xs = np.nonzero(truth.channel("tissue")[::4, ::4] > 0)
    x = np.stack([xs, ys], 1) * 4 * truth.spacing[0]
    picks = [np.argmin(x[:, 0]), np.argmax(x[:, 0]), np.argmin(x[:, 1]), np.argmax(x[:, 1]),
             np.argmin(np.hypot(*(x - x.mean(0)).T))]
    rng = np.random.default_rng(seed)
    fixed_pts = x[picks] + rng.normal(0, 10, (5, 2))
    moving_pts = section_to_he(x[picks], geom) + rng.normal(0, 10, (5, 2))
    csv = tmp_path / "he_landmarks.csv"
    pd.DataFrame({"fixed_x": fixed_pts[:, 0], "fixed_y": fixed_pts[:, 1], "moving_x": moving_pts[:, 0],
                  "moving_y": moving_pts[:, 1]}).to_csv(csv, index=False)
    masks = tmp_path / "masks.ome.tif"
    microscopy_steps.preprocess(str(out["fluorescence"]), CONFIG["microscopy"], str(masks), str(tmp_path / "s.tsv"))
    no_search = dict(CONFIG["registration"], edges=[
        dict(e, rotation_search_deg=[0], flip_search=False) if e["moving"] == "he" else e
        for e in CONFIG["registration"]["edges"]])
    register_onto_fluorescence("he", out["he"], out["fluorescence"], masks, no_search, tmp_path / "he.tfm",
                               tmp_path / "he.ome.tif", tmp_path / "qc.tsv", sample="r_T1", landmarks=str(csv))
    qc = pd.read_csv(tmp_path / "qc.tsv", sep="\t").iloc[0]
    assert qc.initialisation == "landmarks" and bool(qc.flipped) and not bool(qc.flagged)
    assert qc.landmark_points == 5 and qc.landmark_check == "init points"
    # the clicks themselves are ±10 µm off in each image: a perfect fit leaves Rayleigh distances of sigma 14 µm
    # (median 17 µm), and the median of five exceeds 35 µm with probability 0.001 (25 µm: 0.07)
    assert qc.landmark_tre_median_um < 35.0
    e = target_registration_error(sitk.ReadTransform(str(tmp_path / "he.tfm")), x, section_to_he(x, geom))
    assert np.median(e) / truth.spacing[0] < 2.0


@pytest.mark.parametrize("images, bound_px", [({"msi": "pca"}, 0.5),
                                              ({"msi": "tissue_distance", "fluorescence": "tissue_distance"}, 1.0),
                                              ({"fluorescence": ["nuclei", "vessels"]}, 0.5)])
def test_msi_registration_images(tmp_path, tiny_sample, images, bound_px):
    """PC1 of the top-N peak images, tissue distance maps, a channel sum: all register the phantom's MSI."""
    import SimpleITK as sitk

    from nanohet.registration import target_registration_error

    out, masks, ions = _registration_inputs(tmp_path, tiny_sample)
    cfg = dict(CONFIG["registration"], images=images)
    register_onto_fluorescence("msi", ions, out["fluorescence"], masks, cfg, tmp_path / "t.tfm", tmp_path / "r.ome.tif",
                               tmp_path / "qc.tsv")
    lm = pd.read_csv(tiny_sample["truth_dir"] / "landmarks_msi.csv", sep="\t")
    e = target_registration_error(sitk.ReadTransform(str(tmp_path / "t.tfm")),
                                  lm[["section_x_um", "section_y_um"]].to_numpy(), lm[["msi_x_um", "msi_y_um"]].to_numpy())
    pixel = tiny_sample["record"]["msi_geometry"]["pixel_size_um"]
    assert np.median(e) / pixel < bound_px


def test_bad_registration_image_settings_name_the_file(tmp_path, tiny_sample):
    out, masks, ions = _registration_inputs(tmp_path, tiny_sample)
    rest = (tmp_path / "t.tfm", tmp_path / "r.ome.tif", tmp_path / "qc.tsv")
    with pytest.raises(InputError, match=f"{ions}.*'dox' is neither tic, pca"):
        register_onto_fluorescence("msi", ions, out["fluorescence"], masks,
                                   dict(CONFIG["registration"], images={"msi": "dox"}), *rest)
    no_top = tmp_path / "no_top.ome.tif"
    msi_steps.extract(str(out["msi"]), dict(CONFIG["msi"], top_n_peaks=0), str(no_top), str(tmp_path / "i2.tsv"),
                         str(tmp_path / "m2.tsv"))
    with pytest.raises(InputError, match="pca needs at least 2 top-peak images"):
        register_onto_fluorescence("msi", no_top, out["fluorescence"], masks,
                                   dict(CONFIG["registration"], images={"msi": "pca"}), *rest)
    assert not (tmp_path / "t.tfm").exists() and not (tmp_path / "qc.tsv").exists()


def test_a_chain_msi_to_he_to_fluorescence_is_composed_into_the_reference(tmp_path, tiny_sample):
    """MSI registered onto H&E, H&E onto fluorescence: the composed transform matches the true MSI position."""
    import SimpleITK as sitk

    from nanohet.registration import target_registration_error

    out, masks, ions = _registration_inputs(tmp_path, tiny_sample)
    reg = dict(CONFIG["registration"], edges=[
        {"moving": "msi", "fixed": "he", "images": {"msi": "tissue_distance", "he": "tissue_distance"},
         "working_spacing_um": 10.0},
        next(e for e in CONFIG["registration"]["edges"] if e["moving"] == "he")])
    settings = RegistrationSettings.from_dict(reg)
    register_steps.register_edge("s1_T1", "msi", "he", str(ions), str(out["he"]), settings.edge("msi", "he"),
                                 CONFIG["microscopy"], str(tmp_path / "msi_to_he.tfm"),
                                 str(tmp_path / "msi_to_he_qc.tsv"), str(tmp_path / "msi_to_he_qc.png"))
    register_steps.register_edge("s1_T1", "he", "fluorescence", str(out["he"]), str(out["fluorescence"]),
                                 settings.edge("he", "fluorescence"), CONFIG["microscopy"], str(tmp_path / "he_to_fl.tfm"),
                                 str(tmp_path / "he_to_fl_qc.tsv"), masks=str(masks))
    quantify_steps.analysis_grid(str(out["fluorescence"]), 10.0, str(tmp_path / "grid.json"))
    register_steps.to_reference("msi", str(ions), [str(tmp_path / "he_to_fl.tfm"), str(tmp_path / "msi_to_he.tfm")],
                                str(tmp_path / "grid.json"), str(tmp_path / "msi_to_reference.tfm"),
                                str(tmp_path / "msi_in_reference.ome.tif"), masks=str(masks),
                                out_masks_on_msi=str(tmp_path / "on_msi.ome.tif"))
    qc = pd.read_csv(tmp_path / "msi_to_he_qc.tsv", sep="\t").iloc[0]
    assert qc.edge == "msi->he" and qc.fixed_image == "H&E tissue_distance" and not bool(qc.flagged)
    lm = pd.read_csv(tiny_sample["truth_dir"] / "landmarks_msi.csv", sep="\t")
    e = target_registration_error(sitk.ReadTransform(str(tmp_path / "msi_to_reference.tfm")),
                                  lm[["section_x_um", "section_y_um"]].to_numpy(), lm[["msi_x_um", "msi_y_um"]].to_numpy())
    pixel = tiny_sample["record"]["msi_geometry"]["pixel_size_um"]
    assert np.median(e) / pixel < 1.0
    registered = read_ome_tiff(tmp_path / "msi_in_reference.ome.tif")
    assert "TIC" in registered.channels and (tmp_path / "on_msi.ome.tif").exists()


@pytest.mark.parametrize("seed", [31, 32, 33, 37])
def test_msi_registration_with_a_rotation_search_recovers_any_angle(tmp_path, seed):
    """The phantom's MSI acquired at any angle in [-180, 180): a 15-degree start search finds it (< 0.5 px).
    The seeds are the first from 30 whose angle is over 45 degrees (34 and 35 were, before each acquisition
    had its own random stream), and 37."""
    import SimpleITK as sitk

    from conftest import sample_outputs, tiny_params
    from nanohet.demo.cohort import generate_sample
    from nanohet.registration import target_registration_error

    out = sample_outputs(tmp_path / "data")
    rec = generate_sample("r_T1", out, tmp_path / "truth", tiny_params(seed=seed, msi_rotation_deg=180.0))
    assert abs(rec["msi_geometry"]["rotation_deg"]) > 45
    masks, ions = tmp_path / "masks.ome.tif", tmp_path / "ions.ome.tif"
    microscopy_steps.preprocess(str(out["fluorescence"]), CONFIG["microscopy"], str(masks), str(tmp_path / "s.tsv"))
    msi_steps.extract(str(out["msi"]), CONFIG["msi"], str(ions), str(tmp_path / "i.tsv"), str(tmp_path / "m.tsv"))
    cfg = dict(CONFIG["registration"], rotation_search_deg=list(range(-180, 180, 15)))
    register_onto_fluorescence("msi", ions, out["fluorescence"], masks, cfg, tmp_path / "t.tfm", tmp_path / "r.ome.tif",
                               tmp_path / "qc.tsv", sample="r_T1")
    lm = pd.read_csv(tmp_path / "truth" / "landmarks_msi.csv", sep="\t")
    e = target_registration_error(sitk.ReadTransform(str(tmp_path / "t.tfm")),
                                  lm[["section_x_um", "section_y_um"]].to_numpy(), lm[["msi_x_um", "msi_y_um"]].to_numpy())
    assert np.median(e) / rec["msi_geometry"]["pixel_size_um"] < 0.5


def test_mean_spectrum_bin_width_from_the_config(tmp_path, tiny_sample):
    out = tiny_sample["outputs"]
    for width in (0.005, 0.02):
        cfg = dict(CONFIG["msi"], mean_spectrum_bin_mz=width, chunk_peaks=50_000)
        msi_steps.extract(str(out["msi"]), cfg, str(tmp_path / f"i{width}.ome.tif"), str(tmp_path / f"s{width}.tsv"),
                             str(tmp_path / f"m{width}.tsv"))
    fine = pd.read_csv(tmp_path / "m0.005.tsv", sep="\t")
    coarse = pd.read_csv(tmp_path / "m0.02.tsv", sep="\t")
    assert np.diff(coarse.mz).min() == pytest.approx(0.02, rel=1e-4)  # the table keeps ~7 significant digits
    assert np.diff(fine.mz).min() == pytest.approx(0.005, rel=1e-4)
    # the same intensity, spread over 4x fewer bins (mean per acquired pixel)
    assert coarse.mean_intensity.sum() == pytest.approx(fine.mean_intensity.sum(), rel=1e-5)
