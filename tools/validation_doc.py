"""Regenerate the numbers of docs/validation.md and docs/benchmarks.md from result tables and benchmark outputs.

Every number in the generated blocks comes from a file a rule or a benchmark wrote; the block says which
files and which commit (``tools/regenerate_docs.sh`` runs everything and then this script). The blocks of
docs/validation.md:

* ``demo``: from a finished demo run (``results/tables/registration_error.tsv`` and
  ``results/tables/metrics_vs_truth.tsv``): registration error per edge, and every recovered measure against
  its truth (analytes, nanoparticle, masks, section statistics, in vivo uptake);
* ``variance``: from the same run's ``results/tables/variance_vs_truth.tsv``: the cohort's variance shares per
  level against the configured and the realised truth;
* ``sweep``: from the TSVs of ``benchmarks/registration_robustness.py --out`` (a tuning set and a fresh set):
  the confusion table per configuration.

and of docs/benchmarks.md:

* ``msi_bench``: from ``benchmarks/msi_extract.py --out``: every tool's extraction and parse time, the ratios
  and the agreement with the peers;
* ``registration_bench``: from ``benchmarks/registration.py --out``: run time and TRE of each method;
* ``quantify_bench``: from ``benchmarks/quantify.py --out``: the whole measure set's time and peak memory on a
  large section, and the agreement and time ratio against esda and MIRP;
* ``cells_bench``: from ``benchmarks/cells.py --out``: nuclei, territories and the cell table of a large
  section, time and peak memory;
* ``wsi_bench``: from ``benchmarks/wholeslide.py --out`` (one or more sizes): the section steps on a pyramidal
  whole slide, time and peak memory of each.

Usage (after ``bash run.sh`` and the sweep)::

    .venv/bin/python tools/validation_doc.py --results results \\
        --sweep-tuning set_a.tsv --sweep-fresh set_b.tsv --sweep-commit <commit the sweep ran on>
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "validation.md"
BENCH_DOC = REPO / "docs" / "benchmarks.md"


def commit() -> str:
    res = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "src", "workflow", "config"],
                           capture_output=True, text=True).stdout.strip()
    return (res.stdout.strip() or "unknown") + (" with uncommitted changes" if dirty else "")


def _range(values, fmt="{:.2f}") -> str:
    lo, hi = float(min(values)), float(max(values))
    return fmt.format(lo) if fmt.format(lo) == fmt.format(hi) else f"{fmt.format(lo)}-{fmt.format(hi)}"


def demo_block(results: Path) -> str:
    tre = pd.read_csv(results / "tables" / "registration_error.tsv", sep="\t")
    comp = pd.read_csv(results / "tables" / "metrics_vs_truth.tsv", sep="\t")
    n = tre["sample"].nunique()
    lines = [f"Default demo, {n} samples, commit {commit()}; from `results/tables/registration_error.tsv` and "
             "`results/tables/metrics_vs_truth.tsv` (regenerate: `tools/validation_doc.py`).", "",
             "| registration edge (points) | median TRE, px of the moving image (per sample) | 95th percentile, px |"
             " median TRE, µm |", "|---|---|---|---|"]
    for (edge, points), sub in tre.groupby(["edge", "points"], sort=True):
        lines.append(f"| {edge} ({points.replace('_', ' ')}) | {_range(sub.median_px)} | {_range(sub.p95_px)} | "
                     f"{_range(sub.median_um, '{:.1f}')} |")
    lines += ["", "| modality | measure | region | metric | truth (per sample) | recovered | error (per sample) |",
              "|---|---|---|---|---|---|---|"]
    if "region" not in comp:
        comp["region"] = "tissue"
    comp["region"] = comp["region"].fillna("tissue")
    for (modality, analyte, region, metric), sub in comp.groupby(["modality", "analyte", "region", "metric"],
                                                                 sort=True):
        relative = metric not in ("coverage", "dice", "hotspot_fraction", "coldspot_fraction",
                                  "fraction_of_cells_reached")
        error = (_range(100 * sub.rel_error, "{:.1f}") + " %" if relative
                 else _range(sub.abs_error, "{:.3f}") + " (absolute)")
        signed = (sub.recovered - sub.truth).mean()
        bias = "over" if signed > 0 else "under"
        lines.append(f"| {modality} | {analyte} | {region} | {metric} | {_range(sub.truth, '{:.3g}')} | "
                     f"{_range(sub.recovered, '{:.3g}')} | {error}, mean {bias} |")
    return "\n".join(lines)


def variance_block(results: Path) -> str:
    """The cohort's variance shares against the configured and realised truth (``variance_vs_truth.tsv``)."""
    table = pd.read_csv(results / "tables" / "variance_vs_truth.tsv", sep="\t")
    table = table[table["level"].fillna("").astype(str) != ""]
    lines = [f"Default demo, commit {commit()}; from `results/tables/variance_vs_truth.tsv` (regenerate: "
             "`tools/validation_doc.py`). Shares of each level; the estimate with its 95 % interval.", "",
             "| modality | analyte | region | level | configured SD | configured share | realised share | "
             "estimated share [95 % CI] | truths in the interval |", "|---|---|---|---|---|---|---|---|---|"]
    for rec in table.to_dict("records"):
        sd = "-" if pd.isna(rec["configured_sd"]) else f"{rec['configured_sd']:.2f}"
        inside = ", ".join(name for name in ("configured", "realised") if rec[f"{name}_in_ci"]) or "neither"
        lines.append(f"| {rec['modality']} | {rec['analyte']} | {rec['region']} | {rec['level']} | {sd} | "
                     f"{rec['configured_share']:.3f} | {rec['realised_share']:.3f} | {rec['estimated_share']:.3f} "
                     f"[{rec['share_ci_low']:.3f}, {rec['share_ci_high']:.3f}] | {inside} |")
    return "\n".join(lines)


