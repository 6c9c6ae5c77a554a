"""Which grid: every MSI measure on the reference grid (modality ``msi``) and on native MSI pixels
(``msi_native``) against the demo's truth, from a finished demo run.

The truth is the demo's (``nanohet.demo.truth.truth_metrics``): the true field seen through the MSI pixel's
footprint, on the analysis grid, in the true tissue. Usage (in a project folder after a demo run)::

    .venv/bin/python tools/native_vs_grid.py [project folder] [--out table.tsv]

prints, per analyte, region and metric, the median relative error over the samples on each grid. The choice
it informs is documented in docs/metrics.md ("Which grid each number comes from").
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from nanohet.demo.truth import truth_metrics  # noqa: E402
from nanohet.demo.validation import compare_metrics, demo_analytes  # noqa: E402
from nanohet.io.ometiff import read_ome_tiff  # noqa: E402
from nanohet.settings import from_config  # noqa: E402


def compare(project: Path) -> pd.DataFrame:
    """Rows of :func:`nanohet.demo.validation.compare_metrics` for both grids of every demo sample."""
    config = from_config(yaml.safe_load((project / "config" / "config.yaml").read_text()))
    truth_dir = project / config.demo.truth_dir
    rows = []
    for folder in sorted(p for p in truth_dir.iterdir() if (p / "truth.json").is_file()):
        metrics = project / "results" / "quantify" / folder.name / "metrics.tsv"
        if not metrics.is_file():
            continue
        record = json.loads((folder / "truth.json").read_text())
        analytes = {f: a for f, a in demo_analytes(config.msi).items() if a[0] == "msi"}
        thresholds = {f: config.quantify.coverage_thresholds.get(name) for f, (_, name, _) in analytes.items()}
        true = truth_metrics(read_ome_tiff(folder / "truth_fields.ome.tif"), read_ome_tiff(folder / "truth_masks.ome.tif"),
                             float(record["params"]["msi_pixel_um"]), config.quantify, thresholds)
        recovered = pd.read_csv(metrics, sep="\t")
        for modality in ("msi", "msi_native"):
            found = compare_metrics(folder.name, true, recovered,
                                    {f: (modality, name, cal) for f, (_, name, cal) in analytes.items()})
            rows += [{**r, "msi_pixel_um": record["params"]["msi_pixel_um"]} for r in found]
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("project", nargs="?", default=".", type=Path)
    parser.add_argument("--out", type=Path, help="write every comparison row (TSV)")
    args = parser.parse_args(argv)
    table = compare(args.project)
    if table.empty:
        print(f"no demo sample with metrics under {args.project}", file=sys.stderr)
        return 1
    if args.out:
        table.to_csv(args.out, sep="\t", index=False)
    median = table.groupby(["analyte", "region", "metric", "modality"]).rel_error.median().unstack("modality")
    median["closer"] = (median["msi"] <= median["msi_native"]).map({True: "grid", False: "native"})
    pd.set_option("display.width", 160)
    print(f"median relative error over {table['sample'].nunique()} samples, MSI pixel "
          f"{', '.join(f'{p:g}' for p in sorted(table.msi_pixel_um.unique()))} µm")
    print(median.round(3).to_string())
    print(table.groupby("modality").rel_error.median().round(4).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
