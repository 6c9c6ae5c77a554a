#!/usr/bin/env bash
# Command 2 of the README: create .venv, install nanohet with its test extras (pinned),
# run the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
PY="${PYTHON:-python3}"
"$PY" - <<'PYCHECK'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"nanohet needs Python >= 3.11, this is {sys.version.split()[0]}; set PYTHON=/path/to/python3.11")
PYCHECK
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -c requirements/lock.txt -e ".[test]"
exec .venv/bin/python -m pytest "$@"
