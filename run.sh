#!/usr/bin/env bash
# Command 1 of the README: create .venv, install nanohet with pinned dependencies,
# run the full analysis on the embedded demo cohort and build the HTML report.
# Extra arguments go to snakemake (e.g. --cores 4, --profile profiles/slurm, -n).
set -euo pipefail
cd "$(dirname "$0")"
bash tools/setup-venv.sh
.venv/bin/snakemake --cores "${CORES:-all}" "$@"
.venv/bin/snakemake --report results/report.html
echo "Done: results/report.html, results/tables/, results/figures/"
