#!/usr/bin/env bash
# Install frame-daemon as a systemd service on Raspberry Pi OS Bookworm or any Debian 12+ (root):
#   sudo scripts/install.sh [--wheel FILE] [--with-mpd] [--with-mosquitto]   # a frame: install or upgrade
#   sudo scripts/install.sh --server [--mpd-conf FILE] [--wheel FILE] [--with-mpd]  # the music server
#   sudo scripts/install.sh --uninstall [--purge]                            # remove it all
#
# Install: a system user `frame-daemon`; a venv in /opt/frame-daemon/.venv holding the package
# from its wheel (built from this checkout unless --wheel is given) with the TFLite runtime for
# the machine (ai-edge-litert on 64-bit, tflite-runtime 2.14 on 32-bit); the config
# /etc/frame-daemon/frame-daemon.toml (written only if absent: never overwritten); the systemd
# unit, enabled and started. --with-mpd / --with-mosquitto also install and enable those Debian
# packages. Running it again upgrades in place and restarts the service.
#
# --server: the server role instead, on the machine where MPD runs and the music files are. The
# same venv and user; the config /etc/frame-daemon/index.toml filled in from MPD's own config
# (/etc/mpd.conf unless --mpd-conf; written only if absent); frame-daemon-index.service with its
# timer (hourly) and a path unit (when MPD's database file changes), enabled. No frame service, no
# MQTT, no photos. mpd.conf is only read: what it lacks (a sticker_file) is said, never edited.
#
# Uninstall: removes the frame from Home Assistant (clears its retained discovery and state on
# the broker), stops and removes the services of both roles, the venv, the state folders and the
# user. The configs are kept unless --purge. MPD, mosquitto and your music are left alone.
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
# The server role: `frame-daemon index` run by a timer and a path unit, beside MPD.
INDEX_SERVICE=frame-daemon-index.service
INDEX_TRIGGERS=(frame-daemon-index.timer frame-daemon-index.path)
INDEX_CONF=$CONF_DIR/index.toml
INDEX_STATE_DIR=/var/lib/frame-daemon-index
UNIT_DIR=/etc/systemd/system

say() { echo "install.sh: $*"; }
die() { echo "install.sh: $*" >&2; exit 1; }
usage() { sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

action=install role=frame wheel="" built_dir="" with_mpd=0 with_mosquitto=0 purge=0
mpd_conf=/etc/mpd.conf
all_args="$*"
while [ $# -gt 0 ]; do
    case "$1" in
        --wheel) [ $# -ge 2 ] || die "--wheel needs a file"; wheel=$(realpath "$2"); shift ;;
        --server) role=server ;;
        --mpd-conf) [ $# -ge 2 ] || die "--mpd-conf needs a file"; mpd_conf=$(realpath -m "$2"); shift ;;
        --with-mpd) with_mpd=1 ;;
        --with-mosquitto) with_mosquitto=1 ;;
        --uninstall|--remove) action=uninstall ;;
        --purge) purge=1 ;;
        -h|--help) usage 0 ;;
        *) echo "install.sh: unknown option $1" >&2; usage 2 ;;
    esac
    shift
done
if [ "$action" = uninstall ] && [ "$role" = server ]; then
    die "--uninstall removes both roles, the frame's and the server's: run it without --server"
fi
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
    # Both roles: the frame's service, and the server role's triggers before its service. One
    # at a time, those installed: systemctl refuses a whole list for one unit it does not know.
    local unit now=()
    systemd_up && now=(--now)
    for unit in "$UNIT_NAME" "${INDEX_TRIGGERS[@]}" "$INDEX_SERVICE"; do
        if [ -e "$UNIT_DIR/$unit" ]; then systemctl disable "${now[@]}" "$unit" 2>/dev/null || true; fi
        rm -f "$UNIT_DIR/$unit"
        if [ "$purge" -eq 1 ]; then rm -rf "$UNIT_DIR/$unit.d"; fi  # drop-ins (systemctl edit) are config
    done
    systemd_up && systemctl daemon-reload
    rm -rf "$PREFIX" "$STATE_DIR" "$INDEX_STATE_DIR"
    if [ "$purge" -eq 1 ]; then
        rm -rf "$CONF_DIR"
    fi
    if id "$USER_NAME" >/dev/null 2>&1; then
        userdel "$USER_NAME"
    fi
    local gone="$PREFIX, the units ($UNIT_NAME, frame-daemon-index.*), $STATE_DIR, $INDEX_STATE_DIR"
    if [ "$purge" -eq 1 ]; then
        say "removed $gone, $CONF_DIR and the user $USER_NAME"
    else
        say "removed $gone and the user $USER_NAME; kept $CONF_DIR (--purge removes it)"
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

install_package() {
    # The venv and the package, shared by both roles; sets `upgrading` when there was one.
    local arch
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
}

write_config() {  # write_config FILE: its text on stdin; group-readable by the service only
    cat > "$1.new"
    chgrp "$USER_NAME" "$1.new"
    chmod 0640 "$1.new"
    mv "$1.new" "$1"
}

start_units() {  # start_units UNIT...: enable (and start, with systemd up) them and the extras
    local units=("$@")
    [ "$with_mpd" -eq 1 ] && units+=(mpd.service)
    [ "$with_mosquitto" -eq 1 ] && units+=(mosquitto.service)
    if systemd_up; then
        systemctl daemon-reload
        systemctl enable --now "${units[@]}"
        if [ "$upgrading" -eq 1 ]; then
            # The new code in every service of ours that runs (the other role's too).
            for unit in "$UNIT_NAME" "$INDEX_SERVICE"; do
                if [ -e "$UNIT_DIR/$unit" ]; then systemctl try-restart "$unit"; fi
            done
        fi
    else
        systemctl enable "${units[@]}"
        say "systemd is not running here: ${units[*]} enabled, they start at the next boot"
    fi
}

