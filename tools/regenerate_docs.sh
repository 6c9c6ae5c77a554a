#!/usr/bin/env bash
# Regenerate every number of docs/validation.md and docs/benchmarks.md in one command, on this machine and
# this commit: the demo run (validation tables), the three benchmarks, and with SWEEP=1 the registration
# robustness sweep (about an hour on 2 cores), then tools/validation_doc.py writes the generated blocks.
# Usage: bash tools/regenerate_docs.sh            (from the repository, after bash run.sh has set up .venv)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
OUT=${OUT:-results/doc_numbers}
mkdir -p "$OUT"
.venv/bin/snakemake --cores "${CORES:-all}"
"$PY" benchmarks/msi_extract.py --out "$OUT/msi_extract.tsv"
"$PY" benchmarks/registration.py --out "$OUT/registration.tsv"
"$PY" benchmarks/quantify.py --out "$OUT/quantify.tsv"
"$PY" benchmarks/cells.py --out "$OUT/cells.tsv"
args=(--results results --msi-bench "$OUT/msi_extract.tsv" --registration-bench "$OUT/registration.tsv"
      --quantify-bench "$OUT/quantify.tsv" --cells-bench "$OUT/cells.tsv")
if [[ "${SWEEP:-0}" == 1 ]]; then
  "$PY" benchmarks/registration_robustness.py --first 201 --out "$OUT/sweep_tuning.tsv"
  "$PY" benchmarks/registration_robustness.py --first 301 --out "$OUT/sweep_fresh.tsv"
  args+=(--sweep-tuning "$OUT/sweep_tuning.tsv" --sweep-fresh "$OUT/sweep_fresh.tsv")
fi
"$PY" tools/validation_doc.py "${args[@]}"
