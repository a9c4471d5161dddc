#!/usr/bin/env bash
# Smoke-test the wheel on 64-bit ARM without a Pi: an arm64 Debian 12 (Bookworm, as Raspberry Pi
# OS 64-bit) root run through qemu-user-static, as root:
#   scripts/pi_smoke.sh [ROOT_DIR]            (default build/roots/bookworm-arm64)
# Minutes, not part of scripts/test.sh. Needs root, debootstrap, qemu-user-static, binfmt_misc.
#
# 1. the root (scripts/debian_root.sh arm64: debootstrap --foreign + qemu second stage);
# 2. the wheel of this checkout and every aarch64 dependency wheel, fetched here by
#    scripts/check_pi_wheels.sh (plus pytest, and tflite-runtime 2.14 with numpy<2 as a
#    fallback), installed in a venv in the root with pip --no-index: exactly those wheels;
# 3. `frame-daemon score` on the demo photos, the model's invoke time, and the unit tests that
#    need no servers, all running as arm64 code under emulation.
# Newer ai-edge-litert builds may crash under Debian 12's QEMU 7.2 (an emulator bug, not ours):
# then the fallback runtime runs and the summary says which runtime and version ran.
# Emulated times say nothing about a real Pi's speed (see docs/performance.md).
set -euo pipefail
usage() { sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"; exit "${1:-0}"; }
case "${1:-}" in
    -h|--help) usage 0 ;;
    -*) echo "pi_smoke.sh: unknown option $1" >&2; usage 2 >&2 ;;
esac
[ $# -le 1 ] || { echo "pi_smoke.sh: one ROOT_DIR at most" >&2; usage 2 >&2; }
cd "$(dirname "$0")/.."
HERE=$PWD
ROOT_DIR=$(realpath -m "${1:-build/roots/bookworm-arm64}")
WHEELS=$HERE/build/pi-wheels/aarch64
[ "$(id -u)" -eq 0 ] || { echo "pi_smoke.sh: run as root" >&2; exit 1; }
[ -x .venv/bin/python ] || scripts/setup.sh

step() { echo; echo "== $*"; }
in_root() { chroot "$ROOT_DIR" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }
cleanup() {
    { grep -o " $ROOT_DIR/[^ ]*" /proc/mounts || true; } | sort -r | while read -r m; do umount -l "$m" || true; done
}
trap cleanup EXIT

step "the wheels, fetched here for cp311 aarch64"
scripts/check_pi_wheels.sh > build/pi-wheels.md
plats=()
for n in $(seq 17 36); do plats+=(--platform "manylinux_2_${n}_aarch64"); done
.venv/bin/pip download -qq --only-binary=:all: --python-version 3.11 --implementation cp --abi cp311 \
    "${plats[@]}" -d "$WHEELS" pytest 'tflite-runtime==2.14.0' 'numpy<2'
rm -f "$WHEELS"/frame_daemon-*.whl
.venv/bin/pip wheel -q --no-deps -w "$WHEELS" . >/dev/null
ls "$WHEELS"/frame_daemon-*.whl
.venv/bin/python scripts/demo_photos.py build/demo/photos >/dev/null

step "arm64 Debian 12 root in $ROOT_DIR"
start=$SECONDS
scripts/debian_root.sh arm64 "$ROOT_DIR"
mount -t proc proc "$ROOT_DIR/proc"
mount --rbind /sys "$ROOT_DIR/sys"
mount --rbind /dev "$ROOT_DIR/dev"
cp /etc/resolv.conf "$ROOT_DIR/etc/resolv.conf"
# pip inside trusts what this machine trusts (a TLS-inspecting proxy's CA included).
cp /etc/ssl/certs/ca-certificates.crt "$ROOT_DIR/etc/ssl/certs/ca-certificates.crt"
mkdir -p "$ROOT_DIR/wheels" "$ROOT_DIR/smoke/photos"
cp "$WHEELS"/*.whl "$ROOT_DIR/wheels/"
cp build/demo/photos/*.jpg "$ROOT_DIR/smoke/photos/"
cp -r tests "$ROOT_DIR/smoke/tests"
echo "root ready after $((SECONDS - start)) s; $(in_root uname -m), $(in_root python3 --version)," \
     "emulator: $(qemu-aarch64-static --version | head -1)"

step "install the wheel in a venv (pip --no-index: only the wheels checked above)"
start=$SECONDS
in_root python3 -m venv /opt/smoke
in_root /opt/smoke/bin/pip install -q --no-index --find-links /wheels \
    "/wheels/$(basename "$WHEELS"/frame_daemon-*.whl)" pytest
echo "installed in $((SECONDS - start)) s (emulated)"
in_root /opt/smoke/bin/pip list 2>/dev/null | grep -i -E "^(frame-daemon|ai-edge-litert|tflite-runtime|numpy|pillow) "

score() {  # runtime: score the demo photos, then time the model's invoke
    in_root /usr/bin/env FRAME_DAEMON_RUNTIME="$1" sh -c '/opt/smoke/bin/frame-daemon score /smoke/photos/*.jpg' &&
    in_root /usr/bin/env FRAME_DAEMON_RUNTIME="$1" /opt/smoke/bin/python -c '
import platform, statistics, time
from importlib import metadata
import numpy as np
from frame_daemon.vision.model import MoodModel
m = MoodModel.load()
px = np.full((m.size, m.size, 3), 128, np.uint8)
m.infer(px)
t = []
for _ in range(10):
    s = time.perf_counter(); m.infer(px); t.append(time.perf_counter() - s)
print(f"runtime {m.runtime} {metadata.version(m.runtime)}, numpy {np.__version__}, "
      f"{platform.machine()}: invoke median {1000 * statistics.median(t):.0f} ms over 10, "
      "1 thread (EMULATED: not a Pi figure)")'
}
step "frame-daemon score on the demo photos (ai-edge-litert)"
ran=""
if score ai-edge-litert; then
    ran="ai-edge-litert $(in_root /opt/smoke/bin/pip show ai-edge-litert 2>/dev/null | sed -n 's/^Version: //p')"
else
    echo "ai-edge-litert failed under emulation (exit $?); falling back to tflite-runtime 2.14"
    # As on 32-bit Pi OS: tflite-runtime with NumPy 1.x, and no ai-edge-litert (its ml-dtypes
    # wants NumPy 2). pip then says frame-daemon lacks ai-edge-litert: removed on purpose.
    in_root /opt/smoke/bin/pip uninstall -q -y ai-edge-litert ml-dtypes
    in_root /opt/smoke/bin/pip install -q --no-index --find-links /wheels 'tflite-runtime==2.14.0' 'numpy<2'
    step "frame-daemon score on the demo photos (tflite-runtime)"
    score tflite-runtime
    ran="tflite-runtime 2.14.0 (ai-edge-litert crashed under QEMU)"
fi

step "unit tests that need no servers, on arm64 (emulated)"
start=$SECONDS
in_root /usr/bin/env FRAME_DAEMON_RUNTIME="${ran%% *}" sh -c 'cd /smoke && /opt/smoke/bin/python -m pytest -q -rs -p no:cacheprovider \
    tests/test_mood.py tests/test_photo.py tests/test_model.py tests/test_score_cli.py \
    tests/test_follow.py tests/test_tags.py tests/test_analyse.py'
echo
echo "pi_smoke: wheel installed and scored on arm64 under QEMU with $ran; unit tests passed in $((SECONDS - start)) s (emulated)"
