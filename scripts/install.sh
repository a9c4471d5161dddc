#!/usr/bin/env bash
# Install frame-daemon as a systemd service on Raspberry Pi OS Bookworm or any Debian 12+ (root):
#   sudo scripts/install.sh [--wheel FILE] [--with-mpd] [--with-mosquitto]   # install or upgrade
#   sudo scripts/install.sh --uninstall [--purge]                            # remove it all
#
# Install: a system user `frame-daemon`; a venv in /opt/frame-daemon/.venv holding the package
# from its wheel (built from this checkout unless --wheel is given) with the TFLite runtime for
# the machine (ai-edge-litert on 64-bit, tflite-runtime 2.14 on 32-bit); the config
# /etc/frame-daemon/frame-daemon.toml (written only if absent: never overwritten); the systemd
# unit, enabled and started. --with-mpd / --with-mosquitto also install and enable those Debian
# packages. Running it again upgrades in place and restarts the service.
#
# Uninstall: removes the frame from Home Assistant (clears its retained discovery and state on
# the broker), stops and removes the service, the venv, the state folder and the user. The
# config is kept unless --purge. MPD, mosquitto and your music are left alone.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=/opt/frame-daemon
VENV=$PREFIX/.venv
UNIT_NAME=frame-daemon.service
UNIT=/etc/systemd/system/$UNIT_NAME
CONF_DIR=/etc/frame-daemon
CONF=$CONF_DIR/frame-daemon.toml
STATE_DIR=/var/lib/frame-daemon
USER_NAME=frame-daemon

say() { echo "install.sh: $*"; }
die() { echo "install.sh: $*" >&2; exit 1; }
usage() { sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

action=install wheel="" built_dir="" with_mpd=0 with_mosquitto=0 purge=0
all_args="$*"
while [ $# -gt 0 ]; do
    case "$1" in
        --wheel) [ $# -ge 2 ] || die "--wheel needs a file"; wheel=$(realpath "$2"); shift ;;
        --with-mpd) with_mpd=1 ;;
        --with-mosquitto) with_mosquitto=1 ;;
        --uninstall|--remove) action=uninstall ;;
        --purge) purge=1 ;;
        -h|--help) usage 0 ;;
        *) echo "install.sh: unknown option $1" >&2; usage 2 ;;
    esac
    shift
done
[ "$(id -u)" -eq 0 ] || die "run as root (sudo $0 $all_args)"

# systemd may not be running (an image being prepared in a chroot): then the unit is enabled
# for the next boot but not started.
systemd_up() { [ -d /run/systemd/system ]; }

apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    say "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

do_uninstall() {
    if [ -x "$VENV/bin/frame-daemon" ] && [ -e "$CONF" ]; then
        # No ghost device in Home Assistant: clear the retained discovery and state.
        "$VENV/bin/frame-daemon" ha-remove --config "$CONF" \
            || say "could not reach the MQTT broker: remove the device in Home Assistant by hand"
    fi
    if systemd_up; then
        systemctl disable --now "$UNIT_NAME" 2>/dev/null || true
    else
        systemctl disable "$UNIT_NAME" 2>/dev/null || true
    fi
    rm -f "$UNIT"
    systemd_up && systemctl daemon-reload
    rm -rf "$PREFIX" "$STATE_DIR"
    if [ "$purge" -eq 1 ]; then
        rm -rf "$CONF_DIR"
    fi
    if id "$USER_NAME" >/dev/null 2>&1; then
        userdel "$USER_NAME"
    fi
    if [ "$purge" -eq 1 ]; then
        say "removed $PREFIX, $UNIT, $STATE_DIR, $CONF_DIR and the user $USER_NAME"
    else
        say "removed $PREFIX, $UNIT, $STATE_DIR and the user $USER_NAME; kept $CONF (--purge removes it)"
    fi
}

