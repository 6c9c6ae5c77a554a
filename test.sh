#!/usr/bin/env bash
# Command 2 of the README: create .venv, install nanohet with its test extras (pinned),
# run the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
bash tools/setup-venv.sh test
exec .venv/bin/python -m pytest "$@"
