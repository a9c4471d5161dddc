#!/usr/bin/env bash
# Does every runtime dependency install as a binary wheel on a Raspberry Pi (CPython 3.11,
# aarch64 and armv7l)? Fast (seconds with pip's cache), needs PyPI; runs in the test suite.
# Prints a table; see scripts/check_pi_wheels.py for how and why.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || scripts/setup.sh
exec .venv/bin/python scripts/check_pi_wheels.py "$@"
