"""IBSI intensity statistics and intensity-histogram features (nanohet.quantify.ibsi): the IBSI digital
phantom's reference values, and independent computations on random data."""

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import stats

from conftest import DATA

from nanohet.errors import InputError
from nanohet.quantify.ibsi import (HISTOGRAM_CODES, STATISTICS_CODES, discretise, intensity_histogram_features,
                                   intensity_statistics)
from nanohet.quantify.metrics import gini_coefficient

PHANTOM = DATA / "volumes" / "ibsi_digital_phantom"

# Reference values of the IBSI digital phantom: the rows "dig. phantom" of the IBSI documentation
# (theibsi/ibsi-doc, docs/03_Image_features.rst), keyed by IBSI identifier, as printed (3 significant digits).
STATISTICS_REFERENCE = {
    "Q4LE": 2.15, "ECT3": 3.05, "KE2A": 1.08, "IPH6": -0.355, "Y12H": 1, "1GSF": 1, "QG58": 1, "8DWT": 4,
    "84IY": 6, "SALO": 3, "2OJQ": 5, "4FUA": 1.55, "1128": 1.11, "N72L": 1.15, "7TET": 0.812, "9S40": 0.6,
    "N8CA": 567, "5ZWQ": 2.77,
}
HISTOGRAM_REFERENCE = {
    "X6K6": 2.15, "CH89": 3.05, "88K1": 1.08, "C3I7": -0.355, "WIFQ": 1, "1PR8": 1, "GPMT": 1, "OZ0C": 4,
    "3NCY": 6, "AMMC": 1, "WR0O": 3, "5Z3W": 5, "D2ZX": 1.55, "WRZB": 1.11, "4RNL": 1.15, "CWYJ": 0.812,
    "SLWD": 0.6, "TLU2": 1.27, "BJ5W": 0.512, "12CE": 8, "8E6O": 3, "VQB3": -50, "RHQZ": 1,
}


def _printed(value: float, reference: float) -> bool:
    """``value`` rounds to ``reference`` as printed with 3 significant digits (integers exactly)."""
    if float(reference).is_integer() and abs(reference) < 1000:
        return value == pytest.approx(reference, abs=1e-9)
    return float(f"{value:.3g}") == pytest.approx(reference)


@pytest.fixture(scope="module")
def phantom_values():
    image = sitk.GetArrayFromImage(sitk.ReadImage(str(PHANTOM / "phantom.nii.gz")))
    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(PHANTOM / "mask.nii.gz"))) > 0
    return image[mask]


def test_statistics_reproduce_the_ibsi_digital_phantom(phantom_values):
    got = intensity_statistics(phantom_values)
    assert set(STATISTICS_CODES.values()) == set(STATISTICS_REFERENCE)
    wrong = {code: got[name] for name, code in STATISTICS_CODES.items()
             if not _printed(got[name], STATISTICS_REFERENCE[code])}
    assert not wrong, wrong


@pytest.mark.parametrize("how", [{"bin_width": 1.0}, {"n_bins": 6}])
def test_histogram_features_reproduce_the_ibsi_digital_phantom(phantom_values, how):
    """The manual's two equivalent discretisations of the phantom: fixed bin size 1 and fixed bin number 6."""
    levels = discretise(phantom_values, **how)
    np.testing.assert_array_equal(levels, phantom_values)  # the phantom's values are already levels 1-6
    got = intensity_histogram_features(levels)
    assert set(HISTOGRAM_CODES.values()) == set(HISTOGRAM_REFERENCE)
    wrong = {code: got[name] for name, code in HISTOGRAM_CODES.items()
             if not _printed(got[name], HISTOGRAM_REFERENCE[code])}
    assert not wrong, wrong


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_statistics_agree_with_scipy_on_random_data(seed):
    rng = np.random.default_rng(seed)
    x = rng.gamma(rng.uniform(0.5, 4), rng.uniform(0.1, 10), size=int(rng.integers(50, 5000)))
    got = intensity_statistics(x)
    assert got["variance"] == pytest.approx(np.var(x))
    assert got["skewness"] == pytest.approx(stats.skew(x))
    assert got["kurtosis"] == pytest.approx(stats.kurtosis(x, fisher=True))
    assert got["cov"] == pytest.approx(np.std(x) / np.mean(x))
    assert got["medad"] == pytest.approx(np.mean(np.abs(x - np.median(x))))
    q1, q3 = np.percentile(x, [25, 75])
    assert got["qcod"] == pytest.approx((q3 - q1) / (q3 + q1))
    assert got["rms"] ** 2 * x.size == pytest.approx(got["energy"])