install_frame() {
    # systemd makes it too (StateDirectory=); made here so doctor and index work before a start.
    install -d -m 0750 -o "$USER_NAME" -g "$USER_NAME" "$STATE_DIR"
    if [ ! -e "$CONF" ]; then
        # The example config comes from the installed package: every key, its default, its help;
        # the state folder is the unit's StateDirectory, so manual runs (doctor, index) agree.
        "$VENV/bin/python" -m frame_daemon.config \
            | sed "s|^directory = \"\"|directory = \"$STATE_DIR\"|" | write_config "$CONF"
        say "wrote $CONF: set source.path, [mpd] and [mqtt], then: systemctl restart $UNIT_NAME"
    else
        say "kept your $CONF"
    fi
    "$VENV/bin/frame-daemon" check-config --config "$CONF"

    install -m 0644 "$SRC/systemd/$UNIT_NAME" "$UNIT"
    start_units "$UNIT_NAME"
    systemd_up && { systemctl --no-pager --lines=0 status "$UNIT_NAME" || true; }
    say "$([ "$upgrading" -eq 1 ] && echo upgraded || echo installed) $("$VENV/bin/frame-daemon" --version);" \
        "check it with: sudo -u $USER_NAME $VENV/bin/frame-daemon doctor --config $CONF"
}

install_server() {
    local role_py=("$VENV/bin/python" -m frame_daemon.server_role --mpd-conf "$mpd_conf")
    install -d -m 0750 -o "$USER_NAME" -g "$USER_NAME" "$INDEX_STATE_DIR"
    if [ ! -e "$INDEX_CONF" ]; then
        "${role_py[@]}" config --state-dir "$INDEX_STATE_DIR" | write_config "$INDEX_CONF"
        say "wrote $INDEX_CONF$([ -r "$mpd_conf" ] && echo " from $mpd_conf")"
    else
        say "kept your $INDEX_CONF"
    fi
    "$VENV/bin/frame-daemon" check-config --config "$INDEX_CONF"

    install -m 0644 "$SRC/systemd/$INDEX_SERVICE" "$SRC/systemd/frame-daemon-index.timer" "$UNIT_DIR/"
    local triggers=(frame-daemon-index.timer) db_file when="hourly"
    db_file=$("${role_py[@]}" db-file)
    if [ -n "$db_file" ]; then
        # The path unit watches MPD's own database file ('%' is a specifier in unit files).
        local escaped
        escaped=$(printf '%s' "$db_file" | sed -e 's/%/%%/g' -e 's/[\\&|]/\\&/g')
        sed "s|^PathChanged=.*|PathChanged=$escaped|" "$SRC/systemd/frame-daemon-index.path" \
            > "$UNIT_DIR/frame-daemon-index.path"
        chmod 0644 "$UNIT_DIR/frame-daemon-index.path"
        triggers+=(frame-daemon-index.path)
        when="hourly and when MPD's database ($db_file) changes"
    else
        systemctl disable frame-daemon-index.path 2>/dev/null || true
        rm -f "$UNIT_DIR/frame-daemon-index.path"
        say "no MPD database file named in $mpd_conf: new music waits for the hourly run"
    fi
    start_units "${triggers[@]}"

    # What the role still needs, said rather than done: mpd.conf is the user's.
    local steps music socket=()
    # Debian's mpd.socket listens on every address and MPD then ignores its bind_to_address.
    if systemctl is-enabled --quiet mpd.socket 2>/dev/null; then socket=(--socket-activated); fi
    steps=$("${role_py[@]}" check --config "$INDEX_CONF" "${socket[@]}")
    music=$("$VENV/bin/python" -c 'import sys; from frame_daemon.config import load_config
print(load_config(sys.argv[1]).mpd.music_directory)' "$INDEX_CONF")
    if [ -d "$music" ] && ! runuser -u "$USER_NAME" -- test -r "$music" -a -x "$music"; then
        steps+=$'\n'"$music is not readable by the user $USER_NAME: make it world-readable, or let"
        steps+=" the service join its group (sudo systemctl edit $INDEX_SERVICE: [Service] SupplementaryGroups=GROUP)"
    fi
    if [ -d "$music" ] && ! command -v ffmpeg >/dev/null; then
        steps+=$'\n'"no ffmpeg: AAC/M4A, ALAC and WMA files are not analysed (sudo apt install ffmpeg)"
    fi
    while IFS= read -r step; do
        if [ -n "$step" ]; then say "to do: $step"; fi
    done <<< "$steps"
    say "$([ "$upgrading" -eq 1 ] && echo upgraded || echo installed) $("$VENV/bin/frame-daemon" --version)," \
        "the server role: $INDEX_SERVICE analyses new music $when (the first run starts" \
        "within minutes; now: sudo systemctl start --no-block $INDEX_SERVICE)"
    say "follow it: journalctl -fu $INDEX_SERVICE; check it: sudo -u $USER_NAME $VENV/bin/frame-daemon" \
        "doctor --server --config $INDEX_CONF"
    say "on each frame: mpd.host = this machine, mpd.music_directory empty (README, \"Music on a NAS\")"
}

do_install() {
    local upgrading=0
    install_package
    "install_$role"
}

"do_$action"