def sweep_block(tuning: Path, fresh: Path, sweep_commit: str) -> str:
    sets = {"tuning set": pd.read_csv(tuning, sep="\t"), "fresh set": pd.read_csv(fresh, sep="\t")}
    seeds = {k: f"seeds {int(v.seed.min())}-{int(v.seed.max())}" for k, v in sets.items()}
    lines = [f"Commit {sweep_commit}; from `benchmarks/registration_robustness.py --out` ({tuning.name}, "
             f"{fresh.name}). Fits per class, flagged / not flagged:", "",
             f"| configuration | tuning set ({seeds['tuning set']}) | fresh set ({seeds['fresh set']}) | "
             "good | silent gross failures | good fits flagged | run time per edge (median) |",
             "|---|---|---|---|---|---|---|"]
    for config in sets["tuning set"].config.drop_duplicates():
        cells, good, silent, false_alarm = [], [], [], []
        for df in sets.values():
            sub = df[df.config == config]
            parts = []
            for cls in ("good", "poor", "gross"):
                c = sub[sub["class"] == cls]
                if len(c):
                    parts.append(f"{cls} {int(c.flagged.sum())} / {int((~c.flagged).sum())}")
            cells.append(", ".join(parts))
            good.append(f"{(sub['class'] == 'good').mean():.0%}")
            silent.append(str(int(((sub["class"] == "gross") & ~sub.flagged).sum())))
            g = sub[sub["class"] == "good"]
            false_alarm.append(f"{int(g.flagged.sum())} of {len(g)}")
        seconds = pd.concat(sets.values())
        seconds = seconds.loc[seconds.config == config, "seconds"].median()
        lines.append(f"| {config} | {cells[0]} | {cells[1]} | {' / '.join(good)} | {' / '.join(silent)} | "
                     f"{' / '.join(false_alarm)} | {seconds:.0f} s |")
    return "\n".join(lines)


def _seconds(value) -> str:
    return "not installed" if value is None or pd.isna(value) else f"{float(value):.2f} s"


