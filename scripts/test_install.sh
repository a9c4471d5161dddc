#!/usr/bin/env bash
# Test scripts/install.sh the way a user runs it, in a fresh Debian 12 root (chroot), as root:
#   scripts/test_install.sh [ROOT_DIR]        (default build/roots/bookworm-amd64)
# Minutes: not part of scripts/test.sh. Needs root, debootstrap and network (Debian mirror, PyPI).
#
# 1. a fresh root from scripts/debian_root.sh; this checkout copied to /root/frame-daemon in it;
# 2. install.sh --with-mpd --with-mosquitto (timed): user, venv from the wheel (no editable
#    install), config, enabled units; `frame-daemon score` on a photo;
# 3. the installed daemon runs against the root's own mosquitto and MPD (started by hand: no
#    systemd in a chroot) and announces itself to Home Assistant; `doctor` on that working setup,
#    then on a broken one;
# 4. a second install.sh (timed) upgrades in place and keeps the edited config;
# 5. install.sh --uninstall removes everything and clears the Home Assistant device on the
#    broker; --purge removes the config too;
# 6. the server role: install.sh --server --wheel FILE beside a user's mpd.conf without a
#    sticker_file, MPD on loopback only and a music folder the service cannot read (each said;
#    mpd.conf never edited) installs the index service, timer and path unit and no frame
#    service, with a config read from mpd.conf; once the user adds the sticker_file, the unit's
#    own command, run as the service user, shares every song's analysis through MPD; `doctor
#    --server` passes; a second run, --with-mpd, upgrades and keeps the edited config, and with
#    MPD's socket unit on asks nothing about bind_to_address; --uninstall removes the role,
#    --purge its config.
set -euo pipefail
usage() { sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"; exit "${1:-0}"; }
case "${1:-}" in
    -h|--help) usage 0 ;;
    -*) echo "test_install.sh: unknown option $1" >&2; usage 2 >&2 ;;