def test_constant_region_and_bad_input():
    got = intensity_statistics(np.full(10, 3.0))
    assert got["skewness"] == 0 and got["kurtosis"] == 0 and got["cov"] == 0
    hist = intensity_histogram_features(discretise(np.full(10, 3.0), n_bins=32))
    assert hist["entropy"] == 0 and hist["uniformity"] == 1 and hist["mode"] == 1
    with pytest.raises(InputError, match="empty"):
        intensity_statistics(np.array([]))
    with pytest.raises(InputError, match="NaN"):
        intensity_statistics(np.array([1.0, np.nan]))
    with pytest.raises(InputError, match="integers >= 1"):
        intensity_histogram_features(np.array([0, 1, 2]))


def test_discretisation_definitions():
    x = np.array([0.0, 0.24, 0.25, 0.5, 0.99, 1.0])
    np.testing.assert_array_equal(discretise(x, n_bins=4), [1, 1, 2, 3, 4, 4])  # the maximum goes into bin 4
    np.testing.assert_array_equal(discretise(x, bin_width=0.25), [1, 1, 2, 3, 4, 5])
    np.testing.assert_array_equal(discretise(x, bin_width=0.5, minimum=-0.5), [2, 2, 2, 3, 3, 4])
    # entropy of a uniform histogram over 8 levels is 3 bits, uniformity 1/8
    h = intensity_histogram_features(np.repeat(np.arange(1, 9), 5))
    assert h["entropy"] == pytest.approx(3.0) and h["uniformity"] == pytest.approx(1 / 8)


def test_gini_coefficient_analytic_cases():
    assert gini_coefficient(np.full(100, 2.5)) == pytest.approx(0.0)
    one = np.zeros(50)
    one[7] = 4.0
    assert gini_coefficient(one) == pytest.approx(49 / 50)  # all of it in one of n pixels: (n - 1) / n
    rng = np.random.default_rng(3)
    # uniform on [0, 1]: G = 1/3; exponential: G = 1/2
    assert gini_coefficient(rng.uniform(0, 1, 200_000)) == pytest.approx(1 / 3, abs=0.005)
    assert gini_coefficient(rng.exponential(2.0, 200_000)) == pytest.approx(0.5, abs=0.005)
    x = rng.lognormal(0, 1, 300)
    pairwise = np.abs(x[:, None] - x[None, :]).sum() / (2 * x.size ** 2 * x.mean())
    assert gini_coefficient(x) == pytest.approx(pairwise)
    assert gini_coefficient(x) == pytest.approx(gini_coefficient(7.0 * x))  # scale invariant
    assert np.isnan(gini_coefficient(np.zeros(5)))


def test_the_metrics_documentation_lists_every_identifier():
    from conftest import REPO

    text = (REPO / "docs" / "metrics.md").read_text()
    from nanohet.quantify.texture import GLCM_CODES, GLSZM_CODES

    for prefix, codes in (("stat", STATISTICS_CODES), ("ih", HISTOGRAM_CODES), ("glcm", GLCM_CODES),
                          ("glszm", GLSZM_CODES)):
        for name, code in codes.items():
            assert f"| `{prefix}_{name}` | {code} |" in text, (name, code)


