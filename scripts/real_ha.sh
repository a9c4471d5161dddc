#!/usr/bin/env bash
# A real Home Assistant (the `homeassistant` package from PyPI) on this machine, connected to a
# broker you start, so discovery and commands are checked the way Home Assistant reads them. Used by
# the opt-in test tests/test_real_ha.py (FRAME_DAEMON_REAL_HA=DIR) and by hand:
#   scripts/real_ha.sh setup DIR      once (minutes): Home Assistant in a venv under DIR, started once
#   scripts/real_ha.sh run DIR --broker-port PORT [--out FILE] [--expect ID,ID] [--expect-timeout S]
#                                     start it on 127.0.0.1 with a fresh config, add the MQTT
#                                     integration for the broker, wait until the expected entities
#                                     are available, write a snapshot (JSON); it keeps running
#   scripts/real_ha.sh call DIR DOMAIN SERVICE JSON   call a service, e.g.
#                                     call DIR button press '{"entity_id": "button.frame_next"}'
#   scripts/real_ha.sh snapshot DIR [--out FILE] [--json]   every MQTT entity, its state and device
#   scripts/real_ha.sh stop DIR
# Home Assistant 2026.11 needs Python 3.14. A python3.14 on PATH (or FRAME_DAEMON_HA_PYTHON) gets
# the venv directly; otherwise setup builds a minimal Debian (forky, whose python3 is 3.14) root in
# DIR/root with debootstrap and runs Home Assistant there (needs root, debootstrap and a Debian
# mirror: HA_MIRROR, default deb.debian.org). HA_VERSION picks another release.
# Home Assistant listens on 127.0.0.1 only: `run` stops it if it opens a socket anywhere else.
set -euo pipefail
usage() { sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"; exit "${1:-0}"; }
case "${1:-}" in
    -h|--help|"") usage 0 ;;
    setup|run|call|snapshot|stop) ;;
    *) echo "real_ha.sh: unknown verb $1" >&2; usage 2 >&2 ;;
esac
VERB=$1
[ $# -ge 2 ] || { echo "real_ha.sh: $VERB needs a DIR" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")/.." && pwd)
CLIENT_SRC=$HERE/scripts/real_ha_client.py
PY=$HERE/.venv/bin/python  # the client's API half runs here (standard library and psutil)
[ -x "$PY" ] || PY=python3
mkdir -p "$2"
DIR=$(cd "$2" && pwd)
shift 2
STATE=$DIR/state
mkdir -p "$STATE"

say() { echo "real_ha.sh: $*" >&2; }
die() { echo "real_ha.sh: $*" >&2; exit 1; }

# --- where Home Assistant lives: this machine's python3.14, or a Debian root ----------------------
# IN is its home as Home Assistant sees it, OUT the same folder as seen from here.
MODE=$(cat "$STATE/mode" 2>/dev/null || true)
if [ -z "$MODE" ]; then
    HOST_PY=${FRAME_DAEMON_HA_PYTHON:-$(command -v python3.14 || true)}
    if [ -n "$HOST_PY" ]; then MODE=host; else MODE=root; fi
fi
ROOT=$DIR/root
if [ "$MODE" = host ]; then
    IN=$DIR/ha OUT=$DIR/ha
    HA_RUN=(env -i HOME="$IN" LANG=C.UTF-8 TZ=UTC PATH="$IN/venv/bin:/usr/bin:/bin")
else
    IN=/opt/ha OUT=$ROOT/opt/ha
    HA_RUN=(chroot "$ROOT" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TZ=UTC
            PATH="$IN/venv/bin:/usr/sbin:/usr/bin:/sbin:/bin" SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt)
fi
ha_exec() { "${HA_RUN[@]}" "$@"; }
HA_VERSION=${HA_VERSION:-$(cat "$STATE/version" 2>/dev/null || echo 2026.11.0)}

mounted() { grep -q " $1 " /proc/mounts; }
mount_root() {
    [ "$MODE" = root ] || return 0
    mounted "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
    mounted "$ROOT/sys" || mount -t sysfs sysfs "$ROOT/sys"
    mounted "$ROOT/dev" || mount --bind /dev "$ROOT/dev"
    mounted "$ROOT/dev/shm" || mount -t tmpfs -o size=128m tmpfs "$ROOT/dev/shm"
}
umount_root() {
    [ "$MODE" = root ] || return 0
    local m
    for m in dev/shm dev sys proc; do
        if mounted "$ROOT/$m"; then umount "$ROOT/$m" || umount -l "$ROOT/$m"; fi
    done
}
client_ha() {  # the client's half that imports homeassistant, run by Home Assistant's python
    cp "$CLIENT_SRC" "$OUT/real_ha_client.py"
    ha_exec "$IN/venv/bin/python" "$IN/real_ha_client.py" "$@"
}
client() { "$PY" "$CLIENT_SRC" --config "$OUT/config" --state "$STATE" "$@"; }

ha_pid() {  # the pid of our running Home Assistant, if any
    local pid
    pid=$(cat "$STATE/pid" 2>/dev/null) || return 1
    tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "-m homeassistant --config $IN/config" \
        || return 1
    echo "$pid"
}

gone() { [ ! -e "/proc/$1" ] || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]; }