esac
[ $# -le 1 ] || { echo "test_install.sh: one ROOT_DIR at most" >&2; usage 2 >&2; }
cd "$(dirname "$0")/.."
HERE=$PWD
ROOT_DIR=$(realpath -m "${1:-build/roots/bookworm-amd64}")
PY=$HERE/.venv/bin/python
[ "$(id -u)" -eq 0 ] || { echo "test_install.sh: run as root" >&2; exit 1; }
[ -x "$PY" ] || scripts/setup.sh

step() { echo; echo "== $*"; }
fail() { echo "test_install.sh: FAILED: $*" >&2; exit 1; }
in_root() {
    chroot "$ROOT_DIR" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
        PIP_CERT=/etc/ssl/certs/ca-certificates.crt "$@"
}
free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
retained() {  # the retained payload on topic $2 of the broker at port $1, or nothing
    "$PY" - "$1" "$2" <<'EOF'
import sys, threading
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
got, done = [], threading.Event()
c = paho.Client(CallbackAPIVersion.VERSION2)
c.on_connect = lambda c, u, f, rc, p: c.subscribe(sys.argv[2])
c.on_message = lambda c, u, m: (got.append(m.payload), done.set())
try:
    c.connect("127.0.0.1", int(sys.argv[1]))
except OSError:
    sys.exit()  # not up (yet): nothing retained
c.loop_start()
done.wait(3)  # a retained message arrives right after subscribing
c.loop_stop()
print(got[0].decode() if got and got[0] else "")
EOF
}
cleanup() {
    for pid_file in "$ROOT_DIR/run/mosquitto/test.pid" "$ROOT_DIR/run/test-mpd.pid" "$ROOT_DIR/run/test-daemon.pid"; do
        [ -s "$pid_file" ] && kill "$(cat "$pid_file")" 2>/dev/null || true
    done
    sleep 1
    { grep -o " $ROOT_DIR/[^ ]*" /proc/mounts || true; } | sort -r | while read -r m; do umount -l "$m" || true; done
}
trap cleanup EXIT

step "fresh Debian 12 root in $ROOT_DIR"
scripts/debian_root.sh amd64 "$ROOT_DIR"
mount -t proc proc "$ROOT_DIR/proc"
mount --rbind /sys "$ROOT_DIR/sys"
mount --rbind /dev "$ROOT_DIR/dev"
cp /etc/resolv.conf "$ROOT_DIR/etc/resolv.conf"
[ -e "$ROOT_DIR/etc/hosts" ] || printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost\n' > "$ROOT_DIR/etc/hosts"
# This machine may reach PyPI through a TLS-inspecting proxy: the root trusts what it trusts.
cp /usr/local/share/ca-certificates/*.crt "$ROOT_DIR/usr/local/share/ca-certificates/" 2>/dev/null || true
in_root update-ca-certificates >/dev/null 2>&1
# The checkout as a user would have it after git clone (tracked and new files, no venvs or builds).
mkdir -p "$ROOT_DIR/root/frame-daemon"
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$ROOT_DIR/root/frame-daemon"

step "install.sh --with-mpd --with-mosquitto (first install, builds the wheel from the checkout)"
start=$SECONDS
in_root /root/frame-daemon/scripts/install.sh --with-mpd --with-mosquitto
first_s=$((SECONDS - start))
in_root id frame-daemon
[ -f "$ROOT_DIR/etc/frame-daemon/frame-daemon.toml" ] || fail "no config"
mode=$(in_root stat -c '%a %G' /etc/frame-daemon/frame-daemon.toml)
[ "$mode" = "640 frame-daemon" ] || fail "config mode is $mode"
for unit in frame-daemon mpd mosquitto; do
    [ -L "$ROOT_DIR/etc/systemd/system/multi-user.target.wants/$unit.service" ] || fail "$unit not enabled"
done
site=$(in_root /opt/frame-daemon/.venv/bin/python -c 'import frame_daemon, sys; print(frame_daemon.__file__)')
echo "package at $site"
case "$site" in /opt/frame-daemon/.venv/lib/python3*/site-packages/*) ;; *) fail "not installed from a wheel" ;; esac
ls "$ROOT_DIR"/opt/frame-daemon/.venv/lib/python3*/site-packages/ | grep -q __editable__ && fail "editable install"
in_root /opt/frame-daemon/.venv/bin/pip list 2>/dev/null | grep -i -E "^(frame-daemon|ai-edge-litert|tflite-runtime|numpy) "

step "frame-daemon score, as the service user"
mkdir -p "$ROOT_DIR/srv/frame"
in_root /opt/frame-daemon/.venv/bin/python -c "
from PIL import Image
Image.radial_gradient('L').resize((640, 480)).convert('RGB').save('/srv/frame/current.jpg')"
chmod -R a+rX "$ROOT_DIR/srv/frame"
in_root runuser -u frame-daemon -- /opt/frame-daemon/.venv/bin/frame-daemon score /srv/frame/current.jpg

step "the installed daemon against the root's own mosquitto and MPD"
mqtt_port=$(free_port)
mpd_port=$(free_port)
cat > "$ROOT_DIR/etc/mosquitto-test.conf" <<EOF
listener $mqtt_port 127.0.0.1
allow_anonymous true
pid_file /run/mosquitto/test.pid
EOF
in_root install -d -o mosquitto /run/mosquitto  # it writes its pid file after dropping root
in_root mosquitto -d -c /etc/mosquitto-test.conf
cat > "$ROOT_DIR/etc/mpd-test.conf" <<EOF
music_directory "/var/lib/mpd/music"
db_file "/var/lib/mpd/test-database"
sticker_file "/var/lib/mpd/test-sticker.sql"
pid_file "/run/test-mpd.pid"
log_file "/var/lib/mpd/test.log"
bind_to_address "127.0.0.1"
port "$mpd_port"
audio_output {
  type "null"
  name "null"
}
EOF
in_root mpd /etc/mpd-test.conf
wait_port() { for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.2; done
              fail "nothing listens on port $1"; }
wait_port "$mqtt_port"
wait_port "$mpd_port"
conf=$ROOT_DIR/etc/frame-daemon/frame-daemon.toml
sed -i -e "s|^path = \"/run/frame/current.jpg\"|path = \"/srv/frame/current.jpg\"|" \
       -e "s|^port = 6600|port = $mpd_port|" -e "s|^port = 1883|port = $mqtt_port|" \
       -e "s|^music_directory = \"\"|music_directory = \"/var/lib/mpd/music\"|" "$conf"
in_root sh -c 'runuser -u frame-daemon -- /opt/frame-daemon/.venv/bin/frame-daemon run \
    --config /etc/frame-daemon/frame-daemon.toml > /run/test-daemon.log 2>&1 & echo $! > /run/test-daemon.pid'
for _ in $(seq 100); do
    [ -n "$(retained "$mqtt_port" homeassistant/device/frame/config)" ] && break
    sleep 0.3
done
[ -n "$(retained "$mqtt_port" homeassistant/device/frame/config)" ] || {
    cat "$ROOT_DIR/run/test-daemon.log"; fail "the daemon did not announce itself"; }
echo "Home Assistant discovery is on the broker; state: $(retained "$mqtt_port" frame-daemon/frame/state | cut -c1-160)"
kill "$(cat "$ROOT_DIR/run/test-daemon.pid")"

step "doctor on the working setup (as the service user)"
in_root runuser -u frame-daemon -- /opt/frame-daemon/.venv/bin/frame-daemon doctor \
    --config /etc/frame-daemon/frame-daemon.toml || fail "doctor on the working setup"
step "doctor on a broken setup (MPD stopped, photo folder gone)"
kill "$(cat "$ROOT_DIR/run/test-mpd.pid")"
mv "$ROOT_DIR/srv/frame" "$ROOT_DIR/srv/frame.away"
if in_root runuser -u frame-daemon -- /opt/frame-daemon/.venv/bin/frame-daemon doctor \
    --config /etc/frame-daemon/frame-daemon.toml; then fail "doctor passed a broken setup"; fi
mv "$ROOT_DIR/srv/frame.away" "$ROOT_DIR/srv/frame"

step "second install.sh: upgrade in place from a wheel, config kept"
echo "# edited by the user" >> "$conf"
before=$(sha256sum < "$conf")
wheel_dir=$(mktemp -d "$ROOT_DIR/root/wheel.XXXX")
"$PY" -m pip wheel -q --no-deps -w "$wheel_dir" "$HERE" >/dev/null
wheel=/root/$(basename "$wheel_dir")/$(basename "$wheel_dir"/frame_daemon-*.whl)
start=$SECONDS
in_root /root/frame-daemon/scripts/install.sh --wheel "$wheel" --with-mpd --with-mosquitto
second_s=$((SECONDS - start))
[ "$(sha256sum < "$conf")" = "$before" ] || fail "the second run changed the config"

step "install.sh --uninstall: everything goes, the Home Assistant device too"
in_root /root/frame-daemon/scripts/install.sh --uninstall
[ -z "$(retained "$mqtt_port" homeassistant/device/frame/config)" ] || fail "discovery still retained"
for gone in opt/frame-daemon etc/systemd/system/frame-daemon.service var/lib/frame-daemon \
            etc/systemd/system/multi-user.target.wants/frame-daemon.service; do
    [ ! -e "$ROOT_DIR/$gone" ] || fail "/$gone still there"
done
in_root id frame-daemon 2>/dev/null && fail "the user is still there"
[ -f "$conf" ] || fail "the config went without --purge"
in_root /root/frame-daemon/scripts/install.sh --uninstall --purge
[ ! -e "$ROOT_DIR/etc/frame-daemon" ] || fail "--purge kept the config"

step "install.sh --server: the server role, beside a user's MPD without a sticker_file"
mpd_conf=$ROOT_DIR/etc/mpd.conf
# The user's own mpd.conf: their music folder, port and database, and no sticker_file yet.
grep -v '^sticker_file' "$ROOT_DIR/etc/mpd-test.conf" > "$mpd_conf"
user_conf=$(sha256sum < "$mpd_conf")
music=$ROOT_DIR/var/lib/mpd/music
"$PY" -c 'import sys; from pathlib import Path; sys.path.insert(0, "tests")
from servers import LIBRARY, write_library
write_library(Path(sys.argv[1]), seconds=6.0, library=LIBRARY[:2])' "$music"
chmod -R a+rX "$music"
chmod 0700 "$music"  # and, for now, a music folder only MPD's owner reads
in_root systemctl disable --quiet mpd.socket  # and MPD listening where mpd.conf says: loopback
log=$ROOT_DIR/root/server-install.log
start=$SECONDS
in_root /root/frame-daemon/scripts/install.sh --server --wheel "$wheel" | tee "$log"
server_s=$((SECONDS - start))
grep -q "to do: MPD has no sticker database.*sticker_file.*/etc/mpd.conf" "$log" \
    || fail "install.sh --server did not say how to add a sticker_file"
grep -q "to do: MPD listens on this machine only" "$log" || fail "no word on bind_to_address"
grep -q "to do: /var/lib/mpd/music is not readable by the user frame-daemon.*SupplementaryGroups" "$log" \
    || fail "no word on the unreadable music folder"
grep -q "doctor --server --config /etc/frame-daemon/index.toml" "$log" || fail "no next step"
chmod 0755 "$music"
[ "$(sha256sum < "$mpd_conf")" = "$user_conf" ] || fail "install.sh --server edited mpd.conf"
index_conf=$ROOT_DIR/etc/frame-daemon/index.toml
mode=$(in_root stat -c '%a %G' /etc/frame-daemon/index.toml)
[ "$mode" = "640 frame-daemon" ] || fail "index config mode is $mode"
for line in 'music_directory = "/var/lib/mpd/music"' "port = $mpd_port" 'host = "127.0.0.1"' \
            'directory = "/var/lib/frame-daemon-index"'; do
    grep -qxF "$line" "$index_conf" || fail "index.toml lacks: $line"
done
if grep -q '^\[mqtt\]\|^\[source\]' "$index_conf"; then fail "index.toml has the frame's sections"; fi
wants=$ROOT_DIR/etc/systemd/system
[ -L "$wants/timers.target.wants/frame-daemon-index.timer" ] || fail "timer not enabled"
[ -L "$wants/paths.target.wants/frame-daemon-index.path" ] || fail "path unit not enabled"
grep -qx "PathChanged=/var/lib/mpd/test-database" "$wants/frame-daemon-index.path" \
    || fail "the path unit does not watch MPD's db_file"
for frame in etc/systemd/system/frame-daemon.service etc/frame-daemon/frame-daemon.toml; do
    [ ! -e "$ROOT_DIR/$frame" ] || fail "the server role installed /$frame"
done
site=$(in_root /opt/frame-daemon/.venv/bin/python -c 'import frame_daemon; print(frame_daemon.__file__)')
case "$site" in /opt/frame-daemon/.venv/lib/python3*/site-packages/*) ;; *) fail "not installed from a wheel" ;; esac

step "the user adds the sticker_file; the index unit's own command shares every song's analysis"
echo 'sticker_file "/var/lib/mpd/test-sticker.sql"' >> "$mpd_conf"
in_root mpd /etc/mpd.conf
wait_port "$mpd_port"
mpd_ask() {  # runs the Python in $1 with `c`, a client of the root's MPD
    "$PY" -c 'import sys, time; import mpd
c = mpd.MPDClient(); c.connect("127.0.0.1", int(sys.argv[1])); exec(sys.argv[2])' "$mpd_port" "$1"
}
mpd_ask 'c.update()
while "updating_db" in c.status(): time.sleep(0.1)
assert int(c.stats()["songs"]) == 2, c.stats()'
exec_start=$(sed -n 's/^ExecStart=//p' "$wants/frame-daemon-index.service")
# shellcheck disable=SC2086  # the unit's command line, split as systemd splits it
in_root runuser -u frame-daemon -- $exec_start
mpd_ask 'songs = [s["file"] for s in c.listall() if "file" in s]
missing = [u for u in songs if "frame-daemon.mood" not in c.sticker_list("song", u)]
assert songs and not missing, f"no frame-daemon.mood sticker on {missing}"
print(f"{len(songs)} songs in MPD, each with its frame-daemon.mood sticker")'
in_root runuser -u frame-daemon -- /opt/frame-daemon/.venv/bin/frame-daemon doctor --server \
    --config /etc/frame-daemon/index.toml || fail "doctor --server on the working server role"

step "second install.sh --server --with-mpd: upgrade in place, the edited index config kept"
echo "# edited by the user" >> "$index_conf"
before=$(sha256sum < "$index_conf")
start=$SECONDS
in_root /root/frame-daemon/scripts/install.sh --server --with-mpd --wheel "$wheel" | tee "$log"
server_upgrade_s=$((SECONDS - start))
[ "$(sha256sum < "$index_conf")" = "$before" ] || fail "the upgrade changed index.toml"
grep -q "upgraded .*the server role" "$log" || fail "the second run did not upgrade"
if grep -q "sticker database" "$log"; then fail "the sticker_file is there, yet install.sh asks for it"; fi
# --with-mpd enabled Debian's mpd.socket, which listens on every address: no bind_to_address advice.
[ -L "$wants/sockets.target.wants/mpd.socket" ] || fail "--with-mpd did not enable mpd.socket"
if grep -q "listens on this machine only" "$log"; then fail "bind_to_address advice despite mpd.socket"; fi
[ ! -e "$wants/frame-daemon.service" ] || fail "the upgrade installed the frame service"

step "install.sh --uninstall: the server role goes too; mpd.conf stays as the user left it"
user_conf=$(sha256sum < "$mpd_conf")
in_root /root/frame-daemon/scripts/install.sh --uninstall
for gone in opt/frame-daemon var/lib/frame-daemon-index etc/systemd/system/frame-daemon-index.service \
            etc/systemd/system/frame-daemon-index.timer etc/systemd/system/frame-daemon-index.path \
            etc/systemd/system/timers.target.wants/frame-daemon-index.timer \
            etc/systemd/system/paths.target.wants/frame-daemon-index.path; do
    [ ! -e "$ROOT_DIR/$gone" ] || fail "/$gone still there"
done
if in_root id frame-daemon 2>/dev/null; then fail "the user is still there"; fi
[ -f "$index_conf" ] || fail "index.toml went without --purge"
[ "$(sha256sum < "$mpd_conf")" = "$user_conf" ] || fail "--uninstall touched mpd.conf"
in_root /root/frame-daemon/scripts/install.sh --uninstall --purge
[ ! -e "$ROOT_DIR/etc/frame-daemon" ] || fail "--purge kept index.toml"

echo
echo "install.sh on a fresh Debian 12 root: first install ${first_s} s, upgrade ${second_s} s;" \
     "server role ${server_s} s, its upgrade ${server_upgrade_s} s; all checks passed"
