import warnings

import numpy as np
import pytest
from pyimzml.ImzMLParser import ImzMLParser, getionimage

from conftest import IMZML
from nanohet.errors import InputError
from nanohet.io.imzml import ImzMLWriter, deterministic_uuid, read_imzml_index
from nanohet.msi import BLOCKS_PER_CHUNK, IonTarget, block_starts, clip_hotspots, extract_ion_images, normalise


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
    m = extract_ion_images(idx, targets, reduce="max", median=True)
    # 200.001 is 5 ppm from 200, 199.999 is 5 ppm: inside both windows; 100.0005 is 5 ppm from 100
    np.testing.assert_array_equal(s.images["a"], [[1, 5, 0], [0, 9, np.nan]])
    np.testing.assert_array_equal(s.images["b"], [[5, 0, 0], [7, 0, np.nan]])
    np.testing.assert_array_equal(s.images["b_wide"], s.images["b"])
    np.testing.assert_array_equal(m.images["b"], [[3, 0, 0], [7, 0, np.nan]])
    np.testing.assert_array_equal(s.tic, [[10, 11, 0], [15, 19, np.nan]])
    np.testing.assert_array_equal(s.acquired, [[True, True, True], [True, True, False]])
    np.testing.assert_array_equal(m.median, [[2.5, 5.5, 0], [7.5, 9.5, np.nan]])
    assert np.isnan(s.median).all()  # only computed on request


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


