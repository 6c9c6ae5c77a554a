"""Benchmark: nanohet's one-pass ion-image extraction against pyimzML and imzy.

Generates (with the phantom) a processed imzML of >= 100,000 spectra x ~500 peaks and a continuous one,
then prints in one run, for K target ions with a ppm window:

* pyimzML: a ``getionimage`` loop over the K targets (timed on a subset of targets and scaled to K
  unless --full-pyimzml; each call reads every spectrum, so time grows linearly with K);
* imzy: batch ``get_ion_images`` (benchmark-only dependency: ``pip install -e .[bench]``);
* the index parse alone (nanohet's streaming reader, pyimzML's parser, imzy's open), also on the processed
  spectra rewritten by pyimzML's own ImzMLWriter (another writer's layout);
* the first run of each tool: a new process, warm page cache, nothing of nanohet's cached (no index, an empty
  compiled-kernel cache: numba compiles): index and kernel compile (overlapped, as the workflow's step does:
  ``read_index_with_kernels``) + pass for nanohet, parse + loop for pyimzML, open + batch for imzy;
* nanohet: ``read_imzml_index`` (XML) + ``extract_ion_images`` (one streaming pass), in a child process
  whose peak memory (VmHWM: the high-water mark of its resident set) is reported; the compiled kernel's one-off load (a call on 64 spectra)
  is timed separately;
* a plain sequential read of the .ibd (64 MiB blocks, copied into a buffer) and a mapped read (the file
  memory-mapped, every byte read once without a copy: how nanohet reads, so the fairer ceiling);
* the ratios, and the largest relative difference between nanohet's images and pyimzML's and imzy's on every
  target (the script fails when pyimzML's differs by 1e-6 or more; imzy's window edges differ, so its
  difference is reported only).

All timings are warm-cache (each file is read once before timing) and each is the best of ``--repeat``
(3) runs, for the plain read and every tool alike (as ``timeit`` does: on a shared machine the slower runs
measure other processes). nanohet's individual runs are printed too. With ``--cold`` (needs root: it
writes /proc/sys/vm/drop_caches) the plain read, imzy and nanohet are also timed from a cold page cache,
i.e. at the speed of the disk (``--repeat`` pairs of plain read and nanohet pass, each from an emptied
cache, and the median of their ratios). Usage:

    .venv/bin/python benchmarks/msi_extract.py --workdir /tmp/nanohet-bench
    .venv/bin/python benchmarks/msi_extract.py --workdir /tmp/nanohet-bench --big   # also a ~5 GB .ibd
    sudo .venv/bin/python benchmarks/msi_extract.py --workdir /tmp/nanohet-bench --cold
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import tempfile
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

from nanohet.demo.acquire import msi_geometry, write_msi
from nanohet.demo.phantom import ANALYTE_IONS, PhantomParams, simulate_section


def make_file(path: Path, n_spectra: int, peaks: int, mode: str, seed: int = 1) -> Path:
    """Phantom MSI acquisition with about ``n_spectra`` spectra of about ``peaks`` peaks each."""
    if path.exists() and path.with_suffix(".ibd").exists():
        return path
    pixel = 30.0
    side_um = math.sqrt(n_spectra / 0.97) * pixel / 0.95   # msi_geometry covers 95 % of the field
    diameter_mm = (side_um - 2 * 200.0) / 1.25 / 1000.0
    params = PhantomParams(seed=seed, tumour_diameter_mm=diameter_mm, margin_mm=0.1, microscopy_pixel_um=10.0,
                           msi_pixel_um=pixel, msi_mode=mode, msi_noise_peaks=max(peaks - 35, 0))
    rng = np.random.default_rng(seed)
    truth = simulate_section(params)
    geom = msi_geometry(truth, params, rng)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_msi(path, truth, params, geom, rng, uuid="0c3f6d0e-7f1b-4a59-9b2e-6f0d7d1e2a3b", chunk_rows=8)
    return path


def targets_for(k: int) -> list[float]:
    mzs = list(ANALYTE_IONS.values()) + [734.5694, 760.5851, 798.5410, 496.3398, 155.0339]
    rng = np.random.default_rng(0)
    mzs += list(rng.uniform(150, 950, max(k - len(mzs), 0)))
    return sorted(mzs[:k])


def plain_read(ibd: Path) -> float:
    t = time.perf_counter()
    with open(ibd, "rb", buffering=0) as fh:
        buf = bytearray(64 << 20)
        view = memoryview(buf)
        while fh.readinto(view):
            pass
    return time.perf_counter() - t


def mapped_read(ibd: Path) -> float:
    """The ceiling of the way nanohet reads: the .ibd memory-mapped and every byte read once (summed as 64-bit
    words, in 64 MiB pieces), no copy into a buffer."""
    import mmap

    t = time.perf_counter()
    with open(ibd, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
        words = np.frombuffer(m, np.uint64, count=len(m) // 8)
        step = (64 << 20) // 8
        for i in range(0, words.size, step):
            int(words[i:i + step].sum())
        del words
    return time.perf_counter() - t


def worst_difference(mine: np.ndarray, reference: dict, mzs) -> float:
    """Largest relative difference between nanohet's images (one per target, in ``mzs`` order) and a peer's
    (``{mz: image}``), relative to each image's largest value."""
    worst = 0.0
    for i, m in enumerate(mzs):
        ref = np.nan_to_num(np.asarray(reference[m], dtype=np.float64))
        a = np.nan_to_num(mine[i])
        worst = max(worst, float(np.max(np.abs(a - ref)) / max(np.max(np.abs(ref)), 1e-300)))
    return worst


