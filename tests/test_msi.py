import warnings

import numpy as np
import pytest
from pyimzml.ImzMLParser import ImzMLParser, getionimage

from conftest import IMZML
from nanohet.errors import InputError
from nanohet.imzml import ImzMLWriter, deterministic_uuid, read_imzml_index
from nanohet.msi import IonTarget, clip_hotspots, extract_ion_images, normalise


def _reference(path, target):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = ImzMLParser(str(path))
    return getionimage(p, target.mz, tol=target.mz * target.ppm * 1e-6)


@pytest.mark.parametrize("rel, mzs, ppm", [
    ("pym2aia/test.imzML", [3000.0, 5000.0, 6213.7], 300),
    ("metaspace_spheroid/Untreated_3_434_tiny.imzML", [798.54, 760.585, 496.34], 20),
    ("pyimzml_example/Example_Processed.imzML", [200.0, 300.0], 500),
])
def test_ion_images_match_pyimzml(rel, mzs, ppm):
    idx = read_imzml_index(IMZML / rel)
    targets = [IonTarget(f"t{i}", m, ppm) for i, m in enumerate(mzs)]
    res = extract_ion_images(idx, targets, pixel_size_um=None if idx.pixel_size else 50.0, chunk_peaks=1500)
    for t in targets:
        ref = _reference(IMZML / rel, t)
        assert np.nanmax(ref) > 0
        np.testing.assert_allclose(res.images[t.name], ref, rtol=1e-6)


def test_continuous_and_processed_examples_agree():
    a = read_imzml_index(IMZML / "pyimzml_example" / "Example_Continuous.imzML")
    b = read_imzml_index(IMZML / "pyimzml_example" / "Example_Processed.imzML")
    t = [IonTarget("x", 250.0, 2000), IonTarget("y", 420.0, 300)]
    ra, rb = extract_ion_images(a, t), extract_ion_images(b, t)
    assert a.continuous and not b.continuous
    for name in ("x", "y"):
        np.testing.assert_array_equal(ra.images[name], rb.images[name])
    np.testing.assert_allclose(ra.tic, rb.tic, rtol=1e-12)


def test_missing_pixel_size_needs_the_sample_sheet():
    idx = read_imzml_index(IMZML / "metaspace_spheroid" / "Untreated_3_434_tiny.imzML")
    with pytest.raises(InputError, match="no pixel size"):
        extract_ion_images(idx, [IonTarget("a", 798.54, 10)])
    assert extract_ion_images(idx, [IonTarget("a", 798.54, 10)], pixel_size_um=15).pixel_size == (15.0, 15.0)


def _tiny_file(tmp_path):
    # 3x2 grid with pixel (3, 2) not acquired; known peaks.
    spectra = {
        (1, 1): ([100.0, 200.0, 200.001, 300.0], [1, 2, 3, 4]),
        (2, 1): ([100.0005, 250.0], [5, 6]),
        (3, 1): ([], []),
        (1, 2): ([199.999, 300.0], [7, 8]),
        (2, 2): ([100.0, 150.0], [9, 10]),
    }
    coords = np.array(list(spectra))
    lengths = np.array([len(v[0]) for v in spectra.values()])
    mzs = np.concatenate([np.asarray(v[0], float) for v in spectra.values()])
    ints = np.concatenate([np.asarray(v[1], np.float32) for v in spectra.values()])
    with ImzMLWriter(tmp_path / "t.imzML", 10.0, uuid=deterministic_uuid("tiny")) as w:
        w.add_spectra(coords, ints, mzs, lengths)
    return read_imzml_index(tmp_path / "t.imzML")


def test_windows_sum_max_overlap_and_acquired_mask(tmp_path):
    idx = _tiny_file(tmp_path)
    targets = [IonTarget("a", 100.0, 10), IonTarget("b", 200.0, 10), IonTarget("b_wide", 200.0, 20)]
    s = extract_ion_images(idx, targets, reduce="sum")
    m = extract_ion_images(idx, targets, reduce="max")
    # 200.001 is 5 ppm from 200, 199.999 is 5 ppm: inside both windows; 100.0005 is 5 ppm from 100
    np.testing.assert_array_equal(s.images["a"], [[1, 5, 0], [0, 9, np.nan]])
    np.testing.assert_array_equal(s.images["b"], [[5, 0, 0], [7, 0, np.nan]])
    np.testing.assert_array_equal(s.images["b_wide"], s.images["b"])
    np.testing.assert_array_equal(m.images["b"], [[3, 0, 0], [7, 0, np.nan]])
    np.testing.assert_array_equal(s.tic, [[10, 11, 0], [15, 19, np.nan]])
    np.testing.assert_array_equal(s.acquired, [[True, True, True], [True, True, False]])
    np.testing.assert_array_equal(s.median, [[2.5, 5.5, 0], [7.5, 9.5, np.nan]])


def test_normalisations(tmp_path):
    idx = _tiny_file(tmp_path)
    res = extract_ion_images(idx, [IonTarget("a", 100.0, 10), IonTarget("std", 300.0, 10)])
    tic = normalise(res.images["a"], "tic", msi=res)
    assert tic[0, 0] == pytest.approx(1 / 10) and tic[1, 1] == pytest.approx(9 / 19)
    assert np.isnan(tic[0, 2]) and np.isnan(tic[1, 2])  # zero TIC and not acquired
    ratio = normalise(res.images["a"], "internal_standard", msi=res, reference="std")
    assert ratio[0, 0] == pytest.approx(0.25) and np.isnan(ratio[0, 1])  # no standard there
    with pytest.raises(InputError):
        normalise(res.images["a"], "bogus", msi=res)


def test_hotspot_clipping():
    img = np.array([[1.0, 2.0], [3.0, 100.0]])
    clipped = clip_hotspots(img, 50)
    assert clipped.max() == pytest.approx(2.5)
    assert clip_hotspots(img, None) is img
