"""Benchmark: the whole heterogeneity measure set on a large section, and agreement with the libraries users
would otherwise pick.

1. Scale: a ``--size`` x ``--size`` map (default 4000 x 4000 at 10 µm, a 4 cm section) with a tissue mask and
   a viable part, 4 analytes (smooth random fields with a rim-to-core trend and hot spots), run in a fresh
   process: per analyte and region (tissue, viable) the distribution measures, the IBSI statistics and
   histogram, the spatial statistics (Moran's I, Geary's C, Gi* hot spots with FDR, correlation length) and
   the texture (GLCM, GLSZM, 32 grey levels, DHI); the colocalisation of the 6 pairs with 199 toroidal
   shifts. Wall time and peak resident memory of that process are printed against the issue's targets
   (60 s, 2 GB). The peak counts the maps themselves (4 x 128 MB), not making them.
2. Peers on a map small enough for them (``--peer-size``, default 120): PySAL's esda (Moran's I and Geary's C
   with rook weights, Gi* z-scores with binary distance-band weights, no permutations) and MIRP (the IBSI
   statistics, intensity histogram, slice-merged 2-D GLCM and 2-D GLSZM at 32 grey levels). Agreement (the
   largest relative difference over all features) and the time ratio, measured in the same run.
   ``pip install -e .[bench]`` installs the peers; a peer that is missing is reported, not faked.

Usage: .venv/bin/python benchmarks/quantify.py [--size 4000] [--peer-size 120] [--out quantify.tsv]
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy import ndimage

from nanohet.quantify.ibsi import HISTOGRAM_CODES, STATISTICS_CODES, discretise, intensity_histogram_features, \
    intensity_statistics
from nanohet.quantify.section import colocalisation_rows, region_rows, spatial_rows, texture_rows
from nanohet.quantify.spatial import gearys_c, getis_ord_gi_star, morans_i
from nanohet.quantify.texture import GLCM_CODES, GLSZM_CODES, glcm_texture, glszm_texture
from nanohet.memory import reuse_freed_memory
from nanohet.settings import QuantifySettings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _out import in_fresh_process, peak_memory_gb, reset_peak_memory, write_rows  # noqa: E402

SPACING_UM = 10.0
ANALYTES = ("drug", "metabolite", "carrier", "nanoparticle")


def section_maps(n: int, seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Four correlated analyte maps on an ``n`` x ``n`` grid, the tissue (a disc) and its viable part (the disc
    without a necrotic core)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:n, :n].astype(np.float32)
    r = np.hypot(yy - n / 2, xx - n / 2) / (0.45 * n)
    tissue = r <= 1.0
    viable = tissue & ~(ndimage.gaussian_filter(rng.normal(size=(n, n)).astype(np.float32), n / 40) * 40 + r < 0.3)
    shared = ndimage.gaussian_filter(rng.normal(size=(n, n)).astype(np.float32), 6)
    maps = {}
    for k, name in enumerate(ANALYTES):
        own = ndimage.gaussian_filter(rng.normal(size=(n, n)).astype(np.float32), 4 + 2 * k)
        field = np.exp(1.5 * (shared / shared.std() * 0.6 + own / own.std() * 0.4)) * (1.5 - r)
        maps[name] = np.where(tissue, np.clip(field, 0, None), np.nan).astype(np.float64)
    return maps, tissue, viable


def measure_set(maps: dict, tissue: np.ndarray, viable: np.ndarray, q: QuantifySettings) -> int:
    """Every measure the workflow reports for one section; returns the number of rows."""
    rows = []
    for name, values in maps.items():
        for region in (tissue, viable):
            rows += region_rows(values, region, "units", 1.0, int(q.histogram_bins))
            rows += spatial_rows(values, region, SPACING_UM, q)
            rows += texture_rows(values, region, int(q.texture_levels))
    rows += colocalisation_rows("bench", maps, tissue, SPACING_UM, q)
    return len(rows)


def child(size: int) -> None:
    """Run the measure set in this (fresh) process and print its time and peak memory as JSON."""
    maps, tissue, viable = section_maps(size)
    q = QuantifySettings(colocalisation_shifts=199, texture_levels=32)
    gc.collect()
    reuse_freed_memory()  # as every workflow step does (nanohet.memory); after making the maps, whose
    reset_peak_memory()  # temporaries do not count
    start = time.perf_counter()
    n_rows = measure_set(maps, tissue, viable, q)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "peak_gb": peak_memory_gb(), "rows": n_rows}))


def scale_run(size: int) -> dict:
    return in_fresh_process(__file__, size)


def _timed(fn, repeat: int = 3):
    best, out = np.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return out, best


def _rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = np.maximum(np.abs(b), 1e-12)
    return float(np.nanmax(np.abs(a - b) / scale))


def esda_rows(n: int) -> list[dict]:
    """Moran's I, Geary's C and Gi* against esda on a full ``n`` x ``n`` map."""
    try:
        import esda
        from libpysal.weights import DistanceBand, lat2W
    except ImportError as exc:
        return [{"measure": "esda", "peer": "esda", "note": f"not installed ({exc.name}); pip install -e .[bench]"}]
    maps, _, _ = section_maps(n, seed=1)
    values = np.nan_to_num(maps["drug"])
    region = np.ones(values.shape, bool)
    y = values.ravel()
    rook = lat2W(n, n, rook=True)
    radius_px = 5.0
    rows = []
    ours_i, t_ours = _timed(lambda: morans_i(values, region))
    theirs, t_theirs = _timed(lambda: esda.Moran(y, rook, transformation="B", permutations=0).I)
    rows.append({"measure": "Moran's I (rook)", "peer": "esda", "max_rel_diff": _rel(ours_i, theirs),
                 "nanohet_s": t_ours, "peer_s": t_theirs})
    ours_c, t_ours = _timed(lambda: gearys_c(values, region))
    theirs, t_theirs = _timed(lambda: esda.Geary(y, rook, transformation="B", permutations=0).C)
    rows.append({"measure": "Geary's C (rook)", "peer": "esda", "max_rel_diff": _rel(ours_c, theirs),
                 "nanohet_s": t_ours, "peer_s": t_theirs})
    coords = np.column_stack([c.ravel() for c in np.mgrid[:n, :n]]).astype(np.float64)
    band = DistanceBand(coords, threshold=radius_px, binary=True, silence_warnings=True)
    ours_g, t_ours = _timed(lambda: getis_ord_gi_star(values, region, radius_px))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs, t_theirs = _timed(lambda: esda.G_Local(y, band, transform="B", star=True, permutations=0).Zs, 1)
    rows.append({"measure": f"Gi* z-scores (disc r = {radius_px:g} px)", "peer": "esda",
                 "max_rel_diff": _rel(ours_g.ravel(), theirs), "nanohet_s": t_ours, "peer_s": t_theirs})
    return rows


MIRP_FAMILIES = (("stat_", "statistics", STATISTICS_CODES), ("ih_", "intensity histogram", HISTOGRAM_CODES),
                 ("cm_", "GLCM (2D slice-merged)", GLCM_CODES), ("szm_", "GLSZM (2D)", GLSZM_CODES))


def mirp_rows(n: int, levels: int = 32) -> list[dict]:
    """The IBSI statistics, histogram, GLCM and GLSZM features against MIRP on an ``n`` x ``n`` section."""
    try:
        from mirp import extract_features
    except ImportError as exc:
        return [{"measure": "IBSI features", "peer": "mirp", "note": f"not installed ({exc.name}); "
                 "pip install -e .[bench]"}]
    maps, tissue, _ = section_maps(n, seed=2)
    values = maps["drug"]
    inside = tissue & np.isfinite(values)
    grey = np.zeros(values.shape, np.int64)
    grey[inside] = discretise(values[inside], n_bins=levels)

    def ours():
        return {"stat_": intensity_statistics(values[inside]),
                "ih_": intensity_histogram_features(grey[inside]),
                "cm_": glcm_texture(grey, inside, levels, aggregation="2D slice-merged"),
                "szm_": glszm_texture(grey, inside, aggregation="2D")}

    def theirs():
        logging.disable(logging.INFO)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return extract_features(
                image=np.nan_to_num(values)[None], mask=inside[None].astype(np.uint8), by_slice=True,
                image_spacing=(1.0, SPACING_UM, SPACING_UM), ibsi_compliant=True,
                base_feature_families=["statistics", "intensity_histogram", "glcm", "glszm"],
                base_discretisation_method="fixed_bin_number", base_discretisation_n_bins=levels,
                glcm_spatial_method="2d_slice_merge", glszm_spatial_method="2d")[0]

    got, t_ours = _timed(ours)
    table, t_theirs = _timed(theirs)
    rows = []
    for prefix, label, codes in MIRP_FAMILIES:
        columns = [c for c in table.columns if c.startswith(prefix)]
        if len(columns) != len(codes):  # MIRP lists each family in the IBSI manual's order, as do ours
            raise SystemExit(f"MIRP gives {len(columns)} {label} features, nanohet {len(codes)}: {columns}")
        diff = _rel([got[prefix][k] for k in codes], [float(table[c].iloc[0]) for c in columns])
        rows.append({"measure": f"{label}: {len(codes)} features", "peer": "mirp", "max_rel_diff": diff,
                     "nanohet_s": t_ours / len(MIRP_FAMILIES), "peer_s": t_theirs / len(MIRP_FAMILIES)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=4000)
    ap.add_argument("--peer-size", type=int, default=120)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child)
        return
    print(f"whole measure set, {args.size} x {args.size} map at {SPACING_UM:g} µm, 4 analytes x 2 regions, "
          "6 pairs x 199 shifts, 32 grey levels (fresh process) ...", flush=True)
    scale = scale_run(args.size)
    print(f"  {scale['seconds']:.1f} s (target < 60 s), peak {scale['peak_gb']:.2f} GB (target < 2 GB), "
          f"{scale['rows']} rows")
    rows = [{"measure": f"whole set, {args.size} x {args.size}", "peer": "", "nanohet_s": scale["seconds"],
             "peak_gb": scale["peak_gb"], "rows": scale["rows"]}]
    peers = esda_rows(args.peer_size) + mirp_rows(args.peer_size)
    print(f"\nagainst peers on a {args.peer_size} x {args.peer_size} map (best of 3; Gi* in esda once)")
    print(f"{'measure':45s} {'peer':5s} {'max rel. diff':>13s} {'nanohet':>9s} {'peer':>9s} {'ratio':>7s}")
    for row in peers:
        if "note" in row:
            print(f"{row['measure']:45s} {row['peer']:5s} {row['note']}")
            continue
        row["ratio"] = row["peer_s"] / row["nanohet_s"]
        print(f"{row['measure']:45s} {row['peer']:5s} {row['max_rel_diff']:13.1e} {row['nanohet_s']:8.4f}s "
              f"{row['peer_s']:8.4f}s {row['ratio']:6.1f}x")
    if args.out:
        write_rows(rows + peers, args.out)


if __name__ == "__main__":
    main()
