#!/usr/bin/env bash
# The demo: prepares the machine, fetches public-domain sample photos and scores their mood.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
DEMO_DIR=${DEMO_DIR:-build/demo}
.venv/bin/python scripts/demo_photos.py "$DEMO_DIR/photos"
echo "== photo -> mood"
.venv/bin/frame-daemon score "$DEMO_DIR"/photos/*.jpg