build_wheel() {
    # The wheel of this checkout, built in a temporary folder (removed at exit).
    built_dir=$(mktemp -d)
    trap 'rm -rf "$built_dir"' EXIT
    say "building the wheel from $SRC"
    "$VENV/bin/python" -m pip wheel -q --no-deps -w "$built_dir" "$SRC" >/dev/null
    wheel=$(ls "$built_dir"/frame_daemon-*.whl)
}

do_install() {
    local arch upgrading=0
    arch=$(uname -m)
    python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "needs Python 3.11 or newer (Debian 12 / Raspberry Pi OS Bookworm)"
    local debs=(python3-venv python3-pip)
    # 32-bit Pi OS: soundfile's armv7l wheel has no libsndfile inside; take Debian's.
    case "$arch" in armv7l|armv6l) debs+=(libsndfile1) ;; esac
    [ "$with_mpd" -eq 1 ] && debs+=(mpd)
    [ "$with_mosquitto" -eq 1 ] && debs+=(mosquitto)
    apt_install "${debs[@]}"
    case "$arch" in
        armv7l|armv6l)
            # PyPI has no armv7l wheels of numpy and pillow; Pi OS's pip reads piwheels for them.
            export PIP_EXTRA_INDEX_URL="${PIP_EXTRA_INDEX_URL:-https://www.piwheels.org/simple}" ;;
    esac

    id "$USER_NAME" >/dev/null 2>&1 || useradd --system --home-dir "$STATE_DIR" --no-create-home \
        --shell /usr/sbin/nologin "$USER_NAME"
    # systemd makes it too (StateDirectory=); made here so doctor and index work before a start.
    install -d -m 0750 -o "$USER_NAME" -g "$USER_NAME" "$STATE_DIR"
    [ -x "$VENV/bin/frame-daemon" ] && upgrading=1
    mkdir -p "$PREFIX"
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    [ -n "$wheel" ] || build_wheel
    [ -f "$wheel" ] || die "$wheel: no such wheel"
    say "installing $(basename "$wheel") into $VENV ($arch)"
    # --force-reinstall --no-deps replaces the package even when the version did not change;
    # the second call adds any dependency that is new or missing.
    "$VENV/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps "$wheel"
    "$VENV/bin/pip" install -q --disable-pip-version-check "$wheel"

    install -d -m 0755 "$CONF_DIR"
    if [ ! -e "$CONF" ]; then
        # The example config comes from the installed package: every key, its default, its help;
        # the state folder is the unit's StateDirectory, so manual runs (doctor, index) agree.
        "$VENV/bin/python" -m frame_daemon.config \
            | sed "s|^directory = \"\"|directory = \"$STATE_DIR\"|" > "$CONF.new"
        chgrp "$USER_NAME" "$CONF.new"
        chmod 0640 "$CONF.new"
        mv "$CONF.new" "$CONF"
        say "wrote $CONF: set source.path, [mpd] and [mqtt], then: systemctl restart $UNIT_NAME"
    else
        say "kept your $CONF"
    fi
    "$VENV/bin/frame-daemon" check-config --config "$CONF"

    install -m 0644 "$SRC/systemd/$UNIT_NAME" "$UNIT"
    local services=("$UNIT_NAME")
    [ "$with_mpd" -eq 1 ] && services+=(mpd.service)
    [ "$with_mosquitto" -eq 1 ] && services+=(mosquitto.service)
    if systemd_up; then
        systemctl daemon-reload
        systemctl enable --now "${services[@]}"
        [ "$upgrading" -eq 1 ] && systemctl restart "$UNIT_NAME"
        systemctl --no-pager --lines=0 status "$UNIT_NAME" || true
    else
        systemctl enable "${services[@]}"
        say "systemd is not running here: ${services[*]} enabled, they start at the next boot"
    fi
    say "$([ "$upgrading" -eq 1 ] && echo upgraded || echo installed) $("$VENV/bin/frame-daemon" --version);" \
        "check it with: sudo -u $USER_NAME $VENV/bin/frame-daemon doctor --config $CONF"
}

"do_$action"
