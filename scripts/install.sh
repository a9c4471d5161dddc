#!/usr/bin/env bash
# Install frame-daemon as a systemd service (run as root on the frame):
#   sudo scripts/install.sh            # install or upgrade
#   sudo scripts/install.sh --remove   # stop, disable and remove (keeps config and index)
# Installs to /opt/frame-daemon (code, venv, model), the unit to /etc/systemd/system, the example
# config to /etc/frame-daemon/frame-daemon.toml (never overwritten), and a system user.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=/opt/frame-daemon
UNIT=/etc/systemd/system/frame-daemon.service
CONF_DIR=/etc/frame-daemon
[ "$(id -u)" -eq 0 ] || { echo "install.sh: run as root (sudo)" >&2; exit 1; }

if [ "${1:-}" = "--remove" ]; then
    systemctl disable --now frame-daemon.service 2>/dev/null || true
    if [ -x "$PREFIX/.venv/bin/frame-daemon" ] && [ -e "$CONF_DIR/frame-daemon.toml" ]; then
        # No ghost device in Home Assistant: clear the retained discovery and state.
        "$PREFIX/.venv/bin/frame-daemon" ha-remove --config "$CONF_DIR/frame-daemon.toml" || true
    fi
    rm -f "$UNIT"
    systemctl daemon-reload
    rm -rf "$PREFIX"
    echo "removed $PREFIX and $UNIT; kept $CONF_DIR and /var/lib/frame-daemon"
    exit 0
fi

runtime=litert
case "$(uname -m)" in armv7l|armv6l) runtime=tflite ;; esac  # 32-bit Pi OS
id frame-daemon >/dev/null 2>&1 || useradd --system --home-dir /var/lib/frame-daemon \
    --shell /usr/sbin/nologin frame-daemon
mkdir -p "$PREFIX"
cp -a "$SRC/frame_daemon" "$SRC/models" "$SRC/pyproject.toml" "$SRC/README.md" "$PREFIX/"
python3 -m venv "$PREFIX/.venv"
"$PREFIX/.venv/bin/pip" install -q -e "$PREFIX[$runtime]"
install -m 0644 "$SRC/systemd/frame-daemon.service" "$UNIT"
mkdir -p "$CONF_DIR"
if [ ! -e "$CONF_DIR/frame-daemon.toml" ]; then
    install -m 0640 -g frame-daemon "$SRC/config/frame-daemon.example.toml" \
        "$CONF_DIR/frame-daemon.toml"
    echo "edit $CONF_DIR/frame-daemon.toml, then: systemctl restart frame-daemon"
fi
"$PREFIX/.venv/bin/frame-daemon" check-config --config "$CONF_DIR/frame-daemon.toml"
systemctl daemon-reload
systemctl enable --now frame-daemon.service
systemctl --no-pager status frame-daemon.service | head -5 || true
