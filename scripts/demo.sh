#!/usr/bin/env bash
# The demo: prepares the machine, then runs the whole daemon end to end on throwaway local
# servers (mosquitto, MPD with a generated library) while showing public-domain photos.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python scripts/demo.py "$@"
