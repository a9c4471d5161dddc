#!/usr/bin/env bash
# Prepare a fresh machine for the demo and the tests (idempotent; quick when all is in place):
# every Debian package the tests use (mosquitto, mpd, ffmpeg for the decoder fallback,
# systemd-analyze for the unit check), the project venv .venv (its TFLite runtime comes with the
# package), and a second small venv .venv-tflite with tflite-runtime 2.14 for the
# runtime-agreement test.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
need_apt=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto)
command -v mpd >/dev/null 2>&1 || need_apt+=(mpd)
command -v ffmpeg >/dev/null 2>&1 || need_apt+=(ffmpeg)
command -v systemd-analyze >/dev/null 2>&1 || need_apt+=(systemd)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${need_apt[*]}"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        "${need_apt[@]}" >/dev/null
    # The packaged services are not ours: tests and the demo start their own on free ports.
    for svc in mosquitto mpd mpd.socket; do
        $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || true
    done
fi

stamp_ok() { [ -f "$1/.frame-daemon-stamp" ] && [ "$(cat "$1/.frame-daemon-stamp")" = "$2" ]; }
deps_hash=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)

if ! stamp_ok .venv "$deps_hash"; then
    echo "setup: creating .venv (project with its TFLite runtime, dev tools)"
    "$PY" -m venv .venv
    .venv/bin/pip install -q --upgrade pip >/dev/null
    # setuptools warns on every editable install that maps models/ into the package; keep its
    # output in a log and show it only when the install fails.
    .venv/bin/pip install -q -e '.[dev]' > .venv/pip-install.log 2>&1 || {
        cat .venv/pip-install.log >&2; exit 1; }
    echo "$deps_hash" > .venv/.frame-daemon-stamp
fi
if ! stamp_ok .venv-tflite "$deps_hash"; then
    echo "setup: creating .venv-tflite (tflite-runtime 2.14, numpy<2)"
    "$PY" -m venv .venv-tflite
    .venv-tflite/bin/pip install -q 'tflite-runtime==2.14.0' 'numpy<2' 'pillow>=10'
    echo "$deps_hash" > .venv-tflite/.frame-daemon-stamp
fi