def drop_caches() -> bool:
    """Empty the kernel's page cache (root only); False if not allowed."""
    try:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


NANOHET_CHILD = r"""
import json, sys, time, resource
import numpy as np
from nanohet.io.imzml import read_imzml_index
from nanohet.msi import IonTarget, extract_ion_images
path, mzs, ppm, out, repeat = sys.argv[1], json.loads(sys.argv[2]), float(sys.argv[3]), sys.argv[4], int(sys.argv[5])
first_run = sys.argv[6] == "first"
from dataclasses import replace
from nanohet.msi.extract import AUTO_NUMPY_PEAKS
from nanohet.msi.prepare import read_index_with_kernels
targets = [IonTarget(f"t{i}", m, ppm) for i, m in enumerate(mzs)]
t0 = time.perf_counter()
if first_run:  # as the workflow's step: the index read in a forked process while the kernel compiles
    idx = read_index_with_kernels(path)
    t1 = t1b = time.perf_counter()
else:
    idx = read_imzml_index(path)
    t1 = time.perf_counter()
    # warm-up on 64 spectra: loads the compiled kernel from numba's cache (once per process)
    small = replace(idx, **{k: getattr(idx, k)[:64] for k in ("coords", "mz_offsets", "mz_lengths", "int_offsets",
                                                               "int_lengths")})
    engine = "numba" if int(idx.int_lengths.sum()) > AUTO_NUMPY_PEAKS else "numpy"  # what "auto" picks
    extract_ion_images(small, targets, engine=engine)
    t1b = time.perf_counter()
engine = "numba" if int(idx.int_lengths.sum()) > AUTO_NUMPY_PEAKS else "numpy"
runs = []
res = None
for _ in range(repeat):  # best of `repeat`, like every timing of the benchmark
    res = None  # one result alive at a time, as in the workflow
    t = time.perf_counter()
    res = extract_ion_images(idx, targets, engine=engine)
    runs.append(time.perf_counter() - t)
# Peak resident memory of this process, before the benchmark writes its copy. Linux: VmHWM, the high-water
# mark of this program's own address space. ru_maxrss is no good here: Linux carries it across exec, so it
# would include the parent's memory at fork time (the phantom generator, over 1 GB after writing a 5 GB file).
peak = None
try:
    with open("/proc/self/status") as fh:
        peak = next(int(l.split()[1]) / 1024 for l in fh if l.startswith("VmHWM:"))
except (OSError, StopIteration):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
first = res.images["t0"]
saved = np.lib.format.open_memmap(out, mode="w+", dtype=first.dtype, shape=(len(mzs),) + first.shape)
for i in range(len(mzs)):  # one image at a time: the benchmark must not add a stacked copy to the peak
    saved[i] = res.images[f"t{i}"]
saved.flush()
print(json.dumps({"parse_s": t1 - t0, "warmup_s": t1b - t1, "extract_s": min(runs), "runs_s": runs,
                  "max_rss_mb": peak}))
"""


