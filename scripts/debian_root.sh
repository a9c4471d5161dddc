#!/usr/bin/env bash
# Make a fresh, minimal Debian 12 (Bookworm) root in DIR for the install and arm64 checks:
#   scripts/debian_root.sh amd64 build/roots/bookworm-amd64
#   scripts/debian_root.sh arm64 build/roots/bookworm-arm64   # foreign: runs under qemu-user-static
# The first run debootstraps (minutes) and keeps a pristine copy as DIR.tar; later runs unpack
# that copy, so every check starts from an untouched root. Needs root, debootstrap (and
# qemu-user-static for a foreign architecture) and a Debian mirror (MIRROR, default
# deb.debian.org). Python 3, venv and pip come from Debian, as on Raspberry Pi OS.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 ARCH DIR" >&2; exit 2; }
ARCH=$1
DIR=$(realpath -m "$2")
MIRROR=${MIRROR:-http://deb.debian.org/debian}
PACKAGES=python3,python3-venv,python3-pip,ca-certificates,systemd,procps
[ "$(id -u)" -eq 0 ] || { echo "debian_root.sh: run as root" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "debian_root.sh: apt-get install debootstrap" >&2; exit 1; }

host_arch=$(dpkg --print-architecture)
if [ "$ARCH" != "$host_arch" ]; then
    # A foreign root: its binaries run through qemu-user-static, registered with binfmt_misc.
    command -v qemu-aarch64-static >/dev/null || {
        echo "debian_root.sh: apt-get install qemu-user-static binfmt-support" >&2; exit 1; }
    mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
    update-binfmts --enable qemu-arm >/dev/null 2>&1 || true
fi

unmount_all() {
    # Everything this script or a check mounted below DIR, deepest first.
    { grep -o " $DIR/[^ ]*" /proc/mounts || true; } | sort -r | while read -r m; do umount -l "$m" || true; done
}

if [ -e "$DIR" ]; then
    unmount_all
    rm -rf --one-file-system "$DIR"
fi
mkdir -p "$(dirname "$DIR")"
if [ -f "$DIR.tar" ]; then
    mkdir -p "$DIR"
    tar -C "$DIR" -xpf "$DIR.tar"
    echo "debian_root.sh: $DIR unpacked from $DIR.tar"
    exit 0
fi

start=$(date +%s)
if [ "$ARCH" = "$host_arch" ]; then
    debootstrap --variant=minbase --include="$PACKAGES" bookworm "$DIR" "$MIRROR"
else
    debootstrap --arch="$ARCH" --foreign --variant=minbase --include="$PACKAGES" bookworm "$DIR" "$MIRROR"
    cp /usr/bin/qemu-aarch64-static /usr/bin/qemu-arm-static "$DIR/usr/bin/"
    chroot "$DIR" /debootstrap/debootstrap --second-stage
fi
apt_clean() { rm -rf "$DIR"/var/cache/apt/archives/*.deb "$DIR"/var/lib/apt/lists/*; }
apt_clean
tar -C "$DIR" -cpf "$DIR.tar" .
echo "debian_root.sh: $ARCH root in $DIR after $(( $(date +%s) - start )) s (pristine copy: $DIR.tar)"