def _shifted_file(tmp_path, mode):
    """Spectra whose m/z axis is off by a known ppm error per pixel (lock mass 500, target 700)."""
    rng = np.random.default_rng(3)
    n = 12
    errors_ppm = rng.uniform(-15, 15, n)
    coords = np.array([(i % 4 + 1, i // 4 + 1) for i in range(n)])
    true_mz = np.array([300.0, 500.0, 700.0, 700.02])
    ints = np.tile(np.array([5.0, 100.0, 10.0, 3.0], np.float32), (n, 1)) * (1 + np.arange(n))[:, None]
    if mode == "processed":
        mzs = (true_mz[None, :] * (1 + errors_ppm[:, None] * 1e-6)).ravel()
        with ImzMLWriter(tmp_path / "s.imzML", 10.0, uuid=deterministic_uuid("lock")) as w:
            w.add_spectra(coords, ints.ravel(), mzs, np.full(n, 4))
    else:
        axis = np.arange(299.0, 701.0, 0.0005)
        block = np.zeros((n, axis.size), np.float32)
        for i in range(n):
            idx = np.searchsorted(axis, true_mz * (1 + errors_ppm[i] * 1e-6))
            block[i, idx] = ints[i]
        with ImzMLWriter(tmp_path / "s.imzML", 10.0, "continuous", uuid=deterministic_uuid("lock"),
                         mz_axis=axis) as w:
            w.add_spectra(coords, block)
    return read_imzml_index(tmp_path / "s.imzML"), errors_ppm, ints


@pytest.mark.parametrize("mode", ["processed", "continuous"])
def test_lock_mass_recalibration_recovers_narrow_windows(tmp_path, mode):
    idx, errors_ppm, ints = _shifted_file(tmp_path, mode)
    target = [IonTarget("a", 300.0, 3.0), IonTarget("t", 700.0, 3.0)]
    plain = extract_ion_images(idx, target)
    got_plain = plain.images["t"][plain.acquired]
    assert (got_plain == 0).sum() >= 6  # most pixels miss a 3 ppm window without recalibration
    for engine in ("auto", "numpy"):
        fixed = extract_ion_images(idx, target, lock_mass=IonTarget("lock", 500.0, 30.0), engine=engine)
        for name, col in (("a", 0), ("t", 2)):  # every target is recalibrated, not only the last one
            np.testing.assert_allclose(fixed.images[name][fixed.acquired], ints[:, col])
    tol = 1.5 if mode == "continuous" else 1e-6  # continuous axis has 0.0005 (~1 ppm) steps
    np.testing.assert_allclose(np.sort(fixed.lock_mass_ppm[fixed.acquired]), np.sort(errors_ppm), atol=tol)


def test_top_n_peak_images(tmp_path):
    idx, _, ints = _shifted_file(tmp_path, "processed")
    res = extract_ion_images(idx, [IonTarget("t", 700.0, 30.0)], top_n=2, mz_range=(250, 750))
    assert len(res.top_peaks) == 2
    mzs = sorted(float(name[2:]) for name in res.top_peaks)
    assert mzs[0] == pytest.approx(300.0, abs=0.02) and mzs[1] == pytest.approx(500.0, abs=0.02)
    assert np.nansum(res.images[res.top_peaks[1]]) == pytest.approx(ints[:, 1].sum())


def test_absolute_stage_origin_is_kept():
    idx = read_imzml_index(IMZML / "pym2aia" / "test.imzML")
    assert idx.stage_origin == (24260.0, 16060.0)
    res = extract_ion_images(idx, [])
    assert res.origin == (24260.0, 16060.0) and res.pixel_size == (20.0, 20.0)


def test_index_cache_round_trip(tmp_path):
    from nanohet.io.imzml import ImzMLIndex

    idx = read_imzml_index(IMZML / "metaspace_spheroid" / "Untreated_3_434_tiny.imzML")
    idx.save(tmp_path / "index.npz")
    back = ImzMLIndex.load(tmp_path / "index.npz")
    t = [IonTarget("a", 798.54, 10)]
    np.testing.assert_array_equal(extract_ion_images(back, t, pixel_size_um=5).images["a"],
                                  extract_ion_images(idx, t, pixel_size_um=5).images["a"])


@pytest.mark.parametrize("rel", ["metaspace_spheroid/Untreated_3_434_tiny.imzML",
                                 "pyimzml_example/Example_Processed.imzML"])
def test_compiled_kernel_equals_numpy_reference_on_real_files(rel):
    idx = read_imzml_index(IMZML / rel)
    mz = [798.54, 760.585, 496.34, 200.0, 300.0]
    targets = [IonTarget(f"t{i}", m, 50) for i, m in enumerate(mz)] + [IonTarget("wide", 798.54, 500)]
    px = None if idx.pixel_size else 10.0
    for kw in ({}, {"reduce": "max"}, {"lock_mass": IonTarget("lock", 798.54, 30)}):
        a = extract_ion_images(idx, targets, pixel_size_um=px, engine="numba", **kw)
        b = extract_ion_images(idx, targets, pixel_size_um=px, engine="numpy", **kw)
        for name in a.images:
            np.testing.assert_array_equal(a.images[name], b.images[name])
        np.testing.assert_array_equal(a.tic, b.tic)
        # the kernel sums each block of 1024 spectra in float32 (cache-resident), numpy in float64
        np.testing.assert_allclose(a.mean_spectrum[1], b.mean_spectrum[1], rtol=1e-6, atol=0)
        assert np.count_nonzero(a.mean_spectrum[1]) == np.count_nonzero(b.mean_spectrum[1]) > 0


def test_compiled_kernel_is_thread_count_independent(tiny_sample):
    idx = read_imzml_index(tiny_sample["outputs"]["msi"])
    targets = [IonTarget("dox", 544.1813, 10), IonTarget("pc", 760.5851, 10)]
    one = extract_ion_images(idx, targets, engine="numba", chunk_peaks=20_000, threads=1)
    three = extract_ion_images(idx, targets, engine="numba", chunk_peaks=20_000, threads=3)  # uneven share
    ref = extract_ion_images(idx, targets, engine="numpy", chunk_peaks=20_000)
    for name in targets:
        np.testing.assert_array_equal(one.images[name.name], three.images[name.name])
        np.testing.assert_array_equal(one.images[name.name], ref.images[name.name])
    assert one.mean_spectrum[1].tobytes() == three.mean_spectrum[1].tobytes()
    np.testing.assert_array_equal(one.tic, three.tic)


@pytest.mark.parametrize("in_page_cache", [True, False])
def test_unaligned_unsorted_spectra_give_the_same_images(tmp_path, monkeypatch, in_page_cache):
    """Arrays at odd byte offsets, m/z descending or with NaN: kernel, numpy path and the aligned file agree.

    The writer stores a block of m/z arrays, then the block's intensities (two byte ranges per chunk); the
    unaligned copy interleaves them (one range). Chunks found in the page cache are mapped lazily, others are
    read ahead and pre-faulted (forced here).
    """
    from dataclasses import replace

    import nanohet.msi.ibd

    monkeypatch.setattr(nanohet.msi.ibd, "resident", lambda view: in_page_cache)
    rng = np.random.default_rng(11)
    n, peaks = 40, 4000  # the m/z block (1.3 MB) keeps each chunk's two byte ranges > 1 MB apart
    coords = np.array([(i % 8 + 1, i // 8 + 1) for i in range(n)])
    mzs = np.sort(rng.uniform(150, 950, (n, peaks)), axis=1)
    mzs[:, :3] = [544.1813, 760.5851, 760.5851 * (1 + 4e-6)]  # two peaks in one window, in every spectrum
    ints = rng.uniform(1, 100, (n, peaks)).astype(np.float32)
    mzs[1], ints[1] = mzs[1][::-1].copy(), ints[1][::-1].copy()  # descending
    mzs[2, 10] = np.nan  # a NaN m/z lies in no window
    with ImzMLWriter(tmp_path / "a.imzML", 10.0, uuid=deterministic_uuid("aligned")) as w:
        w.add_spectra(coords, ints.ravel(), mzs.ravel(), np.full(n, peaks))
    idx = read_imzml_index(tmp_path / "a.imzML")
    # the same arrays again, each behind 1-7 bytes of padding
    raw = (tmp_path / "a.ibd").read_bytes()
    out, mz_off, int_off = bytearray(raw[:16]), [], []
    for i in range(n):
        for offsets, src, size in ((mz_off, idx.mz_offsets[i], 8), (int_off, idx.int_offsets[i], 4)):
            out += b"\x00" * int(rng.integers(1, 8))
            offsets.append(len(out))
            out += raw[src: src + peaks * size]
    (tmp_path / "u.ibd").write_bytes(bytes(out))
    unaligned = replace(idx, ibd_path=tmp_path / "u.ibd", mz_offsets=np.array(mz_off, np.int64),
                        int_offsets=np.array(int_off, np.int64))
    assert len({o % 8 for o in mz_off}) > 4 and len({o % 4 for o in int_off}) == 4
    targets = [IonTarget("dox", 544.1813, 10), IonTarget("pc", 760.5851, 10), IonTarget("x", 500.0, 5000)]
    for kw in ({}, {"reduce": "max"}):
        ref = extract_ion_images(idx, targets, engine="numpy", **kw)
        for index in (idx, unaligned):
            for engine in ("numba", "numpy"):
                got = extract_ion_images(index, targets, engine=engine, chunk_peaks=20_000, **kw)
                for t in targets:
                    np.testing.assert_array_equal(got.images[t.name], ref.images[t.name])
                np.testing.assert_array_equal(got.tic, ref.tic)
                np.testing.assert_allclose(got.mean_spectrum[1], ref.mean_spectrum[1], rtol=1e-6, atol=0)
    s = extract_ion_images(unaligned, targets, engine="numba")
    for t in targets:  # closed form: every peak inside the window, both planted PC peaks and the descending spectrum
        lo, hi = t.window
        inside = (mzs >= lo) & (mzs <= hi)  # NaN compares False: in no window
        np.testing.assert_allclose(s.images[t.name][coords[:, 1] - 1, coords[:, 0] - 1], (ints * inside).sum(axis=1),
                                   rtol=1e-6)
    assert ((mzs >= targets[1].window[0]) & (mzs <= targets[1].window[1])).sum(axis=1).min() >= 2


def test_blocks_are_runs_of_whole_spectra_of_about_block_peaks():
    np.testing.assert_array_equal(block_starts([3, 3, 10, 0, 2, 2, 2], 5), [0, 2, 3, 6, 7])
    assert block_starts([], 5).tolist() == [0]
    # profile spectra (50,000 points): the default 4 M-peak chunk still has BLOCKS_PER_CHUNK blocks to share out
    long = np.full(400, 50_000)
    b = block_starts(long, 4_000_000 // BLOCKS_PER_CHUNK)
    assert np.all(np.diff(b) == 10) and b[-1] == 400
    rng = np.random.default_rng(0)
    lengths = rng.integers(0, 900, 5000)
    b = block_starts(lengths, 20_000)
    peaks = np.add.reduceat(lengths, b[:-1])
    assert b[0] == 0 and b[-1] == lengths.size and np.all(np.diff(b) > 0)
    assert peaks.max() < 20_000 + lengths.max() and np.median(peaks) > 19_000


def test_page_cache_residency_is_detected(tmp_path):
    import mmap
    import os

    import nanohet.msi.ibd
    from nanohet.msi.ibd import resident as _resident

    if nanohet.msi.ibd._mincore is None or not hasattr(os, "posix_fadvise"):
        pytest.skip("needs mincore and posix_fadvise")
    mounts = [line.split()[1:3] for line in open("/proc/mounts")] if os.path.exists("/proc/mounts") else []
    fs = max((m for m in mounts if str(tmp_path).startswith(m[0])), key=lambda m: len(m[0]), default=["", ""])[1]
    if fs in ("tmpfs", "ramfs"):
        pytest.skip("a file in memory (tmpfs) cannot be dropped from the page cache")
    path = tmp_path / "x.bin"
    with open(path, "wb") as fh:
        fh.write(b"\1" * (4 << 20))
        fh.flush()
        os.fsync(fh.fileno())
        os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)  # clean pages: dropped from the cache
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
        view = np.frombuffer(m, np.uint8)
        assert not _resident(view)
        del view
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
        fh.read()  # now read: in the cache
        view = np.frombuffer(m, np.uint8)
        assert _resident(view)
        del view


def test_ions_outside_the_acquisition_and_windows_narrower_than_the_profile_sampling():
    """An ion outside the acquired m/z range is an error (its image would be all zero); in profile data a window
    narrower than the sampling step is flagged with that step, a wider one is not; centroid data are not."""
    from nanohet.errors import InputError
    from nanohet.io.imzml import acquired_mz_range, is_profile, read_imzml_index
    from nanohet.msi import IonTarget
    from nanohet.steps.msi import target_checks

    index = read_imzml_index(IMZML / "pyimzml_example" / "Example_Continuous.imzML")
    assert is_profile(index) and acquired_mz_range(index) == pytest.approx((100.083, 799.917), abs=1e-3)
    with pytest.raises(InputError, match=r"far \(m/z 1200\) outside the acquired m/z range 100.0833-799.9167"):
        target_checks(index, [IonTarget("near", 500.0, 10), IonTarget("far", 1200.0, 10)], "x.imzML")
    qc = target_checks(index, [IonTarget("narrow", 500.0, 10), IonTarget("wide", 500.0, 200)], "x.imzML", "s1")
    step = float(np.diff(np.linspace(100.083, 799.917, 8399))[0])
    assert qc.flagged.tolist() == [True, False]
    assert qc.sampling_step_mz.iloc[0] == pytest.approx(step, rel=0.05)
    assert "narrower than the profile's sampling step" in qc.flag_reason.iloc[0]
    centroid = read_imzml_index(IMZML / "metaspace_spheroid" / "Untreated_3_434_tiny.imzML")
    assert not is_profile(centroid)


PREPARED_CHILD = r"""
import json, sys
from nanohet.io.imzml import read_imzml_index
from nanohet.msi import IonTarget, extract_ion_images, kernels
from nanohet.msi.prepare import read_index_with_kernels
path, lock = sys.argv[1], sys.argv[2] == "lock"
idx = read_index_with_kernels(path, engine="numba", lock_mass=lock)
compiled = {k: len(getattr(kernels, k).signatures) for k in ("process_peaks", "process_continuous", "lock_errors")}
ref = read_imzml_index(path)
same = all(__import__("numpy").array_equal(getattr(idx, k), getattr(ref, k))
           for k in ("coords", "mz_offsets", "mz_lengths", "int_offsets", "int_lengths"))
extract_ion_images(idx, [IonTarget("a", 500.0, 50)], engine="numba", pixel_size_um=10.0,
                   lock_mass=IonTarget("lock", 500.0, 30) if lock else None)
after = {k: len(getattr(kernels, k).signatures) for k in compiled}
print(json.dumps({"same": same and idx.mz_dtype == ref.mz_dtype and idx.continuous == ref.continuous,
                  "before": compiled, "after": after}))
"""


@pytest.mark.parametrize("rel, lock", [("pyimzml_example/Example_Processed.imzML", False),
                                       ("pyimzml_example/Example_Continuous.imzML", False),
                                       ("metaspace_spheroid/Untreated_3_434_tiny.imzML", True),
                                       ("pym2aia/test.imzML", False)])
def test_the_kernel_is_prepared_while_the_index_is_read(tmp_path, rel, lock):
    """The index read in a forked process while this one compiles the kernel: the same index, and the kernel the
    extraction then needs is the one already compiled (a fresh process with an empty kernel cache)."""
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    out = subprocess.run([sys.executable, "-c", PREPARED_CHILD, str(IMZML / rel), "lock" if lock else "-"],
                         capture_output=True, text=True, env=env, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["same"]
    assert sum(r["before"].values()) >= 1 and r["after"] == r["before"]  # nothing compiled after the index


def test_a_malformed_file_read_with_the_kernel_prepared_is_refused(tmp_path):
    """An error of the index reader in the forked process reaches the caller as it is, and nothing is cached."""
    from nanohet.msi.prepare import read_index_with_kernels

    src = IMZML / "pyimzml_example" / "Example_Processed.imzML"
    bad = tmp_path / "cut.imzML"
    bad.write_bytes(src.read_bytes()[: src.stat().st_size * 2 // 3])
    (tmp_path / "cut.ibd").write_bytes(src.with_suffix(".ibd").read_bytes())
    with pytest.raises(InputError, match="cut.imzML"):
        read_index_with_kernels(bad, engine="numba")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.ibd", "cut.imzML"]