stop_ha() {
    local pid i
    if pid=$(ha_pid); then
        kill -TERM "$pid"
        for i in $(seq 1 120); do gone "$pid" && break; sleep 0.5; done
        gone "$pid" || { say "Home Assistant (pid $pid) ignored SIGTERM for 60 s"; kill -KILL "$pid"; }
        say "stopped Home Assistant (pid $pid)"
    fi
    rm -f "$STATE/pid" "$STATE/port"
}

start_ha() {  # PORT: a fresh config on 127.0.0.1:PORT, Home Assistant started in the background
    local port=$1
    mount_root
    ! ha_pid > /dev/null || die "Home Assistant is already running (pid $(ha_pid)); stop it first"
    rm -rf "$OUT/config" "$STATE/token.json"  # a new owner account comes with the new config
    mkdir -p "$OUT/config"
    client_ha prepare "$IN/config" "$port"
    # setsid: a session of its own, so a Ctrl-C meant for a test does not stop it half way; it
    # execs chroot, env and python in turn, so $! is Home Assistant's own pid.
    setsid "${HA_RUN[@]}" "$IN/venv/bin/python" -m homeassistant --config "$IN/config" \
        --log-file "$IN/config/home-assistant.log" > "$STATE/ha.out" 2>&1 < /dev/null &
    echo "$!" > "$STATE/pid"
    echo "$port" > "$STATE/port"
    for _ in $(seq 1 50); do ha_pid > /dev/null && break; sleep 0.1; done  # until python runs
    ha_pid > /dev/null || { tail -20 "$STATE/ha.out" >&2; die "Home Assistant did not start"; }
    say "started Home Assistant $HA_VERSION (pid $!) on 127.0.0.1:$port, config $OUT/config"
}

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