def msi_bench_block(table: Path) -> str:
    df = pd.read_csv(table, sep="\t")
    commits = ", ".join(f"{c} ({', '.join(df.loc[df.commit == c, 'file'])})" for c in df.commit.astype(str).unique())
    lines = [f"Commit {commits}; from `benchmarks/msi_extract.py --out` ({table.name}); warm page cache, "
             f"best of the script's repeats, {int(df.targets.iloc[0])} targets at ±10 ppm; parse time in brackets.", "",
             "| file | plain read | mapped read | pyimzML | imzy | nanohet pass | vs pyimzML | vs imzy | "
             "vs plain / mapped read | agreement (max rel. difference) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in df[df.plain_read_s.notna()].itertuples() if "plain_read_s" in df else []:
        imzy = (f"{r.imzy_s:.2f} s [{r.imzy_parse_s:.2f} s]" if pd.notna(r.imzy_s) else "not installed")
        vs_imzy = f"{r.imzy_s / r.nanohet_s:.1f}x" if pd.notna(r.imzy_s) else "-"
        agree = f"pyimzML {r.max_rel_diff_pyimzml:.1e}" + (f", imzy {r.max_rel_diff_imzy:.1e}"
                                                           if pd.notna(r.max_rel_diff_imzy) else "")
        lines.append(
            f"| {r.file}, {int(r.spectra):,} spectra, {r.ibd_gb:.2f} GB | {r.plain_read_s:.2f} s | {r.mapped_read_s:.2f} s | "
            f"{r.pyimzml_s:.1f} s [{r.pyimzml_parse_s:.2f} s] | {imzy} | {r.nanohet_s:.2f} s [{r.nanohet_parse_s:.2f} s], "
            f"{r.nanohet_peak_mb:.0f} MB peak | {r.pyimzml_s / r.nanohet_s:.0f}x | {vs_imzy} | "
            f"{100 * r.plain_read_s / r.nanohet_s:.0f} % / {100 * r.mapped_read_s / r.nanohet_s:.0f} % | {agree} |")
    if "parse_nanohet_s" in df:
        lines += ["", "Index parse alone (best of the repeats) and first run (a new process, warm page cache, nothing of "
                  "nanohet's cached: index and kernel compile, overlapped as the workflow does, + pass; pyimzML parse + "
                  "loop; imzy open + batch):", "",
                  "| file | parse: nanohet | pyimzML | vs pyimzML | first run: nanohet | pyimzML | imzy | vs imzy |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in df.itertuples():
            first = (f"{r.first_run_nanohet_s:.2f} s | {r.first_run_pyimzml_s:.1f} s | "
                     if pd.notna(getattr(r, "first_run_nanohet_s", float("nan"))) else "- | - | ")
            imzy = getattr(r, "first_run_imzy_s", float("nan"))
            first += (f"{imzy:.2f} s | {imzy / r.first_run_nanohet_s:.1f}x |" if pd.notna(imzy) else "- | - |")
            lines.append(f"| {r.file}, {int(r.spectra):,} spectra | {r.parse_nanohet_s:.2f} s | "
                         f"{r.parse_pyimzml_s:.2f} s | {r.parse_pyimzml_s / r.parse_nanohet_s:.0f}x | {first}")
    return "\n".join(lines)


def registration_bench_block(table: Path) -> str:
    df = pd.read_csv(table, sep="\t")
    lines = [f"Commit {df.commit.iloc[0]}; from `benchmarks/registration.py --out` ({table.name}); 2000 x 2000 "
             "pair at 2 µm, TRE on every 20th tissue pixel against the true map.", "",
             "| start rotation | method | run time | TRE median | TRE 95th percentile |", "|---|---|---|---|---|"]
    for r in df.itertuples():
        lines.append(f"| {r.angle_deg:.0f}° | {r.method} | {r.seconds:.1f} s | {r.tre_median_um:.1f} µm | "
                     f"{r.tre_p95_um:.1f} µm |")
    return "\n".join(lines)


def quantify_bench_block(table: Path) -> str:
    df = pd.read_csv(table, sep="\t")
    whole = df[df.peer.isna()].iloc[0]
    lines = [f"Commit {df.commit.iloc[0]}; from `benchmarks/quantify.py --out` ({table.name}).", "",
             f"- {whole.measure} at 10 µm (4 analytes x 2 regions, 6 pairs x 199 shifts, 32 grey levels), fresh "
             f"process: **{whole.nanohet_s:.0f} s**, peak **{whole.peak_gb:.2f} GB**, {int(whole.rows)} rows "
             "(the issue's target: 60 s and 2 GB on 2 cores).", "",
             "| measure | peer | max rel. difference | nanohet | peer | peer / nanohet |", "|---|---|---|---|---|---|"]
    for r in df[df.peer.notna()].itertuples():
        if pd.isna(getattr(r, "max_rel_diff", float("nan"))):
            lines.append(f"| {r.measure} | {r.peer} | {getattr(r, 'note', 'not run')} | | | |")
            continue
        lines.append(f"| {r.measure} | {r.peer} | {r.max_rel_diff:.1e} | {r.nanohet_s * 1000:.1f} ms | "
                     f"{r.peer_s * 1000:.1f} ms | {r.peer_s / r.nanohet_s:.0f}x |")
    return "\n".join(lines)


def cells_bench_block(table: Path) -> str:
    r = pd.read_csv(table, sep="\t").iloc[0]
    return (f"Commit {r.commit}; from `benchmarks/cells.py --out` ({table.name}).\n\n"
            f"- {int(r['size']):,} x {int(r['size']):,} pixels of {r.pixel_um:g} µm, {int(r.planted):,} planted "
            "nuclei: "
            f"{int(r.cells):,} cells, {100 * r.found:.1f} % of the planted nuclei found within 3 µm; nuclei, "
            f"territories and the per-cell table in **{r.seconds:.0f} s**, peak **{r.peak_gb:.2f} GB** (the issue's "
            "target: 3 minutes and 4 GB on 2 cores).")


def wsi_bench_block(tables: list[Path]) -> str:
    df = pd.concat([pd.read_csv(t, sep="\t") for t in tables], ignore_index=True)
    lines = [f"Commit {', '.join(df.commit.astype(str).unique())}; from `benchmarks/wholeslide.py --out` "
             f"({', '.join(t.name for t in tables)}); pyramidal OME-TIFF, 4 channels uint16, pixels of "
             f"{df.pixel_um.iloc[0]:g} µm; each step in a fresh process (the issues' target: 4 GB peak on 2 cores).",
             "", "| slide | working resolution | step | time | peak memory | cells (planted found within 3 µm) |",
             "|---|---|---|---|---|---|"]
    for r in df.itertuples():
        cells = (f"{int(r.cells):,} ({100 * r.found:.1f} % of {int(r.planted):,})"
                 if pd.notna(getattr(r, "cells", float("nan"))) else "")
        lines.append(f"| {int(r.size):,} x {int(r.size):,} | {r.working_um:g} µm | {r.step} | {r.seconds:.1f} s | "
                     f"{r.peak_gb:.2f} GB | {cells} |")
    return "\n".join(lines)


def replace_block(text: str, name: str, body: str) -> str:
    begin, end = f"<!-- BEGIN generated: {name} -->", f"<!-- END generated: {name} -->"
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise SystemExit(f"no '{begin}' ... '{end}' block in the document")
    return pattern.sub(lambda _: f"{begin}\n{body}\n{end}", text)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=REPO / "results", help="a finished demo run's results folder")
    ap.add_argument("--sweep-tuning", type=Path, help="robustness sweep TSV the QC rule was chosen on")
    ap.add_argument("--sweep-fresh", type=Path, help="robustness sweep TSV of fresh seeds")
    ap.add_argument("--sweep-commit", default=None, help="commit the sweep ran on (default: HEAD)")
    ap.add_argument("--msi-bench", type=Path, help="TSV of benchmarks/msi_extract.py --out")
    ap.add_argument("--registration-bench", type=Path, help="TSV of benchmarks/registration.py --out")
    ap.add_argument("--quantify-bench", type=Path, help="TSV of benchmarks/quantify.py --out")
    ap.add_argument("--cells-bench", type=Path, help="TSV of benchmarks/cells.py --out")
    ap.add_argument("--wsi-bench", type=Path, nargs="+", help="TSVs of benchmarks/wholeslide.py --out")
    args = ap.parse_args(argv)
    text = DOC.read_text()
    text = replace_block(text, "demo", demo_block(args.results))
    text = replace_block(text, "variance", variance_block(args.results))
    if args.sweep_tuning and args.sweep_fresh:
        text = replace_block(text, "sweep", sweep_block(args.sweep_tuning, args.sweep_fresh,
                                                       args.sweep_commit or commit()))
    DOC.write_text(text)
    print(f"wrote {DOC}")
    if args.msi_bench or args.registration_bench or args.quantify_bench or args.cells_bench or args.wsi_bench:
        bench = BENCH_DOC.read_text()
        if args.msi_bench:
            bench = replace_block(bench, "msi_bench", msi_bench_block(args.msi_bench))
        if args.registration_bench:
            bench = replace_block(bench, "registration_bench", registration_bench_block(args.registration_bench))
        if args.quantify_bench:
            bench = replace_block(bench, "quantify_bench", quantify_bench_block(args.quantify_bench))
        if args.cells_bench:
            bench = replace_block(bench, "cells_bench", cells_bench_block(args.cells_bench))
        if args.wsi_bench:
            bench = replace_block(bench, "wsi_bench", wsi_bench_block(args.wsi_bench))
        BENCH_DOC.write_text(bench)
        print(f"wrote {BENCH_DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
