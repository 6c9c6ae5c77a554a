#!/usr/bin/env bash
# Create .venv (if missing) and install nanohet with the pinned dependency set.
# Usage: bash tools/setup-venv.sh [extras], e.g. "test". Used by run.sh and test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
"$PY" - <<'PYCHECK'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"nanohet needs Python >= 3.11, this is {sys.version.split()[0]}; set PYTHON=/path/to/python3.11")
PYCHECK
[ -x .venv/bin/python ] || "$PY" -m venv .venv
target="."
[ -n "${1:-}" ] && target=".[$1]"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -c requirements/lock.txt -e "$target"
