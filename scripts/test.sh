#!/usr/bin/env bash
# The test command: prepares the machine (scripts/setup.sh), then lint and the whole test suite.
# Extra arguments go to pytest, e.g.  scripts/test.sh -k score
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "== ruff"
.venv/bin/ruff check frame_daemon tests scripts
echo "== pytest"
export FRAME_DAEMON_TFLITE_PYTHON="$PWD/.venv-tflite/bin/python"
exec .venv/bin/python -m pytest "$@"