def test_features_command_on_the_phantom_and_on_a_labelled_section(tmp_path):
    """``nanohet features``: the IBSI phantom's reference values from the command line (3-D NIfTI), and a 2-D
    OME-TIFF with two labelled regions (per-label rows, spatial statistics); bad inputs name the files."""
    import subprocess
    import sys

    import pandas as pd

    from nanohet.image import SectionImage
    from nanohet.io.ometiff import write_ome_tiff

    def run(*args):
        return subprocess.run([sys.executable, "-m", "nanohet.cli", "features", *map(str, args)], capture_output=True,
                              text=True, cwd=tmp_path)

    out = tmp_path / "phantom.tsv"
    res = run(PHANTOM / "phantom.nii.gz", PHANTOM / "mask.nii.gz", "--bins", 6, "--texture-levels", 6, "--out", out)
    assert res.returncode == 0, res.stderr
    table = pd.read_csv(out, sep="\t", keep_default_na=False).set_index("ibsi")
    # 3-D texture: merged GLCM (IAZD) and 3-D GLSZM (KOBO) of the manual's "dig. phantom" rows
    for code, ref in {**STATISTICS_REFERENCE, **HISTOGRAM_REFERENCE, "GYBY": 0.509, "NI2N": 0.183,
                      "JN9H": 0.269, "5QRC": 0.255, "GU8N": 2.32, "VJGA": 2.6, "0F91": 3.1}.items():
        assert _printed(float(table.loc[code, "value"]), ref), code
    assert float(table.set_index("metric", drop=False).loc["volume", "value"]) == pytest.approx(74 * 8.0)  # 2 mm voxels

    rng = np.random.default_rng(1)
    image = rng.normal(100, 5, (120, 120)).astype(np.float32)
    image[:, 60:] += 50
    labels = np.zeros((120, 120), np.uint8)
    labels[10:110, 10:55] = 1
    labels[10:110, 65:110] = 2
    write_ome_tiff(tmp_path / "img.ome.tif", SectionImage(image[None], ["drug"], (10.0, 10.0)))
    write_ome_tiff(tmp_path / "lab.ome.tif", SectionImage(labels[None], ["regions"], (10.0, 10.0)))
    res = run(tmp_path / "img.ome.tif", tmp_path / "lab.ome.tif", "--unit", "ug/g")
    assert res.returncode == 0, res.stderr
    table = pd.read_csv(__import__("io").StringIO(res.stdout), sep="\t").set_index(["label", "metric"]).value
    assert table[(1, "stat_mean")] == pytest.approx(100, abs=1) and table[(2, "stat_mean")] == pytest.approx(150, abs=1)
    assert table[(1, "area")] == pytest.approx(100 * 45 * 100.0)  # µm²
    assert abs(table[(1, "moran_i")]) < 0.1  # white noise inside each region
    # white noise at 32 levels: almost every zone is a pixel or two (DHI near 0), neighbours uncorrelated
    assert table[(1, "dhi")] < 0.01 and abs(table[(1, "glcm_correlation")]) < 0.1

    write_ome_tiff(tmp_path / "small.ome.tif", SectionImage(labels[None, :60, :60], ["regions"], (10.0, 10.0)))
    res = run(tmp_path / "img.ome.tif", tmp_path / "small.ome.tif")
    assert res.returncode == 2 and "small.ome.tif" in res.stderr and "not on the grid" in res.stderr
    write_ome_tiff(tmp_path / "empty.ome.tif", SectionImage(np.zeros((1, 120, 120), np.uint8), ["r"], (10.0, 10.0)))
    res = run(tmp_path / "img.ome.tif", tmp_path / "empty.ome.tif")
    assert res.returncode == 2 and "empty mask" in res.stderr and "img.ome.tif" in res.stderr


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_percentiles_of_sorted_values_are_numpys(seed):
    """One sort for every percentile: bit for bit np.percentile (linear), with ties, one value, large ranges."""
    from nanohet.quantify.ibsi import sorted_percentiles

    rng = np.random.default_rng(seed)
    percents = [0, 10, 25, 50, 75, 90, 100, 33.3]
    for k in range(300):
        x = rng.normal(size=int(rng.integers(1, 500))) * 10 ** rng.uniform(-4, 4)
        if k % 3 == 0:
            x = np.round(x)
        assert np.array_equal(sorted_percentiles(np.sort(x), percents), np.percentile(x, percents))
