"""Benchmark: the section steps on a whole slide, in bounded memory (#15 item 5; #16's cells target).

Writes a ``--size`` x ``--size`` pyramidal OME-TIFF (default 40,000 x 40,000 pixels of 0.5 µm, 4 channels DAPI,
CD31, NP, F4/80, uint16, tiles of 512 zlib-compressed, four 2x levels in SubIFDs: 12.8 GB of pixels), tile by
tile: a 2048 x 2048 motif (nuclei on a jittered 11 µm lattice, vessels, a nanoparticle field, macrophages, Poisson
noise) repeated with flips inside a disc of tissue cut by the slide's edges, each level the block mean of the
motif's. Then runs, each in
a fresh process, what the workflow runs on a fluorescence section with ``microscopy.working_pixel_um`` (default
2 µm):

* ``masks``: :func:`nanohet.steps.microscopy.preprocess` (the pyramid level at the working resolution);
* ``grid``: :func:`nanohet.steps.quantify.analysis_grid` (from the header);
* ``register``: :func:`nanohet.steps.register.section_input` (the section as the registration metric sees it);
* ``section``: :func:`nanohet.steps.quantify.section` (every measure of the nanoparticle, a sample without MSI);
* ``cells``: :func:`nanohet.steps.cells.cells` (the full resolution, tile by tile; ``--no-cells`` skips it).

Wall time and peak resident memory of each step are printed against the issues' target (4 GB on 2 cores), with
the share of planted nuclei the cells step finds (a cell centroid within 3 µm). ``--size 10000`` (about 200,000
cells) is #16's cells benchmark (3 minutes, 4 GB) through the workflow's own step, from a file read in tiles.

Usage: .venv/bin/python benchmarks/wholeslide.py [--size 40000] [--working-um 2] [--workdir /tmp/nanohet-wsi]
       [--no-cells] [--out wsi.tsv]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _out import peak_memory_gb, reset_peak_memory, write_rows  # noqa: E402

from nanohet.memory import reuse_freed_memory  # noqa: E402
from nanohet.settings import MicroscopySettings  # noqa: E402

PIXEL_UM = 0.5
MOTIF = 2048
TILE = 512
LEVELS = 4
CHANNELS = ["DAPI", "CD31", "NP", "F4/80"]
TARGET_GB = 4.0
MICROSCOPY = {"channels": {"nuclei": "DAPI", "vessels": "CD31", "nanoparticle": "NP", "macrophages": "F4/80"},
              "working_pixel_um": 2.0}


def motif(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(4, MOTIF, MOTIF) float32: nuclei on a jittered 11 µm lattice, vessel rings, a nanoparticle field and
    macrophages, noise-free (noise is added per tile); and the planted nuclei (pixel row, column)."""
    rng = np.random.default_rng(seed)
    n = MOTIF
    step = 11.0 / PIXEL_UM
    g = np.arange(step / 2, n - step / 2, step)
    cy, cx = np.meshgrid(g, g, indexing="ij")
    centres = np.stack([cy.ravel(), cx.ravel()], axis=1) + rng.uniform(-step / 6, step / 6, (cy.size, 2))
    points = np.zeros((n, n), np.float32)
    points[centres[:, 0].astype(int), centres[:, 1].astype(int)] = 1.0
    sigma = 2.5 / PIXEL_UM
    dapi = ndimage.gaussian_filter(points, sigma, mode="wrap") * (2 * np.pi * sigma ** 2) * 2500.0 + 100.0
    yy, xx = np.mgrid[0:n, 0:n]
    cd31 = np.full((n, n), 100.0, np.float32)
    for vy, vx in rng.uniform(0, n, (12, 2)):  # vessel rings of 8-15 µm radius
        r = np.hypot(yy - vy, xx - vx) * PIXEL_UM
        cd31 += 2000.0 * ((r > 8) & (r < 11 + rng.uniform(0, 4)))
    field = ndimage.gaussian_filter(rng.normal(size=(n // 8, n // 8)).astype(np.float32), 4, mode="wrap")
    nano = ndimage.zoom(np.exp(field / field.std()), 8, order=1, grid_mode=True, mode="grid-wrap")[:n, :n] * 300 + 100
    macro = np.zeros((n, n), np.float32)
    pick = centres[rng.random(len(centres)) < 0.08]
    macro[pick[:, 0].astype(int), pick[:, 1].astype(int)] = 1.0
    macro = ndimage.gaussian_filter(macro, 4.0 / PIXEL_UM, mode="wrap") * 3e4 + 100.0
    return np.stack([dapi, cd31, nano, macro]).astype(np.float32), centres.astype(int)


def inside_tissue(y, x, size: int):
    """The tissue: a disc of radius 0.6 x size cut by the slide's edges (about 93 % of it)."""
    return np.hypot(y - size / 2, x - size / 2) < 0.6 * size


def planted_nuclei(size: int) -> np.ndarray:
    """Every planted nucleus of the slide (pixel row, column): the motif's, block by block with the blocks' flips,
    inside the tissue."""
    centres = motif()[1]
    n_blocks = -(-size // MOTIF)
    out = []
    for by in range(n_blocks):
        for bx in range(n_blocks):
            y = by * MOTIF + (MOTIF - 1 - centres[:, 0] if by % 2 else centres[:, 0])
            x = bx * MOTIF + (MOTIF - 1 - centres[:, 1] if bx % 2 else centres[:, 1])
            keep = (y < size) & (x < size) & inside_tissue(y, x, size)
            out.append(np.stack([y[keep], x[keep]], axis=1))
    return np.concatenate(out)


def block_mean(a: np.ndarray, f: int) -> np.ndarray:
    c, h, w = a.shape
    return a.reshape(c, h // f, f, w // f, f).mean(axis=(2, 4))


def write_slide(path: Path, size: int) -> Path:
    """The slide, tile by tile (memory: the motif and its levels)."""
    import tifffile

    if path.exists():
        return path
    base = motif()[0]
    levels = [base] + [block_mean(base, 2 ** k) for k in range(1, LEVELS + 1)]

    def tiles(level: int):
        f = 2 ** level
        m, tile, n = MOTIF // f, TILE, size // f
        pattern = levels[level]
        for c in range(len(CHANNELS)):
            for ty in range(0, n, tile):
                for tx in range(0, n, tile):
                    rng = np.random.default_rng([level, c, ty, tx])
                    out = np.empty((tile, tile), np.float32)
                    for y in range(ty, ty + tile, m):  # motif blocks (flipped by their index) covering the tile
                        for x in range(tx, tx + tile, m):
                            by, bx = y // m, x // m
                            block = pattern[c][::(-1) ** by, ::(-1) ** bx]
                            oy, ox = y % m, x % m
                            hh, ww = min(m - oy, ty + tile - y), min(m - ox, tx + tile - x)
                            out[y - ty:y - ty + hh, x - tx:x - tx + ww] = block[oy:oy + hh, ox:ox + ww]
                    yy, xx = np.mgrid[ty:ty + tile, tx:tx + tile] * f
                    out = np.where(inside_tissue(yy, xx, size), out, 100.0)  # background outside the tissue
                    noisy = rng.poisson(out / f) * f if level == 0 else out  # Poisson noise at full resolution
                    yield np.clip(noisy, 0, 65535).astype(np.uint16)

    opts = dict(tile=(TILE, TILE), compression="zlib", compressionargs={"level": 1}, photometric="minisblack", maxworkers=2)
    tmp = path.with_suffix(".partial.tif")
    with tifffile.TiffWriter(tmp, bigtiff=True, ome=True) as tif:
        tif.write(tiles(0), shape=(len(CHANNELS), size, size), dtype=np.uint16, subifds=LEVELS,
                  metadata={"axes": "CYX", "PhysicalSizeX": PIXEL_UM, "PhysicalSizeY": PIXEL_UM,
                            "Channel": {"Name": CHANNELS}}, **opts)
        for k in range(1, LEVELS + 1):
            n = size // 2 ** k
            tif.write(tiles(k), shape=(len(CHANNELS), n, n), dtype=np.uint16, subfiletype=1, **opts)
    tmp.rename(path)
    return path


def child(step: str, workdir: Path, working_um: float) -> None:
    slide = workdir.parent / "slide.ome.tif"
    MICROSCOPY["working_pixel_um"] = working_um
    reuse_freed_memory()  # as every workflow step does (nanohet.memory)
    reset_peak_memory()
    start = time.perf_counter()
    if step == "masks":
        from nanohet.steps.microscopy import preprocess

        preprocess(str(slide), MICROSCOPY, str(workdir / "masks.ome.tif"), str(workdir / "stats.tsv"))
    elif step == "grid":
        from nanohet.steps.quantify import analysis_grid

        analysis_grid(str(slide), 10.0, str(workdir / "grid.json"), working_um=MICROSCOPY["working_pixel_um"])
    elif step == "register":  # the fluorescence section as the registration sees it (masks + working level)
        import yaml

        from nanohet.settings import RegistrationSettings
        from nanohet.steps.register import section_input

        config = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "config.yaml").read_text())
        edge = RegistrationSettings.from_dict(config["registration"]).edge("msi", "fluorescence")
        section_input("fluorescence", str(slide), edge, MicroscopySettings.coerce(MICROSCOPY), "wsi",
                      str(workdir / "masks.ome.tif"))
    elif step == "section":
        import yaml

        from nanohet.steps.quantify import section

        config = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "config.yaml").read_text())
        section(str(slide), str(workdir / "masks.ome.tif"), str(workdir / "grid.json"), config["msi"], MICROSCOPY,
                config["quantify"], str(workdir / "metrics.tsv"), str(workdir / "profiles.tsv"),
                str(workdir / "region_maps.ome.tif"), sample="wsi", out_scales=str(workdir / "scales.tsv"))
    elif step == "cells":
        import yaml

        from nanohet.steps.cells import cells

        config = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "config.yaml").read_text())
        cells(str(slide), str(workdir / "masks.ome.tif"), str(workdir / "grid.json"), MICROSCOPY, config["msi"],
              config["quantify"],
              str(workdir / "cells.tsv"), str(workdir / "cell_metrics.tsv"), sample="wsi")
    print(json.dumps({"step": step, "seconds": time.perf_counter() - start, "peak_gb": peak_memory_gb()}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=40_000)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/nanohet-wsi"))
    ap.add_argument("--no-cells", action="store_true")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--working-um", type=float, default=MICROSCOPY["working_pixel_um"],
                    help="microscopy.working_pixel_um of the masks, registration and section steps")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    workdir = args.workdir / str(args.size) / f"working_{args.working_um:g}um"  # the slide is one folder up
    if args.child:
        child(args.child, workdir, args.working_um)
        return
    workdir.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    slide = write_slide(workdir.parent / "slide.ome.tif", args.size)
    print(f"{slide}: {args.size} x {args.size} px of {PIXEL_UM} µm, 4 channels, {slide.stat().st_size / 1e9:.1f} GB "
          f"on disk (made in {time.perf_counter() - t:.0f} s)")
    rows = []
    for step in ("masks", "grid", "register", "section") + (() if args.no_cells else ("cells",)):
        res = subprocess.run([sys.executable, __file__, "--size", str(args.size), "--workdir", str(args.workdir),
                              "--working-um", str(args.working_um), "--child", step], capture_output=True, text=True)
        if res.returncode != 0:
            raise SystemExit(res.stderr)
        r = json.loads(res.stdout.strip().splitlines()[-1])
        extra = ""
        if step == "cells":
            import pandas as pd
            from scipy.spatial import cKDTree

            found = pd.read_csv(workdir / "cells.tsv", sep="\t", usecols=["y_um", "x_um"])[["y_um", "x_um"]]
            found = found.to_numpy() / PIXEL_UM  # (row, column) pixels, as the planted nuclei
            planted = planted_nuclei(args.size)
            near = cKDTree(found).query(planted, distance_upper_bound=3.0 / PIXEL_UM)[0]
            r.update(cells=len(found), planted=len(planted), found=float(np.isfinite(near).mean()))
            extra = (f", {r['cells']:,} cells; {100 * r['found']:.1f} % of the {r['planted']:,} planted nuclei found "
                     "within 3 µm")
        print(f"  {step:8s}: {r['seconds']:7.1f} s, peak {r['peak_gb']:.2f} GB (target {TARGET_GB:.0f} GB: "
              f"{'met' if r['peak_gb'] <= TARGET_GB else 'NOT met'}){extra}")
        rows.append({"size": args.size, "pixel_um": PIXEL_UM, "working_um": args.working_um, **r})
    if args.out:
        write_rows(rows, args.out)


if __name__ == "__main__":
    main()
