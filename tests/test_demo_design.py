"""The hierarchical demo cohort: its sample sheets, the level effects on uptake and the decomposition's truth."""
import importlib.util

import numpy as np
import pandas as pd
import pytest

from nanohet.demo.cohort import level_effects, params_from_config, uptake_factor
from nanohet.demo.design import hierarchical_sheet, sheet_text
from nanohet.demo.hierarchy import configured_components, fold_levels, variance_truth
from nanohet.errors import InputError
from nanohet.io.samplesheet import check_demo_paths, load_sample_sheet, sample_rows
from nanohet.quantify.variance import design_table, variance_components
from nanohet.settings import DemoSettings

from conftest import REPO

SCHEMA = str(REPO / "workflow" / "schemas" / "samples.schema.yaml")


def _tool():
    spec = importlib.util.spec_from_file_location("demo_sheets", REPO / "tools" / "demo_sheets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_sheets_are_the_tools_output():
    for name, design in _tool().SHEETS.items():
        assert (REPO / name).read_text() == sheet_text(hierarchical_sheet(**design)), name


def test_default_sheet_is_two_groups_of_three_animals_two_tumours_two_sections(tmp_path):
    path = tmp_path / "samples.tsv"
    path.write_text(sheet_text(hierarchical_sheet()))
    df = load_sample_sheet(path, SCHEMA)
    check_demo_paths(df, "results/demo/data")
    sections = sample_rows(df)
    assert sections["sample"].nunique() == 24
    per = sections.drop_duplicates("sample")
    assert per.groupby("group")["subject"].nunique().to_dict() == {"liposomal": 3, "thermosensitive": 3}
    assert (per.groupby("subject")["tumour"].nunique() == 2).all()
    assert (per.groupby(["subject", "tumour"]).size() == 2).all()
    # every section has fluorescence and MSI; H&E on each animal's first tumour's first section; a volume per tumour
    counts = sections.groupby("modality")["sample"].nunique().to_dict()
    assert counts == {"fluorescence": 24, "msi": 24, "he": 6, "volume": 12}


def test_level_effects_are_shared_within_their_unit_and_independent_of_order():
    demo = DemoSettings.from_dict({"seed": 5, "level_sd": {"animal": 0.3, "tumour": 0.2, "section": 0.1}})
    e11 = level_effects(demo, "m01", "T1", "m01_T1_s1")
    e12 = level_effects(demo, "m01", "T1", "m01_T1_s2")
    e21 = level_effects(demo, "m01", "T2", "m01_T2_s1")
    assert e11["animal"] == e12["animal"] == e21["animal"]
    assert e11["tumour"] == e12["tumour"] != e21["tumour"]
    assert e11["section"] != e12["section"]
    # the same tumour name in another animal is another tumour
    assert level_effects(demo, "m02", "T1", "m02_T1_s1")["tumour"] != e11["tumour"]
    params = params_from_config(demo.to_dict() | {"groups": {"g": {}}}, "g", "m01_T1_s2", "m01", "T1")
    assert params.uptake_factor == pytest.approx(1 + sum(e12.values()))
    assert params.interpatient_log_sigma == 0.0  # the levels replace the phantom's own between-sample lognormal


@pytest.mark.parametrize("seed", [1, 2])
def test_level_effects_have_the_configured_sd(seed):
    sd = {"animal": 0.25, "tumour": 0.15, "section": 0.1}
    demo = DemoSettings.from_dict({"seed": seed, "level_sd": sd})
    draws = pd.DataFrame([level_effects(demo, f"a{i}", "T1", f"a{i}_T1_s1") for i in range(3000)])
    for level, expected in sd.items():
        assert draws[level].std() == pytest.approx(expected, rel=0.06), level
        assert abs(draws[level].mean()) < 4 * expected / np.sqrt(3000)
    assert draws.corr().abs().where(~np.eye(3, dtype=bool)).max().max() < 0.06


def test_bad_level_sd_is_refused():
    with pytest.raises(InputError, match="level_sd"):
        DemoSettings.from_dict({"level_sd": {"animal": 0.2, "litter": 0.1}})
    with pytest.raises(InputError, match="level_sd"):
        DemoSettings.from_dict({"level_sd": {"animal": 1.5}})
    assert uptake_factor({"animal": -2.0}) > 0


def test_fold_levels_adds_absent_levels_to_the_nearest_present_one_above():
    comps = {"animal": 1.0, "tumour": 2.0, "section": 3.0, "pixel": 4.0}
    assert fold_levels(comps, ["animal", "pixel"]) == {"animal": 6.0, "pixel": 4.0}
    assert fold_levels(comps, ["animal", "tumour", "pixel"]) == {"animal": 1.0, "tumour": 5.0, "pixel": 4.0}
    assert fold_levels(comps, ["animal", "section", "pixel"]) == {"animal": 3.0, "section": 3.0, "pixel": 4.0}


def test_configured_components_of_an_analytic_design():
    # two sections at factor 2 and 0.5 whose mean at factor 1 is 3: E[b²] = 9
    summaries = pd.DataFrame({"mean": [6.0, 1.5], "uptake_factor": [2.0, 0.5], "cv": [0.5, 1.0],
                              "n_pixels": [101, 301]})
    comps = configured_components(summaries, {"animal": 0.2, "tumour": 0.1})
    assert comps["animal"] == pytest.approx(0.04 * 9)
    assert comps["tumour"] == pytest.approx(0.01 * 9)
    assert comps["section"] == 0.0
    assert comps["pixel"] == pytest.approx((100 * 9.0 + 300 * 2.25) / 400)


def _simulated_summaries(level_sd: dict, animals: int, seed: int, pixel_cv: float = 0.8) -> pd.DataFrame:
    """True section summaries of the demo's model: mean b (1 + a + t + s), with b per group."""
    demo = DemoSettings.from_dict({"seed": seed, "level_sd": level_sd})
    rows = []
    for g, b in (("liposomal", 4.0), ("thermosensitive", 3.0)):
        for i in range(animals):
            subject = f"{g[0]}{i}"
            for t in ("T1", "T2"):
                for s in ("s1", "s2"):
                    sample = f"{subject}_{t}_{s}"
                    f = uptake_factor(level_effects(demo, subject, t, sample))
                    rows.append({"sample": sample, "group": g, "subject": subject, "tumour": t,
                                 "modality": "msi", "analyte": "drug", "region": "tissue", "mean": b * f,
                                 "cv": pixel_cv, "n_pixels": 2000, "uptake_factor": f})
    return pd.DataFrame(rows)


def _estimates(summaries: pd.DataFrame) -> pd.DataFrame:
    vc = variance_components(design_table(summaries), n_draws=2000)
    return vc.assign(modality="msi", analyte="drug", region="tissue")


def test_variance_truth_of_a_perfect_measurement_is_the_realised_truth():
    sd = {"animal": 0.3, "tumour": 0.2, "section": 0.1}
    summaries = _simulated_summaries(sd, animals=3, seed=7)
    out = variance_truth(summaries, _estimates(summaries), sd).set_index("level")
    assert list(out.index) == ["animal", "tumour", "section", "pixel"]
    assert np.allclose(out["estimated_share"], out["realised_share"])
    assert out["realised_in_ci"].all()
    assert out["configured_sd"]["animal"] == 0.3 and np.isnan(out["configured_sd"]["pixel"])


def test_configured_shares_are_what_a_large_cohort_estimates():
    # with many animals the estimate converges to the configured shares (no geometry here: b is constant)
    sd = {"animal": 0.25, "tumour": 0.15, "section": 0.1}
    summaries = _simulated_summaries(sd, animals=300, seed=3, pixel_cv=0.05)
    out = variance_truth(summaries, _estimates(summaries), sd).set_index("level")
    for level in ("animal", "tumour", "section"):
        assert out.loc[level, "estimated_share"] == pytest.approx(out.loc[level, "configured_share"], abs=0.04)
        assert out.loc[level, "configured_in_ci"]
    shares = out["configured_share"]
    assert shares.sum() == pytest.approx(1.0)
    assert shares["animal"] > shares["tumour"] > shares["section"]