setup_root() {  # a minimal Debian forky root with python3.14, once
    [ "$(id -u)" -eq 0 ] || die "no python3.14 here (FRAME_DAEMON_HA_PYTHON), and a Debian root needs root"
    command -v debootstrap > /dev/null || die "no python3.14 here, and no debootstrap to make a Debian root"
    if [ ! -e "$ROOT/.complete" ]; then
        # A half-made root of ours is made again; anything else there is not ours to delete.
        [ ! -e "$ROOT" ] || [ -e "$ROOT/.real_ha" ] || die "$ROOT exists and was not made by real_ha.sh"
        umount_root
        rm -rf --one-file-system "$ROOT"
        mkdir -p "$ROOT"
        touch "$ROOT/.real_ha"
        local mirror=${HA_MIRROR:-http://deb.debian.org/debian}
        local script=/usr/share/debootstrap/scripts/forky
        [ -e "$script" ] || script=/usr/share/debootstrap/scripts/sid  # older debootstrap: same steps
        say "debootstrap forky from $mirror into $ROOT (minutes; log: $STATE/debootstrap.log)"
        debootstrap --variant=minbase --include=python3,python3-venv,python3-dev,build-essential,ca-certificates \
            forky "$ROOT" "$mirror" "$script" > "$STATE/debootstrap.log" 2>&1 \
            || { tail -20 "$STATE/debootstrap.log" >&2; die "debootstrap failed"; }
        touch "$ROOT/.complete"
    fi
    cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
    # A proxy's CA certificates, if this machine trusts any, so pip works inside too.
    if compgen -G "/usr/local/share/ca-certificates/*.crt" > /dev/null; then
        mkdir -p "$ROOT/usr/local/share/ca-certificates"
        cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
        ha_exec update-ca-certificates > /dev/null
    fi
}

cmd_setup() {
    [ $# -eq 0 ] || die "setup takes no options"
    local t0=$SECONDS
    if [ "$MODE" = root ]; then setup_root; mount_root; fi
    echo "$MODE" > "$STATE/mode"
    mkdir -p "$OUT"
    if [ ! -e "$OUT/venv/.ha-$HA_VERSION" ]; then
        say "a venv with homeassistant==$HA_VERSION (minutes; log: $STATE/pip.log)"
        if [ "$MODE" = host ]; then
            "${FRAME_DAEMON_HA_PYTHON:-python3.14}" -m venv "$OUT/venv"
        else
            ha_exec python3 -m venv "$IN/venv"
        fi
        ha_exec "$IN/venv/bin/pip" install -q --upgrade pip > "$STATE/pip.log" 2>&1
        ha_exec "$IN/venv/bin/pip" install "homeassistant==$HA_VERSION" >> "$STATE/pip.log" 2>&1 \
            || { tail -30 "$STATE/pip.log" >&2; die "pip install homeassistant==$HA_VERSION failed"; }
        # What the integrations we load need (MQTT's paho-mqtt, the frontend-less HTTP stack...),
        # installed now with Home Assistant's own pins, rather than by Home Assistant at each start.
        client_ha requirements > "$OUT/requirements.txt"
        ha_exec "$IN/venv/bin/pip" install -r "$IN/requirements.txt" -c "$(client_ha constraints)" \
            >> "$STATE/pip.log" 2>&1 || { tail -30 "$STATE/pip.log" >&2; die "pip install of the integrations' requirements failed"; }
        touch "$OUT/venv/.ha-$HA_VERSION"
    fi
    echo "$HA_VERSION" > "$STATE/version"
    say "a first start, to check it (and let it compile)"
    local port; port=$(free_port)
    start_ha "$port"
    if ! client up --port "$port" --pid "$(ha_pid)" --timeout 600; then
        tail -30 "$STATE/ha.out" "$OUT/config/home-assistant.log" >&2 || true
        stop_ha; umount_root
        die "Home Assistant did not come up"
    fi
    stop_ha; umount_root
    say "set up in $((SECONDS - t0)) s: homeassistant $HA_VERSION ($MODE) in $DIR"
}

cmd_run() {
    local broker="" out="" expect="" expect_timeout=60
    while [ $# -gt 0 ]; do
        case "$1" in
            --broker-port) broker=$2; shift 2 ;;
            --out) out=$2; shift 2 ;;
            --expect) expect=$2; shift 2 ;;
            --expect-timeout) expect_timeout=$2; shift 2 ;;
            *) die "run: unknown option $1" ;;
        esac
    done
    [ -n "$broker" ] || die "run: --broker-port PORT is required"
    [ -e "$OUT/venv/.ha-$HA_VERSION" ] || die "run 'scripts/real_ha.sh setup $DIR' first"
    local port; port=$(free_port)
    start_ha "$port"
    local rc=0
    client up --port "$port" --pid "$(ha_pid)" --broker-port "$broker" --expect "$expect" \
        --expect-timeout "$expect_timeout" --out "${out:-$STATE/snapshot.json}" || rc=$?
    if [ $rc -eq 5 ]; then stop_ha; umount_root; die "stopped Home Assistant: it opened a socket outside 127.0.0.1"; fi
    [ $rc -eq 0 ] || tail -20 "$OUT/config/home-assistant.log" >&2 || true
    return $rc
}

running_port() {
    ha_pid > /dev/null || die "Home Assistant is not running for $DIR (scripts/real_ha.sh run $DIR --broker-port PORT)"
    cat "$STATE/port"
}

case "$VERB" in
    setup) cmd_setup "$@" ;;
    run) cmd_run "$@" ;;
    call) [ $# -ge 2 ] || die "usage: call DIR DOMAIN SERVICE [JSON]"
          client call --port "$(running_port)" "$1" "$2" "${3:-{\}}" ;;
    snapshot) client snapshot --port "$(running_port)" "$@" ;;
    stop) stop_ha; umount_root ;;
esac
