#!/usr/bin/env bash
# Command 1 of the README: create .venv, install nanohet with pinned dependencies,
# run the full analysis on the embedded demo cohort and build the HTML report.
# Extra arguments go to snakemake (e.g. --cores 4, --profile profiles/slurm, -n).
set -euo pipefail
cd "$(dirname "$0")"
PY="${PYTHON:-python3}"
"$PY" - <<'PYCHECK'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"nanohet needs Python >= 3.11, this is {sys.version.split()[0]}; set PYTHON=/path/to/python3.11")
PYCHECK
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -c requirements/lock.txt -e .
.venv/bin/snakemake --cores "${CORES:-all}" "$@"
.venv/bin/snakemake --report results/report.html
echo "Done: results/report.html, results/tables/, results/figures/"
