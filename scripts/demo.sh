#!/usr/bin/env bash
# The demo: prepares the machine, then runs the whole daemon end to end on throwaway local
# servers (mosquitto, MPD) while showing photos, and prints what plays and why.
#
#   scripts/demo.sh [PHOTO_DIR [MUSIC_DIR]] [--seconds-per-photo 12] [--photos 8] [--workdir DIR]
#
# Without folders: freely licensed photos from PyPI wheels and a generated, mood-tagged library.
# PHOTO_DIR: your photos (a few are copied, spread from the calmest to the liveliest); MUSIC_DIR:
# your music (MPD and the index only read it). Nothing of yours is changed.
set -euo pipefail
case "${1:-}" in
    -h|--help) sed -n '2,9s/^# \{0,1\}//p' "$0"; exit 0 ;;
esac
# The folders (the first two arguments that are not options) are checked at once, before the
# setup step, and made absolute: they are the caller's, not the repository's.
args=()
folders=0
for arg in "$@"; do
    if [[ "$arg" != -* && $folders -lt 2 && ${#args[@]} -eq $folders ]]; then
        if [[ ! -d "$arg" ]]; then
            echo "demo: $arg is not a folder (usage: scripts/demo.sh [PHOTO_DIR [MUSIC_DIR]])" >&2
            exit 2
        fi
        arg="$(cd "$arg" && pwd)"
        folders=$((folders + 1))
    fi
    args+=("$arg")
done
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python scripts/demo.py "${args[@]}"