def run_nanohet(path: Path, mzs, ppm, out: Path, repeat: int = 1, first_run: bool = False) -> dict:
    """nanohet in a new process. ``first_run``: with an empty compiled-kernel cache (numba compiles), as on a
    machine that never ran nanohet."""
    env = dict(os.environ)
    if first_run:
        env["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="nanohet-first-run-")
    res = subprocess.run([sys.executable, "-c", NANOHET_CHILD, str(path), json.dumps(mzs), str(ppm), str(out),
                          str(repeat), "first" if first_run else "warm"],
                         capture_output=True, text=True, check=True, env=env)
    return json.loads(res.stdout.strip().splitlines()[-1])


def parse_times(path: Path, repeat: int) -> tuple[float, float]:
    """Best-of-``repeat`` index parse of nanohet's reader and of pyimzML's, on one file."""
    from pyimzml.ImzMLParser import ImzMLParser

    from nanohet.io.imzml_index import read_index

    ours, theirs = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        read_index(path)
        ours.append(time.perf_counter() - t)
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ImzMLParser(str(path), ibd_file=None)
        theirs.append(time.perf_counter() - t)
    return min(ours), min(theirs)


def pyimzml_rewrite(path: Path) -> Path:
    """The same spectra written by pyimzML's own ImzMLWriter (another writer's layout), cached beside ``path``."""
    from pyimzml.ImzMLParser import ImzMLParser
    from pyimzml.ImzMLWriter import ImzMLWriter as PyWriter

    out = path.with_name("pyimzml_writer.imzML")
    if out.exists() and out.with_suffix(".ibd").exists():
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        src = ImzMLParser(str(path))
        with PyWriter(str(out), mode="processed") as w:
            for i, xyz in enumerate(src.coordinates):
                mz, it = src.getspectrum(i)
                w.addSpectrum(mz, it, xyz[:2])
    return out


def run_pyimzml(path: Path, mzs, ppm, n_timed: int, repeat: int = 1):
    from pyimzml.ImzMLParser import ImzMLParser, getionimage

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = ImzMLParser(str(path))
    parse = time.perf_counter() - t0
    images = {}
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        for m in mzs[:n_timed]:
            images[m] = getionimage(p, m, tol=m * ppm * 1e-6)
        runs.append(time.perf_counter() - t)
    elapsed = min(runs)
    return elapsed * len(mzs) / n_timed, elapsed, images, parse


def pyimzml_images(path: Path, mzs, ppm) -> dict:
    """pyimzML's image of every target (untimed: the agreement check)."""
    from pyimzml.ImzMLParser import ImzMLParser, getionimage

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = ImzMLParser(str(path))
    return {m: getionimage(p, m, tol=m * ppm * 1e-6) for m in mzs}


def run_imzy(path: Path, mzs, ppm, repeat: int = 1):
    """imzy's batch extraction: (best time, parse time, {mz: image}), or None when imzy is not installed."""
    try:
        from imzy import get_reader
    except ImportError:
        return None
    t0 = time.perf_counter()
    reader = get_reader(str(path))
    parse = time.perf_counter() - t0
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        images = reader.get_ion_images(mzs, ppm=ppm, silent=True)
        runs.append(time.perf_counter() - t)
    images = {m: np.asarray(images[i]) for i, m in enumerate(mzs)}  # imzy: one (y, x) image per target
    return min(runs), parse, images


def bench(path: Path, k: int, ppm: float, n_pyimzml: int, label: str, cold: bool = False, repeat: int = 3) -> dict:
    """Time every tool on one file, print the comparison, check agreement; return the figures as one row."""
    ibd = path.with_suffix(".ibd")
    mzs = targets_for(k)
    plain_read(ibd)  # warm the page cache for everybody
    t_read = min(plain_read(ibd) for _ in range(repeat))
    t_mapped = min(mapped_read(ibd) for _ in range(repeat))
    first = run_nanohet(path, mzs, ppm, path.parent / "nanohet_first_run.npy", 1, first_run=True)
    nh_first = first["parse_s"] + first["warmup_s"] + first["runs_s"][0]
    nh = run_nanohet(path, mzs, ppm, path.parent / "nanohet_images.npy", repeat)
    parse_ours, parse_pyimzml = parse_times(path, repeat)
    t_py, t_py_measured, _, py_parse = run_pyimzml(path, mzs, ppm, n_pyimzml, repeat)
    imzy_res = run_imzy(path, mzs, ppm, repeat)
    t_imzy, imzy_parse, imzy_images = imzy_res if imzy_res else (None, None, None)
    mine = np.load(path.parent / "nanohet_images.npy")
    worst = worst_difference(mine, pyimzml_images(path, mzs, ppm), mzs)
    worst_imzy = worst_difference(mine, imzy_images, mzs) if imzy_images is not None else None
    gb = ibd.stat().st_size / 1e9
    nh_pass = nh["extract_s"]
    print(f"\n== {label}: {path.name}, .ibd {gb:.2f} GB, K={k} targets at ±{ppm} ppm "
          f"(times: extraction, best of {repeat}; XML/index parse in brackets)")
    print(f"plain sequential read of .ibd  : {t_read:8.2f} s  ({gb / t_read:.2f} GB/s)")
    print(f"mapped read (every byte once)  : {t_mapped:8.2f} s  ({gb / t_mapped:.2f} GB/s), the way nanohet reads")
    print(f"pyimzML getionimage x {k:<3}      : {t_py:8.2f} s  [{py_parse:.2f} s]  (measured {t_py_measured:.2f} s "
          f"on {n_pyimzml} targets, scaled)")
    print(f"imzy get_ion_images             : " + (f"{t_imzy:8.2f} s  [{imzy_parse:.2f} s]" if t_imzy is not None
                                                 else "  not installed"))
    print(f"nanohet one streaming pass      : {nh_pass:8.2f} s  [{nh['parse_s']:.2f} s], "
          f"peak memory {nh['max_rss_mb']:.0f} MB (kernel warm-up {nh['warmup_s']:.2f} s, once per process; "
          f"runs {', '.join(f'{r:.2f}' for r in nh['runs_s'])} s)")
    print(f"speed-up vs pyimzML loop        : {t_py / nh_pass:8.1f} x   (target >= 20 x)")
    if t_imzy is not None:
        print(f"speed-up vs imzy                : {t_imzy / nh_pass:8.1f} x   (target >= 3 x)")
        print(f"  including parse and warm-up   : "
              f"{(t_imzy + imzy_parse) / (nh_pass + nh['parse_s'] + nh['warmup_s']):8.1f} x")
    print(f"index parse alone               : nanohet {parse_ours:.2f} s, pyimzML {parse_pyimzml:.2f} s "
          f"({parse_pyimzml / parse_ours:.1f} x, target >= 10 x)" + (f", imzy open {imzy_parse:.2f} s" if imzy_parse
                                                                    is not None else ""))
    imzy_first = t_imzy + imzy_parse if t_imzy is not None else None
    print(f"first run (new process, nothing : nanohet {nh_first:.2f} s (index and kernel compile, overlapped, "
          f"{first['parse_s']:.2f} + pass {first['runs_s'][0]:.2f}), pyimzML {py_parse + t_py:.2f} s"
          + (f", imzy {imzy_first:.2f} s ({imzy_first / nh_first:.1f} x, target >= 3 x)" if imzy_first else ""))
    print(f"  cached, warm page cache)")
    print(f"pass throughput vs plain read   : {100 * t_read / nh['extract_s']:8.1f} %   (target >= 50 %)")
    print(f"pass throughput vs mapped read  : {100 * t_mapped / nh['extract_s']:8.1f} %")
    print(f"max relative difference vs pyimzML on all {len(mzs)} targets: {worst:.2e}   (must be < 1e-6)")
    if worst_imzy is not None:
        print(f"max relative difference vs imzy on all {len(mzs)} targets   : {worst_imzy:.2e}   (imzy's window "
              "edges differ: peaks on an edge; reported, not required)")
    if worst >= 1e-6:  # pyimzML is the reference; imzy's window edges differ (a peak exactly on an edge can
        # fall in or out), so its difference is reported, not a failure
        raise SystemExit(f"{label}: nanohet's images differ from pyimzML's ({worst:.2e})")
    row = {"file": label, "spectra": None, "ibd_gb": gb, "targets": k, "plain_read_s": t_read,
           "mapped_read_s": t_mapped, "pyimzml_s": t_py, "pyimzml_parse_s": py_parse,
           "imzy_s": t_imzy, "imzy_parse_s": imzy_parse, "nanohet_s": nh_pass, "nanohet_parse_s": nh["parse_s"],
           "nanohet_warmup_s": nh["warmup_s"], "nanohet_peak_mb": nh["max_rss_mb"],
           "parse_nanohet_s": parse_ours, "parse_pyimzml_s": parse_pyimzml, "first_run_nanohet_s": nh_first,
           "first_run_pyimzml_s": py_parse + t_py, "first_run_imzy_s": imzy_first,
           "max_rel_diff_pyimzml": worst, "max_rel_diff_imzy": worst_imzy}
    if cold:
        if not drop_caches():
            print("cold cache: skipped (writing /proc/sys/vm/drop_caches needs root)")
            return row
        # a VM's disk varies by 2x from one read to the next: pairs of (plain read, nanohet pass), each from an
        # emptied page cache, and the ratio of each pair
        ratios = []
        for _ in range(repeat):
            drop_caches()
            c_read = plain_read(ibd)
            drop_caches()
            c_nh = run_nanohet(path, mzs, ppm, path.parent / "nanohet_images.npy")["extract_s"]
            ratios.append(c_read / c_nh)
            print(f"cold cache: plain read {c_read:.2f} s ({gb / c_read:.2f} GB/s), nanohet pass {c_nh:.2f} s, "
                  f"pass throughput vs plain read {100 * c_read / c_nh:.0f} %")
        line = f"cold cache, median of {repeat} pairs: pass throughput vs plain read {100 * np.median(ratios):.0f} %"
        if t_imzy is not None:
            drop_caches()
            c_imzy = run_imzy(path, mzs, ppm)[0]
            line += f"; imzy from a cold cache {c_imzy:.2f} s (once)"
        print(line)
        row["cold_pass_vs_plain_read"] = float(np.median(ratios))
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/nanohet-bench"))
    ap.add_argument("--spectra", type=int, default=100_000)
    ap.add_argument("--peaks", type=int, default=500)
    ap.add_argument("--targets", type=int, default=50)
    ap.add_argument("--ppm", type=float, default=10.0)
    ap.add_argument("--pyimzml-targets", type=int, default=5, help="targets actually timed for pyimzML")
    ap.add_argument("--big", action="store_true", help="also a ~5 GB .ibd (peak-memory check)")
    ap.add_argument("--cold", action="store_true", help="also time from a cold page cache (root only)")
    ap.add_argument("--out", type=Path, default=None, help="also write the figures to this TSV (docs: "
                    "tools/validation_doc.py --msi-bench)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="every warm-cache timing (plain read and all tools) is the best of this many runs")
    args = ap.parse_args(argv)
    rows = []
    proc = make_file(args.workdir / "processed" / "bench.imzML", args.spectra, args.peaks, "processed")
    rows.append({**bench(proc, args.targets, args.ppm, args.pyimzml_targets, "processed", args.cold, args.repeat),
                 "spectra": args.spectra})
    cont = make_file(args.workdir / "continuous" / "bench.imzML", args.spectra, args.peaks, "continuous")
    rows.append({**bench(cont, args.targets, args.ppm, args.pyimzml_targets, "continuous", args.cold, args.repeat),
                 "spectra": args.spectra})
    rewritten = pyimzml_rewrite(proc)
    ours, theirs = parse_times(rewritten, args.repeat)
    print(f"\n== the processed spectra rewritten by pyimzML's ImzMLWriter: index parse nanohet {ours:.2f} s, "
          f"pyimzML {theirs:.2f} s ({theirs / ours:.1f} x, target >= 10 x)")
    rows.append({"file": "processed, pyimzML's writer", "spectra": args.spectra, "parse_nanohet_s": ours,
                 "parse_pyimzml_s": theirs})
    if args.big:
        big = make_file(args.workdir / "big" / "bench.imzML", 420_000, 1000, "processed")
        rows.append({**bench(big, args.targets, args.ppm, 1, "big", args.cold, args.repeat), "spectra": 420_000})
    if args.out:
        from _out import write_rows  # benchmarks/_out.py (the script's folder is on the path)

        write_rows(rows, args.out)


if __name__ == "__main__":
    main()
